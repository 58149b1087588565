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
use std::collections::{HashMap, HashSet};
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
/// known (the content was identified from it): see `send_listed_files`.
async fn send_listed_chunks(remote: &Remote, file: PathBuf, list: &ChunkList) -> Result<(), ApiError> {
    let changed = send_listed_files(remote, vec![Listed { file, list: list.clone() }]).await?;
    match changed.first() {
        Some(true) => Err(ApiError::ChangedWhileRead),
        _ => Ok(()),
    }
}

/// A file whose chunks are to reach the hub, and the chunk list its bytes
/// were identified as.
pub(crate) struct Listed {
    pub file: PathBuf,
    pub list: ChunkList,
}

/// Where a chunk's bytes are: a file of the set (by index), at an offset.
#[derive(Clone, Copy)]
struct Holder {
    file: usize,
    at: u64,
    len: u32,
}

/// Sends the chunks the hub lacks of several files whose lists are known:
/// one question for all their chunks, then each missing chunk once, read
/// at its offset, packed into requests of about `BATCH_BYTES` with
/// `IN_FLIGHT` on the wire. A batch of many files of a few hundred KiB thus
/// costs a few requests, not two per file (fsstress's sparse files made a
/// round of thousands). A chunk whose bytes no longer match its hash means
/// its file was written since: that file is marked (the returned flags, by
/// index) and the chunk is read from another file that holds it, if any.
/// Failing to reach the hub fails the whole call.
pub(crate) async fn send_listed_files(remote: &Remote, files: Vec<Listed>) -> Result<Vec<bool>, ApiError> {
    let mut holders: HashMap<ContentHash, Vec<Holder>> = HashMap::new();
    let mut unique = Vec::new();
    for (i, f) in files.iter().enumerate() {
        for (at, c) in f.list.with_offsets() {
            let held = holders.entry(c.hash).or_default();
            if held.is_empty() {
                unique.push(c.hash);
            }
            // One place per file is enough.
            if held.last().is_none_or(|h| h.file != i) {
                held.push(Holder { file: i, at, len: c.len });
            }
        }
    }
    let mut changed = vec![false; files.len()];
    if unique.is_empty() {
        return Ok(changed);
    }
    let missing = remote.missing(&unique).await?;
    let paths: std::sync::Arc<Vec<PathBuf>> = std::sync::Arc::new(files.into_iter().map(|f| f.file).collect());
    let mut sends = tokio::task::JoinSet::new();
    let mut parts = missing.into_iter().filter_map(|h| holders.remove(&h).map(|held| (h, held))).peekable();
    while parts.peek().is_some() {
        let (mut part, mut bytes) = (Vec::new(), 0usize);
        while let Some(next) = parts.next_if(|_| bytes < BATCH_BYTES) {
            bytes += next.1[0].len as usize;
            part.push(next);
        }
        let paths = paths.clone();
        let (body, spoilt) = tokio::task::spawn_blocking(move || frames_of(&paths, &part))
            .await
            .map_err(|e| ApiError::Local(std::io::Error::other(e)))??;
        for i in spoilt {
            changed[i] = true;
        }
        while sends.len() >= IN_FLIGHT {
            if let Some(done) = sends.join_next().await {
                done.map_err(|e| ApiError::Protocol(e.to_string()))??;
            }
        }
        if !body.is_empty() {
            let remote = remote.clone();
            sends.spawn(async move { remote.send_chunks(body).await.map(drop) });
        }
    }
    while let Some(done) = sends.join_next().await {
        done.map_err(|e| ApiError::Protocol(e.to_string()))??;
    }
    Ok(changed)
}

/// The frames of `part`'s chunks, each read from the first of its holders
/// whose bytes still match its hash; and the files found changed.
fn frames_of(paths: &[PathBuf], part: &[(ContentHash, Vec<Holder>)]) -> std::io::Result<(Vec<u8>, Vec<usize>)> {
    use std::os::unix::fs::FileExt;
    let wire: usize = part.iter().map(|(_, h)| h[0].len as usize + frames::HEADER).sum();
    let mut body = Vec::with_capacity(wire);
    let mut open: HashMap<usize, std::fs::File> = HashMap::new();
    let mut spoilt = Vec::new();
    let mut data = Vec::new();
    for (hash, held) in part {
        for h in held {
            let f = match open.entry(h.file) {
                std::collections::hash_map::Entry::Occupied(f) => f.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => match std::fs::File::open(&paths[h.file]) {
                    Ok(f) => v.insert(f),
                    // Gone since it was listed: written again and renamed
                    // over, or deleted; either way not the content listed.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        spoilt.push(h.file);
                        continue;
                    }
                    Err(e) => return Err(e),
                },
            };
            data.resize(h.len as usize, 0);
            let read = f.read_exact_at(&mut data, h.at);
            if read.is_ok() && ContentHash::of(&data) == *hash {
                frames::encode(&mut body, hash, &data, true);
                break;
            }
            match read {
                Err(e) if e.kind() != std::io::ErrorKind::UnexpectedEof => return Err(e),
                _ => spoilt.push(h.file),
            }
        }
    }
    Ok((body, spoilt))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::file_chunks::list_of_file;
    use std::os::unix::fs::PermissionsExt;

    /// A hub on 127.0.0.1 in this process, and a client of it.
    async fn hub(dir: &std::path::Path) -> Remote {
        let state = ssync_server::AppState::open(&dir.join("hub"), Default::default()).await.unwrap();
        let token = ssync_server::token_cli::add(&state.db, "test").unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(ssync_server::serve(listener, state, None, std::future::pending()));
        let file = dir.join("token");
        std::fs::write(&file, token).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let token = crate::remote::token::load(Some(&file)).unwrap();
        Remote::new(&format!("http://{addr}"), "test", &token, None).unwrap()
    }

    /// `len` bytes from `seed`.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        crate::content::file_chunks::tests::noise(len, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    fn hashes(list: &ChunkList) -> Vec<ContentHash> {
        list.0.iter().map(|c| c.hash).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batchs_files_reach_the_hub_together_and_one_written_since_is_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let remote = hub(dir.path()).await;
        let shared = noise(1, 1 << 20);
        let b_was = noise(2, 700 << 10);
        let files: Vec<(&str, Vec<u8>)> = vec![
            ("a", [&shared[..], &noise(3, 600 << 10)].concat()),
            ("b", b_was.clone()),
            ("c", [&shared[..], &noise(4, 500 << 10)].concat()),
            // The bytes b had when it was listed, in another file.
            ("d", b_was),
        ];
        let mut listed = Vec::new();
        for (name, bytes) in &files {
            let file = dir.path().join(name);
            std::fs::write(&file, bytes).unwrap();
            listed.push(Listed { list: list_of_file(&file).unwrap(), file });
        }
        let lists: Vec<ChunkList> = listed.iter().map(|l| l.list.clone()).collect();
        // b is written again after it was listed.
        std::fs::write(dir.path().join("b"), noise(5, 700 << 10)).unwrap();

        let changed = send_listed_files(&remote, listed).await.unwrap();
        assert_eq!(changed, vec![false, true, false, false], "only b changed since it was listed");
        for (list, name) in lists.iter().zip(["a", "b (by d's bytes)", "c", "d"]) {
            let missing = remote.missing(&hashes(list)).await.unwrap();
            assert!(missing.is_empty(), "{} of {name}'s chunks did not reach the hub", missing.len());
        }

        // The hub has them all now: nothing is read or flagged again.
        let again = lists.iter().zip(&files).map(|(l, (n, _))| Listed { file: dir.path().join(n), list: l.clone() });
        let changed = send_listed_files(&remote, again.collect()).await.unwrap();
        assert_eq!(changed, vec![false; 4]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_gone_since_it_was_listed_is_flagged_and_the_rest_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let remote = hub(dir.path()).await;
        let (gone, kept) = (dir.path().join("gone"), dir.path().join("kept"));
        std::fs::write(&gone, noise(6, 400 << 10)).unwrap();
        std::fs::write(&kept, noise(7, 400 << 10)).unwrap();
        let listed = vec![
            Listed { list: list_of_file(&gone).unwrap(), file: gone.clone() },
            Listed { list: list_of_file(&kept).unwrap(), file: kept.clone() },
        ];
        let kept_list = listed[1].list.clone();
        std::fs::remove_file(&gone).unwrap();
        let changed = send_listed_files(&remote, listed).await.unwrap();
        assert_eq!(changed, vec![true, false]);
        assert!(remote.missing(&hashes(&kept_list)).await.unwrap().is_empty());
    }
}
