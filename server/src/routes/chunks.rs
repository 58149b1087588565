//! File contents as chunks: ask which chunks the hub lacks, send them, commit
//! a chunk list as a file version; read lists and chunks back.
use crate::db::{manifests, share_chunks, small_chunks, ShareId};
use crate::error::ApiError;
use crate::extract::{AppJson, AppQuery, Device};
use crate::openapi::SharePath;
use crate::openapi::{Binary, DeviceHeader, MutationAnswers};
use crate::scope::{ReadShare, WriteShare};
use crate::state::AppState;
use crate::store::StoreError;
use crate::tree::{self, Author, FileCommit, TreeError};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use ssync_common::api::{
    inline_decode, inline_encode, ChunksRequest, CommitRequest, ContentKind, ErrorBody, FetchRequest, HashList,
    ManifestQuery, ManifestResponse, ManifestsRequest, ManifestsResponse, MissingResponse, MutationResponse,
    StoredResponse, WireList, INLINE_MAX, MAX_MANIFESTS, MAX_SYMLINK_TARGET,
};
use ssync_common::frames::{self, Chunk, FrameReader};
use ssync_common::{ChunkList, ContentHash};
use std::collections::HashMap;

/// Of `hashes`, the chunks share `share` holds (`share_chunks`).
async fn held_by(
    state: &AppState,
    share: ShareId,
    hashes: Vec<ContentHash>,
) -> Result<std::collections::HashSet<ContentHash>, ApiError> {
    if hashes.is_empty() {
        return Ok(Default::default()); // a small file's commit: no trip to the database thread
    }
    state.db.call(move |c| Ok::<_, ApiError>(share_chunks::held(c, share, &hashes)?)).await
}

/// Whether content `id` is one of share `share`'s (a version, live or kept).
async fn in_share(state: &AppState, share: ShareId, id: ContentHash) -> Result<bool, ApiError> {
    state.db.call(move |c| Ok::<_, ApiError>(share_chunks::has_content(c, share, &id)?)).await
}

fn no_content(id: &ContentHash) -> ApiError {
    ApiError::NotFound(format!("no file content {id} on the hub"))
}

fn parse_hash(s: &str) -> Result<ContentHash, ApiError> {
    s.parse().map_err(|e| ApiError::BadHash(format!("{e}: '{s}'")))
}

fn hashes(state: &AppState, list: &HashList) -> Result<Vec<ContentHash>, ApiError> {
    let v = list.decode()?;
    let max = state.limits.max_hashes;
    if v.len() > max {
        return Err(ApiError::TooLarge(format!("{} hashes in one request; at most {max} (--max-hashes)", v.len())));
    }
    Ok(v)
}

/// `POST /v1/chunks/missing`: the named chunks the hub does not have, as
/// the share sees it: a chunk only another share holds is missing here.
#[utoipa::path(post, path = "/v1/shares/{share}/chunks/missing", params(SharePath), tag = "content", request_body = ChunksRequest,
    responses(
        (status = 200, description = "The chunks the hub lacks, in request order", body = MissingResponse),
        (status = 413, description = "Too many hashes, or too large a body", body = ErrorBody),
    ))]
pub async fn missing(
    State(state): State<AppState>,
    WriteShare(scope): WriteShare,
    AppJson(req): AppJson<ChunksRequest>,
) -> Result<Json<MissingResponse>, ApiError> {
    let wanted = hashes(&state, &req.chunks)?;
    let _no_gc = state.store.gc_lock.read().await;
    let held = held_by(&state, scope.share, wanted.clone()).await?;
    let stored = state.store.missing(wanted.clone(), state.retention.grace / 2).await?;
    let stored: std::collections::HashSet<ContentHash> = stored.into_iter().collect();
    let missing: Vec<ContentHash> = wanted.into_iter().filter(|h| stored.contains(h) || !held.contains(h)).collect();
    Ok(Json(MissingResponse { missing: HashList::encode(&missing) }))
}

/// `POST /v1/chunks`: a stream of chunk frames. Every chunk is checked against
/// its hash as it arrives; one mismatch stores nothing of the request.
#[utoipa::path(post, path = "/v1/shares/{share}/chunks", params(SharePath), tag = "content",
    request_body(content = Option<Binary>, content_type = "application/octet-stream", description = "Chunk frames; none is an empty stream"),
    responses(
        (status = 200, description = "Chunks received, and how many were new", body = StoredResponse),
        (status = 408, description = "The body stalled", body = ErrorBody),
        (status = 413, description = "More bytes than the upload limit", body = ErrorBody),
    ))]
pub async fn upload(
    State(state): State<AppState>,
    WriteShare(scope): WriteShare,
    body: Body,
) -> Result<Json<StoredResponse>, ApiError> {
    // A declared length over the limit was answered by body_limits; one
    // that is not declared (chunked) is counted as it arrives.
    let max = state.limits.max_upload_bytes;
    let started = std::time::Instant::now();
    let mut reader = FrameReader::default();
    let mut batch = state.store.batch();
    let (mut bytes, mut received, mut hashes) = (0u64, 0u64, Vec::new());
    let mut stream = body.into_data_stream();
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|e| crate::body_limits::body_error("the chunk stream", &e))?;
        bytes += piece.len() as u64;
        if bytes > max {
            return Err(ApiError::TooLarge(format!("a chunk upload carries at most {max} bytes (--max-upload-mib)")));
        }
        reader.push(&piece);
        while let Some(chunk) = reader.next_chunk()? {
            received += 1;
            hashes.push(chunk.hash);
            batch.add(chunk).await?;
        }
    }
    reader.finish()?;
    let streamed = started.elapsed();
    let (stored, _) = batch.finish().await?;
    // Stored once for every share; this share now holds them too.
    let share = scope.share;
    state
        .db
        .call(move |c| {
            // One transaction: one WAL sync for the request, not one per chunk.
            let tx = c.transaction()?;
            share_chunks::record(&tx, share, &hashes)?;
            tx.commit()?;
            Ok::<_, ApiError>(())
        })
        .await?;
    tracing::debug!(received, stored, bytes, ?streamed, total = ?started.elapsed(), "chunks stored");
    Ok(Json(StoredResponse { received, stored }))
}

/// Decodes and checks the chunks of an `inline` field (small files).
fn decode_inline(inline: &str) -> Result<Vec<Chunk>, ApiError> {
    let frames = inline_decode(inline)?;
    if frames.len() as u64 > INLINE_MAX * 2 {
        return Err(ApiError::TooLarge(format!("inline chunks carry at most {INLINE_MAX} bytes")));
    }
    let mut reader = FrameReader::default();
    reader.push(&frames);
    let mut out = Vec::new();
    while let Some(chunk) = reader.next_chunk()? {
        out.push(chunk);
    }
    reader.finish()?;
    Ok(out)
}

/// A chunk's bytes, from the chunk store or, for small files, the database.
async fn read_chunk(state: &AppState, hash: ContentHash) -> Result<bytes::Bytes, ApiError> {
    match state.store.read_chunk(&hash).await {
        Err(StoreError::NotFound(_)) => {
            let small = state.db.call(move |c| Ok::<_, ApiError>(small_chunks::get(c, &hash)?)).await?;
            small.map(bytes::Bytes::from).ok_or_else(|| ApiError::NotFound(format!("chunk {hash} is not on the hub")))
        }
        other => Ok(other?),
    }
}

/// Frames for every chunk of `list`, read from the store.
async fn frames_of(state: &AppState, list: &ChunkList, zstd: bool) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    for c in &list.0 {
        let data = read_chunk(state, c.hash).await?;
        frames::encode(&mut out, &c.hash, &data, zstd);
    }
    Ok(out)
}

/// `POST /v1/chunks/fetch`: the named chunks as a frame stream, in order.
#[utoipa::path(post, path = "/v1/shares/{share}/chunks/fetch", params(SharePath), tag = "content", request_body = FetchRequest,
    responses(
        (status = 200, description = "The chunks as frames, in request order", body = Binary, content_type = "application/octet-stream"),
        (status = 404, description = "A chunk is not on the hub", body = ErrorBody),
        (status = 413, description = "Too many hashes, or too large a body", body = ErrorBody),
    ))]
pub async fn fetch(
    State(state): State<AppState>,
    ReadShare(scope): ReadShare,
    AppJson(req): AppJson<FetchRequest>,
) -> Result<Response, ApiError> {
    let wanted = hashes(&state, &req.chunks)?;
    // Only the share's own chunks: another share's are not on the hub, as
    // far as this request can tell.
    let held = held_by(&state, scope.share, wanted.clone()).await?;
    if let Some(h) = wanted.iter().find(|h| !held.contains(h)) {
        return Err(ApiError::NotFound(format!("chunk {h} is not on the hub")));
    }
    let places = state.store.places(wanted.clone()).await?;
    // Chunks in no pack may be small files' chunks; anything else is a 404
    // now, before the stream starts.
    let unpacked: Vec<ContentHash> = wanted.iter().zip(&places).filter(|(_, p)| p.is_none()).map(|(h, _)| *h).collect();
    if !unpacked.is_empty() {
        let small = state.db.call(move |c| Ok::<_, ApiError>(small_chunks::present(c, &unpacked)?)).await?;
        let absent = wanted.iter().zip(&places).find(|(h, p)| p.is_none() && !small.contains_key(h));
        if let Some((h, _)) = absent {
            return Err(ApiError::NotFound(format!("chunk {h} is not on the hub")));
        }
    }
    let zstd = req.zstd;
    // A few chunk reads ahead, in order.
    let frames = futures_util::stream::iter(wanted.into_iter().zip(places))
        .map(move |(h, place)| {
            let state = state.clone();
            async move {
                let data = match place {
                    Some(p) => state.store.read_at(h, p).await.map_err(ApiError::from),
                    None => read_chunk(&state, h).await,
                };
                let data = data.map_err(|e| {
                    // The response is already under way: this cut is all the client sees.
                    tracing::warn!(chunk = %h, "a chunk could not be read; the stream ends here: {e}");
                    std::io::Error::other(e)
                })?;
                let mut out = Vec::with_capacity(data.len() + frames::HEADER);
                frames::encode(&mut out, &h, &data, zstd);
                Ok::<_, std::io::Error>(bytes::Bytes::from(out))
            }
        })
        .buffered(4);
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], Body::from_stream(frames)).into_response())
}

/// `GET /v1/manifest/{id}?have=OTHER`: a file's chunk list, as a delta from
/// OTHER's when the hub knows that one.
#[utoipa::path(get, path = "/v1/shares/{share}/manifest/{id}", tag = "content",
    params(SharePath, ("id" = ContentHash, Path, description = "The file content's id"), ManifestQuery),
    responses(
        (status = 200, description = "The content's chunk list, as a delta from `have`'s when the hub knows it", body = ManifestResponse),
        (status = 404, description = "No such content", body = ErrorBody),
    ))]
pub async fn manifest(
    State(state): State<AppState>,
    ReadShare(scope): ReadShare,
    Path((_, id)): Path<(String, String)>,
    AppQuery(q): AppQuery<ManifestQuery>,
) -> Result<Json<ManifestResponse>, ApiError> {
    let id = parse_hash(&id)?;
    let share = scope.share;
    let range = match (q.from, q.to) {
        (None, None) => None,
        (from, to) => {
            let (from, to) = (from.unwrap_or(0), to.unwrap_or(u64::MAX));
            if from > to {
                return Err(ApiError::BadRequest(format!("from ({from}) is past to ({to})")));
            }
            Some((from, to))
        }
    };
    let (list, have) = state
        .db
        .call(move |c| {
            // Another share's content, or a delta from one, is unknown here.
            let list = match share_chunks::has_content(c, share, &id)? {
                true => manifests::get(c, &id)?,
                false => None,
            };
            let have = match q.have {
                Some(h) if share_chunks::has_content(c, share, &h)? => manifests::get(c, &h)?.map(|l| (h, l)),
                _ => None,
            };
            Ok::<_, ApiError>((list, have))
        })
        .await?;
    let list = list.ok_or_else(|| no_content(&id))?;
    if let Some((from, to)) = range {
        let (offset, part) = list.slice(from, to);
        let (size, list) = (list.size(), WireList::whole(&part));
        return Ok(Json(ManifestResponse { id, size, list, inline: None, offset: Some(offset) }));
    }
    let inline = match q.inline && list.size() <= INLINE_MAX {
        true => Some(inline_encode(&frames_of(&state, &list, true).await?)),
        false => None,
    };
    let wire = match have {
        Some((h, base)) => WireList::delta(h, &list.delta_from(&base)),
        None => WireList::whole(&list),
    };
    Ok(Json(ManifestResponse { id, size: list.size(), list: wire, inline, offset: None }))
}

/// `POST /v1/manifests`: many small files with their bytes inline, read in
/// one trip to the database: what a mount asks for when another unpacked a
/// tree of small files.
#[utoipa::path(post, path = "/v1/shares/{share}/manifests", params(SharePath), tag = "content", request_body = ManifestsRequest,
    responses(
        (status = 200, description = "The small files among the ids, bytes inline, in the order asked; others are left out", body = ManifestsResponse),
        (status = 413, description = "More ids than one request may name", body = ErrorBody),
    ))]
pub async fn manifests_many(
    State(state): State<AppState>,
    ReadShare(scope): ReadShare,
    AppJson(req): AppJson<ManifestsRequest>,
) -> Result<Json<ManifestsResponse>, ApiError> {
    if req.ids.len() > MAX_MANIFESTS {
        return Err(ApiError::TooLarge(format!(
            "one request names at most {MAX_MANIFESTS} ids, not {}",
            req.ids.len()
        )));
    }
    type Found = Vec<(ContentHash, ChunkList, Vec<Option<Vec<u8>>>)>;
    let share = scope.share;
    let found: Found = state
        .db
        .call(move |c| {
            let mut out = Vec::new();
            for id in req.ids {
                if !share_chunks::has_content(c, share, &id)? {
                    continue; // another share's: unknown here
                }
                let Some(list) = manifests::get(c, &id)?.filter(|l| l.size() <= INLINE_MAX) else { continue };
                let data = list.0.iter().map(|ch| small_chunks::get(c, &ch.hash)).collect::<Result<_, _>>()?;
                out.push((id, list, data));
            }
            Ok::<_, ApiError>(out)
        })
        .await?;
    let mut manifests = Vec::with_capacity(found.len());
    for (id, list, data) in found {
        let mut out = Vec::new();
        for (ch, d) in list.0.iter().zip(data) {
            // A small file's chunk may sit in a pack (sent the chunked way).
            let d = match d {
                Some(d) => bytes::Bytes::from(d),
                None => read_chunk(&state, ch.hash).await?,
            };
            frames::encode(&mut out, &ch.hash, &d, true);
        }
        let inline = Some(inline_encode(&out));
        manifests.push(ManifestResponse { id, size: list.size(), list: WireList::whole(&list), inline, offset: None });
    }
    Ok(Json(ManifestsResponse { manifests }))
}

/// `POST /v1/commit`: makes a chunk list the new content of a path, if the
/// base version is current and every chunk is on the hub.
#[utoipa::path(post, path = "/v1/shares/{share}/commit", tag = "content", request_body = CommitRequest, params(SharePath, DeviceHeader),
    responses(
        MutationAnswers,
        (status = 422, description = "Chunks or the base list are not on the hub: send them, then commit again", body = ErrorBody),
    ))]
pub async fn commit(
    State(state): State<AppState>,
    WriteShare(scope): WriteShare,
    Device(d): Device,
    AppJson(req): AppJson<CommitRequest>,
) -> Result<Json<MutationResponse>, ApiError> {
    let _no_gc = state.store.gc_lock.read().await;
    let ready = prepare_commit(&state, scope.share, req).await?;
    let entries = state.mutate(scope.share, move |c| apply_commit(c, &d, ready)).await?;
    Ok(Json(MutationResponse { entries }))
}

/// A commit whose checks that need no transaction passed (list, size, every
/// chunk on the hub): what `apply_commit` writes.
pub struct ReadyCommit {
    inline: Vec<Chunk>,
    list: ChunkList,
    commit: FileCommit,
}

/// Checks a commit and gathers what it writes. The caller holds the GC lock
/// (read) from here until the commit is applied, so no chunk it names goes.
pub async fn prepare_commit(state: &AppState, share: ShareId, req: CommitRequest) -> Result<ReadyCommit, ApiError> {
    if req.kind == ContentKind::Symlink && req.size > MAX_SYMLINK_TARGET {
        return Err(ApiError::BadRequest(format!(
            "a symlink's target is at most {MAX_SYMLINK_TARGET} bytes, not {}",
            req.size
        )));
    }
    let from = req.list.from;
    // A base list, and chunks, only of this share: a commit through share B
    // naming what only share A holds is refused as if it were not there.
    let base = match from {
        Some(f) => Some(
            state
                .db
                .call(move |c| match share_chunks::has_content(c, share, &f)? {
                    true => Ok::<_, ApiError>(manifests::get(c, &f)?),
                    false => Ok(None),
                })
                .await?
                .ok_or_else(|| {
                    ApiError::MissingChunks(format!("the base list {f} is not on the hub; send the whole list"))
                })?,
        ),
        None => None,
    };
    let list = req.list.resolve(base.as_ref())?;
    if list.id() != req.id {
        return Err(ApiError::BadHash(format!("the chunk list does not hash to id {}", req.id)));
    }
    if list.size() != req.size {
        return Err(ApiError::BadRequest(format!("the chunks add up to {} bytes, not {}", list.size(), req.size)));
    }
    let inline = req.inline.as_deref().map(decode_inline).transpose()?.unwrap_or_default();
    let mut lengths: HashMap<ContentHash, u32> = inline.iter().map(|c| (c.hash, c.data.len() as u32)).collect();
    let named: Vec<ContentHash> = list.0.iter().map(|c| c.hash).filter(|h| !lengths.contains_key(h)).collect();
    let held = held_by(state, share, named.clone()).await?;
    let stored = state.store.lengths(named, state.retention.grace / 2).await?;
    lengths.extend(stored.into_iter().filter(|(h, _)| held.contains(h)));
    check_lengths(&list, &lengths)?;
    if req.kind == ContentKind::Symlink {
        check_symlink_target(state, &list, &inline).await?;
    }
    let commit = FileCommit {
        path: req.path,
        kind: req.kind.into(),
        base: req.base,
        hash: req.id,
        size: req.size,
        mode: req.mode,
        mtime_ns: req.mtime_ns,
        carried: tree::Carried { owner: req.owner, xattrs: req.xattrs, node: req.node },
    };
    Ok(ReadyCommit { inline, list, commit })
}

/// Every chunk a list names must be on the hub with the length the list
/// gives it: a list that lies about a length would have mounts disagree on
/// the file's size and bytes (and a false 16 TiB total stall them).
fn check_lengths(list: &ChunkList, stored: &HashMap<ContentHash, u32>) -> Result<(), ApiError> {
    let mut missing = 0;
    for (i, c) in list.0.iter().enumerate() {
        match stored.get(&c.hash) {
            None => missing += 1,
            Some(&len) if len != c.len => {
                return Err(ApiError::BadRequest(format!(
                    "chunk {i} of the list ({}) is {len} bytes on the hub, but the list says {}",
                    c.hash, c.len
                )))
            }
            Some(_) => {}
        }
    }
    match missing {
        0 => Ok(()),
        n => Err(ApiError::MissingChunks(format!("{n} chunks of this list are not on the hub; send them first"))),
    }
}

/// A symlink's content is its target: a NUL in it would be cut off where
/// mounts make the link, so each machine would point somewhere else.
async fn check_symlink_target(state: &AppState, list: &ChunkList, inline: &[Chunk]) -> Result<(), ApiError> {
    for c in &list.0 {
        let data = match inline.iter().find(|i| i.hash == c.hash) {
            Some(i) => i.data.clone(),
            None => read_chunk(state, c.hash).await?,
        };
        if data.contains(&0) {
            return Err(ApiError::BadRequest("a symlink's target cannot hold a NUL byte".into()));
        }
    }
    Ok(())
}

/// Writes a checked commit in the caller's transaction.
pub fn apply_commit(
    c: &crate::db::Scoped,
    d: &Author,
    ready: ReadyCommit,
) -> Result<Vec<ssync_common::api::Entry>, TreeError> {
    // Inline chunks commit with the version: durable with the same fsync.
    for chunk in &ready.inline {
        small_chunks::put(c, &chunk.hash, &chunk.data)?;
    }
    let inline: Vec<ContentHash> = ready.inline.iter().map(|ch| ch.hash).collect();
    share_chunks::record(c, c.share, &inline)?;
    manifests::put(c, &ready.list)?;
    tree::commit_file(c, d, ready.commit)
}

/// `GET /v1/content/{id}`: a whole file, its chunks streamed in order.
#[utoipa::path(get, path = "/v1/shares/{share}/content/{id}", tag = "content",
    params(SharePath, ("id" = ContentHash, Path, description = "The file content's id")),
    responses(
        (status = 200, description = "The whole file", body = Binary, content_type = "application/octet-stream"),
        (status = 404, description = "No such content", body = ErrorBody),
    ))]
pub async fn download(
    State(state): State<AppState>,
    ReadShare(scope): ReadShare,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = parse_hash(&id)?;
    if !in_share(&state, scope.share, id).await? {
        return Err(no_content(&id));
    }
    let list = state.db.call(move |c| Ok::<_, ApiError>(manifests::get(c, &id)?)).await?;
    let list = list.ok_or_else(|| no_content(&id))?;
    let size = list.size();
    let body = futures_util::stream::iter(list.0)
        .map(move |c| {
            let state = state.clone();
            async move { read_chunk(&state, c.hash).await.map_err(std::io::Error::other) }
        })
        .buffered(4);
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream".to_string()), (header::CONTENT_LENGTH, size.to_string())],
        Body::from_stream(body),
    )
        .into_response())
}
