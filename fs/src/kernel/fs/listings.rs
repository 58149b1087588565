//! Open folders. Each `opendir` handle lists its folder once, at its first
//! read (and again after a rewind, a read from offset 0), and serves the
//! rest of that listing by offset: a folder read in several calls while it
//! changes shows each name that stayed exactly once, as on a local disk
//! (offsets into a fresh listing each time would skip or repeat names when
//! one before them came or went), and a large folder is listed once, not
//! once per call.
use super::{DirEntry, SyncFs};
use crate::local::error::FsResult;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Default)]
pub struct Listings {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Option<Arc<Vec<DirEntry>>>>>,
}

impl SyncFs {
    /// A handle for reading folder `ino`.
    pub fn opendir(&self, ino: u64) -> FsResult<u64> {
        Self::dir_of(&self.shared.state.lock(), ino)?;
        let fh = self.listings.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.listings.open.lock().insert(fh, None);
        Ok(fh)
    }

    /// The listing handle `fh` of folder `ino` serves from `offset`: taken
    /// now when the read starts over (offset 0) or the handle is unknown.
    pub fn listing(&self, ino: u64, fh: u64, offset: u64) -> FsResult<Arc<Vec<DirEntry>>> {
        if offset > 0 {
            if let Some(Some(l)) = self.listings.open.lock().get(&fh) {
                return Ok(l.clone());
            }
        }
        let listed = Arc::new(self.readdir(ino)?);
        if let Some(slot) = self.listings.open.lock().get_mut(&fh) {
            *slot = Some(listed.clone());
        }
        Ok(listed)
    }

    pub fn releasedir(&self, fh: u64) {
        self.listings.open.lock().remove(&fh);
    }
}
