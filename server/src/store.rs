//! The chunk store: one file per chunk under `objects/ab/cdef…`, named by the
//! BLAKE3 hash of its bytes, so equal chunks of any file, version or client
//! are stored once.
//!
//! Invariant: a file under `objects/` is always complete. Each chunk is
//! written to a temp file in `tmp/` and fdatasynced (several at once), and the
//! request's chunks are renamed into place together; a commit that names
//! chunks first fsyncs the folders that got new names (`sync_names`). A crash
//! leaves at most orphan temp files (removed at start), never a partial chunk.
use bytes::Bytes;
use ssync_common::frames::Chunk;
use ssync_common::ContentHash;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tempfile::TempPath;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("content store i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("chunk {0} not found")]
    NotFound(ContentHash),
}

#[derive(Clone)]
pub struct ContentStore {
    objects: PathBuf,
    tmp: PathBuf,
    /// Requests that rely on chunks being present (a "have it" answer, a
    /// commit) hold it shared; GC holds it exclusively while it decides and deletes.
    pub gc_lock: Arc<tokio::sync::RwLock<()>>,
    /// Folders that got new names since their last fsync.
    unsynced_dirs: Arc<std::sync::Mutex<std::collections::HashSet<PathBuf>>>,
}

fn blocking<T: Send + 'static>(f: impl FnOnce() -> std::io::Result<T> + Send + 'static) -> BlockingIo<T> {
    BlockingIo(tokio::task::spawn_blocking(f))
}

struct BlockingIo<T>(tokio::task::JoinHandle<std::io::Result<T>>);

impl<T> BlockingIo<T> {
    async fn wait(self) -> Result<T, StoreError> {
        Ok(self.0.await.map_err(std::io::Error::other)??)
    }
}

impl ContentStore {
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let objects = data_dir.join("objects");
        let tmp = data_dir.join("tmp");
        std::fs::create_dir_all(&objects)?;
        // Anything left in tmp/ is a batch a crash cut short.
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp)?;
        Ok(ContentStore { objects, tmp, gc_lock: Default::default(), unsynced_dirs: Default::default() })
    }

    pub fn object_path(&self, hash: &ContentHash) -> PathBuf {
        let hex = hash.to_hex();
        self.objects.join(&hex[..2]).join(&hex[2..])
    }

    /// The chunks of `hashes` the store lacks. Present ones older than `fresh`
    /// get a new mtime, so a collection running after this answer spares them
    /// for its grace period. Call with `gc_lock` held shared.
    pub async fn missing(&self, hashes: Vec<ContentHash>, fresh: Duration) -> Result<Vec<ContentHash>, StoreError> {
        let store = self.clone();
        blocking(move || {
            let now = SystemTime::now();
            let mut missing = Vec::new();
            for h in hashes {
                let path = store.object_path(&h);
                match std::fs::metadata(&path) {
                    Ok(m) => {
                        let age = m.modified().ok().and_then(|t| now.duration_since(t).ok()).unwrap_or_default();
                        if age > fresh {
                            std::fs::File::options().write(true).open(&path)?.set_modified(now)?;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing.push(h),
                    Err(e) => return Err(e),
                }
            }
            Ok(missing)
        })
        .wait()
        .await
    }

    pub fn batch(&self) -> ChunkBatch {
        ChunkBatch { store: self.clone(), writing: Default::default(), done: Vec::new(), bytes: 0 }
    }

    /// Makes every chunk renamed into place so far durable (fsyncs the folders
    /// that got new names), before a commit names it.
    pub async fn sync_names(&self) -> Result<(), StoreError> {
        let s = self.clone();
        blocking(move || {
            // Held while syncing: a concurrent commit waits until the folders
            // it relies on are synced, instead of finding the set already empty.
            let mut dirs = s.unsynced_dirs.lock().unwrap_or_else(|p| p.into_inner());
            for dir in dirs.iter() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            dirs.clear();
            Ok(())
        })
        .wait()
        .await
    }

    pub async fn read_chunk(&self, hash: &ContentHash) -> Result<Bytes, StoreError> {
        match tokio::fs::read(self.object_path(hash)).await {
            Ok(b) => Ok(Bytes::from(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound(*hash)),
            Err(e) => Err(e.into()),
        }
    }

    pub fn has_chunk(&self, hash: &ContentHash) -> bool {
        self.object_path(hash).exists()
    }

    /// Every stored chunk: (hash, size, last modified). Skips anything that is not one.
    pub fn list_objects(&self) -> std::io::Result<Vec<(ContentHash, u64, SystemTime)>> {
        let mut out = Vec::new();
        for dir in std::fs::read_dir(&self.objects)? {
            let dir = dir?;
            let prefix = dir.file_name().to_string_lossy().into_owned();
            if !dir.file_type()?.is_dir() {
                continue;
            }
            for f in std::fs::read_dir(dir.path())? {
                let f = f?;
                let name = format!("{prefix}{}", f.file_name().to_string_lossy());
                if let Ok(h) = name.parse::<ContentHash>() {
                    let m = f.metadata()?;
                    out.push((h, m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
                }
            }
        }
        Ok(out)
    }

    pub fn remove_object(&self, hash: &ContentHash) -> std::io::Result<()> {
        match std::fs::remove_file(self.object_path(hash)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Chunks of one upload request, in fsynced temp files until `finish` moves
/// them into place, so a request refused halfway stores nothing.
pub struct ChunkBatch {
    store: ContentStore,
    writing: tokio::task::JoinSet<std::io::Result<(ContentHash, TempPath, u64)>>,
    done: Vec<(ContentHash, TempPath)>,
    bytes: u64,
}

/// Chunk writes (write + fdatasync) in flight per request: concurrent syncs
/// share the filesystem's journal commits.
const PARALLEL_WRITES: usize = 8;

impl ChunkBatch {
    /// Writes a verified chunk to a temp file and syncs it, a few at a time.
    pub async fn add(&mut self, chunk: Chunk) -> Result<(), StoreError> {
        let queued = |h: &ContentHash| self.done.iter().any(|(d, _)| d == h);
        if self.store.has_chunk(&chunk.hash) || queued(&chunk.hash) {
            return Ok(());
        }
        while self.writing.len() >= PARALLEL_WRITES {
            self.reap_one().await?;
        }
        let tmp = self.store.tmp.clone();
        self.writing.spawn_blocking(move || {
            let mut f = tempfile::Builder::new().suffix(".part").tempfile_in(&tmp)?;
            f.write_all(&chunk.data)?;
            f.as_file().sync_data()?;
            Ok((chunk.hash, f.into_temp_path(), chunk.data.len() as u64))
        });
        Ok(())
    }

    async fn reap_one(&mut self) -> Result<(), StoreError> {
        if let Some(r) = self.writing.join_next().await {
            let (hash, path, len) = r.map_err(std::io::Error::other)??;
            if !self.done.iter().any(|(d, _)| *d == hash) {
                self.bytes += len;
                self.done.push((hash, path));
            }
        }
        Ok(())
    }

    /// Moves the batch into place; returns (chunks, bytes) stored. The folder
    /// entries become durable at the next `sync_names` (before any commit).
    pub async fn finish(mut self) -> Result<(u64, u64), StoreError> {
        while !self.writing.is_empty() {
            self.reap_one().await?;
        }
        let ChunkBatch { store, done, bytes, .. } = self;
        if done.is_empty() {
            return Ok((0, 0));
        }
        let count = done.len() as u64;
        let s = store.clone();
        blocking(move || {
            let mut dirs = std::collections::HashSet::new();
            for (hash, temp) in done {
                let dest = s.object_path(&hash);
                if dest.exists() {
                    continue; // stored meanwhile by another request; our temp goes
                }
                let dir = dest.parent().expect("object path has a parent").to_path_buf();
                std::fs::create_dir_all(&dir)?;
                temp.persist(&dest).map_err(|e| e.error)?;
                dirs.insert(dir);
            }
            s.unsynced_dirs.lock().unwrap_or_else(|p| p.into_inner()).extend(dirs);
            Ok(())
        })
        .wait()
        .await?;
        Ok((count, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(data: &'static [u8]) -> Chunk {
        Chunk { hash: ContentHash::of(data), data: Bytes::from_static(data) }
    }

    #[tokio::test]
    async fn batches_store_by_hash_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let (a, b) = (chunk(b"hello"), chunk(b"world"));
        let (ha, hb) = (a.hash, b.hash);
        assert_eq!(store.missing(vec![ha, hb], Duration::ZERO).await.unwrap(), vec![ha, hb]);
        let mut batch = store.batch();
        batch.add(a).await.unwrap();
        batch.add(b).await.unwrap();
        batch.add(chunk(b"hello")).await.unwrap();
        assert_eq!(batch.finish().await.unwrap(), (2, 10));
        store.sync_names().await.unwrap();
        assert_eq!(store.read_chunk(&ha).await.unwrap(), Bytes::from_static(b"hello"));
        assert!(store.missing(vec![ha, hb], Duration::ZERO).await.unwrap().is_empty());
        let mut again = store.batch();
        again.add(chunk(b"world")).await.unwrap();
        assert_eq!(again.finish().await.unwrap(), (0, 0), "already stored");
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0, "no temp file left");
    }

    #[tokio::test]
    async fn an_unfinished_batch_leaves_no_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let mut batch = store.batch();
        batch.add(chunk(b"partial")).await.unwrap();
        drop(batch);
        assert_eq!(std::fs::read_dir(dir.path().join("objects")).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert!(matches!(store.read_chunk(&ContentHash::of(b"partial")).await, Err(StoreError::NotFound(_))));
    }
}
