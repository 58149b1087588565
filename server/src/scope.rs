//! Which share a request works on, and whether its token may: every tree
//! endpoint lives under `/v1/shares/{share}/…`. One middleware (`resolve`)
//! looks up the caller's grant on the share named in the path and refuses
//! the request without one (403, naming the share and the grant missing; a
//! share that does not exist gets the same answer, so names cannot be
//! probed). Handlers take the share from `ReadShare` or `WriteShare`, the
//! only way to get one, and a change through a read-only grant is refused
//! by `WriteShare` before it runs.
use crate::auth::Caller;
use crate::db::{grants, tokens, ShareId};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ssync_common::share::check_share_name;

const PREFIX: &str = "/v1/shares/";

/// The share a request works on, and the caller's access to it.
#[derive(Debug, Clone)]
pub struct Scope {
    pub share: ShareId,
    pub name: String,
    pub token: String,
    pub writable: bool,
}

/// The share name of a path under `/v1/shares/{share}/`, if it is one.
fn share_in_path(path: &str) -> Option<&str> {
    let (name, rest) = path.strip_prefix(PREFIX)?.split_once('/')?;
    (!rest.is_empty()).then_some(name)
}

fn no_grant(token: &str, share: &str) -> ApiError {
    ApiError::Forbidden(format!(
        "token '{token}' has no grant on share '{share}', or there is no such share: an admin gives one with \
         'ssync-server token grant {token} --share {share}:ro' (or :rw)"
    ))
}

/// Middleware (inside `auth::require_token`): resolves the share a request
/// names against its token's grants.
pub async fn resolve(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(name) = share_in_path(req.uri().path()).map(str::to_string) else { return next.run(req).await };
    let Some(Caller(token)) = req.extensions().get::<Caller>().cloned() else { return next.run(req).await };
    if let Err(e) = check_share_name(&name) {
        return ApiError::BadRequest(e.to_string()).into_response();
    }
    let (t, n) = (token.clone(), name.clone());
    match state.db.call(move |c| Ok::<_, ApiError>(grants::access(c, &t, &n)?)).await {
        Ok(Some(a)) => {
            req.extensions_mut().insert(Scope { share: a.share, name, token, writable: a.writable });
            next.run(req).await
        }
        Ok(None) => no_grant(&token, &name).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Whether the grant a held request was let in by still holds: 401 once
/// its token is revoked, 403 once its grant is (checked by long-polls).
pub async fn recheck(state: &AppState, scope: &Scope) -> Result<(), ApiError> {
    let (t, n) = (scope.token.clone(), scope.name.clone());
    let (token, access) =
        state.db.call(move |c| Ok::<_, ApiError>((tokens::exists(c, &t)?, grants::access(c, &t, &n)?))).await?;
    match (token, access) {
        (false, _) => Err(ApiError::Unauthorized("the token was revoked".into())),
        (true, None) => Err(no_grant(&scope.token, &scope.name)),
        (true, Some(_)) => Ok(()),
    }
}

fn scope_of(parts: &Parts) -> Result<Scope, ApiError> {
    parts.extensions.get::<Scope>().cloned().ok_or_else(|| {
        // A handler that takes a share registered outside /v1/shares/{share}/.
        ApiError::Internal(format!("no share resolved for {}", parts.uri.path()))
    })
}

/// The share of a request that only reads it.
pub struct ReadShare(pub Scope);

impl<S: Send + Sync> FromRequestParts<S> for ReadShare {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        scope_of(parts).map(ReadShare)
    }
}

/// The share of a request that changes it (or uploads to it): refused
/// through a read-only grant.
pub struct WriteShare(pub Scope);

impl<S: Send + Sync> FromRequestParts<S> for WriteShare {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let scope = scope_of(parts)?;
        if !scope.writable {
            return Err(ApiError::Forbidden(format!(
                "token '{t}' may only read share '{s}': changing it needs a read-write grant \
                 ('ssync-server token grant {t} --share {s}:rw')",
                t = scope.token,
                s = scope.name
            )));
        }
        Ok(WriteShare(scope))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_is_the_segment_after_shares_of_a_longer_path() {
        assert_eq!(share_in_path("/v1/shares/photos/tree"), Some("photos"));
        assert_eq!(share_in_path("/v1/shares/photos/content/00"), Some("photos"));
        assert_eq!(share_in_path("/v1/shares/photos/"), None);
        assert_eq!(share_in_path("/v1/shares/photos"), None);
        assert_eq!(share_in_path("/v1/shares"), None);
        assert_eq!(share_in_path("/v1/tree"), None);
    }
}
