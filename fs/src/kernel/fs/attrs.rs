//! A node's attributes as the kernel sees them, and changing them (setattr):
//! mode, owner, size, times. Every name of a hard-linked file is one inode,
//! so a change applies to all of them.
use super::SyncFs;
use crate::local::clock::now_ns;
use crate::local::error::{FsError, FsResult};
use crate::local::handles::FileStamp;
use crate::local::state::State;
use crate::local::tree::{Kind, Node, Owner, Special, Tree};
use std::fs::OpenOptions;
use std::time::{SystemTime, UNIX_EPOCH};

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
        let linked = n.ino == crate::local::tree::ROOT || n.parent != 0;
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

pub enum SetTime {
    Now,
    At(SystemTime),
}

pub struct SetAttr {
    pub caller: Caller,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<SetTime>,
    pub mtime: Option<SetTime>,
}

fn to_ns(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i64,
        Err(e) => -(e.duration().as_nanos() as i64),
    }
}

fn time_ns(t: SetTime) -> i64 {
    match t {
        SetTime::Now => now_ns(),
        SetTime::At(t) => to_ns(t),
    }
}

impl SyncFs {
    /// A node's attributes; while it is open for writing, size and mtime come
    /// from the cache file (passthrough writes do not pass through the daemon).
    pub(super) fn attr_of(&self, tree: &Tree, n: &Node) -> NodeAttr {
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

    /// Whether `caller` counts as in `n`'s group for keeping set-group-ID:
    /// root (CAP_FSETID), or the file's group as its primary group (FUSE
    /// does not tell the supplementary ones, so those count as not in it).
    pub(super) fn in_group(&self, n: &Node, caller: Caller) -> bool {
        caller.uid == 0 || caller.gid == n.owner.map_or(self.owner().1, |o| o.gid)
    }

    /// A write by `caller`, who lacks CAP_FSETID (the kernel says so), drops
    /// the file's set-ID bits; the kernel's cached mode is refreshed. The
    /// close's upload carries the new mode.
    pub(super) fn drop_setid_on_write(&self, st: &mut State, ino: u64, caller: Caller) {
        let Some(n) = st.tree.get(ino).filter(|n| n.has_setid()) else { return };
        let in_group = self.in_group(n, caller);
        st.tree.update_members(ino, |n| {
            if n.drop_setid(in_group) {
                n.touch_ctime();
            }
        });
        let members = st.tree.members(ino);
        st.persist(&members);
        if let Some(kino) = st.tree.get(ino).map(Node::kernel_ino) {
            self.shared.invalidate(vec![crate::local::invalidate::Inval::Inode(kino)]);
        }
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
        if change.size.is_some_and(|s| s > 0) {
            // A truncate keeps bytes of the content: they must be here first.
            let ino = Self::node_of(&self.shared.state.lock(), kino)?;
            self.make_whole(ino)?;
        }
        // Truncating in place: no fetched bytes may land in the file after it.
        let content_lock = match change.size {
            Some(_) => {
                let ino = Self::node_of(&self.shared.state.lock(), kino)?;
                Some(self.on_demand.content_lock(ino))
            }
            None => None,
        };
        let _no_fetch_writes = content_lock.as_ref().map(|l| l.lock());
        let mut st = self.shared.state.lock();
        let ino = Self::node_of(&st, kino)?;
        let kind = st.tree.get(ino).ok_or(FsError::NotFound)?.kind;
        // Every name of a hard-linked file is one inode: all change together.
        let members = st.tree.members(ino);
        if let Some(size) = change.size {
            if kind == Kind::Dir {
                return Err(FsError::IsDir);
            }
            // With a writer open, its handle marks the write (its close makes the file's new content).
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
                }
            }
            st.tree.update_members(ino, |n| {
                n.size = size;
                n.dirty = true;
                n.write_gen += 1;
                n.mtime_ns = now_ns();
                if size == 0 {
                    n.cached = crate::local::residency::Residency::full();
                }
            });
        }
        let chown = change.uid.is_some() || change.gid.is_some();
        // As the kernel would (its KILLPRIV work is ours): chown always, a
        // truncate by anyone but root (no CAP_FSETID), drops set-ID bits.
        if chown || (change.size.is_some() && change.caller.uid != 0) {
            let in_group = self.in_group(st.tree.get(ino).expect("checked above"), change.caller);
            st.tree.update_members(ino, |n| {
                n.drop_setid(in_group);
            });
        }
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
        st.persist(&members);
        Ok(attr)
    }
}
