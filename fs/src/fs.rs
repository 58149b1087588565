//! `SyncFs`: the filesystem core. Every call works on local state only (the
//! inode tree, the cache files, the local database) and never waits on the
//! network; what must reach the hub is queued for the uploader. Plain Rust
//! types in and out: the fuser adapter in `fuse.rs` is the only kernel-facing code.
use crate::error::{FsError, FsResult};
use crate::handles::{FileStamp, Handle};
use crate::queue::{Op, OpKind};
use crate::state::{Shared, State};
use crate::tree::{Kind, Node, Owner, Special, Tree};
use ssync_common::api::MAX_SYMLINK_TARGET;
use ssync_common::path::validate_name;
use ssync_common::{PathError, RelPath};
use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

mod range_ops;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeAttr {
    pub ino: u64,
    pub kind: Kind,
    pub size: u64,
    pub mode: u32,
    pub mtime_ns: i64,
    pub atime_ns: i64,
    pub ctime_ns: i64,
    /// `None`: the mount's user.
    pub owner: Option<Owner>,
    pub nlink: u32,
    pub special: Option<Special>,
}

impl From<&Node> for NodeAttr {
    fn from(n: &Node) -> Self {
        let linked = n.ino == crate::tree::ROOT || n.parent != 0;
        NodeAttr {
            ino: n.kernel_ino(),
            kind: n.kind,
            size: n.size,
            mode: n.mode,
            mtime_ns: n.mtime_ns,
            atime_ns: n.atime_ns.unwrap_or(n.mtime_ns),
            ctime_ns: n.ctime_ns,
            owner: n.owner,
            // An open file that was unlinked has no name left: 0, as on a local disk.
            nlink: match (n.is_dir(), linked) {
                (_, false) => 0,
                (true, true) => 2 + n.subdirs,
                (false, true) => 1,
            },
            special: n.special,
        }
    }
}

/// Who makes a new node: the calling process's uid and gid.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
}

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

pub enum SetTime {
    Now,
    At(SystemTime),
}

pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<SetTime>,
    pub mtime: Option<SetTime>,
}

pub fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

fn to_ns(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i64,
        Err(e) => -(e.duration().as_nanos() as i64),
    }
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

fn time_ns(t: SetTime) -> i64 {
    match t {
        SetTime::Now => now_ns(),
        SetTime::At(t) => to_ns(t),
    }
}

/// Whether an operation on a `kind` may remove or replace `existing` (rmdir,
/// unlink, rename over it): a folder only an empty folder; a file or a
/// symlink either of those.
fn may_replace(kind: Kind, existing: &Node) -> FsResult<()> {
    match (kind, existing.kind) {
        (Kind::Dir, Kind::Dir) if !existing.children.is_empty() => Err(FsError::NotEmpty),
        (Kind::Dir, Kind::Dir) => Ok(()),
        (Kind::Dir, _) => Err(FsError::NotDir),
        (_, Kind::Dir) => Err(FsError::IsDir),
        _ => Ok(()),
    }
}

fn new_name(name: &OsStr) -> FsResult<&str> {
    let name = utf8(name)?;
    validate_name(name)?;
    Ok(name)
}

#[derive(Clone)]
pub struct SyncFs {
    shared: Arc<Shared>,
}

impl SyncFs {
    pub fn new(shared: Arc<Shared>) -> SyncFs {
        SyncFs { shared }
    }

    pub fn owner(&self) -> (u32, u32) {
        self.shared.owner
    }

    /// A node's attributes; while it is open for writing, size and mtime come
    /// from the cache file (passthrough writes do not pass through the daemon).
    fn attr_of(&self, tree: &Tree, n: &Node) -> NodeAttr {
        let mut a = NodeAttr::from(n);
        if a.nlink == 1 {
            a.nlink = tree.link_count(n.ino);
        }
        if n.open_writers > 0 {
            if let Ok(stamp) = std::fs::File::open(self.shared.cache.file(n.ino)).and_then(|f| FileStamp::of(&f)) {
                a.size = stamp.len;
                a.mtime_ns = stamp.mtime_ns;
                a.ctime_ns = a.ctime_ns.max(stamp.mtime_ns);
            }
        }
        a
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
        let parent_path =
            if parent == crate::tree::ROOT { None } else { Some(st.tree.path_of(parent).ok_or(FsError::NotFound)?) };
        Ok(RelPath::child_of(parent_path.as_ref(), name)?)
    }

    pub fn lookup(&self, parent: u64, name: &OsStr) -> FsResult<NodeAttr> {
        let name = utf8(name)?;
        let st = self.shared.state.lock();
        Self::dir_of(&st, parent)?;
        let ino = st.tree.child(parent, name).ok_or(FsError::NotFound)?;
        st.tree.get(ino).map(|n| self.attr_of(&st.tree, n)).ok_or(FsError::NotFound)
    }

    pub fn getattr(&self, kino: u64) -> FsResult<NodeAttr> {
        let st = self.shared.state.lock();
        if let Some(n) = st.tree.by_kernel_ino(kino).and_then(|i| st.tree.get(i)) {
            return Ok(self.attr_of(&st.tree, n));
        }
        drop(st);
        let ino = kino;
        // Unlinked but still open (fstat after unlink): ask the open file.
        let h = self.shared.handles.lock().any_for(ino).ok_or(FsError::NotFound)?;
        let stamp = FileStamp::of(&h.file)?;
        let mut node = Node::new(Kind::File, 0, "", 0o644, stamp.mtime_ns);
        node.ino = ino;
        node.size = stamp.len;
        Ok(NodeAttr::from(&node))
    }

    pub fn setattr(&self, kino: u64, fh: Option<u64>, change: SetAttr) -> FsResult<NodeAttr> {
        let mut st = self.shared.state.lock();
        let ino = Self::node_of(&st, kino)?;
        let kind = st.tree.get(ino).ok_or(FsError::NotFound)?.kind;
        // Every name of a hard-linked file is one inode: all change together.
        let members = st.tree.members(ino);
        let mut upload = false;
        if let Some(size) = change.size {
            if kind == Kind::Dir {
                return Err(FsError::IsDir);
            }
            // Without a handle, any writer of this file will upload on close.
            let handle = {
                let handles = self.shared.handles.lock();
                fh.and_then(|fh| handles.get(fh))
                    .or_else(|| members.iter().find_map(|m| handles.any_for(*m)))
                    .filter(|h| h.writable)
            };
            match &handle {
                Some(h) => {
                    h.file.set_len(size)?;
                    h.mark_written();
                }
                None => {
                    OpenOptions::new().write(true).open(self.shared.cache.file(ino))?.set_len(size)?;
                    upload = true;
                }
            }
            st.tree.update_members(ino, |n| {
                n.size = size;
                n.dirty = true;
                n.write_gen += 1;
                n.mtime_ns = now_ns();
            });
        }
        let chown = change.uid.is_some() || change.gid.is_some();
        let meta_changed = change.mode.is_some() || chown || (change.mtime.is_some() && change.size.is_none());
        let mount_owner = self.owner();
        let (mtime, atime) = (change.mtime.map(time_ns), change.atime.map(time_ns));
        st.tree.update_members(ino, |n| {
            if let Some(mode) = change.mode {
                n.mode = mode & 0o7777;
            }
            if chown {
                // The kernel checked who may chown (default_permissions) and sends
                // the mode without set-user/group-ID when a chown must clear it.
                let (uid, gid) = n.owner.map_or(mount_owner, |o| (o.uid, o.gid));
                n.owner = Some(Owner { uid: change.uid.unwrap_or(uid), gid: change.gid.unwrap_or(gid) });
            }
            if let Some(t) = mtime {
                n.mtime_ns = t;
            }
            if atime.is_some() {
                n.atime_ns = atime;
            }
            n.touch_ctime();
        });
        let attr = self.attr_of(&st.tree, st.tree.get(ino).expect("checked above"));
        let mut ops = Vec::new();
        for &m in &members {
            // A waiting upload or setattr reads mode and mtime when it is sent.
            let covered = st.pending.has_waiting_upload(m) || st.pending.waiting_of(m, OpKind::SetAttr);
            if upload {
                st.queue_upload(m);
            } else if meta_changed && !covered {
                if let Some(path) = st.tree.path_of(m) {
                    ops.push(State::op(OpKind::SetAttr, m, path));
                }
            }
        }
        st.persist(&members, ops);
        drop(st);
        self.shared.wake_uploader.notify_one();
        Ok(attr)
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

    /// A node for a new entry `name` in `parent`, not recorded yet, owned by
    /// `caller` (its group: the folder's, in a set-group-ID folder).
    fn new_node(
        &self,
        st: &State,
        caller: Caller,
        parent: u64,
        name: &str,
        kind: Kind,
        mode: u32,
    ) -> FsResult<(Node, RelPath)> {
        Self::dir_of(st, parent)?;
        if st.tree.child(parent, name).is_some() {
            return Err(FsError::Exists);
        }
        let path = Self::child_path(st, parent, name)?;
        let mut node = Node::new(kind, parent, name, mode & 0o7777, now_ns());
        node.dirty = kind != Kind::Dir;
        let dir = st.tree.get(parent).expect("checked by dir_of");
        let mut owner = Owner { uid: caller.uid, gid: caller.gid };
        if dir.mode & libc::S_ISGID != 0 {
            owner.gid = dir.owner.map_or(self.owner().1, |o| o.gid);
            if kind == Kind::Dir {
                node.mode |= libc::S_ISGID;
            }
        }
        node.owner = Some(owner);
        Ok((node, path))
    }

    fn create_node(
        &self,
        st: &mut State,
        caller: Caller,
        parent: u64,
        name: &str,
        kind: Kind,
        mode: u32,
    ) -> FsResult<(Node, RelPath)> {
        let (mut node, path) = self.new_node(st, caller, parent, name, kind, mode)?;
        node.ino = st.new_ino()?;
        st.note_node(node.ino);
        Self::touch_dir(st, parent);
        Ok((node, path))
    }

    /// A folder's entries changed: its mtime and ctime are now (kept on this
    /// mount; the hub's folder mtime changes only with the folder's own ops).
    fn touch_dir(st: &mut State, dir: u64) {
        if let Some(d) = st.tree.get_mut(dir) {
            d.mtime_ns = now_ns();
            d.ctime_ns = d.mtime_ns;
            st.note_node(dir);
        }
    }

    pub fn mkdir(&self, caller: Caller, parent: u64, name: &OsStr, mode: u32, umask: u32) -> FsResult<NodeAttr> {
        let name = new_name(name)?;
        let mut st = self.shared.state.lock();
        let (node, path) = self.create_node(&mut st, caller, parent, name, Kind::Dir, mode & !umask)?;
        let (ino, attr) = (node.ino, NodeAttr::from(&node));
        st.tree.insert(node);
        st.persist(&[], vec![State::op(OpKind::Mkdir, ino, path)]);
        drop(st);
        self.shared.wake_uploader.notify_one();
        Ok(attr)
    }

    /// Creates an empty file; with `open`, also opens it and returns the handle.
    fn new_file(
        &self,
        caller: Caller,
        parent: u64,
        name: &OsStr,
        mode: u32,
        open: Option<bool>,
    ) -> FsResult<(NodeAttr, Option<u64>)> {
        let name = new_name(name)?;
        let mut st = self.shared.state.lock();
        let (mut node, _path) = self.create_node(&mut st, caller, parent, name, Kind::File, mode)?;
        let ino = node.ino;
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(true).open(self.shared.cache.file(ino))?;
        let writable = open == Some(true);
        if writable {
            node.open_writers += 1;
        }
        if open.is_some() {
            node.open_handles += 1;
        }
        let attr = NodeAttr::from(&node);
        st.tree.insert(node);
        let fh = match open {
            Some(writable) => {
                let h = Handle::new(ino, file, writable, true)?;
                Some(self.shared.handles.lock().insert(h))
            }
            None => {
                st.queue_upload(ino);
                None
            }
        };
        drop(st);
        self.shared.wake_uploader.notify_one();
        Ok((attr, fh))
    }

    pub fn create(
        &self,
        caller: Caller,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
    ) -> FsResult<(NodeAttr, u64)> {
        let writable = flags & libc::O_ACCMODE != libc::O_RDONLY;
        let (attr, fh) = self.new_file(caller, parent, name, mode & !umask, Some(writable))?;
        Ok((attr, fh.expect("new_file opens when asked to")))
    }

    /// A symlink is kept as data: its target, as given, is its content. Nothing
    /// here resolves it; the kernel of each machine does when a path uses it.
    pub fn symlink(&self, caller: Caller, parent: u64, name: &OsStr, target: &Path) -> FsResult<NodeAttr> {
        let name = new_name(name)?;
        let target = target.as_os_str().as_bytes();
        if target.len() as u64 > MAX_SYMLINK_TARGET {
            return Err(FsError::TargetTooLong(target.len()));
        }
        let mut tmp = tempfile::NamedTempFile::new_in(&self.shared.cache.tmp)?;
        tmp.write_all(target)?;
        let mut st = self.shared.state.lock();
        let (mut node, _path) = self.new_node(&st, caller, parent, name, Kind::Symlink, 0o777)?;
        node.size = target.len() as u64;
        // Recorded only once its target is in place: a crash in between leaves
        // an unused file, never a symlink without a target.
        node.ino = st.new_ino()?;
        let ino = node.ino;
        tmp.persist(self.shared.cache.file(ino)).map_err(|e| FsError::Io(e.error))?;
        st.note_node(ino);
        Self::touch_dir(&mut st, parent);
        let attr = NodeAttr::from(&node);
        st.tree.insert(node);
        st.queue_upload(ino);
        drop(st);
        self.shared.wake_uploader.notify_one();
        Ok(attr)
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
                self.shared.wake_watcher.notify_one();
                Err(e.into())
            }
            other => Ok(other?),
        }
    }

    /// Another name for the file `kino`: a new node in the same hard-link
    /// group, whose cache file is a hard link of the first one's, so a write
    /// through either name is one write. The hub gets it as a file of its own
    /// (the content is deduplicated there); see SEMANTICS.md.
    pub fn link(&self, caller: Caller, kino: u64, newparent: u64, newname: &OsStr) -> FsResult<NodeAttr> {
        let name = new_name(newname)?;
        let mut st = self.shared.state.lock();
        let src = Self::node_of(&st, kino)?;
        let s = st.tree.live(src).ok_or(FsError::NotFound)?.clone();
        if s.is_dir() {
            return Err(FsError::NotPermitted("hard links to folders"));
        }
        let (mut node, _path) = self.new_node(&st, caller, newparent, name, s.kind, s.mode)?;
        node.ino = st.new_ino()?;
        let ino = node.ino;
        if s.has_content() {
            std::fs::hard_link(self.shared.cache.file(src), self.shared.cache.file(ino))?;
        }
        // The same inode: the same attributes and open counts, and nothing on the hub yet.
        node.mode = s.mode;
        node.owner = s.owner;
        node.size = s.size;
        node.mtime_ns = s.mtime_ns;
        node.atime_ns = s.atime_ns;
        node.special = s.special;
        node.dirty = s.has_content();
        node.open_handles = s.open_handles;
        node.open_writers = s.open_writers;
        node.write_gen = s.write_gen;
        node.sealed = s.sealed;
        st.tree.insert(node);
        st.tree.join(src, ino);
        st.tree.update_members(src, Node::touch_ctime);
        Self::touch_dir(&mut st, newparent);
        if s.open_writers == 0 {
            st.queue_upload(ino); // else the writer's close sends every name
        }
        let members = st.tree.members(src);
        st.persist(&members, vec![]);
        let attr = self.attr_of(&st.tree, st.tree.get(ino).expect("inserted above"));
        drop(st);
        self.shared.wake_uploader.notify_one();
        Ok(attr)
    }

    /// A regular file, or a FIFO, socket or device node, which stays on this
    /// mount: the hub holds files, folders and symlinks only (SEMANTICS.md).
    pub fn mknod(
        &self,
        caller: Caller,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
    ) -> FsResult<NodeAttr> {
        let format = mode & libc::S_IFMT;
        if format == libc::S_IFREG || format == 0 {
            return Ok(self.new_file(caller, parent, name, mode & !umask, None)?.0);
        }
        if ![libc::S_IFIFO, libc::S_IFSOCK, libc::S_IFCHR, libc::S_IFBLK].contains(&format) {
            return Err(FsError::InvalidArgument("mknod of an unknown file type"));
        }
        let name = new_name(name)?;
        let mut st = self.shared.state.lock();
        let (mut node, _path) = self.create_node(&mut st, caller, parent, name, Kind::File, mode & !umask)?;
        node.dirty = false;
        node.special = Some(Special { format, rdev });
        let attr = NodeAttr::from(&node);
        st.tree.insert(node);
        Ok(attr)
    }

    pub fn open(&self, kino: u64, flags: i32) -> FsResult<u64> {
        let writable = flags & libc::O_ACCMODE != libc::O_RDONLY;
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
                self.shared.wake_watcher.notify_one();
                return Err(e.into());
            }
            other => other?,
        };
        let truncate = writable && flags & libc::O_TRUNC != 0;
        if truncate {
            file.set_len(0)?;
        }
        let mut persist = truncate;
        // Counted on every name of a hard-linked file: an upload of any of
        // them must see that a writer has it open.
        st.tree.update_members(ino, |n| {
            if truncate {
                n.size = 0;
                n.dirty = true;
                n.write_gen += 1;
                n.mtime_ns = now_ns();
                n.ctime_ns = n.mtime_ns;
            }
            n.open_handles += 1;
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
        let h = Handle::new(ino, file, writable, truncate)?;
        Ok(self.shared.handles.lock().insert(h))
    }

    /// The open handle (its cache-file fd is what kernel passthrough reads and writes).
    pub(crate) fn handle(&self, fh: u64) -> FsResult<Arc<Handle>> {
        self.shared.handles.lock().get(fh).ok_or(FsError::BadHandle)
    }

    pub fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        let h = self.handle(fh)?;
        let mut buf = vec![0u8; size as usize];
        let mut filled = 0;
        while filled < buf.len() {
            match h.file.read_at(&mut buf[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }

    pub fn write(&self, fh: u64, offset: u64, data: &[u8]) -> FsResult<u32> {
        let h = self.handle(fh)?;
        if !h.writable {
            return Err(FsError::NotWritable);
        }
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

    /// Queues an upload if `h` wrote; returns whether it did.
    fn upload_if_written(&self, st: &mut State, h: &Handle) -> FsResult<bool> {
        if !h.take_written() {
            return Ok(false);
        }
        self.queue_written(st, h)?;
        Ok(true)
    }

    /// Records the cache file's new size and mtime and queues its upload.
    fn queue_written(&self, st: &mut State, h: &Handle) -> FsResult<()> {
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
        for m in st.tree.members(h.ino) {
            st.queue_upload(m);
        }
        self.shared.wake_uploader.notify_one();
        Ok(())
    }

    /// close(2) waits for flush, not for release (which the kernel sends
    /// later): a close queues its upload here, so it is on its way by the
    /// time close returns, ahead of whatever the program does next.
    pub fn flush(&self, fh: u64) -> FsResult<()> {
        let h = self.handle(fh)?;
        if !h.writable {
            return Ok(());
        }
        let mut st = self.shared.state.lock();
        if h.take_written_since_open() {
            // The written bytes cover the open's truncation too.
            h.emptied_at_open.store(false, std::sync::atomic::Ordering::Release);
            self.queue_written(&mut st, &h)?;
        }
        // With another writer still open, the file may hold its unfinished writes.
        if st.tree.get(h.ino).is_some_and(|n| n.open_writers <= 1) {
            Self::seal(&mut st, &h);
        }
        Ok(())
    }

    pub fn fsync(&self, fh: u64) -> FsResult<()> {
        let h = self.handle(fh)?;
        h.file.sync_all()?;
        let mut st = self.shared.state.lock();
        self.upload_if_written(&mut st, &h)?;
        Self::seal(&mut st, &h);
        st.commit(true)
    }

    /// Records the cache file as it is now as a state a program closed or
    /// synced: while a writer has the file open, only such a state is sent
    /// (`upload::request_for`), never the middle of a write.
    fn seal(st: &mut State, h: &Handle) {
        if let Ok(stamp) = h.stamp() {
            st.tree.update_members(h.ino, |n| n.sealed = Some((n.write_gen, stamp)));
        }
    }

    pub fn release(&self, fh: u64) -> FsResult<()> {
        let Some(h) = self.shared.handles.lock().remove(fh) else { return Ok(()) };
        let mut st = self.shared.state.lock();
        st.tree.update_members(h.ino, |n| {
            n.open_handles = n.open_handles.saturating_sub(1);
            if h.writable {
                n.open_writers = n.open_writers.saturating_sub(1);
            }
        });
        let wrote = self.upload_if_written(&mut st, &h)?;
        let ino = h.ino;
        tracing::trace!(ino, writable = h.writable, wrote, path = ?st.tree.path_of(ino), "release");
        for m in st.tree.members(ino) {
            let has_upload = st.pending.has_op(m, OpKind::Upload);
            let still_dirty = st.tree.get(m).is_some_and(|n| n.open_writers == 0 && n.dirty);
            if h.writable && !wrote && still_dirty && !has_upload {
                // Marked dirty at open and no upload will clear it: send the bytes
                // (the hub makes no new version if they are what it has).
                st.queue_upload(m);
                self.shared.wake_uploader.notify_one();
            }
        }
        let idle = st.tree.get(ino).is_none_or(|n| n.open_handles == 0);
        if idle && !st.deferred.is_empty() {
            // A remote update may have waited for this file to close.
            self.shared.wake_watcher.notify_one();
        }
        Ok(())
    }

    /// Takes `ino` out of the tree; keeps it (unlinked) while the hub must hear of it.
    fn remove_node(&self, st: &mut State, ino: u64) -> FsResult<Option<Op>> {
        let node = st.tree.get(ino).ok_or(FsError::NotFound)?;
        let path = st.tree.path_of(ino).ok_or(FsError::NotFound)?;
        let has_content = node.has_content();
        // Never on the hub: its queued ops (create, writes, chmod) go with it,
        // so a temp file made and removed between two sends costs nothing.
        let on_hub = st.may_be_on_hub(ino);
        if !on_hub {
            st.drop_ops_of(ino);
        }
        // The file's other names (hard links) stay; one name fewer is a
        // change of their inode (its link count).
        for other in st.tree.members(ino).into_iter().skip(1) {
            if let Some(o) = st.tree.get_mut(other) {
                o.touch_ctime();
                st.note_node(other);
            }
        }
        let keep = on_hub || st.pending.touches_ino(ino);
        st.tree.detach(ino);
        if has_content {
            // Open handles keep their own descriptors; nothing reads this path again.
            self.shared.reaper.remove(self.shared.cache.file(ino));
        }
        if keep {
            Ok(Some(State::op(OpKind::Delete, ino, path)))
        } else {
            st.tree.remove(ino);
            st.note_node(ino);
            Ok(None)
        }
    }

    /// Removes a file or a symlink.
    pub fn unlink(&self, parent: u64, name: &OsStr) -> FsResult<()> {
        self.remove_entry(parent, name, Kind::File)
    }

    pub fn rmdir(&self, parent: u64, name: &OsStr) -> FsResult<()> {
        self.remove_entry(parent, name, Kind::Dir)
    }

    fn remove_entry(&self, parent: u64, name: &OsStr, want: Kind) -> FsResult<()> {
        let name = utf8(name)?;
        let mut st = self.shared.state.lock();
        Self::dir_of(&st, parent)?;
        let ino = st.tree.child(parent, name).ok_or(FsError::NotFound)?;
        let node = st.tree.get(ino).ok_or(FsError::NotFound)?;
        may_replace(want, node)?;
        let op = self.remove_node(&mut st, ino)?;
        Self::touch_dir(&mut st, parent);
        let keep: Vec<u64> = if op.is_some() { vec![ino] } else { vec![] };
        st.persist(&keep, op.into_iter().collect());
        drop(st);
        self.shared.wake_uploader.notify_one();
        Ok(())
    }

    pub fn rename(&self, parent: u64, name: &OsStr, newparent: u64, newname: &OsStr, flags: u32) -> FsResult<()> {
        if flags & libc::RENAME_EXCHANGE != 0 {
            return Err(FsError::Unsupported("RENAME_EXCHANGE"));
        }
        let name = utf8(name)?;
        let newname = new_name(newname)?;
        let mut st = self.shared.state.lock();
        Self::dir_of(&st, parent)?;
        Self::dir_of(&st, newparent)?;
        let src = st.tree.child(parent, name).ok_or(FsError::NotFound)?;
        let src_kind = st.tree.get(src).ok_or(FsError::NotFound)?.kind;
        if src_kind == Kind::Dir && st.tree.is_within(newparent, src) {
            return Err(FsError::MoveIntoSelf);
        }
        let target = st.tree.child(newparent, newname);
        if target == Some(src) {
            return Ok(());
        }
        // Nothing of the source reached the hub yet: the rename stays local,
        // and the source is sent as new at its new path. A rename op is only
        // ever queued for an entry the hub knows.
        let local_only = st.tree.subtree(src).iter().all(|i| !st.may_be_on_hub(*i));
        let mut keep = vec![src];
        let mut ops = Vec::new();
        let mut ino2 = 0;
        if let Some(t) = target {
            if flags & libc::RENAME_NOREPLACE != 0 {
                return Err(FsError::Exists);
            }
            may_replace(src_kind, st.tree.get(t).ok_or(FsError::NotFound)?)?;
            if let Some(delete) = self.remove_node(&mut st, t)? {
                keep.push(t);
                if local_only {
                    ops.push(delete);
                } else {
                    // The hub replaces the target as part of the rename.
                    ino2 = t;
                }
            }
        }
        let from = st.tree.path_of(src).ok_or(FsError::NotFound)?;
        st.tree.detach(src);
        st.tree.attach(src, newparent, newname);
        st.tree.get_mut(src).expect("attached above").touch_ctime();
        Self::touch_dir(&mut st, parent);
        Self::touch_dir(&mut st, newparent);
        let to = st.tree.path_of(src).ok_or(FsError::NotFound)?;
        tracing::debug!(%from, %to, ino = src, ino2, replaced = ?target, local_only, "renamed");
        if local_only {
            st.persist(&keep, ops);
            st.queue_subtree_as_new(src);
        } else {
            ops.push(Op { id: 0, kind: OpKind::Rename, ino: src, ino2, path: from, path2: Some(to) });
            st.persist(&keep, ops);
        }
        drop(st);
        self.shared.wake_uploader.notify_one();
        Ok(())
    }

    pub fn statfs(&self) -> FsResult<StatFs> {
        let s = nix::sys::statvfs::statvfs(&self.shared.cache.root).map_err(|e| FsError::Io(e.into()))?;
        Ok(StatFs {
            blocks: s.blocks(),
            bfree: s.blocks_free(),
            bavail: s.blocks_available(),
            files: s.files(),
            ffree: s.files_free(),
            bsize: s.block_size() as u32,
            frsize: s.fragment_size() as u32,
        })
    }
}
