//! Names in the tree: creating files, folders, symlinks, special files and
//! hard links, removing them, and renaming. Each records the change in the
//! tree; the sync thread sees the change in Local.
use super::{now_ns, utf8, Caller, NodeAttr, SyncFs};
use crate::local::error::{FsError, FsResult};
use crate::local::handles::Handle;
use crate::local::state::State;
use crate::local::tree::{Kind, Node, Owner, Special};
use ssync_common::api::MAX_SYMLINK_TARGET;
use ssync_common::path::validate_name;
use ssync_common::RelPath;
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

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

impl SyncFs {
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
        // A node is known everywhere by the id its creator gave it.
        node.id = Some(ssync_common::NodeId::random());
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

    /// Gives a new node its inode number and records it in its folder.
    fn number(st: &mut State, node: &mut Node) -> FsResult<u64> {
        node.ino = st.new_ino()?;
        st.note_node(node.ino);
        Self::touch_dir(st, node.parent);
        Ok(node.ino)
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
        let (mut node, _path) = self.new_node(&st, caller, parent, name, Kind::Dir, mode & !umask)?;
        let ino = Self::number(&mut st, &mut node)?;
        let attr = NodeAttr::from(&node);
        st.tree.insert(node);
        st.persist(&[ino]);
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
        let (mut node, _path) = self.new_node(&st, caller, parent, name, Kind::File, mode)?;
        let ino = Self::number(&mut st, &mut node)?;
        let file = ssync_common::private::file_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.shared.cache.file(ino))?;
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
                st.persist(&[ino]);
                None
            }
        };
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
        st.persist(&[ino]);
        Ok(attr)
    }

    /// Another name for the file `kino`: a new node in the same hard-link
    /// group, whose cache file is a hard link of the first one's, so a write
    /// through either name is one write. The hub gets it as a file of its own
    /// (the content is deduplicated there); see SEMANTICS.md.
    pub fn link(&self, caller: Caller, kino: u64, newparent: u64, newname: &OsStr) -> FsResult<NodeAttr> {
        let name = new_name(newname)?;
        // The names of one file share one cache file: all of it must be here.
        let src = Self::node_of(&self.shared.state.lock(), kino)?;
        self.make_whole(src)?;
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
        node.xattrs = s.xattrs.clone();
        node.dirty = s.has_content();
        node.open_handles = s.open_handles;
        node.open_writers = s.open_writers;
        node.write_gen = s.write_gen;
        node.sealed = s.sealed;
        st.tree.insert(node);
        st.tree.join(src, ino);
        st.tree.update_members(src, Node::touch_ctime);
        Self::touch_dir(&mut st, newparent);
        let members = st.tree.members(src);
        st.persist(&members);
        Ok(self.attr_of(&st.tree, st.tree.get(ino).expect("inserted above")))
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
        let (mut node, _path) = self.new_node(&st, caller, parent, name, Kind::File, mode & !umask)?;
        Self::number(&mut st, &mut node)?;
        node.dirty = false;
        node.special = Some(Special { format, rdev });
        let attr = NodeAttr::from(&node);
        st.tree.insert(node);
        Ok(attr)
    }

    /// Takes `ino` out of the tree. Open handles keep their own descriptors;
    /// the sync thread sees the node gone from Local.
    fn remove_node(&self, st: &mut State, ino: u64) -> FsResult<()> {
        let node = st.tree.get(ino).ok_or(FsError::NotFound)?;
        let has_content = node.has_content();
        // The file's other names (hard links) stay; one name fewer is a
        // change of their inode (its link count).
        for other in st.tree.members(ino).into_iter().skip(1) {
            if let Some(o) = st.tree.get_mut(other) {
                o.touch_ctime();
                st.note_node(other);
            }
        }
        st.tree.detach(ino);
        if has_content {
            self.shared.reaper.remove(self.shared.cache.file(ino));
        }
        st.tree.remove(ino);
        st.persist(&[ino]);
        Ok(())
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
        self.remove_node(&mut st, ino)?;
        Self::touch_dir(&mut st, parent);
        Ok(())
    }

    pub fn rename(&self, parent: u64, name: &OsStr, newparent: u64, newname: &OsStr, flags: u32) -> FsResult<()> {
        if flags & libc::RENAME_EXCHANGE != 0 {
            return self.exchange(parent, name, newparent, newname);
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
        if let Some(t) = target {
            if flags & libc::RENAME_NOREPLACE != 0 {
                return Err(FsError::Exists);
            }
            may_replace(src_kind, st.tree.get(t).ok_or(FsError::NotFound)?)?;
            self.remove_node(&mut st, t)?;
        }
        let from = st.tree.path_of(src).ok_or(FsError::NotFound)?;
        st.tree.detach(src);
        st.tree.attach(src, newparent, newname);
        st.tree.get_mut(src).expect("attached above").touch_ctime();
        Self::touch_dir(&mut st, parent);
        Self::touch_dir(&mut st, newparent);
        tracing::debug!(%from, to = ?st.tree.path_of(src), ino = src, replaced = ?target, "renamed");
        st.persist(&[src]);
        Ok(())
    }

    /// renameat2 RENAME_EXCHANGE: `name` and `newname` trade places (the
    /// planner sends it to the hub as one exchange).
    fn exchange(&self, parent: u64, name: &OsStr, newparent: u64, newname: &OsStr) -> FsResult<()> {
        let (name, newname) = (utf8(name)?, utf8(newname)?);
        let mut st = self.shared.state.lock();
        Self::dir_of(&st, parent)?;
        Self::dir_of(&st, newparent)?;
        let a = st.tree.child(parent, name).ok_or(FsError::NotFound)?;
        let b = st.tree.child(newparent, newname).ok_or(FsError::NotFound)?;
        if a == b {
            return Ok(());
        }
        if st.tree.is_within(newparent, a) || st.tree.is_within(parent, b) {
            return Err(FsError::InvalidArgument("swapping a folder with something inside it"));
        }
        let (from, to) = (st.tree.path_of(a).ok_or(FsError::NotFound)?, st.tree.path_of(b).ok_or(FsError::NotFound)?);
        st.tree.detach(a);
        st.tree.detach(b);
        st.tree.attach(a, newparent, newname);
        st.tree.attach(b, parent, name);
        for ino in [a, b] {
            st.tree.get_mut(ino).expect("attached above").touch_ctime();
        }
        Self::touch_dir(&mut st, parent);
        Self::touch_dir(&mut st, newparent);
        tracing::debug!(%from, %to, a, b, "exchanged");
        st.persist(&[a, b]);
        Ok(())
    }
}
