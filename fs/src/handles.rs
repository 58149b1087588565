//! Open file handles: each holds an fd on the inode's cache file, so reads and
//! writes are plain pread/pwrite with no lock held. A remote update replaces
//! the cache file by rename; open handles keep reading the copy they opened.
use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug)]
pub struct Handle {
    pub ino: u64,
    pub file: File,
    pub writable: bool,
    /// Set by writes and truncates; release or fsync then queues an upload.
    pub needs_upload: AtomicBool,
}

impl Handle {
    pub fn mark_written(&self) {
        self.needs_upload.store(true, Ordering::Release);
    }
    pub fn take_written(&self) -> bool {
        self.needs_upload.swap(false, Ordering::AcqRel)
    }
}

#[derive(Debug, Default)]
pub struct Handles {
    next: u64,
    map: HashMap<u64, Arc<Handle>>,
}

impl Handles {
    pub fn insert(&mut self, h: Handle) -> u64 {
        self.next += 1;
        self.map.insert(self.next, Arc::new(h));
        self.next
    }
    pub fn get(&self, fh: u64) -> Option<Arc<Handle>> {
        self.map.get(&fh).cloned()
    }
    pub fn remove(&mut self, fh: u64) -> Option<Arc<Handle>> {
        self.map.remove(&fh)
    }
    pub fn any_for(&self, ino: u64) -> Option<Arc<Handle>> {
        self.map.values().find(|h| h.ino == ino).cloned()
    }
}
