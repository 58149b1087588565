//! Write-behind for the local database. FUSE callbacks and the background
//! tasks change the in-memory tree and queue, and note here what changed;
//! one transaction commits all of it at most `COMMIT_INTERVAL` later (the
//! committer thread, `spawn_committer`), or at once when a program asks for
//! durability (fsync) or a change must not be hidden by a crash.
//!
//! Two SQLite commits per created file were most of what a close cost; one
//! commit per interval makes the cost per file a few row writes. The price
//! is a bound: a kill of the mount can lose what changed in the last
//! interval, the same kind of loss as a kill just before
//! the close. Every commit holds a consistent state (it is taken under the
//! state lock), so a crash never leaves a queue that contradicts the tree.
use crate::queue::Op;
use crate::state::Shared;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// How long after a change the committer writes it. With the time a commit
/// takes under load, the README promises 250 ms: a close older than that
/// survives a kill of the mount.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(50);

/// What changed since the last commit.
#[derive(Debug, Default)]
pub struct Journal {
    /// Nodes whose row must be brought in line with the tree: written as
    /// they are in it at commit time, or deleted if it no longer has them.
    pub nodes: BTreeSet<u64>,
    /// Ops queued since the last commit, by id.
    pub ops_added: BTreeMap<u64, Op>,
    /// Ops that left the queue and are in the database.
    pub ops_done: Vec<u64>,
    pub settings: BTreeMap<&'static str, String>,
}

impl Journal {
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.ops_added.is_empty() && self.ops_done.is_empty() && self.settings.is_empty()
    }

    pub fn node(&mut self, ino: u64) {
        self.nodes.insert(ino);
    }

    pub fn op_added(&mut self, op: Op) {
        self.ops_added.insert(op.id, op);
    }

    /// An op added and done within one interval never reaches the database.
    pub fn op_done(&mut self, id: u64) {
        if self.ops_added.remove(&id).is_none() {
            self.ops_done.push(id);
        }
    }

    pub fn setting(&mut self, key: &'static str, value: String) {
        self.settings.insert(key, value);
    }
}

/// Starts the committer thread: woken by the first change after a commit,
/// it waits `COMMIT_INTERVAL` (gathering what else changes) and commits.
pub fn spawn_committer(shared: Arc<Shared>) -> std::io::Result<()> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    shared.state.lock().set_committer(tx);
    std::thread::Builder::new().name("ssync-commit".into()).spawn(move || {
        while rx.recv().is_ok() {
            std::thread::sleep(COMMIT_INTERVAL);
            let committed = shared.state.lock().commit(false);
            if let Err(e) = committed {
                tracing::error!("cannot write the mount's state to its database (retrying in 1 s; changes are kept in memory meanwhile): {e}");
                std::thread::sleep(Duration::from_secs(1));
                shared.state.lock().ask_commit();
            }
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::OpKind;
    use ssync_common::RelPath;

    fn op(id: u64) -> Op {
        Op { id, kind: OpKind::Upload, ino: 5, ino2: 0, path: RelPath::parse("a").unwrap(), path2: None }
    }

    #[test]
    fn an_op_added_and_done_before_a_commit_leaves_no_trace() {
        let mut j = Journal::default();
        j.op_added(op(7));
        j.op_done(7);
        assert!(j.is_empty());
        j.op_done(3);
        assert_eq!(j.ops_done, vec![3], "an op already in the database is deleted from it");
    }
}
