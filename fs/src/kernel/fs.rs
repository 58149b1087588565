//! `SyncFs`: the filesystem core. Every call works on local state only (the
//! inode tree, the cache files, the local database) and never waits on the
//! network; the sync thread sees what changed and sends it. Plain Rust
//! types in and out: the fuser adapter in `fuse.rs` is the only kernel-facing code.
use crate::local::error::{FsError, FsResult};
use crate::local::handles::Handle;
use crate::local::on_demand::OnDemand;
use crate::local::state::{Shared, State};
use crate::local::tree::{Kind, Node};
use ssync_common::{PathError, RelPath};
use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

mod attrs;
mod listings;
mod namespace;
mod range_ops;
mod xattr_ops;

pub use crate::local::clock::now_ns;
pub use attrs::{Caller, NodeAttr, SetAttr, SetTime};
pub use xattr_ops::XattrReply;

#[derive(Debug, Clone)]
pub struct DirEntry {
    pub name: String,
    pub attr: NodeAttr,
}

#[derive(Debug, Clone, Copy)]
pub struct StatFs {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub frsize: u32,
}

/// A name from the kernel; too long is ENAMETOOLONG on every call, as on a
/// local disk (not ENOENT, which a lookup would otherwise answer).
fn utf8(name: &OsStr) -> FsResult<&str> {
    let max = ssync_common::path::MAX_COMPONENT_BYTES;
    if name.len() > max {
        return Err(PathError::ComponentTooLong { len: name.len(), max }.into());
    }
    name.to_str().ok_or(FsError::NonUtf8Name)
}

#[derive(Clone)]
pub struct SyncFs {
    shared: Arc<Shared>,
    /// Fetches what a read needs of content not held (see on_demand.rs).
    on_demand: Arc<OnDemand>,
    /// The listings of open folders (`listings.rs`).
    listings: Arc<listings::Listings>,
}

impl SyncFs {
    pub fn new(shared: Arc<Shared>, on_demand: Arc<OnDemand>) -> SyncFs {
        SyncFs { shared, on_demand, listings: Arc::default() }
    }

    pub fn owner(&self) -> (u32, u32) {
        self.shared.owner
    }

    /// The node a kernel inode number stands for (see `Tree::by_kernel_ino`).
    fn node_of(st: &State, kino: u64) -> FsResult<u64> {
        st.tree.by_kernel_ino(kino).ok_or(FsError::NotFound)
    }

    fn dir_of(st: &State, ino: u64) -> FsResult<()> {
        match st.tree.live(ino) {
            None => Err(FsError::NotFound),
            Some(n) if !n.is_dir() => Err(FsError::NotDir),
            Some(_) => Ok(()),
        }
    }

    fn child_path(st: &State, parent: u64, name: &str) -> FsResult<RelPath> {
        let parent_path = if parent == crate::local::tree::ROOT {
            None
        } else {
            Some(st.tree.path_of(parent).ok_or(FsError::NotFound)?)
        };
        Ok(RelPath::child_of(parent_path.as_ref(), name)?)
    }

    pub fn lookup(&self, parent: u64, name: &OsStr) -> FsResult<NodeAttr> {
        let name = utf8(name)?;
        let st = self.shared.state.lock();
        Self::dir_of(&st, parent)?;
        let ino = st.tree.child(parent, name).ok_or(FsError::NotFound)?;
        st.tree.get(ino).map(|n| self.attr_of(&st.tree, n)).ok_or(FsError::NotFound)
    }

    pub fn readdir(&self, ino: u64) -> FsResult<Vec<DirEntry>> {
        let st = self.shared.state.lock();
        Self::dir_of(&st, ino)?;
        let dir = st.tree.get(ino).expect("checked by dir_of");
        Ok(dir
            .children
            .iter()
            .filter_map(|(name, c)| {
                st.tree.get(*c).map(|n| DirEntry { name: name.clone(), attr: self.attr_of(&st.tree, n) })
            })
            .collect())
    }

    pub fn readlink(&self, kino: u64) -> FsResult<Vec<u8>> {
        let st = self.shared.state.lock();
        let ino = Self::node_of(&st, kino)?;
        match st.tree.get(ino) {
            None => return Err(FsError::NotFound),
            Some(n) if n.kind != Kind::Symlink => return Err(FsError::NotSymlink),
            Some(_) => {}
        }
        drop(st);
        // Read without holding the state lock; a symlink's cache file is only
        // ever replaced whole (renamed into place).
        match std::fs::read(self.shared.cache.file(ino)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.shared.state.lock().cache_file_lost(&self.shared.cache, ino);
                Err(e.into())
            }
            // A target the kernel would cut at its NUL (only an old hub could
            // have passed one on): no answer rather than a wrong one.
            Ok(target) if target.contains(&0) => {
                Err(FsError::InvalidArgument("a symlink target from the hub holds a NUL byte"))
            }
            other => Ok(other?),
        }
    }

    /// Opens `kino` for `caller` (an O_TRUNC by anyone but root drops set-ID
    /// bits, as a truncate does). Returns the handle, and whether the kernel
    /// may pass reads and writes through to the cache file (not for writers
    /// of set-ID files: their writes must reach `write` to drop the bits).
    pub fn open(&self, kino: u64, flags: i32, caller: Caller) -> FsResult<(u64, bool)> {
        let writable = flags & libc::O_ACCMODE != libc::O_RDONLY;
        let truncate = writable && flags & libc::O_TRUNC != 0;
        let (node_ino, partial) = {
            let st = self.shared.state.lock();
            let ino = Self::node_of(&st, kino)?;
            (ino, st.tree.get(ino).filter(|n| n.has_content() && !n.cached.is_full()).map(|_| ino))
        };
        if let Some(ino) = partial {
            if writable && !truncate {
                self.make_whole(ino)?; // a writer changes the content in place
            } else if self.shared.status.known_offline() {
                let path = self.shared.state.lock().tree.path_of(ino).map_or_else(String::new, |p| p.to_string());
                return Err(FsError::NotLocal { path, why: "the hub is unreachable (working offline)".into() });
            }
        }
        // Truncating in place: no fetched bytes may land in the file after it.
        let content_lock = truncate.then(|| self.on_demand.content_lock(node_ino));
        let _no_fetch_writes = content_lock.as_ref().map(|l| l.lock());
        let mut st = self.shared.state.lock();
        let ino = Self::node_of(&st, kino)?;
        tracing::trace!(ino, path = ?st.tree.path_of(ino), writable, trunc = flags & libc::O_TRUNC != 0, "open");
        let node = st.tree.get(ino).ok_or(FsError::NotFound)?;
        if node.is_dir() {
            return Err(FsError::IsDir);
        }
        let file = match OpenOptions::new().read(true).write(writable).open(self.shared.cache.file(ino)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                st.cache_file_lost(&self.shared.cache, ino);
                return Err(e.into());
            }
            other => other?,
        };
        if truncate {
            file.set_len(0)?;
            if caller.uid != 0 {
                self.drop_setid_on_write(&mut st, ino, caller);
            }
        }
        let streaming = !writable && !truncate && st.tree.get(ino).is_some_and(|n| !n.cached.is_full());
        // With a cache limit, writes go through the daemon, which makes room
        // for them (passthrough writes would bypass the limit).
        let setid_writer = writable && st.tree.get(ino).is_some_and(Node::has_setid);
        let limited_writer = writable && st.limit.is_some();
        let passthrough = !(setid_writer || streaming || limited_writer);
        st.note_used(ino);
        let mut persist = truncate;
        // Counted on every name of a hard-linked file: an upload of any of
        // them must see that a writer has it open.
        st.tree.update_members(ino, |n| {
            if truncate {
                n.size = 0;
                n.cached = crate::local::residency::Residency::full();
                n.dirty = true;
                n.write_gen += 1;
                n.mtime_ns = now_ns();
                n.ctime_ns = n.mtime_ns;
            }
            n.open_handles += 1;
            n.streaming += streaming as u32;
            if writable {
                n.open_writers += 1;
                // An upload reading the file now may see these writes: it must not commit.
                n.write_gen += 1;
                // Passthrough writes bypass the daemon: record "may differ from the
                // hub" before any byte is written, so a crash cannot hide a change.
                persist |= !n.dirty;
                n.dirty = true;
            }
        });
        if persist {
            let members = st.tree.members(ino);
            st.persist_now(&members)?;
        }
        let mut h = Handle::new(ino, file, writable, truncate)?;
        h.streaming = streaming;
        Ok((self.shared.handles.lock().insert(h), passthrough))
    }

    /// Fetches whatever of `ino`'s content is not here (bounded; EIO when
    /// it cannot be fetched).
    pub(crate) fn make_whole(&self, ino: u64) -> FsResult<()> {
        self.on_demand.make_whole(&self.shared, ino)
    }

    /// Whether the mount runs with `--cache-max` (its writers make room first).
    pub fn has_cache_limit(&self) -> bool {
        self.shared.state.lock().limit.is_some()
    }

    /// Whether a read of `fh` may wait on the network (FUSE sends those to a worker).
    pub fn read_may_fetch(&self, fh: u64) -> bool {
        self.handle(fh).is_ok_and(|h| h.streaming)
    }

    /// Whether opening `kino` this way must fetch its content first.
    pub fn open_may_fetch(&self, kino: u64, flags: i32) -> bool {
        let writable = flags & libc::O_ACCMODE != libc::O_RDONLY;
        let st = self.shared.state.lock();
        writable
            && flags & libc::O_TRUNC == 0
            && st.tree.by_kernel_ino(kino).and_then(|i| st.tree.get(i)).is_some_and(|n| !n.cached.is_full())
    }

    /// A read of a file not all here: fetch what it covers, then read it
    /// under the state lock (eviction may empty the file between the two,
    /// and takes that lock), and ask for what a sequential reader needs next.
    fn read_streaming(&self, h: &Handle, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        let end = offset.saturating_add(size as u64);
        let mut st = self.hold_range(h.ino, offset..end)?;
        let data = read_at(&h.file, offset, size)?;
        st.note_used(h.ino);
        drop(st);
        self.read_ahead(h, offset, end);
        Ok(data)
    }

    /// Fetches `range` of `ino` and returns the state lock with the range held.
    pub(crate) fn hold_range(
        &self,
        ino: u64,
        range: std::ops::Range<u64>,
    ) -> FsResult<parking_lot::MutexGuard<'_, State>> {
        for _ in 0..3 {
            self.on_demand.ensure(&self.shared, ino, range.clone())?;
            let st = self.shared.state.lock();
            if st.tree.get(ino).is_some_and(|n| n.cached.missing(range.clone(), n.size).is_empty()) {
                return Ok(st);
            }
        }
        Err(crate::local::on_demand::changed_while_fetched(&self.shared, ino))
    }

    /// After a sequential read, keeps the next bytes coming. The window
    /// starts at `FIRST_WINDOW` and doubles while reads stay sequential, up
    /// to `MAX_WINDOW` (and a quarter of the cache limit). The next fetch is
    /// asked for when the reader is half a window from the end of what was
    /// asked, so fetches overlap and the hub never waits for the reader.
    fn read_ahead(&self, h: &Handle, offset: u64, end: u64) {
        use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};
        const FIRST_WINDOW: u64 = 8 << 20;
        const MAX_WINDOW: u64 = 64 << 20;
        // The kernel's own read-ahead sends reads a few at a time, which
        // workers answer in any order: near the last one counts as in sequence.
        const NEAR: u64 = 4 << 20;
        let last_end = h.read_end.swap(end, AcqRel);
        if offset.abs_diff(last_end) > NEAR {
            h.ahead_window.store(0, Release); // a seek: start small again
            return;
        }
        let asked = h.ahead_until.load(Acquire);
        let window = h.ahead_window.load(Acquire).max(FIRST_WINDOW);
        if end + window / 2 <= asked {
            return;
        }
        let until = end + window;
        if h.ahead_until.compare_exchange(asked, until, AcqRel, Acquire).is_err() {
            return; // a concurrent read of this handle asked first
        }
        let cap = self.shared.state.lock().limit.map_or(MAX_WINDOW, |l| (l.max / 4).clamp(FIRST_WINDOW, MAX_WINDOW));
        h.ahead_window.store((window * 2).min(cap), Release);
        self.on_demand.spawn_ensure(self.shared.clone(), vec![h.ino], asked.max(end)..until);
    }

    /// With a cache limit: room for `h`'s file to reach `end` bytes (writes,
    /// copy_file_range and fallocate all come here before they grow it).
    pub(crate) fn room_to_grow(&self, h: &Handle, end: u64) -> FsResult<()> {
        let need = {
            let st = self.shared.state.lock();
            let size = st.tree.get(h.ino).map_or(0, |n| n.size);
            st.limit.map_or(0, |_| end.saturating_sub(size))
        };
        match need {
            0 => Ok(()),
            need => self.room_for_write(h.ino, need),
        }
    }

    /// Waits (bounded) until the cache has room for `need` more bytes of
    /// `ino`'s: uploads finishing make files evictable. ENOSPC after that.
    fn room_for_write(&self, ino: u64, need: u64) -> FsResult<()> {
        let deadline = std::time::Instant::now() + crate::local::on_demand::WAIT;
        self.shared.wait_for_room(deadline, |st| st.make_room(&self.shared.cache, need, ino))
    }

    /// The open handle (its cache-file fd is what kernel passthrough reads and writes).
    pub(crate) fn handle(&self, fh: u64) -> FsResult<Arc<Handle>> {
        self.shared.handles.lock().get(fh).ok_or(FsError::BadHandle)
    }

    pub fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        let h = self.handle(fh)?;
        if h.streaming {
            return self.read_streaming(&h, offset, size);
        }
        read_at(&h.file, offset, size)
    }

    /// `drop_setid`: the writer, whom the kernel asks to drop set-ID bits for
    /// (it lacks CAP_FSETID).
    pub fn write(&self, fh: u64, offset: u64, data: &[u8], drop_setid: Option<Caller>) -> FsResult<u32> {
        let h = self.handle(fh)?;
        if !h.writable {
            return Err(FsError::NotWritable);
        }
        if let Some(caller) = drop_setid {
            self.drop_setid_on_write(&mut self.shared.state.lock(), h.ino, caller);
        }
        self.room_to_grow(&h, offset + data.len() as u64)?;
        h.file.write_all_at(data, offset)?;
        self.wrote_upto(&h, offset + data.len() as u64)?;
        Ok(data.len() as u32)
    }

    /// Records a change through `h` that left the file `size` bytes long.
    fn wrote(&self, h: &Handle, size: u64) -> FsResult<()> {
        self.record_write(h, |n| n.size = size)
    }

    /// Records a write through `h` that ended at byte `end`.
    fn wrote_upto(&self, h: &Handle, end: u64) -> FsResult<()> {
        self.record_write(h, |n| n.size = n.size.max(end))
    }

    fn record_write(&self, h: &Handle, set_size: impl FnOnce(&mut Node)) -> FsResult<()> {
        h.mark_written();
        let mut st = self.shared.state.lock();
        let Some(n) = st.tree.get_mut(h.ino) else { return Ok(()) };
        set_size(n);
        let (size, was_dirty) = (n.size, n.dirty);
        let now = now_ns();
        st.tree.update_members(h.ino, |n| {
            n.size = size;
            n.mtime_ns = now;
            n.ctime_ns = now;
            n.write_gen += 1;
            n.dirty = true;
        });
        if !was_dirty {
            // Persist "dirty" once per burst: a crash before close still
            // leaves a record that the cache file differs from the hub.
            let members = st.tree.members(h.ino);
            st.persist_now(&members)?;
        }
        Ok(())
    }

    /// Makes the mount's record of every change so far durable: what a
    /// program that fsyncs a folder (after creating or renaming in it) expects.
    pub fn fsyncdir(&self) -> FsResult<()> {
        self.shared.state.lock().commit(true)
    }

    /// Records what `h` wrote, if it wrote; returns whether it did.
    fn record_if_written(&self, st: &mut State, h: &Handle) -> FsResult<bool> {
        if !h.take_written() {
            return Ok(false);
        }
        self.record_written(st, h)?;
        Ok(true)
    }

    /// Records the cache file's new size and mtime: the sync thread
    /// identifies the new content (`sync::content_ids`) and sends it.
    fn record_written(&self, st: &mut State, h: &Handle) -> FsResult<()> {
        if let Ok(stamp) = h.stamp() {
            st.tree.update_members(h.ino, |n| {
                n.size = stamp.len;
                n.mtime_ns = stamp.mtime_ns;
                n.ctime_ns = n.ctime_ns.max(stamp.mtime_ns);
                n.write_gen += 1;
                n.dirty = true;
            });
        }
        // Each name of a hard-linked file is its own entry on the hub.
        let members = st.tree.members(h.ino);
        st.persist(&members);
        Ok(())
    }

    /// Nothing to record: a content is recorded at release, the last close
    /// of the open file (`release`). Kernels that know `FOPEN_NOFLUSH` (see
    /// `kernel::fuse`) do not send a flush at all.
    pub fn flush(&self, fh: u64) -> FsResult<()> {
        self.handle(fh).map(drop)
    }

    pub fn fsync(&self, fh: u64) -> FsResult<()> {
        let h = self.handle(fh)?;
        h.file.sync_all()?;
        let mut st = self.shared.state.lock();
        self.record_if_written(&mut st, &h)?;
        Self::seal(&mut st, &h);
        st.commit(true)
    }

    /// Records the cache file as it is now as a state a program closed or
    /// synced: while a writer has the file open, only such a state is sent
    /// (`sync::content_ids`), never the middle of a write.
    fn seal(st: &mut State, h: &Handle) {
        if let Ok(stamp) = h.stamp() {
            st.tree.update_members(h.ino, |n| n.sealed = Some((n.write_gen, stamp)));
            // A sealed state is one to identify, written or not since.
            let members = st.tree.members(h.ino);
            st.written_again(&members);
        }
    }

    pub fn release(&self, fh: u64) -> FsResult<()> {
        let Some(h) = self.shared.handles.lock().remove(fh) else { return Ok(()) };
        let mut st = self.shared.state.lock();
        st.tree.update_members(h.ino, |n| {
            n.open_handles = n.open_handles.saturating_sub(1);
            n.streaming = n.streaming.saturating_sub(h.streaming as u32);
            if h.writable {
                n.open_writers = n.open_writers.saturating_sub(1);
            }
        });
        let wrote = self.record_if_written(&mut st, &h)?;
        let ino = h.ino;
        tracing::trace!(ino, writable = h.writable, wrote, path = ?st.tree.path_of(ino), "release");
        for m in st.tree.members(ino) {
            let still_dirty = st.tree.get(m).is_some_and(|n| n.open_writers == 0 && n.dirty);
            if h.writable && !wrote && still_dirty {
                // Marked dirty at open and not written since: the sync thread
                // identifies its content now (the same as the hub's: no new version).
                st.persist(&[m]);
            }
        }
        Ok(())
    }

    /// The cache's disk, or with a cache limit the limit: its free space is
    /// what can still be written, the limit less what cannot be evicted.
    pub fn statfs(&self) -> FsResult<StatFs> {
        let s = nix::sys::statvfs::statvfs(&self.shared.cache.root).map_err(|e| FsError::Io(e.into()))?;
        let frsize = s.fragment_size().max(1);
        let (blocks, bfree, bavail) = {
            let st = self.shared.state.lock();
            match st.limit {
                None => (s.blocks(), s.blocks_free(), s.blocks_available()),
                Some(l) => {
                    let free = l.max.saturating_sub(st.cache_figures().kept) / frsize;
                    (l.max / frsize, free.min(s.blocks_free()), free.min(s.blocks_available()))
                }
            }
        };
        Ok(StatFs {
            blocks,
            bfree,
            bavail,
            files: s.files(),
            ffree: s.files_free(),
            bsize: s.block_size() as u32,
            frsize: s.fragment_size() as u32,
        })
    }
}

/// Reads up to `size` bytes at `offset` (fewer at the end of the file).
fn read_at(file: &std::fs::File, offset: u64, size: u32) -> FsResult<Vec<u8>> {
    let mut buf = vec![0u8; size as usize];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}
