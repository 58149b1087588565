//! Sends one file's content the chunked way: cut it into chunks as it is read
//! (on the blocking pool, never in a FUSE callback), ask the hub which chunks
//! it lacks, send only those (a few requests in flight), then commit the
//! chunk list with the base version, as a delta from the base version's list
//! when this cache knows it. Chunks the hub already holds, from an upload cut
//! off earlier or from any other file, are not sent again.
use crate::remote::client::{ApiError, Remote};
use ssync_common::api::{inline_encode, CommitRequest, ContentKind, WireList};
use ssync_common::chunks::Chunker;
use ssync_common::{frames, ChunkList, ChunkRef, ContentHash, RelPath};
use std::collections::HashSet;
use std::path::PathBuf;

/// Chunk bytes read ahead and sent per request.
const BATCH_BYTES: usize = 4 << 20;
/// Chunk requests in flight at once.
const IN_FLIGHT: usize = 3;

pub struct FileMeta {
    pub path: RelPath,
    pub kind: ContentKind,
    pub base: u64,
    pub mode: u32,
    pub mtime_ns: i64,
    pub owner: Option<ssync_common::api::Owner>,
    pub xattrs: Option<ssync_common::xattrs::Xattrs>,
    /// The node a new file is (the sync engine names its nodes); None: the
    /// hub keeps the node at the path or makes one.
    pub node: Option<ssync_common::NodeId>,
}

impl FileMeta {
    /// The commit that makes `list` (sent as `wire`) this path's content.
    pub fn commit(&self, list: &ChunkList, wire: WireList, inline: Option<String>) -> CommitRequest {
        CommitRequest {
            kind: self.kind,
            path: self.path.clone(),
            base: self.base,
            id: list.id(),
            size: list.size(),
            mode: self.mode,
            mtime_ns: self.mtime_ns,
            owner: self.owner.clone(),
            xattrs: self.xattrs.clone(),
            list: wire,
            inline,
            node: self.node,
        }
    }
}

/// A small file in one piece: its list, and the frames of its chunks not in
/// `known`, to travel inside the commit.
pub(crate) fn read_small_file(
    file: &std::path::Path,
    known: &HashSet<ContentHash>,
) -> std::io::Result<(ChunkList, Option<String>)> {
    let data = std::fs::read(file)?;
    let list = ssync_common::chunks::list_of(&data);
    let mut out = Vec::new();
    for (off, c) in list.with_offsets().filter(|(_, c)| !known.contains(&c.hash)) {
        frames::encode(&mut out, &c.hash, &data[off as usize..(off + c.len as u64) as usize], true);
    }
    Ok((list, (!out.is_empty()).then(|| inline_encode(&out))))
}

/// Reads and chunks `file`, sending every chunk the hub lacks; returns the list.
pub(crate) async fn send_new_chunks(
    remote: &Remote,
    file: PathBuf,
    known: HashSet<ContentHash>,
) -> Result<ChunkList, ApiError> {
    type Batch = std::io::Result<Vec<(ChunkRef, Vec<u8>)>>;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(1);
    // Dropping `rx` (an error below) makes the reader stop at its next send.
    let reader = tokio::task::spawn_blocking(move || {
        let f = match std::fs::File::open(&file) {
            Ok(f) => f,
            Err(e) => return drop(tx.blocking_send(Err(e))),
        };
        let (mut batch, mut bytes) = (Vec::new(), 0);
        for c in Chunker::new(f) {
            match c {
                Ok(c) => {
                    bytes += c.1.len();
                    batch.push(c);
                    if bytes >= BATCH_BYTES {
                        bytes = 0;
                        if tx.blocking_send(Ok(std::mem::take(&mut batch))).is_err() {
                            return;
                        }
                    }
                }
                Err(e) => return drop(tx.blocking_send(Err(e))),
            }
        }
        let _ = tx.blocking_send(Ok(batch));
    });
    let mut list = Vec::new();
    let mut asked = known;
    let mut sends = tokio::task::JoinSet::new();
    while let Some(batch) = rx.recv().await {
        let batch = batch?;
        list.extend(batch.iter().map(|(r, _)| *r));
        let fresh: Vec<(ChunkRef, Vec<u8>)> = batch.into_iter().filter(|(r, _)| asked.insert(r.hash)).collect();
        if fresh.is_empty() {
            continue;
        }
        while sends.len() >= IN_FLIGHT {
            if let Some(done) = sends.join_next().await {
                done.map_err(|e| ApiError::Protocol(e.to_string()))??;
            }
        }
        let remote = remote.clone();
        // The question and the send travel together, so the next batch is
        // read and asked about while this one is on the wire.
        sends.spawn(async move { send_missing(&remote, fresh).await });
    }
    while let Some(done) = sends.join_next().await {
        done.map_err(|e| ApiError::Protocol(e.to_string()))??;
    }
    let _ = reader.await;
    Ok(ChunkList(list))
}

/// Sends the chunks of `file` the hub lacks, the file being `content`: by
/// `known`, its list as identifying it recorded it (only the chunks the hub
/// lacks are read), else by reading and chunking the whole file. Bytes that
/// are not `content` (the file changed since) are `ChangedWhileRead`.
pub(crate) async fn send_content_chunks(
    remote: &Remote,
    file: PathBuf,
    content: ContentHash,
    known: Option<ChunkList>,
) -> Result<ChunkList, ApiError> {
    let list = match known.filter(|l| l.id() == content) {
        Some(list) => send_listed_chunks(remote, file, &list).await.map(|()| list)?,
        None => send_new_chunks(remote, file, HashSet::new()).await?,
    };
    match list.id() == content {
        true => Ok(list),
        false => Err(ApiError::ChangedWhileRead),
    }
}

/// Sends the chunks of `file` the hub lacks when its chunk list is already
/// known (the content was identified from it): the hub is asked about the
/// list, and only the chunks it lacks are read, at their offsets, so a big
/// file is not read and chunked a second time. A chunk whose bytes no longer
/// match its hash means the file changed since: nothing more is sent.
async fn send_listed_chunks(remote: &Remote, file: PathBuf, list: &ChunkList) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    let unique: Vec<ContentHash> = list.0.iter().map(|c| c.hash).filter(|h| seen.insert(*h)).collect();
    let missing: HashSet<ContentHash> = remote.missing(&unique).await?.into_iter().collect();
    if missing.is_empty() {
        return Ok(());
    }
    // Each missing chunk once, at the first offset that holds it.
    let mut wanted = HashSet::new();
    let at: Vec<(u64, ChunkRef)> =
        list.with_offsets().filter(|(_, c)| missing.contains(&c.hash) && wanted.insert(c.hash)).collect();
    let mut sends = tokio::task::JoinSet::new();
    let mut start = 0;
    while start < at.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < at.len() && (bytes < BATCH_BYTES || end == start) {
            bytes += at[end].1.len as usize;
            end += 1;
        }
        let part = at[start..end].to_vec();
        start = end;
        let file = file.clone();
        let body = tokio::task::spawn_blocking(move || frames_at(&file, &part))
            .await
            .map_err(|e| ApiError::Local(std::io::Error::other(e)))??;
        while sends.len() >= IN_FLIGHT {
            if let Some(done) = sends.join_next().await {
                done.map_err(|e| ApiError::Protocol(e.to_string()))??;
            }
        }
        let remote = remote.clone();
        sends.spawn(async move { remote.send_chunks(body).await.map(drop) });
    }
    while let Some(done) = sends.join_next().await {
        done.map_err(|e| ApiError::Protocol(e.to_string()))??;
    }
    Ok(())
}

/// The frames of the chunks at `part`'s offsets in `file`, each checked
/// against its hash.
fn frames_at(file: &std::path::Path, part: &[(u64, ChunkRef)]) -> Result<Vec<u8>, ApiError> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(file)?;
    let wire: usize = part.iter().map(|(_, c)| c.len as usize + frames::HEADER).sum();
    let mut body = Vec::with_capacity(wire);
    let mut data = Vec::new();
    for (off, c) in part {
        data.resize(c.len as usize, 0);
        f.read_exact_at(&mut data, *off)?;
        if ContentHash::of(&data) != c.hash {
            return Err(ApiError::ChangedWhileRead);
        }
        frames::encode(&mut body, &c.hash, &data, true);
    }
    Ok(body)
}

/// Asks which of `fresh` the hub lacks and sends those.
async fn send_missing(remote: &Remote, fresh: Vec<(ChunkRef, Vec<u8>)>) -> Result<(), ApiError> {
    let hashes: Vec<ContentHash> = fresh.iter().map(|(r, _)| r.hash).collect();
    let missing: HashSet<ContentHash> = remote.missing(&hashes).await?.into_iter().collect();
    // One allocation per request body: growing it by doubling left the
    // allocator holding tens of MiB after a large upload.
    let wire: usize =
        fresh.iter().filter(|(r, _)| missing.contains(&r.hash)).map(|(_, d)| d.len() + frames::HEADER).sum();
    if wire == 0 {
        return Ok(());
    }
    let mut body = Vec::with_capacity(wire);
    for (r, data) in fresh.iter().filter(|(r, _)| missing.contains(&r.hash)) {
        frames::encode(&mut body, &r.hash, data, true);
    }
    drop(fresh);
    remote.send_chunks(body).await.map(drop)
}
