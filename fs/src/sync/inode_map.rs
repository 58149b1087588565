//! Which inode of the mount each node of Local is on, both ways. The reads
//! of Local set it (`local_reader`), and the mount side keeps it up to date
//! by its own creates and deletes (`mount_side`), so that a read in part
//! still knows which node an inode was once the inode is gone from the
//! mount's tree (a file the engine brought here and a user removed before
//! the next read).
use super::canopy::NodeId;
use std::collections::HashMap;
use std::sync::Arc;

/// The map, shared by the sync thread's reader and its mount side (the
/// sending side looks a content's file up in it too).
pub type InoMap = Arc<parking_lot::Mutex<InodeMap>>;

/// A one-to-one map of nodes and inodes.
#[derive(Default)]
pub struct InodeMap {
    by_id: HashMap<NodeId, u64>,
    by_ino: HashMap<u64, NodeId>,
}

impl InodeMap {
    /// The map of a whole read of Local.
    pub fn from_ids(by_id: HashMap<NodeId, u64>) -> InodeMap {
        let by_ino = by_id.iter().map(|(id, ino)| (*ino, *id)).collect();
        InodeMap { by_id, by_ino }
    }

    pub fn ino(&self, id: NodeId) -> Option<u64> {
        self.by_id.get(&id).copied()
    }

    /// Node `id` is on inode `ino` (and neither is paired with another).
    pub fn insert(&mut self, id: NodeId, ino: u64) {
        if let Some(before) = self.by_id.insert(id, ino).filter(|b| *b != ino) {
            self.by_ino.remove(&before);
        }
        if let Some(other) = self.by_ino.insert(ino, id).filter(|o| *o != id) {
            self.by_id.remove(&other);
        }
    }

    /// Node `id` is on no inode any more; the inode it was on.
    pub fn remove_id(&mut self, id: NodeId) -> Option<u64> {
        let ino = self.by_id.remove(&id)?;
        self.by_ino.remove(&ino);
        Some(ino)
    }

    /// Inode `ino` holds no node any more; the node it held.
    pub fn remove_ino(&mut self, ino: u64) -> Option<NodeId> {
        let id = self.by_ino.remove(&ino)?;
        self.by_id.remove(&id);
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_one_to_one() {
        let mut m = InodeMap::from_ids([(1, 10), (2, 20)].into());
        m.insert(1, 11);
        assert_eq!((m.ino(1), m.remove_ino(10)), (Some(11), None));
        m.insert(3, 20);
        assert_eq!((m.ino(2), m.ino(3)), (None, Some(20)));
        assert_eq!(m.remove_ino(20), Some(3));
        assert_eq!((m.ino(3), m.remove_id(1), m.remove_ino(11)), (None, Some(11), None));
    }
}
