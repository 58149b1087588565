//! Extended attributes. A node keeps all of them, in every namespace; a
//! change to a `user.` one reaches the hub as a setattr, like a chmod. The
//! others (security labels, capabilities, ACLs, trusted) describe this
//! machine and stay on it (SEMANTICS.md).
use super::SyncFs;
use crate::error::{FsError, FsResult};
use ssync_common::xattrs::{is_synced, Xattrs};
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

impl SyncFs {
    pub fn getxattr(&self, kino: u64, name: &OsStr, size: u32) -> FsResult<XattrReply> {
        let st = self.shared.state.lock();
        let n = st.tree.get(Self::node_of(&st, kino)?).ok_or(FsError::NotFound)?;
        let value = name.to_str().and_then(|name| n.xattrs.as_ref()?.get(name)).ok_or(FsError::NoXattr)?;
        XattrReply::fit(value.to_vec(), size)
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
        self.change_xattrs(kino, name, |x| {
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
        self.change_xattrs(kino, name, |x| if x.remove(name) { Ok(()) } else { Err(FsError::NoXattr) })
    }

    /// Applies `change` to the attributes of `kino` (every name of a
    /// hard-linked file) and, for a `user.` name, queues what the hub must hear.
    fn change_xattrs(&self, kino: u64, name: &str, change: impl FnOnce(&mut Xattrs) -> FsResult<()>) -> FsResult<()> {
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
        let ops = if is_synced(name) { Self::setattr_ops(&st, &members) } else { vec![] };
        st.persist(&members, ops);
        drop(st);
        self.shared.wake_uploader.notify_one();
        Ok(())
    }
}
