//! File bytes: streamed uploads that commit a file version, and downloads by hash.
use crate::error::ApiError;
use crate::extract::{AppQuery, Device};
use crate::state::AppState;
use crate::tree::{self, FileCommit};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ssync_common::api::{MutationResponse, UploadQuery};
use ssync_common::ContentHash;
use tokio_util::io::ReaderStream;

/// `PUT /v1/file?path=&base=&mode=&mtime_ns=`: the body is stored first (temp,
/// fsync, rename), then the version is committed if `base` is still current.
pub async fn upload(
    State(state): State<AppState>,
    Device(d): Device,
    AppQuery(q): AppQuery<UploadQuery>,
    body: Body,
) -> Result<Json<MutationResponse>, ApiError> {
    let (hash, size, guard) = state.store.write_stream(body.into_data_stream()).await?;
    let commit = FileCommit { path: q.path, base: q.base, hash, size, mode: q.mode, mtime_ns: q.mtime_ns };
    let entries = state.mutate(move |c| tree::commit_file(c, d.as_deref(), commit)).await?;
    drop(guard); // the commit names the object now: GC may run
    Ok(Json(MutationResponse { entries }))
}

pub async fn download(State(state): State<AppState>, Path(hash): Path<String>) -> Result<Response, ApiError> {
    let hash: ContentHash = hash.parse().map_err(|e| ApiError::BadHash(format!("{e}: '{hash}'")))?;
    let (file, len) = state.store.open_object(&hash).await?;
    let body = Body::from_stream(ReaderStream::with_capacity(file, 256 * 1024));
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream".to_string()), (header::CONTENT_LENGTH, len.to_string())],
        body,
    )
        .into_response())
}
