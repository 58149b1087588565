//! The sync thread's reads of Local from the mount's tree, at the start of
//! every round. A read costs what changed: only the inodes the mount noted
//! as changed since the last read (`State::take_changed_for_sync`) are read
//! again, with the nodes whose Synced or Remote changed (the owner Local
//! says depends on them: `local_tree::agreed_owner`). The whole tree is
//! read at the first read, after a cache's nodes took ids, and when Synced
//! or Remote was replaced whole; it is then set in Local in place, so only
//! the nodes that differ count as changed (`Canopy::differing`).
//!
//! Debug builds (the tests) check every read in part against a whole read
//! of the same state, and stop on a difference.
use super::engine::Engine;
use super::inode_map::{InoMap, InodeMap};
use super::local_tree;
use super::remote::Remote;
use crate::local::state::Shared;
use std::sync::atomic::Ordering;

/// What one read of Local keeps for the next.
pub struct LocalReader {
    /// Which inode each node of Local is on, shared with the mount side.
    inos: InoMap,
    /// The next read reads the whole tree.
    whole_next: bool,
    /// Nodes left out for want of an id, at the last whole read.
    without_id: usize,
}

impl LocalReader {
    pub fn new(inos: InoMap) -> LocalReader {
        LocalReader { inos, whole_next: false, without_id: 0 }
    }

    /// The next read reads the whole tree (nodes took ids, and what is below
    /// them is in other folders now).
    pub fn read_whole_next(&mut self) {
        self.whole_next = true;
    }

    /// Brings the engine's Local up to date with the mount's tree.
    pub fn read<R: Remote>(&mut self, shared: &Shared, engine: &mut Engine<R>) {
        let started = std::time::Instant::now();
        let inos = &self.inos;
        let again: Option<Vec<u64>> = engine.canopy.take_changed_bases().map(|ids| {
            let inos = inos.lock();
            ids.iter().filter_map(|id| inos.ino(*id)).collect()
        });
        let whole = std::mem::take(&mut self.whole_next) || again.is_none();
        let (copied, check) = {
            let st = &mut *shared.state.lock();
            // Taken even for a whole read: it starts the record anew.
            let changed = st.take_changed_for_sync().filter(|_| !whole);
            let part = changed.and_then(|changed| {
                local_tree::copy_nodes(&st.tree, changed.into_iter().chain(again.unwrap_or_default()))
            });
            let check = (cfg!(debug_assertions) && part.is_some()).then(|| local_tree::copy(&st.tree));
            (part.ok_or_else(|| local_tree::copy(&st.tree)), check)
        };
        let locked = started.elapsed();
        let c = &mut engine.canopy;
        match copied {
            Ok(part) => {
                let mut inos = inos.lock();
                local_tree::update(part, &mut c.local, &mut inos, (&c.synced, &c.remote), &shared.accounts);
            }
            Err(all) => {
                let read = local_tree::build(all, &c.synced, &c.remote, &shared.accounts);
                local_tree::set_in_place(&mut c.local, &read.tree);
                self.without_id = read.without_id;
                *inos.lock() = InodeMap::from_ids(read.ino_of);
            }
        }
        if let Some(all) = check {
            let whole = local_tree::build(all, &c.synced, &c.remote, &shared.accounts);
            if let Some(first) = first_difference(&whole.tree, &c.local) {
                panic!("Local read in part differs from a whole read: {first}");
            }
        }
        tracing::trace!(?locked, read = ?started.elapsed(), "Local read");
        let unsent = c.local_changes() + self.without_id;
        shared.status.engine_unsent.store(unsent as u64, Ordering::Release);
    }
}

/// The first node on which a whole read and a read in part differ, both
/// sides of it printed whole.
fn first_difference(whole: &super::canopy::Tree, part: &super::canopy::Tree) -> Option<String> {
    let ids = whole.ids().chain(part.ids());
    let id = ids.into_iter().find(|id| whole.get(*id) != part.get(*id))?;
    Some(format!("node {id:x}: read in part {:?}, whole {:?}", part.get(id), whole.get(id)))
}
