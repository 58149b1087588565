//! What the sync engine keeps in the mount's database (schema step 10 in
//! `local/db.rs`): Synced, the hub's rows, the cursor, and the operations
//! sent whose outcome is not recorded yet. Each change is written in one
//! transaction, so a crash leaves the state before or after it.
use crate::local::db::{LocalDb, LocalDbError};
use crate::sync::canopy::{Kind, Meta, Node, NodeId, Place, Tree};
use crate::sync::hub_view::{HubView, Row};
use crate::sync::planner::Op;
use rusqlite::{params, OptionalExtension};
use ssync_common::ContentHash;

/// The engine's state as it was kept.
#[derive(Debug, Default)]
pub struct SyncState {
    pub synced: Tree,
    pub view: HubView,
    /// Sent, outcome unknown, oldest first, with the number each was kept under.
    pub sent: Vec<(i64, Op)>,
}

/// One step of the engine, to keep.
#[derive(Debug, Default)]
pub struct SyncStateChange<'a> {
    /// Synced nodes now (None: gone from Synced).
    pub synced: Vec<(NodeId, Option<&'a Node>)>,
    pub rows: Vec<(NodeId, Option<Row>)>,
    pub cursor: Option<u64>,
    /// Sent operations whose outcome is now recorded.
    pub settled: Vec<i64>,
}

impl SyncStateChange<'_> {
    pub fn is_empty(&self) -> bool {
        self.synced.is_empty() && self.rows.is_empty() && self.cursor.is_none() && self.settled.is_empty()
    }
}

fn id_text(id: NodeId) -> String {
    format!("{id:032x}")
}

fn id_of(text: &str) -> Result<NodeId, LocalDbError> {
    NodeId::from_str_radix(text, 16).map_err(|_| LocalDbError::Corrupt(format!("node id {text:?}")))
}

fn kind_text(kind: Kind) -> &'static str {
    match kind {
        Kind::File => "file",
        Kind::Dir => "dir",
        Kind::Symlink => "symlink",
    }
}

fn kind_of(text: &str) -> Result<Kind, LocalDbError> {
    match text {
        "file" => Ok(Kind::File),
        "dir" => Ok(Kind::Dir),
        "symlink" => Ok(Kind::Symlink),
        other => Err(LocalDbError::Corrupt(format!("kind {other:?}"))),
    }
}

fn content_of(text: Option<String>) -> Result<Option<ContentHash>, LocalDbError> {
    text.map(|t| t.parse().map_err(|_| LocalDbError::Corrupt(format!("content id {t:?}")))).transpose()
}

fn meta_of(text: Option<String>) -> Result<Option<Box<Meta>>, LocalDbError> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| LocalDbError::Corrupt(format!("owner and attributes: {e}"))))
        .transpose()
}

fn meta_text(meta: &Option<Box<Meta>>) -> Option<String> {
    meta.as_ref().map(|m| serde_json::to_string(m).expect("owners and attributes serialize"))
}

impl LocalDb {
    pub fn load_sync_state(&self) -> Result<SyncState, LocalDbError> {
        let mut synced = Tree::default();
        let mut st = self.conn.prepare("SELECT id, parent, name, kind, content, mode, meta FROM synced_nodes")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get(2)?,
                r.get::<_, String>(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })?;
        for row in rows {
            let (id, parent, name, kind, content, mode, meta) = row?;
            let place = Place { parent: id_of(&parent)?, name };
            let node = Node { place, kind: kind_of(&kind)?, content: content_of(content)?, mode, meta: meta_of(meta)? };
            synced.set(id_of(&id)?, node);
        }
        let mut st = self.conn.prepare(
            "SELECT node, parent, name, version, deleted, kind, content, mode, size, mtime_ns, meta FROM hub_rows",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, bool>(4)?,
                r.get::<_, String>(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get::<_, i64>(8)?,
                r.get::<_, i64>(9)?,
                r.get::<_, Option<String>>(10)?,
            ))
        })?;
        let mut kept = Vec::new();
        for row in rows {
            let (node, parent, name, version, deleted, kind, content, mode, size, mtime_ns, meta) = row?;
            let row = Row {
                place: Place { parent: id_of(&parent)?, name },
                version: version as u64,
                deleted,
                kind: kind_of(&kind)?,
                content: content_of(content)?,
                mode,
                size: size as u64,
                mtime_ns,
                meta: meta_of(meta)?,
            };
            kept.push((id_of(&node)?, row));
        }
        let cursor: Option<i64> =
            self.conn.query_row("SELECT cursor FROM hub_cursor WHERE one = 1", [], |r| r.get(0)).optional()?;
        let view = HubView::restore(kept, cursor.unwrap_or(0) as u64);
        let mut st = self.conn.prepare("SELECT seq, op FROM sent_ops ORDER BY seq")?;
        let sent = st
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
            .map(|row| {
                let (seq, op) = row?;
                let op =
                    serde_json::from_str(&op).map_err(|e| LocalDbError::Corrupt(format!("sent operation: {e}")))?;
                Ok((seq, op))
            })
            .collect::<Result<Vec<_>, LocalDbError>>()?;
        Ok(SyncState { synced, view, sent })
    }

    /// How far the engine has read the hub's feed (0: never synced).
    /// Whether this mount has synced with the hub before: it has a feed
    /// cursor, or a merge base (the cursor starts again from 0 when the
    /// hub's rows are read anew, schema step 13).
    pub fn synced_before(&self) -> Result<bool, LocalDbError> {
        let base: bool = self.conn.query_row("SELECT EXISTS(SELECT 1 FROM synced_nodes)", [], |r| r.get(0))?;
        Ok(base || self.sync_cursor()? > 0)
    }

    pub fn sync_cursor(&self) -> Result<u64, LocalDbError> {
        let cursor: Option<i64> =
            self.conn.query_row("SELECT cursor FROM hub_cursor WHERE one = 1", [], |r| r.get(0)).optional()?;
        Ok(cursor.unwrap_or(0) as u64)
    }

    /// Keeps `ops` as sent (before they go out), in one transaction: the
    /// number to settle each by.
    pub fn keep_sent(&self, ops: &[Op]) -> Result<Vec<i64>, LocalDbError> {
        self.atomically(|db| {
            let mut put = db.conn.prepare_cached("INSERT INTO sent_ops (op) VALUES (?1)")?;
            let mut seqs = Vec::with_capacity(ops.len());
            for op in ops {
                let text = serde_json::to_string(op).map_err(|e| LocalDbError::Corrupt(format!("operation: {e}")))?;
                put.execute([text])?;
                seqs.push(db.conn.last_insert_rowid());
            }
            Ok(seqs)
        })
    }

    /// Keeps `change` in one transaction of its own.
    pub fn keep_sync_change(&mut self, change: &SyncStateChange) -> Result<(), LocalDbError> {
        self.atomically(|db| db.write_sync_change(change))
    }

    /// Writes `change` in the transaction the caller holds.
    pub fn write_sync_change(&self, change: &SyncStateChange) -> Result<(), LocalDbError> {
        let conn = &self.conn;
        {
            let mut put = conn.prepare_cached(
                "INSERT OR REPLACE INTO synced_nodes (id, parent, name, kind, content, mode, meta) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut gone = conn.prepare_cached("DELETE FROM synced_nodes WHERE id = ?1")?;
            for (id, node) in &change.synced {
                match node {
                    Some(n) => put.execute(params![
                        id_text(*id),
                        id_text(n.place.parent),
                        n.place.name,
                        kind_text(n.kind),
                        n.content.map(|c| c.to_hex()),
                        n.mode,
                        meta_text(&n.meta)
                    ])?,
                    None => gone.execute([id_text(*id)])?,
                };
            }
            let mut put = conn.prepare_cached(
                "INSERT OR REPLACE INTO hub_rows (node, parent, name, version, deleted, kind, content, mode, size, \
                 mtime_ns, meta) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            let mut gone = conn.prepare_cached("DELETE FROM hub_rows WHERE node = ?1")?;
            for (id, row) in &change.rows {
                match row {
                    Some(r) => put.execute(params![
                        id_text(*id),
                        id_text(r.place.parent),
                        r.place.name,
                        r.version as i64,
                        r.deleted,
                        kind_text(r.kind),
                        r.content.map(|c| c.to_hex()),
                        r.mode,
                        r.size as i64,
                        r.mtime_ns,
                        meta_text(&r.meta)
                    ])?,
                    None => gone.execute([id_text(*id)])?,
                };
            }
            if let Some(cursor) = change.cursor {
                conn.execute(
                    "INSERT INTO hub_cursor (one, cursor) VALUES (1, ?1) ON CONFLICT (one) DO UPDATE SET cursor = ?1",
                    [cursor as i64],
                )?;
            }
            let mut settled = conn.prepare_cached("DELETE FROM sent_ops WHERE seq = ?1")?;
            for seq in &change.settled {
                settled.execute([seq])?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::canopy::ROOT;
    use crate::sync::hub_view::tests::row;
    use crate::sync::planner::Side;
    use ssync_common::api::EntryKind;

    #[test]
    fn the_engines_state_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let folder = Node {
            place: Place { parent: ROOT, name: "d".into() },
            kind: Kind::Dir,
            content: None,
            mode: 0o755,
            meta: None,
        };
        let file = Node {
            place: Place { parent: 7, name: "f".into() },
            kind: Kind::File,
            content: Some(ContentHash::of(b"x")),
            mode: 0o600,
            meta: {
                let mut x = ssync_common::xattrs::Xattrs::default();
                x.set("user.origin", b"\x00\xffkept").unwrap();
                let owner = ssync_common::api::Owner { uid: 1001, gid: 1002, user: Some("ann".into()), group: None };
                Meta::boxed(Some(owner), Some(x))
            },
        };
        let mut view = HubView::default();
        view.fold_feed(&[
            row("d", 7, 0, 1, EntryKind::Dir, false),
            row("d/f", u128::MAX - 1, 7, 2, EntryKind::File, false),
        ])
        .unwrap();
        view.fold_feed(&[row("gone", 9, 0, 3, EntryKind::File, false)]).unwrap();
        view.fold_answer(&[row("gone", 9, 0, 4, EntryKind::File, true)]).unwrap();
        let sent = Op::Delete { side: Side::Remote, id: u128::MAX - 1, base: file.clone() };
        {
            let mut db = LocalDb::open(&path).unwrap();
            let seqs = db.keep_sent(&[sent.clone(), sent.clone()]).unwrap();
            let (s1, s2) = (seqs[0], seqs[1]);
            let change = SyncStateChange {
                synced: vec![(7, Some(&folder)), (u128::MAX - 1, Some(&file)), (3, None)],
                rows: view.take_changed_rows(),
                cursor: Some(view.cursor()),
                settled: vec![s1],
            };
            db.keep_sync_change(&change).unwrap();
            assert!(s2 > s1);
        }
        let db = LocalDb::open(&path).unwrap();
        let kept = db.load_sync_state().unwrap();
        assert_eq!(kept.synced.get(7), Some(&folder));
        assert_eq!(kept.synced.get(u128::MAX - 1), Some(&file));
        assert_eq!(kept.synced.len(), 2);
        assert_eq!(kept.view.tree(), view.tree(), "the Remote tree derives the same from the kept rows");
        assert_eq!(kept.view.cursor(), 3);
        assert_eq!(kept.view.version(u128::MAX - 1), Some(2));
        assert_eq!(kept.sent.len(), 1, "the settled one is gone");
        assert_eq!(kept.sent[0].1, sent);
    }

    /// The merge base is kept in the transaction that commits the mount's
    /// tree (`MountKeeper`): both are there after it, and neither when a
    /// write of it fails.
    #[test]
    fn the_merge_base_is_kept_with_the_tree_or_not_at_all() {
        use crate::local::db::Commit;
        use crate::local::tree::{Kind as MountKind, Node as MountNode, ROOT as MOUNT_ROOT};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let node = Node {
            place: Place { parent: ROOT, name: "f".into() },
            kind: Kind::File,
            content: Some(ContentHash::of(b"x")),
            mode: 0o644,
            meta: None,
        };
        let mut file = MountNode::new(MountKind::File, MOUNT_ROOT, "f", 0o644, 0);
        file.ino = 2;
        let db = LocalDb::open(&path).unwrap();
        let change = SyncStateChange { synced: vec![(5, Some(&node))], ..Default::default() };
        let commit = Commit { nodes: vec![(2, Some(&file))], ..Default::default() };
        let failing = db.commit_with(&commit, false, &mut |db| {
            db.write_sync_change(&change)?;
            Err(crate::local::db::LocalDbError::Corrupt("a write failed".into()))
        });
        assert!(failing.is_err());
        let has_file = |db: &LocalDb| db.load_nodes().unwrap().iter().any(|n| n.ino == 2);
        assert!(!has_file(&db), "the tree's rows went back with the failed write");
        assert_eq!(db.load_sync_state().unwrap().synced.len(), 0);
        db.commit_with(&commit, false, &mut |db| db.write_sync_change(&change)).unwrap();
        drop(db);
        let db = LocalDb::open(&path).unwrap();
        assert!(has_file(&db));
        assert_eq!(db.load_sync_state().unwrap().synced.get(5), Some(&node));
    }

    /// A mount that kept the hub's rows by path (schema step 12) keeps its
    /// merge base and reads the hub's feed again from its start.
    #[test]
    fn rows_kept_by_path_go_and_the_merge_base_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            for step in &crate::local::db::STEPS[..12] {
                conn.execute_batch(step).unwrap();
            }
            conn.pragma_update(None, "user_version", 12).unwrap();
            let id = format!("{:032x}", 7);
            conn.execute_batch(&format!(
                "INSERT INTO synced_nodes (id, parent, name, kind, content, mode) VALUES ('{id}', '{}', 'd', 'dir', NULL, 493);
                 INSERT INTO hub_rows (path, node, version, deleted, kind, content, mode) VALUES ('d', '{id}', 5, 0, 'dir', NULL, 493);
                 INSERT INTO hub_cursor (one, cursor) VALUES (1, 50);",
                "0".repeat(32)
            ))
            .unwrap();
        }
        let db = LocalDb::open(&path).unwrap();
        let kept = db.load_sync_state().unwrap();
        assert_eq!(kept.synced.len(), 1, "the merge base stays");
        assert!(kept.view.tree().is_empty(), "the hub's rows are read again");
        assert_eq!(kept.view.cursor(), 0);
        assert!(db.synced_before().unwrap(), "it has synced before: it may start offline");
    }
}
