//! Converts data written by older hubs, at start, before the hub serves.
//! - Before chunking, an id in `entries.hash` was the BLAKE3 hash of the whole
//!   content, stored as one file under `objects/`. Each is cut into chunks
//!   (into a pack) and its versions take the id of the new list, so old and
//!   new uploads of the same bytes have the same id.
//! - Before packs, each chunk was a file under `objects/` named by its hash.
//!   Each is checked against its name and moved into a pack.
//!
//! Safe to interrupt: a file under `objects/` is deleted only once what
//! replaces it is durable and recorded; a run cut short starts over with
//! what is left.
use crate::db::{manifests, Db, DbError};
use crate::pack::PackWriter;
use crate::store::{ContentStore, StoreError};
use ssync_common::chunks::{Chunker, MAX_CHUNK};
use ssync_common::{ChunkList, ContentHash};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Bytes moved into one pack before it is installed.
const PACK_BYTES: u64 = 64 << 20;

fn object_path(objects: &Path, hash: &ContentHash) -> PathBuf {
    let hex = hash.to_hex();
    objects.join(&hex[..2]).join(&hex[2..])
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> std::io::Result<T> + Send + 'static) -> Result<T, StoreError> {
    Ok(tokio::task::spawn_blocking(f).await.map_err(std::io::Error::other)??)
}

/// Converts what `data_dir/objects` holds; returns how many files it converted.
pub async fn convert_old_objects(data_dir: &Path, db: &Db, store: &ContentStore) -> Result<usize, StoreError> {
    let objects = data_dir.join("objects");
    if !objects.exists() {
        return Ok(0);
    }
    let whole = convert_whole_contents(&objects, db, store).await?;
    let chunks = move_chunk_files(&objects, store).await?;
    if whole + chunks > 0 {
        // Stored before shares: every chunk is the default share's.
        db.call(|c| crate::db::share_chunks::record_all_packed(c, crate::db::ShareId::DEFAULT).map_err(DbError::from))
            .await?;
        tracing::info!(whole, chunks, "converted contents stored by an older hub");
    }
    Ok(whole + chunks)
}

async fn convert_whole_contents(objects: &Path, db: &Db, store: &ContentStore) -> Result<usize, StoreError> {
    let old = db.call(|c| Ok::<_, DbError>(manifests::unlisted_ids(c)?)).await?;
    let mut converted = 0;
    for (id, size) in old {
        let path = object_path(objects, &id);
        let (s, p) = (store.clone(), path.clone());
        let cut = blocking(move || match size {
            0 => Ok((ChunkList::default(), s.writer()?)),
            _ => chunk_object(&p, s.writer()?),
        })
        .await;
        let (list, writer) = match cut {
            Ok((l, w)) if l.size() == size => (l, w),
            Ok((l, _)) => {
                tracing::error!(%id, size, found = l.size(), "stored content has the wrong size; left as it is");
                continue;
            }
            Err(e) => {
                tracing::error!(%id, "cannot convert stored content to chunks: {e}");
                continue;
            }
        };
        store.install(writer).await?;
        db.call(move |c| {
            let tx = c.transaction()?;
            let new = manifests::put(&tx, &list)?;
            manifests::rename_id(&tx, &id, &new)?;
            tx.commit()?;
            Ok::<_, DbError>(())
        })
        .await?;
        remove_if_there(&path)?;
        converted += 1;
    }
    Ok(converted)
}

fn chunk_object(path: &Path, mut w: PackWriter) -> std::io::Result<(ChunkList, PackWriter)> {
    let mut list = Vec::new();
    let mut seen = HashSet::new();
    for c in Chunker::new(std::fs::File::open(path)?) {
        let (r, data) = c?;
        if seen.insert(r.hash) {
            w.add(r.hash, &data)?;
        }
        list.push(r);
    }
    Ok((ChunkList(list), w))
}

/// Moves every chunk file under `objects` into packs; files that are not a
/// chunk (wrong name, size or bytes) stay where they are.
async fn move_chunk_files(objects: &Path, store: &ContentStore) -> Result<usize, StoreError> {
    let o = objects.to_path_buf();
    let mut files = blocking(move || list_files(&o)).await?;
    let (mut moved, mut left) = (0, 0);
    while !files.is_empty() {
        let s = store.clone();
        // One pack's worth: files are taken until the pack is full.
        let (writer, done, skipped, rest) = blocking(move || {
            let mut w = s.writer()?;
            let (mut done, mut skipped) = (Vec::new(), 0);
            while w.len() < PACK_BYTES {
                let Some(path) = files.pop() else { break };
                match read_chunk_file(&path)? {
                    Some((hash, data)) => {
                        w.add(hash, &data)?;
                        done.push(path);
                    }
                    None => skipped += 1,
                }
            }
            Ok((w, done, skipped, files))
        })
        .await?;
        store.install(writer).await?;
        for path in &done {
            remove_if_there(path)?;
        }
        moved += done.len();
        left += skipped;
        files = rest;
    }
    if left > 0 {
        tracing::warn!(left, dir = %objects.display(), "files there are not chunks; left as they are");
    } else {
        let _ = std::fs::remove_dir_all(objects);
    }
    Ok(moved)
}

fn list_files(objects: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(objects)? {
        let dir = dir?;
        if dir.file_type()?.is_dir() {
            for f in std::fs::read_dir(dir.path())? {
                out.push(f?.path());
            }
        }
    }
    Ok(out)
}

/// The chunk a file under `objects/ab/cdef…` holds, if its bytes match its name.
fn read_chunk_file(path: &Path) -> std::io::Result<Option<(ContentHash, Vec<u8>)>> {
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let hex = format!("{}{}", path.parent().map(name).unwrap_or_default(), name(path));
    let Ok(hash) = hex.parse::<ContentHash>() else { return Ok(None) };
    if std::fs::metadata(path)?.len() > MAX_CHUNK as u64 {
        return Ok(None);
    }
    let data = std::fs::read(path)?;
    Ok((ContentHash::of(&data) == hash).then_some((hash, data)))
}

fn remove_if_there(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
