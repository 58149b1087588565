//! The mount's keeper: the engine's state in the mount's database, kept in
//! one transaction with the mount's own tree.
//!
//! The mount's tree reaches the database through its journal, committed in
//! the background (`State::persist`). Synced must never be kept apart from
//! it:
//! - kept ahead of the tree and the tree lost in a crash, Synced would hold
//!   what Local never shows: a file brought here from the hub would look
//!   deleted here, and the next plan would delete it on every machine;
//! - the tree kept and Synced lost, a file brought here and changed on the
//!   hub again before the restart would look changed on both sides: a
//!   conflict copy of content nobody here wrote.
//!
//! So a change of Synced is written in the transaction that commits what
//! the tree's journal holds. The hub's rows and cursor alone (a read of the
//! feed) go on the keeper's own connection, outside the state's lock.
use super::engine::Keeper;
use super::keeper::SyncStateChange;
use super::planner::Op;
use crate::local::db::LocalDb;
use crate::local::state::Shared;
use std::sync::Arc;

pub struct MountKeeper {
    pub db: LocalDb,
    pub shared: Arc<Shared>,
}

impl Keeper for MountKeeper {
    fn sending(&mut self, ops: &[Op]) -> Result<Vec<i64>, String> {
        self.db.keep_sent(ops).map_err(|e| e.to_string())
    }

    fn keep(&mut self, change: &SyncStateChange) -> Result<(), String> {
        if change.synced.is_empty() {
            return self.db.keep_sync_change(change).map_err(|e| e.to_string());
        }
        let mut st = self.shared.state.lock();
        st.commit_with(false, &mut |db| db.write_sync_change(change))
            .map_err(|e| format!("the mount's tree and merge base were not kept: {e:?}"))
    }
}
