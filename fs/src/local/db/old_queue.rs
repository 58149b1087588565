//! The queue of operations that the path-keyed engine kept (table `ops`,
//! schema steps 1 to 9). The engine on stable ids plans from the files, not
//! from a queue; a cache from before it is adopted once
//! (`sync::driver::adopt`), and of its queue only the moves and deletes
//! matter then: they say where the hub still has a node, and which of the
//! hub's entries this mount removed without telling it.
use super::{LocalDb, LocalDbError};
use ssync_common::RelPath;

/// What an operation of the old queue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldOpKind {
    /// `ino` was moved away from `path`.
    Rename,
    /// The node at `path` (`ino`, kept unlinked) was removed here.
    Delete,
    /// Anything else (uploads, mkdirs, attribute changes, exchanges): the
    /// files themselves say what is unsent.
    Other,
}

#[derive(Debug, Clone)]
pub struct OldOp {
    pub kind: OldOpKind,
    pub ino: u64,
    pub path: RelPath,
}

impl LocalDb {
    /// The old queue, oldest first (empty for a cache made by the engine on
    /// stable ids).
    pub fn load_old_queue(&self) -> Result<Vec<OldOp>, LocalDbError> {
        let mut st = self.conn.prepare("SELECT id, kind, ino, path FROM ops ORDER BY id")?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, String>(3)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, ino, path) = row?;
            let kind = match kind.as_str() {
                "rename" => OldOpKind::Rename,
                "delete" => OldOpKind::Delete,
                _ => OldOpKind::Other,
            };
            let path = RelPath::parse(&path).map_err(|_| LocalDbError::Corrupt(format!("queued operation {id}")))?;
            out.push(OldOp { kind, ino: ino as u64, path });
        }
        Ok(out)
    }

    /// Empties the old queue (in the transaction that records its adoption).
    pub(super) fn clear_old_queue(&self) -> Result<(), LocalDbError> {
        self.conn.execute("DELETE FROM ops", [])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::db::Commit;

    #[test]
    fn the_old_queue_is_read_in_order_and_cleared_with_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = LocalDb::open(&dir.path().join("state.db")).unwrap();
        db.conn
            .execute_batch(
                "INSERT INTO ops (kind, ino, path) VALUES ('upload', 2, 'f'), ('rename', 3, 'd/old'),
                 ('delete', 4, 'gone.txt'), ('exchange', 5, 'x');",
            )
            .unwrap();
        let kinds: Vec<(OldOpKind, u64, String)> =
            db.load_old_queue().unwrap().into_iter().map(|o| (o.kind, o.ino, o.path.to_string())).collect();
        assert_eq!(
            kinds,
            vec![
                (OldOpKind::Other, 2, "f".into()),
                (OldOpKind::Rename, 3, "d/old".into()),
                (OldOpKind::Delete, 4, "gone.txt".into()),
                (OldOpKind::Other, 5, "x".into()),
            ]
        );
        db.commit(&Commit { clear_old_queue: true, ..Commit::default() }, false).unwrap();
        assert!(db.load_old_queue().unwrap().is_empty());
    }
}
