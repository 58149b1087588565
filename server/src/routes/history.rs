//! One entry, the kept versions of a path, and restores.
use crate::db::{entries, Scoped};
use crate::error::ApiError;
use crate::extract::{AppJson, AppQuery, Device};
use crate::openapi::SharePath;
use crate::openapi::{DeviceHeader, MutationAnswers};
use crate::scope::{ReadShare, WriteShare};
use crate::state::AppState;
use crate::tree;
use axum::extract::State;
use axum::Json;
use ssync_common::api::{
    Entry, ErrorBody, MutationResponse, PathQuery, RestoreRequest, RestoreTreeRequest, VersionsResponse,
};

/// `GET /v1/entry?path=`: the entry as the hub has it now, tombstones included.
#[utoipa::path(get, path = "/v1/shares/{share}/entry", tag = "history", params(SharePath, PathQuery),
    responses(
        (status = 200, description = "The entry now, tombstones included", body = Entry),
        (status = 404, description = "The path never existed", body = ErrorBody),
    ))]
pub async fn entry(
    State(state): State<AppState>,
    ReadShare(scope): ReadShare,
    AppQuery(q): AppQuery<PathQuery>,
) -> Result<Json<Entry>, ApiError> {
    let path = q.path.clone();
    let e = state.db.call(move |c| Ok::<_, ApiError>(entries::get(&Scoped::new(c, scope.share), &path)?)).await?;
    e.map(Json).ok_or_else(|| ApiError::NotFound(format!("'{}' has never existed on the hub", q.path)))
}

#[utoipa::path(get, path = "/v1/shares/{share}/versions", tag = "history", params(SharePath, PathQuery),
    responses(
        (status = 200, description = "The kept versions of the path, newest first", body = VersionsResponse),
        (status = 404, description = "The path has no versions", body = ErrorBody),
    ))]
pub async fn versions(
    State(state): State<AppState>,
    ReadShare(scope): ReadShare,
    AppQuery(q): AppQuery<PathQuery>,
) -> Result<Json<VersionsResponse>, ApiError> {
    let path = q.path.clone();
    let versions =
        state.db.call(move |c| Ok::<_, ApiError>(entries::versions_of(&Scoped::new(c, scope.share), &path)?)).await?;
    if versions.is_empty() {
        return Err(ApiError::NotFound(format!("'{}' has no versions on the hub", q.path)));
    }
    Ok(Json(VersionsResponse { versions }))
}

#[utoipa::path(post, path = "/v1/shares/{share}/restore", tag = "history", request_body = RestoreRequest, params(SharePath, DeviceHeader),
    responses(MutationAnswers, (status = 404, description = "The path has no such version", body = ErrorBody)))]
pub async fn restore(
    State(state): State<AppState>,
    WriteShare(scope): WriteShare,
    Device(d): Device,
    AppJson(r): AppJson<RestoreRequest>,
) -> Result<Json<MutationResponse>, ApiError> {
    let entries =
        state.mutate(scope.share, move |c| tree::restore(c, &d, &r.path, r.version, r.as_path.as_ref())).await?;
    Ok(Json(MutationResponse { entries }))
}

#[utoipa::path(post, path = "/v1/shares/{share}/restore-tree", tag = "history", request_body = RestoreTreeRequest, params(SharePath, DeviceHeader),
    responses(MutationAnswers, (status = 404, description = "The folder did not exist at that time", body = ErrorBody)))]
pub async fn restore_tree(
    State(state): State<AppState>,
    WriteShare(scope): WriteShare,
    Device(d): Device,
    AppJson(r): AppJson<RestoreTreeRequest>,
) -> Result<Json<MutationResponse>, ApiError> {
    let entries = state.mutate(scope.share, move |c| tree::restore_tree(c, &d, &r.path, r.at_ns)).await?;
    Ok(Json(MutationResponse { entries }))
}
