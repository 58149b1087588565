//! Open file handles: each holds an fd on the inode's cache file, so reads and
//! writes are plain pread/pwrite with no lock held. A remote update replaces
//! the cache file by rename; open handles keep reading the copy they opened.
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// What the cache file looked like: with kernel passthrough, writes bypass the
/// daemon, so a changed size or mtime is how a release learns it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub len: u64,
    pub mtime_ns: i64,
}

impl FileStamp {
    pub fn of(file: &File) -> std::io::Result<FileStamp> {
        let m = file.metadata()?;
        Ok(FileStamp { len: m.len(), mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec() })
    }
}

#[derive(Debug)]
pub struct Handle {
    pub ino: u64,
    pub file: File,
    pub writable: bool,
    /// Set by writes and truncates; release or fsync then queues an upload.
    pub needs_upload: AtomicBool,
    /// Created, or truncated by O_TRUNC, at open: the empty file must reach the
    /// hub if nothing is written.
    pub emptied_at_open: AtomicBool,
    /// The cache file as of open (or the last fsync), for writable handles.
    stamp: Mutex<Option<FileStamp>>,
    /// Opened for reading while the content was not all here: reads go
    /// through the daemon, which fetches what they need (on_demand.rs).
    pub streaming: bool,
    /// Where the last read ended, how far read-ahead has been asked for,
    /// and its window (grown while reads stay sequential).
    pub read_end: AtomicU64,
    pub ahead_until: AtomicU64,
    pub ahead_window: AtomicU64,
}

impl Handle {
    /// A handle on `file` (the inode's cache file); `emptied` when the open
    /// created or truncated it.
    pub fn new(ino: u64, file: File, writable: bool, emptied: bool) -> std::io::Result<Handle> {
        let stamp = Mutex::new(if writable { Some(FileStamp::of(&file)?) } else { None });
        Ok(Handle {
            ino,
            file,
            writable,
            needs_upload: AtomicBool::new(false),
            emptied_at_open: AtomicBool::new(emptied),
            stamp,
            streaming: false,
            read_end: AtomicU64::new(0),
            ahead_until: AtomicU64::new(0),
            ahead_window: AtomicU64::new(0),
        })
    }

    pub fn mark_written(&self) {
        self.needs_upload.store(true, Ordering::Release);
    }
    /// True once per change: writes seen by the daemon, or (passthrough) a
    /// cache file whose size or mtime moved since open or the last check.
    pub fn take_written(&self) -> bool {
        let emptied = self.emptied_at_open.swap(false, Ordering::AcqRel);
        self.take_written_since_open() || emptied
    }

    /// The cache file as of the last `take_written*` (which every caller of
    /// this has just made), else as it is now: one stat per close, not three.
    pub fn stamp(&self) -> std::io::Result<FileStamp> {
        match *self.stamp.lock() {
            Some(s) => Ok(s),
            None => FileStamp::of(&self.file),
        }
    }

    /// Like `take_written`, but an open's own truncation does not count.
    fn take_written_since_open(&self) -> bool {
        let seen = self.needs_upload.swap(false, Ordering::AcqRel);
        let mut stamp = self.stamp.lock();
        let Some(before) = *stamp else { return seen };
        let now = FileStamp::of(&self.file).ok();
        *stamp = now.or(Some(before));
        seen || now != Some(before)
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
    /// An open handle of `ino`, a writable one if there is one.
    pub fn any_for(&self, ino: u64) -> Option<Arc<Handle>> {
        let mut of_ino = self.map.values().filter(|h| h.ino == ino);
        let first = of_ino.next()?;
        Some(if first.writable { first } else { of_ino.find(|h| h.writable).unwrap_or(first) }.clone())
    }
}
