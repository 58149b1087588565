//! The chunk store. Chunks of larger files live in pack files under `packs/`
//! (one pack per upload request), each recorded with its place in SQLite
//! (`db/packs.rs`); small files' chunks live in SQLite itself
//! (`db/small_chunks.rs`). Every chunk is stored once, named by its BLAKE3 hash.
//!
//! Why packs: one file and one fsync per request instead of one per 64 KiB
//! chunk. Creating some 16,000 files per GiB (inode allocation, folder locks,
//! a journal commit each) was most of an upload's time.
//!
//! Invariant: a chunk is recorded only once its pack is durable (written in
//! `tmp/`, fdatasynced, linked into `packs/` under a fresh name, folder
//! fsynced). A crash leaves at most a temp file (removed at start) or a pack
//! nothing records (removed by GC after the grace period), never a record of
//! bytes that are not there.
use crate::db::{packs, small_chunks, Db, DbError};
use crate::pack::{pack_id, pack_path, PackIndex, PackWriter};
use bytes::Bytes;
use ssync_common::frames::Chunk;
use ssync_common::ContentHash;
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("content store i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("chunk {0} not found")]
    NotFound(ContentHash),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Db(DbError::Sqlite(e))
    }
}

#[derive(Clone)]
pub struct ContentStore {
    packs: PathBuf,
    tmp: PathBuf,
    db: Db,
    /// Requests that rely on chunks being present (a "have it" answer, a
    /// commit) hold it shared; GC holds it exclusively while it decides and deletes.
    pub gc_lock: Arc<tokio::sync::RwLock<()>>,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> std::io::Result<T> + Send + 'static) -> Result<T, StoreError> {
    Ok(tokio::task::spawn_blocking(f).await.map_err(std::io::Error::other)??)
}

/// Bytes of an upload gathered before they are written to its pack.
const WRITE_BYTES: usize = 1 << 20;

impl ContentStore {
    pub fn open(data_dir: &Path, db: Db) -> Result<Self, StoreError> {
        let packs = data_dir.join("packs");
        let tmp = data_dir.join("tmp");
        ssync_common::private::dir(&packs)?;
        // Anything left in tmp/ is a pack a crash cut short.
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        ssync_common::private::dir(&tmp)?;
        Ok(ContentStore { packs, tmp, db, gc_lock: Default::default() })
    }

    pub fn pack_path(&self, pack: u64) -> PathBuf {
        pack_path(&self.packs, pack)
    }

    /// The chunks of `hashes` the hub lacks (in packs or the database). Present
    /// ones not reported within `fresh` are touched, so a collection running
    /// after this answer spares them for its grace period. Call with `gc_lock` held shared.
    pub async fn missing(&self, hashes: Vec<ContentHash>, fresh: Duration) -> Result<Vec<ContentHash>, StoreError> {
        let lengths = self.lengths(hashes.clone(), fresh).await?;
        Ok(hashes.into_iter().filter(|h| !lengths.contains_key(h)).collect())
    }

    /// The length of each chunk of `hashes` the hub holds (absent: not here),
    /// touched as `missing` touches them. Call with `gc_lock` held shared.
    pub async fn lengths(
        &self,
        hashes: Vec<ContentHash>,
        fresh: Duration,
    ) -> Result<HashMap<ContentHash, u32>, StoreError> {
        if hashes.is_empty() {
            return Ok(HashMap::new()); // all inline: no trip to the database thread
        }
        self.db
            .call(move |c| {
                let mut found = packs::present_touching(c, &hashes, fresh.as_secs())?;
                let rest: Vec<ContentHash> = hashes.into_iter().filter(|h| !found.contains_key(h)).collect();
                found.extend(small_chunks::present(c, &rest)?);
                Ok::<_, StoreError>(found)
            })
            .await
    }

    pub fn batch(&self) -> ChunkBatch {
        ChunkBatch { store: self.clone(), writer: None, pending: Vec::new(), pending_bytes: 0, seen: HashSet::new() }
    }

    /// A chunk's bytes from its pack.
    pub async fn read_chunk(&self, hash: &ContentHash) -> Result<Bytes, StoreError> {
        let h = *hash;
        let place = self.db.call(move |c| Ok::<_, StoreError>(packs::place(c, &h)?)).await?;
        self.read_at(h, place.ok_or(StoreError::NotFound(h))?).await
    }

    /// Where each of `hashes` is in the packs (None: not in a pack).
    pub async fn places(&self, hashes: Vec<ContentHash>) -> Result<Vec<Option<packs::Place>>, StoreError> {
        self.db
            .call(move |c| {
                Ok::<_, StoreError>(hashes.iter().map(|h| packs::place(c, h)).collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    /// Reads chunk `hash` at `place`. A chunk moved by a repack since `place`
    /// was looked up is looked up again.
    pub async fn read_at(&self, hash: ContentHash, place: packs::Place) -> Result<Bytes, StoreError> {
        let mut place = place;
        for _ in 0..2 {
            let path = self.pack_path(place.pack);
            let read = blocking(move || {
                let mut buf = vec![0; place.len as usize];
                std::fs::File::open(path)?.read_exact_at(&mut buf, place.offset)?;
                Ok(buf)
            })
            .await;
            match read {
                Err(StoreError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                    let again = self.db.call(move |c| Ok::<_, StoreError>(packs::place(c, &hash)?)).await?;
                    place = again.ok_or(StoreError::NotFound(hash))?;
                }
                other => return Ok(Bytes::from(other?)),
            }
        }
        Err(StoreError::NotFound(hash))
    }

    /// Every pack file: (id, size, last modified).
    pub fn list_packs(&self) -> std::io::Result<Vec<(u64, u64, SystemTime)>> {
        let mut out = Vec::new();
        for f in std::fs::read_dir(&self.packs)? {
            let f = f?;
            if let Some(id) = pack_id(&f.file_name().to_string_lossy()) {
                let m = f.metadata()?;
                out.push((id, m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
            }
        }
        Ok(out)
    }

    pub fn remove_pack(&self, pack: u64) -> std::io::Result<()> {
        match std::fs::remove_file(self.pack_path(pack)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// A new pack to write (blocking code: GC and the start-up conversion).
    pub fn writer(&self) -> std::io::Result<PackWriter> {
        PackWriter::create(&self.tmp)
    }

    /// Makes `w` a durable pack file, not yet recorded; returns its id and index.
    pub async fn write_pack(&self, w: PackWriter) -> Result<(u64, PackIndex), StoreError> {
        let packs = self.packs.clone();
        blocking(move || w.install(&packs)).await
    }

    /// Makes `w` durable and records its chunks; returns the new pack's id
    /// and index (None for an empty writer).
    pub async fn install(&self, w: PackWriter) -> Result<Option<(u64, PackIndex)>, StoreError> {
        if w.is_empty() {
            return Ok(None);
        }
        // A collection lists packs/ and deletes those it has no record of:
        // it must never run between this pack's link and its record.
        let _no_gc = self.gc_lock.read().await;
        let (id, index) = self.write_pack(w).await?;
        let rows = index.clone();
        self.db
            .call(move |c| {
                let tx = c.transaction()?;
                packs::record(&tx, id, &rows)?;
                Ok::<_, StoreError>(tx.commit()?)
            })
            .await?;
        Ok(Some((id, index)))
    }
}

/// The chunks of one upload request, written to one new pack. Nothing is
/// recorded until `finish`, so a request refused halfway stores nothing.
pub struct ChunkBatch {
    store: ContentStore,
    writer: Option<PackWriter>,
    pending: Vec<Chunk>,
    pending_bytes: usize,
    seen: HashSet<ContentHash>,
}

impl ChunkBatch {
    /// Adds a verified chunk (written a MiB at a time).
    pub async fn add(&mut self, chunk: Chunk) -> Result<(), StoreError> {
        if !self.seen.insert(chunk.hash) {
            return Ok(());
        }
        self.pending_bytes += chunk.data.len();
        self.pending.push(chunk);
        if self.pending_bytes >= WRITE_BYTES {
            self.write_pending().await?;
        }
        Ok(())
    }

    async fn write_pending(&mut self) -> Result<(), StoreError> {
        let pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let hashes: Vec<ContentHash> = pending.iter().map(|c| c.hash).collect();
        // Chunks stored meanwhile by another request are not written twice
        // (and are touched: the commit that follows will name them).
        let stored = self.store.db.call(move |c| Ok::<_, StoreError>(packs::present_touching(c, &hashes, 0)?)).await?;
        let writer = self.writer.take();
        let tmp = self.store.tmp.clone();
        let writer = blocking(move || {
            let mut w = match writer {
                Some(w) => w,
                None => PackWriter::create(&tmp)?,
            };
            for c in pending.iter().filter(|c| !stored.contains_key(&c.hash)) {
                w.add(c.hash, &c.data)?;
            }
            Ok(w)
        })
        .await?;
        self.writer = Some(writer);
        Ok(())
    }

    /// Makes the pack durable and records its chunks; returns (chunks, bytes) stored.
    pub async fn finish(mut self) -> Result<(u64, u64), StoreError> {
        if !self.pending.is_empty() {
            self.write_pending().await?;
        }
        let Some(w) = self.writer.take() else { return Ok((0, 0)) };
        let bytes = w.len();
        Ok(match self.store.install(w).await? {
            Some((_, index)) => (index.len() as u64, bytes),
            None => (0, 0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(data: &'static [u8]) -> Chunk {
        Chunk { hash: ContentHash::of(data), data: Bytes::from_static(data) }
    }

    fn store(dir: &Path) -> ContentStore {
        ContentStore::open(dir, Db::open(&dir.join("meta.db")).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn batches_store_by_hash_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let (a, b) = (chunk(b"hello"), chunk(b"world"));
        let (ha, hb) = (a.hash, b.hash);
        assert_eq!(store.missing(vec![ha, hb], Duration::ZERO).await.unwrap(), vec![ha, hb]);
        let mut batch = store.batch();
        batch.add(a).await.unwrap();
        batch.add(b).await.unwrap();
        batch.add(chunk(b"hello")).await.unwrap();
        assert_eq!(batch.finish().await.unwrap(), (2, 10));
        assert_eq!(store.read_chunk(&ha).await.unwrap(), Bytes::from_static(b"hello"));
        assert_eq!(store.read_chunk(&hb).await.unwrap(), Bytes::from_static(b"world"));
        assert!(store.missing(vec![ha, hb], Duration::ZERO).await.unwrap().is_empty());
        let mut again = store.batch();
        again.add(chunk(b"world")).await.unwrap();
        assert_eq!(again.finish().await.unwrap(), (0, 0), "already stored");
        assert_eq!(store.list_packs().unwrap().len(), 1, "one pack per batch that stored something");
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0, "no temp file left");
    }

    #[tokio::test]
    async fn a_pack_is_linked_and_recorded_outside_any_collection() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let collecting = store.gc_lock.clone().write_owned().await;
        let mut batch = store.batch();
        batch.add(chunk(b"during gc")).await.unwrap();
        let finishing = tokio::spawn(batch.finish());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(store.list_packs().unwrap().is_empty(), "no pack may appear while a collection runs");
        drop(collecting);
        assert_eq!(finishing.await.unwrap().unwrap(), (1, 9));
        assert_eq!(store.read_chunk(&ContentHash::of(b"during gc")).await.unwrap(), Bytes::from_static(b"during gc"));
    }

    #[tokio::test]
    async fn an_unfinished_batch_leaves_no_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let mut batch = store.batch();
        batch.add(chunk(b"partial")).await.unwrap();
        drop(batch);
        assert!(store.list_packs().unwrap().is_empty());
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert!(matches!(store.read_chunk(&ContentHash::of(b"partial")).await, Err(StoreError::NotFound(_))));
    }
}
