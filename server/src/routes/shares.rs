//! `GET /v1/shares`: the shares the caller's token may use, so a mount
//! without `--share` finds its only one, or lists them.
use crate::auth::Caller;
use crate::db::grants;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::{Extension, Json};
use ssync_common::share::{ShareAccess, SharesResponse};

#[utoipa::path(get, path = "/v1/shares", tag = "hub",
    responses((status = 200, description = "The shares this token may use (an admin's: all), by name", body = SharesResponse)))]
pub async fn shares(
    State(state): State<AppState>,
    Extension(Caller(token)): Extension<Caller>,
) -> Result<Json<SharesResponse>, ApiError> {
    let rows = state.db.call(move |c| Ok::<_, ApiError>(grants::shares_of(c, &token)?)).await?;
    let shares = rows.into_iter().map(|(name, writable)| ShareAccess { name, writable }).collect();
    Ok(Json(SharesResponse { shares }))
}
