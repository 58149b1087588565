//! The content store: one file per object under `objects/ab/cdef…`, named by
//! the BLAKE3 hash of its bytes.
//!
//! Invariant: a file under `objects/` is always complete. Uploads stream into
//! `tmp/` while hashing, are fsynced, then renamed into place and the folder is
//! fsynced; only then may a database row name the hash. A crash leaves at most
//! an orphan temp file (removed at start), never a partial object.
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use ssync_common::{ContentHash, ContentHasher};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("content store i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("upload was cut off: {0}")]
    Body(String),
    #[error("object {0} not found")]
    NotFound(ContentHash),
}

#[derive(Clone)]
pub struct ContentStore {
    objects: PathBuf,
    tmp: PathBuf,
    /// Uploads hold it shared from "object in place" until their commit; GC
    /// holds it exclusively, so it never deletes an object a commit is about
    /// to name (even one that was "already stored").
    pub gc_lock: std::sync::Arc<tokio::sync::RwLock<()>>,
}

/// Keeps an uploaded object safe from GC until the commit that names it is done.
pub type ObjectGuard = tokio::sync::OwnedRwLockReadGuard<()>;

impl ContentStore {
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let objects = data_dir.join("objects");
        let tmp = data_dir.join("tmp");
        std::fs::create_dir_all(&objects)?;
        // Anything left in tmp/ is an upload a crash cut short.
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp)?;
        Ok(ContentStore { objects, tmp, gc_lock: Default::default() })
    }

    pub fn object_path(&self, hash: &ContentHash) -> PathBuf {
        let hex = hash.to_hex();
        self.objects.join(&hex[..2]).join(&hex[2..])
    }

    /// Streams `body` to a temp file, hashing as it goes, and moves it into place.
    pub async fn write_stream<S, E>(&self, mut body: S) -> Result<(ContentHash, u64, ObjectGuard), StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let (file, temp_path) = tempfile::Builder::new().suffix(".part").tempfile_in(&self.tmp)?.into_parts();
        let mut file = tokio::fs::File::from_std(file);
        let mut hasher = ContentHasher::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| StoreError::Body(e.to_string()))?;
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        let hash = hasher.finish();
        let guard = self.gc_lock.clone().read_owned().await;
        let dest = self.object_path(&hash);
        tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            if dest.exists() {
                return Ok(()); // same bytes already stored; temp_path's drop removes ours
            }
            let dir = dest.parent().expect("object path has a parent");
            std::fs::create_dir_all(dir)?;
            temp_path.persist(&dest).map_err(|e| e.error)?;
            std::fs::File::open(dir)?.sync_all()?;
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e)))??;
        Ok((hash, hasher.len(), guard))
    }

    /// Every stored object: (hash, size). Skips anything that is not one.
    pub fn list_objects(&self) -> std::io::Result<Vec<(ContentHash, u64)>> {
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
                    out.push((h, f.metadata()?.len()));
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

    pub async fn open_object(&self, hash: &ContentHash) -> Result<(tokio::fs::File, u64), StoreError> {
        match tokio::fs::File::open(self.object_path(hash)).await {
            Ok(f) => {
                let len = f.metadata().await?.len();
                Ok((f, len))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound(*hash)),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_by_hash_and_dedupes() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let chunks = vec![Ok::<_, std::io::Error>(Bytes::from_static(b"hello ")), Ok(Bytes::from_static(b"world"))];
        let (h, n, _guard) = store.write_stream(futures_util::stream::iter(chunks)).await.unwrap();
        assert_eq!((h, n), (ContentHash::of(b"hello world"), 11));
        assert_eq!(std::fs::read(store.object_path(&h)).unwrap(), b"hello world");
        let again = vec![Ok::<_, std::io::Error>(Bytes::from_static(b"hello world"))];
        assert_eq!(store.write_stream(futures_util::stream::iter(again)).await.unwrap().0, h);
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0, "no temp file left");
    }

    #[tokio::test]
    async fn a_cut_off_upload_leaves_no_object() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let chunks = vec![Ok(Bytes::from_static(b"partial")), Err("connection reset")];
        assert!(matches!(store.write_stream(futures_util::stream::iter(chunks)).await, Err(StoreError::Body(_))));
        assert_eq!(std::fs::read_dir(dir.path().join("objects")).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }
}
