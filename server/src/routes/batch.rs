//! `POST /v1/batch`: many changes in one request and one transaction, so a
//! mount with thousands of queued changes pays one round trip and one fsync
//! per batch instead of per change. Each change is checked exactly as its own
//! endpoint checks it; the first refusal ends the batch.
use crate::db::{Scoped, ShareId};
use crate::error::ApiError;
use crate::extract::{AppJson, Device};
use crate::openapi::DeviceHeader;
use crate::openapi::SharePath;
use crate::routes::chunks::{apply_commit, prepare_commit, ReadyCommit};
use crate::scope::WriteShare;
use crate::state::AppState;
use crate::tree::{self, Author, Carried, TreeError};
use axum::extract::State;
use axum::Json;
use ssync_common::api::{
    BatchRequest, BatchResponse, Change, DeleteRequest, Entry, ErrorBody, ExchangeRequest, MkdirRequest,
    MutationResponse, Refusal, RenameRequest, SetAttrRequest, MAX_BATCH,
};
use ssync_common::PathLimits;

/// A change whose checks outside the transaction passed.
enum Ready {
    Commit(ReadyCommit),
    Mkdir(MkdirRequest),
    Delete(DeleteRequest),
    Rename(RenameRequest),
    Exchange(ExchangeRequest),
    Setattr(SetAttrRequest),
}

async fn prepare(state: &AppState, share: ShareId, change: Change) -> Result<Ready, ApiError> {
    Ok(match change {
        Change::Commit(r) => Ready::Commit(prepare_commit(state, share, r).await?),
        Change::Mkdir(r) => Ready::Mkdir(r),
        Change::Delete(r) => Ready::Delete(r),
        Change::Rename(r) => Ready::Rename(r),
        Change::Exchange(r) => Ready::Exchange(r),
        Change::Setattr(r) => Ready::Setattr(r),
    })
}

fn carried(owner: Option<ssync_common::api::Owner>, xattrs: Option<ssync_common::xattrs::Xattrs>) -> Carried {
    Carried { owner, xattrs, node: None }
}

fn apply(c: &Scoped, d: &Author, limits: PathLimits, ready: Ready) -> Result<Vec<Entry>, TreeError> {
    match ready {
        Ready::Commit(r) => apply_commit(c, d, r),
        Ready::Mkdir(r) => {
            let carried = Carried { node: r.node, ..carried(r.owner.clone(), r.xattrs.clone()) };
            tree::mkdir(c, d, &r.path, r.base, r.mode, r.mtime_ns, carried)
        }
        Ready::Delete(r) => tree::delete(c, d, &r.path, r.base),
        Ready::Rename(r) => tree::rename(c, d, &r.from, &r.to, r.base, r.to_base, r.to_parent, limits),
        Ready::Exchange(r) => tree::exchange(c, d, &r.a, &r.b, r.a_base, r.b_base, limits),
        Ready::Setattr(r) => {
            tree::set_attr(c, d, &r.path, r.base, r.mode, r.mtime_ns, carried(r.owner.clone(), r.xattrs.clone()))
        }
    }
}

fn refusal(e: ApiError) -> Refusal {
    let (status, error) = e.answer();
    Refusal { status: status.as_u16(), error }
}

#[utoipa::path(post, path = "/v1/shares/{share}/batch", tag = "tree", request_body = BatchRequest, params(SharePath, DeviceHeader),
    responses(
        (status = 200, description = "The changes applied, in order, and the one refused (the rest were not applied)", body = BatchResponse),
        (status = 413, description = "More changes than one batch may hold", body = ErrorBody),
    ))]
pub async fn batch(
    State(state): State<AppState>,
    WriteShare(scope): WriteShare,
    Device(d): Device,
    AppJson(req): AppJson<BatchRequest>,
) -> Result<Json<BatchResponse>, ApiError> {
    if req.changes.len() > MAX_BATCH {
        return Err(ApiError::TooLarge(format!(
            "a batch holds at most {MAX_BATCH} changes, not {}",
            req.changes.len()
        )));
    }
    // Held until the commits are applied: no chunk they name is collected.
    let _no_gc = state.store.gc_lock.read().await;
    let mut ready = Vec::with_capacity(req.changes.len());
    let mut refused = None;
    for change in req.changes {
        match prepare(&state, scope.share, change).await {
            Ok(r) => ready.push(r),
            Err(e) => {
                refused = Some(refusal(e));
                break;
            }
        }
    }
    let limits = state.limits.paths;
    let (done, refused_in_tx) = state.mutate_each(scope.share, ready, move |c, r| apply(c, &d, limits, r)).await?;
    // A refusal inside the transaction comes first: it ends the batch earlier.
    let refused = refused_in_tx.map(|e| refusal(e.into())).or(refused);
    let done = done.into_iter().map(|entries| MutationResponse { entries }).collect();
    Ok(Json(BatchResponse { done, refused }))
}
