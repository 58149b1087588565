//! Fetches one file version the chunked way: get its chunk list (as a delta
//! from the version this cache has, when there is one), take every chunk it
//! can from local files (checked by hash), fetch the rest from the hub (a few
//! requests in flight), and assemble it all in `partial/<id>`, fsynced before
//! the caller renames it into place. A download cut off (network loss, kill -9)
//! leaves `partial/<id>`; the next attempt keeps the chunks it already holds.
use crate::content::chunk_index::ChunkIndex;
use crate::remote::client::{ApiError, Remote};
use futures_util::StreamExt;
use ssync_common::api::{inline_decode, ManifestResponse};
use ssync_common::chunks::MAX_CHUNK;
use ssync_common::frames::{Chunk, FrameReader};
use ssync_common::{ChunkList, ChunkRef, ContentHash};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Chunk bytes asked for per request, and requests in flight.
const BATCH_BYTES: u64 = 4 << 20;
const IN_FLIGHT: usize = 3;
/// Fetched batches waiting for the writer thread.
const WRITES_QUEUED: usize = 2;

/// Where a chunk's bytes may already be on this machine.
struct Wanted {
    offset: u64,
    chunk: ChunkRef,
    local: Vec<(PathBuf, u64)>,
}

/// Downloads file `id`; `have` is (cache file, id) of the version this cache
/// holds for the path, if any. Returns the assembled file and its chunk list.
/// `size` is the entry's: a list that adds up to anything else is refused.
pub async fn fetch_file(
    remote: &Remote,
    index: &ChunkIndex,
    files_dir: &Path,
    partial: PathBuf,
    id: ContentHash,
    size: u64,
    have: Option<(u64, ContentHash)>,
) -> Result<(PathBuf, ChunkList), ApiError> {
    let started = std::time::Instant::now();
    let base = have.and_then(|(ino, h)| index.list_of(ino, &h).ok().flatten().map(|l| (h, l)));
    let m = remote.manifest(&id, base.as_ref().map(|(h, _)| h)).await?;
    let base_list = base.as_ref().filter(|(h, _)| Some(*h) == m.list.from).map(|(_, l)| l);
    if m.id != id {
        return Err(ApiError::Protocol(format!("asked for file {id}, the hub answered for {}", m.id)));
    }
    let list = list_of(&m, base_list, size).map_err(ApiError::Inconsistent)?;
    if let Some(inline) = &m.inline {
        let frames = inline_decode(inline).map_err(|e| ApiError::Protocol(e.0))?;
        let l = list.clone();
        let part = partial.clone();
        tokio::task::spawn_blocking(move || write_inline(&part, &l, &frames).and_then(|f| f.sync_all()))
            .await
            .map_err(|e| ApiError::Local(std::io::Error::other(e)))?
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => ApiError::Inconsistent(e.to_string()),
                _ => ApiError::Local(e),
            })?;
        return Ok((partial, list));
    }
    let wanted: Vec<Wanted> = list
        .with_offsets()
        .map(|(offset, chunk)| Wanted {
            offset,
            chunk,
            local: index
                .locate(&chunk.hash)
                .unwrap_or_default()
                .into_iter()
                .map(|(ino, off)| (files_dir.join(ino.to_string()), off))
                .collect(),
        })
        .collect();
    let part = partial.clone();
    let needed = tokio::task::spawn_blocking(move || fill_locally(&part, wanted))
        .await
        .map_err(|e| ApiError::Local(std::io::Error::other(e)))??;
    let local_done = started.elapsed();
    // A writer thread puts batches in place while the next ones arrive.
    let file = std::fs::OpenOptions::new().write(true).open(&partial)?;
    let batches = batches(needed);
    let mut left = batches.len();
    let (mut arriving, _fetching) = fetch_batches(remote.clone(), batches);
    let writer = tokio::task::spawn_blocking(move || -> Result<std::fs::File, ApiError> {
        while let Some(got) = arriving.blocking_recv() {
            let (batch, chunks) = got?;
            left -= 1;
            for ((off, _), c) in batch.iter().zip(chunks) {
                file.write_all_at(&c.data, *off)?;
            }
            // Start writing back as we go (without waiting), so the disk works
            // while the next batch is copied and the final fsync has little left.
            if let (Some((first, _)), Some((last, c))) = (batch.first(), batch.last()) {
                ssync_common::writeback::start(&file, *first, last + c.len as u64 - first)?;
            }
        }
        match left {
            0 => Ok(file),
            _ => Err(ApiError::Protocol(format!("the download ended with {left} batches of chunks not received"))),
        }
    });
    let file = writer.await.map_err(|e| ApiError::Local(std::io::Error::other(e)))??;
    let size = list.size();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        file.set_len(size)?;
        file.sync_all()
    })
    .await
    .map_err(|e| ApiError::Local(std::io::Error::other(e)))??;
    tracing::debug!(%id, chunks = list.len(), size, ?local_done, total = ?started.elapsed(), "download assembled");
    Ok((partial, list))
}

/// A batch of chunks (with their offsets) and their bytes, as fetched.
pub(crate) type Fetched = (Vec<(u64, ChunkRef)>, Vec<Chunk>);

/// Fetches `batches` from the hub, `IN_FLIGHT` requests at a time, into a
/// channel that holds `WRITES_QUEUED` of them, in order: the receiver writes
/// one while the next arrive (a writer that polled the requests itself
/// would stall them while it writes). An error ends the stream. Fetching
/// stops when the receiver or the returned handle is dropped.
pub(crate) fn fetch_batches(
    remote: Remote,
    batches: Vec<Vec<(u64, ChunkRef)>>,
) -> (tokio::sync::mpsc::Receiver<Result<Fetched, ApiError>>, tokio_util::task::AbortOnDropHandle<()>) {
    let (tx, rx) = tokio::sync::mpsc::channel(WRITES_QUEUED);
    let task = tokio::spawn(async move {
        let remote = &remote;
        let mut arriving = futures_util::stream::iter(batches)
            .map(|batch| async move {
                let hashes: Vec<ContentHash> = batch.iter().map(|(_, c)| c.hash).collect();
                let chunks = remote.fetch_chunks(&hashes).await?;
                // The bytes match each hash (checked as they arrived); their
                // length must match the list's too, or they would land over
                // their neighbours' places.
                let wrong = batch.iter().zip(&chunks).find(|((_, want), got)| got.data.len() != want.len as usize);
                if let Some(((_, want), got)) = wrong {
                    return Err(ApiError::Inconsistent(format!(
                        "chunk {} is {} bytes, but its list says {}",
                        want.hash,
                        got.data.len(),
                        want.len
                    )));
                }
                Ok((batch, chunks))
            })
            .buffered(IN_FLIGHT);
        while let Some(got) = arriving.next().await {
            let failed = got.is_err();
            if tx.send(got).await.is_err() || failed {
                return;
            }
        }
    });
    (rx, tokio_util::task::AbortOnDropHandle::new(task))
}

/// Groups chunks (with their offsets) into requests of about `BATCH_BYTES`.
pub(crate) fn batches(chunks: Vec<(u64, ChunkRef)>) -> Vec<Vec<(u64, ChunkRef)>> {
    let mut out: Vec<Vec<(u64, ChunkRef)>> = Vec::new();
    let mut bytes = 0;
    for (off, c) in chunks {
        if out.is_empty() || bytes + c.len as u64 > BATCH_BYTES {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += c.len as u64;
        out.last_mut().expect("pushed above").push((off, c));
    }
    out
}

/// The chunk list a manifest names (resolved against `base` for a delta),
/// checked against the manifest's id and against `size`, the entry's (the
/// lengths must add up to it; `resolve` refused any over the largest chunk).
pub(crate) fn list_of(m: &ManifestResponse, base: Option<&ChunkList>, size: u64) -> Result<ChunkList, String> {
    let list = m.list.resolve(base).map_err(|e| e.0)?;
    if list.id() != m.id {
        return Err(format!("the chunk list the hub sent is not file {}", m.id));
    }
    if list.size() != size {
        return Err(format!("the chunks of file {} add up to {} bytes, not the entry's {size}", m.id, list.size()));
    }
    Ok(list)
}

/// Writes a small file whose chunks came inline, checked; the caller syncs
/// it (one file, or many at once).
pub(crate) fn write_inline(partial: &Path, list: &ChunkList, frames: &[u8]) -> std::io::Result<std::fs::File> {
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let mut reader = FrameReader::default();
    reader.push(frames);
    let mut chunks = std::collections::HashMap::new();
    while let Some(c) = reader.next_chunk().map_err(|e| bad(e.to_string()))? {
        chunks.insert(c.hash, c.data);
    }
    let mut out = Vec::with_capacity(list.size() as usize);
    for c in &list.0 {
        let data = chunks.get(&c.hash).ok_or_else(|| bad(format!("chunk {} missing inline", c.hash)))?;
        if data.len() != c.len as usize {
            return Err(bad(format!("chunk {} is {} bytes, but its list says {}", c.hash, data.len(), c.len)));
        }
        out.extend_from_slice(data);
    }
    let mut f = ssync_common::private::create_file(partial)?;
    std::io::Write::write_all(&mut f, &out)?;
    Ok(f)
}

/// Reads `len` bytes at `off` of `path` if they hash to `hash`.
pub(crate) fn read_verified(path: &Path, off: u64, c: &ChunkRef) -> Option<Vec<u8>> {
    if c.len > MAX_CHUNK {
        return None; // no such chunk exists; reading would only allocate its claim
    }
    let f = std::fs::File::open(path).ok()?;
    let mut buf = vec![0; c.len as usize];
    f.read_exact_at(&mut buf, off).ok()?;
    (ContentHash::of(&buf) == c.hash).then_some(buf)
}

/// Keeps chunks `partial` already holds, copies those found in cache files;
/// returns what must come from the hub.
fn fill_locally(partial: &Path, wanted: Vec<Wanted>) -> std::io::Result<Vec<(u64, ChunkRef)>> {
    let file =
        ssync_common::private::file_options().read(true).write(true).create(true).truncate(false).open(partial)?;
    let have_len = file.metadata()?.len();
    let zero = crate::content::file_chunks::zero_chunk();
    let mut needed = Vec::new();
    for w in wanted {
        // A run of zeros stays a hole: past the end of what the partial
        // file holds, it reads as zeros once the file takes its size. (A
        // sparse file of gigabytes was written out in full, and fsynced.)
        if w.chunk == zero && w.offset >= have_len {
            continue;
        }
        if w.offset + w.chunk.len as u64 <= have_len && read_verified(partial, w.offset, &w.chunk).is_some() {
            continue;
        }
        let local = w.local.iter().find_map(|(path, off)| read_verified(path, *off, &w.chunk));
        match local {
            Some(bytes) => file.write_all_at(&bytes, w.offset)?,
            None => needed.push((w.offset, w.chunk)),
        }
    }
    Ok(needed)
}
