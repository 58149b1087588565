//! Who may use the hub: every request but `/v1/health` and the API document carries
//! `Authorization: Bearer TOKEN`, a token made by `ssync-server token add`
//! (or the admin token made at first start). Only tokens' hashes are stored;
//! a revoked token fails its next request, and a long-poll held open for it
//! ends within a second (`scope::recheck`). Which shares a token may use is
//! `scope.rs`'s part.
use crate::db::tokens;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

const PREFIX: &str = "ssync_";
/// Endpoints open to anyone: liveness checks carry no data.
const OPEN: &[&str] = &["/v1/health", crate::openapi::DOCUMENT_PATH];

/// The name of the token a request came with.
#[derive(Debug, Clone)]
pub struct Caller(pub String);

/// A new random token: `ssync_` and 64 hex digits (256 bits from the OS).
pub fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(format!("{PREFIX}{}", hex::encode(bytes)))
}

pub fn hash(token: &str) -> blake3::Hash {
    blake3::hash(token.as_bytes())
}

/// Middleware: refuses requests without a known token (401, JSON error).
pub async fn require_token(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if OPEN.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let Some(token) = presented else {
        return ApiError::Unauthorized(
            "this hub needs a token: send 'Authorization: Bearer TOKEN' (ssync-mount reads it from --token-file; \
             make one with 'ssync-server token add NAME')"
                .into(),
        )
        .into_response();
    };
    let h = hash(&token);
    match state.db.call(move |c| Ok::<_, ApiError>(tokens::find(c, &h)?)).await {
        Ok(Some(name)) => {
            req.extensions_mut().insert(Caller(name));
            next.run(req).await
        }
        Ok(None) => ApiError::Unauthorized(
            "the token is not valid: mistyped, or revoked with 'ssync-server token revoke'".into(),
        )
        .into_response(),
        Err(e) => e.into_response(),
    }
}
