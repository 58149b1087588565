//! Extended attributes. A node keeps all of them, in every namespace; a
//! change to a `user.` one reaches the hub as a setattr, like a chmod. The
//! others (security labels, capabilities, ACLs, trusted) describe this
//! machine and stay on it (SEMANTICS.md).
use super::SyncFs;
use crate::local::error::{FsError, FsResult};
use ssync_common::xattrs::Xattrs;
use std::ffi::OsStr;

/// What getxattr and listxattr answer: the size a buffer needs (when asked
/// with size 0), or the bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum XattrReply {
    Size(u32),
    Data(Vec<u8>),
}

impl XattrReply {
    fn fit(data: Vec<u8>, size: u32) -> FsResult<XattrReply> {
        match size {
            0 => Ok(XattrReply::Size(data.len() as u32)),
            s if (s as usize) < data.len() => Err(FsError::XattrRange),
            _ => Ok(XattrReply::Data(data)),
        }
    }
}

/// Pins a file or folder (`ssync pin`): set to pin, removed to unpin; never
/// stored, listed or sent. Nextcloud's client keeps its pin state in an
/// xattr too; here it is a control, the state lives in the node.
pub const PIN: &str = "user.ssync.pin";
/// Read-only: what of the content is on this machine (`ssync ls`), as
/// `<full|partial|none> <bytes held> <size> <pinned|unpinned>`.
pub const LOCAL: &str = "user.ssync.local";

/// A name in the namespaces this mount keeps but never applies: security
/// labels and capabilities (`security.`) and ACLs (`system.`). Asked for one
/// a file does not have, the mount answers EOPNOTSUPP, as a filesystem
/// without labels or ACLs does (NFS, or ext4 mounted `noacl`), not
/// ENODATA: `ls -l` asks every file for `security.selinux` and
/// `system.posix_acl_access`, and stops asking once told the filesystem
/// has no such thing, where ENODATA costs a round trip to this daemon per
/// file and name (a warm `ls -lR` of 5,000 files took 20 times as long as
/// on the local disk). One that was set is answered as before.
fn unapplied(name: &OsStr) -> bool {
    let name = name.as_encoded_bytes();
    name.starts_with(b"security.") || name.starts_with(b"system.")
}

impl SyncFs {
    pub fn getxattr(&self, kino: u64, name: &OsStr, size: u32) -> FsResult<XattrReply> {
        let st = self.shared.state.lock();
        let ino = Self::node_of(&st, kino)?;
        let n = st.tree.get(ino).ok_or(FsError::NotFound)?;
        if name == LOCAL {
            let held = if n.has_content() { n.cached.bytes(n.size) } else { 0 };
            let state = match held {
                _ if !n.has_content() => "none",
                _ if n.cached.is_full() => "full",
                0 => "none",
                _ => "partial",
            };
            let pin = if st.tree.is_pinned(ino) { "pinned" } else { "unpinned" };
            let size_shown = if n.has_content() { n.size } else { 0 };
            return XattrReply::fit(format!("{state} {held} {size_shown} {pin}").into_bytes(), size);
        }
        if name == PIN {
            return if n.pinned { XattrReply::fit(b"1".to_vec(), size) } else { Err(FsError::NoXattr) };
        }
        match name.to_str().and_then(|name| n.xattrs.as_ref()?.get(name)) {
            Some(value) => XattrReply::fit(value.to_vec(), size),
            None if unapplied(name) => Err(FsError::Unsupported("security labels and ACLs are not applied here")),
            None => Err(FsError::NoXattr),
        }
    }

    pub fn listxattr(&self, kino: u64, size: u32) -> FsResult<XattrReply> {
        let st = self.shared.state.lock();
        let n = st.tree.get(Self::node_of(&st, kino)?).ok_or(FsError::NotFound)?;
        let mut names = Vec::new();
        for name in n.xattrs.iter().flat_map(|x| x.names()) {
            names.extend_from_slice(name.as_bytes());
            names.push(0);
        }
        XattrReply::fit(names, size)
    }

    pub fn setxattr(&self, kino: u64, name: &OsStr, value: &[u8], flags: i32) -> FsResult<()> {
        let name = name.to_str().ok_or(FsError::InvalidArgument("an attribute name that is not UTF-8"))?;
        match name {
            PIN => return self.set_pin(kino, true),
            LOCAL => return Err(FsError::NotPermitted("user.ssync.local is read-only")),
            _ => {}
        }
        self.change_xattrs(kino, |x| {
            let exists = x.get(name).is_some();
            if flags & libc::XATTR_CREATE != 0 && exists {
                return Err(FsError::Exists);
            }
            if flags & libc::XATTR_REPLACE != 0 && !exists {
                return Err(FsError::NoXattr);
            }
            Ok(x.set(name, value)?)
        })
    }

    pub fn removexattr(&self, kino: u64, name: &OsStr) -> FsResult<()> {
        let name = name.to_str().ok_or(FsError::NoXattr)?;
        if name == PIN {
            return self.set_pin(kino, false);
        }
        self.change_xattrs(kino, |x| if x.remove(name) { Ok(()) } else { Err(FsError::NoXattr) })
    }

    /// Applies `change` to the attributes of `kino` (every name of a
    /// hard-linked file) and, for a `user.` name, queues what the hub must hear.
    fn change_xattrs(&self, kino: u64, change: impl FnOnce(&mut Xattrs) -> FsResult<()>) -> FsResult<()> {
        let mut st = self.shared.state.lock();
        let ino = Self::node_of(&st, kino)?;
        let n = st.tree.live(ino).ok_or(FsError::NotFound)?;
        let mut x = n.xattrs.as_deref().cloned().unwrap_or_default();
        change(&mut x)?;
        let x = (!x.is_empty()).then(|| Box::new(x));
        st.tree.update_members(ino, |n| {
            n.xattrs = x.clone();
            n.touch_ctime();
        });
        let members = st.tree.members(ino);
        st.persist(&members);
        Ok(())
    }
}

impl SyncFs {
    /// Pins (keeps local, fetching what is missing now) or unpins `kino`
    /// and everything below it. New files under a pinned folder are pinned:
    /// the pin is looked up through the folders above (`Tree::is_pinned`).
    fn set_pin(&self, kino: u64, pin: bool) -> FsResult<()> {
        let mut st = self.shared.state.lock();
        let ino = Self::node_of(&st, kino)?;
        let n = st.tree.live(ino).ok_or(FsError::NotFound)?;
        if !pin && !n.pinned && st.tree.is_pinned(ino) {
            return Err(FsError::InvalidArgument("pinned through a folder above it: unpin that folder"));
        }
        if pin {
            if let Some(limit) = st.limit {
                // Pinned content is never evicted: more than the limit would
                // leave no room for any read.
                let below: std::collections::HashSet<u64> = st.tree.subtree(ino).into_iter().collect();
                let kept: u64 = (st.tree.nodes())
                    .filter(|n| n.has_content() && (below.contains(&n.ino) || st.tree.is_pinned(n.ino)))
                    .map(|n| n.size)
                    .sum();
                if kept > limit.max {
                    tracing::info!(ino, kept, limit = limit.max, "pin refused: more than the cache limit");
                    return Err(FsError::CacheFull { limit: limit.max });
                }
            }
        }
        st.tree.get_mut(ino).expect("checked above").pinned = pin;
        st.persist(&[ino]);
        if !pin {
            return Ok(());
        }
        let missing: Vec<u64> = st
            .tree
            .subtree(ino)
            .into_iter()
            .filter(|i| st.tree.get(*i).is_some_and(|n| n.has_content() && !n.cached.is_full()))
            .collect();
        drop(st);
        tracing::info!(ino, files = missing.len(), "pinned; fetching what is not here");
        self.on_demand.spawn_ensure(self.shared.clone(), missing, 0..u64::MAX);
        Ok(())
    }
}
