//! Metadata-only mutations: mkdir, delete, rename, exchange, chmod/utimens.
use crate::error::ApiError;
use crate::extract::{AppJson, Device};
use crate::openapi::SharePath;
use crate::openapi::{DeviceHeader, MutationAnswers};
use crate::scope::WriteShare;
use crate::state::AppState;
use crate::tree::{self, Carried};
use axum::extract::State;
use axum::Json;
use ssync_common::api::{
    DeleteRequest, ExchangeRequest, MkdirRequest, MutationResponse, RenameRequest, SetAttrRequest,
};

type Mutated = Result<Json<MutationResponse>, ApiError>;

fn ok(entries: Vec<ssync_common::api::Entry>) -> Mutated {
    Ok(Json(MutationResponse { entries }))
}

#[utoipa::path(post, path = "/v1/shares/{share}/mkdir", tag = "tree", request_body = MkdirRequest, params(SharePath, DeviceHeader),
    responses(MutationAnswers))]
pub async fn mkdir(
    State(state): State<AppState>,
    WriteShare(scope): WriteShare,
    Device(d): Device,
    AppJson(r): AppJson<MkdirRequest>,
) -> Mutated {
    ok(state
        .mutate(scope.share, move |c| {
            tree::mkdir(
                c,
                &d,
                &r.path,
                r.base,
                r.mode,
                r.mtime_ns,
                Carried { owner: r.owner, xattrs: r.xattrs, node: r.node },
            )
        })
        .await?)
}

#[utoipa::path(post, path = "/v1/shares/{share}/delete", tag = "tree", request_body = DeleteRequest, params(SharePath, DeviceHeader),
    responses(MutationAnswers))]
pub async fn delete(
    State(state): State<AppState>,
    WriteShare(scope): WriteShare,
    Device(d): Device,
    AppJson(r): AppJson<DeleteRequest>,
) -> Mutated {
    ok(state.mutate(scope.share, move |c| tree::delete(c, &d, &r.path, r.base)).await?)
}

#[utoipa::path(post, path = "/v1/shares/{share}/rename", tag = "tree", request_body = RenameRequest, params(SharePath, DeviceHeader),
    responses(MutationAnswers))]
pub async fn rename(
    State(state): State<AppState>,
    WriteShare(scope): WriteShare,
    Device(d): Device,
    AppJson(r): AppJson<RenameRequest>,
) -> Mutated {
    let limits = state.limits.paths;
    ok(state
        .mutate(scope.share, move |c| tree::rename(c, &d, &r.from, &r.to, r.base, r.to_base, r.to_parent, limits))
        .await?)
}

#[utoipa::path(post, path = "/v1/shares/{share}/exchange", tag = "tree", request_body = ExchangeRequest, params(SharePath, DeviceHeader),
    responses(MutationAnswers))]
pub async fn exchange(
    State(state): State<AppState>,
    WriteShare(scope): WriteShare,
    Device(d): Device,
    AppJson(r): AppJson<ExchangeRequest>,
) -> Mutated {
    let limits = state.limits.paths;
    ok(state.mutate(scope.share, move |c| tree::exchange(c, &d, &r.a, &r.b, r.a_base, r.b_base, limits)).await?)
}

#[utoipa::path(post, path = "/v1/shares/{share}/setattr", tag = "tree", request_body = SetAttrRequest, params(SharePath, DeviceHeader),
    responses(MutationAnswers))]
pub async fn set_attr(
    State(state): State<AppState>,
    WriteShare(scope): WriteShare,
    Device(d): Device,
    AppJson(r): AppJson<SetAttrRequest>,
) -> Mutated {
    ok(state
        .mutate(scope.share, move |c| {
            tree::set_attr(
                c,
                &d,
                &r.path,
                r.base,
                r.mode,
                r.mtime_ns,
                Carried { owner: r.owner, xattrs: r.xattrs, node: None },
            )
        })
        .await?)
}
