//! The invalidation thread: the only caller of `fuser::Notifier`.
//!
//! Notifications are sent from this dedicated thread, never from a FUSE
//! callback or with filesystem locks held: the kernel may need those locks to
//! process a notification, and the session would deadlock.
use crossbeam_channel::Receiver;
use fuser::{INodeNo, Notifier};
use std::ffi::OsStr;

#[derive(Debug, Clone)]
pub enum Inval {
    /// Drop cached attributes and pages of an inode.
    Inode(u64),
    /// Drop a cached name in a folder.
    Entry { parent: u64, name: String },
    /// A name went away: drop it, and tell watchers (inotify) it was deleted.
    Delete { parent: u64, child: u64, name: String },
}

pub fn spawn(notifier: Notifier, rx: Receiver<Inval>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("ssync-inval".into()).spawn(move || {
        for msg in rx {
            let res = match &msg {
                Inval::Inode(ino) => notifier.inval_inode(INodeNo(*ino), 0, 0),
                Inval::Entry { parent, name } => notifier.inval_entry(INodeNo(*parent), OsStr::new(name)),
                Inval::Delete { parent, child, name } => notifier
                    .delete(INodeNo(*parent), INodeNo(*child), OsStr::new(name))
                    .or_else(|_| notifier.inval_entry(INodeNo(*parent), OsStr::new(name))),
            };
            match res {
                // ENOENT: the kernel had nothing cached for it, which is fine.
                Err(e) if e.raw_os_error() != Some(libc::ENOENT) => {
                    tracing::debug!(?msg, "kernel invalidation failed: {e}")
                }
                _ => {}
            }
        }
    })
}
