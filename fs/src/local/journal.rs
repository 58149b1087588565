//! Write-behind for the local database. FUSE callbacks and the sync thread
//! change the in-memory tree, and note here what changed;
//! one transaction commits all of it at most `COMMIT_INTERVAL` later (the
//! committer thread, `spawn_committer`), or at once when a program asks for
//! durability (fsync) or a change must not be hidden by a crash.
//!
//! Two SQLite commits per created file were most of what a close cost; one
//! commit per interval makes the cost per file a few row writes. The price
//! is a bound: a kill of the mount can lose what changed in the last
//! interval, the same kind of loss as a kill just before
//! the close. Every commit holds a consistent state (it is taken under the
//! state lock), so a crash never leaves a half-made change.
use std::collections::{BTreeMap, BTreeSet};
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
    /// The path-keyed engine's queue was adopted and goes from the database.
    pub clear_old_queue: bool,
    pub settings: BTreeMap<&'static str, String>,
}

impl Journal {
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && !self.clear_old_queue && self.settings.is_empty()
    }

    pub fn node(&mut self, ino: u64) {
        self.nodes.insert(ino);
    }

    pub fn setting(&mut self, key: &'static str, value: String) {
        self.settings.insert(key, value);
    }
}
