//! The mount's own SQLite database in the cache dir: the one place that owns
//! its schema. It holds every node (the local tree, with the hub version each
//! is based on and whether it holds unsent writes), what the sync engine
//! keeps (`sync_state`), and small settings. The queue of operations that
//! the path-keyed engine kept is only read, once, when such a cache is
//! adopted (`old_queue`).
use crate::local::tree::{Kind, Node, Owner, Special, ROOT};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum LocalDbError {
    #[error("local database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("local database schema version {0} is newer than this ssync-mount; upgrade it or use another --cache-dir")]
    TooNew(i64),
    #[error("local database holds a row it cannot read: {0}")]
    Corrupt(String),
    #[error("cannot create the local database {0}: {1}")]
    Create(std::path::PathBuf, std::io::Error),
}

pub(crate) const STEPS: &[&str] = &[
    "CREATE TABLE nodes (
        ino INTEGER PRIMARY KEY AUTOINCREMENT, -- the inode number; never reused
        parent INTEGER NOT NULL,               -- 0: unlinked, kept while queued ops need it
        name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('file', 'dir')),
        size INTEGER NOT NULL,
        mode INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        base_version INTEGER NOT NULL,         -- hub version this node derives from; 0 = never on the hub
        hash TEXT,                             -- content hash at base_version
        dirty INTEGER NOT NULL DEFAULT 0       -- cache file holds writes the hub has not accepted
     ) STRICT;
     INSERT INTO nodes (ino, parent, name, kind, size, mode, mtime_ns, base_version)
        VALUES (1, 0, '', 'dir', 0, 493, 0, 0);
     CREATE TABLE ops (                        -- the upload queue, in the order things happened
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        ino INTEGER NOT NULL,
        ino2 INTEGER NOT NULL DEFAULT 0,
        path TEXT NOT NULL,
        path2 TEXT
     ) STRICT;
     CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;",
    // 2: uploads that send a frozen copy of closed content (snaps/<id>)
    "ALTER TABLE ops ADD COLUMN snapshot INTEGER NOT NULL DEFAULT 0;",
    // 3: the chunks of cached files (see chunk_index.rs), so downloads reuse local bytes
    "CREATE TABLE file_chunks (
        ino INTEGER PRIMARY KEY,
        id TEXT NOT NULL,           -- the file id these chunks make up
        chunks BLOB NOT NULL        -- the encoded chunk list
     ) STRICT;
     CREATE TABLE chunk_at (
        hash BLOB NOT NULL,
        ino INTEGER NOT NULL,
        offset INTEGER NOT NULL,
        len INTEGER NOT NULL
     ) STRICT;
     CREATE INDEX chunk_at_hash ON chunk_at (hash);
     CREATE INDEX chunk_at_ino ON chunk_at (ino);",
    // 4: symlinks (content: the target). SQLite cannot widen a CHECK in place:
    // the table is rebuilt, keeping AUTOINCREMENT's high-water mark so inode
    // numbers are still never reused.
    "CREATE TABLE nodes_v4 (
        ino INTEGER PRIMARY KEY AUTOINCREMENT,
        parent INTEGER NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('file', 'dir', 'symlink')),
        size INTEGER NOT NULL,
        mode INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        base_version INTEGER NOT NULL,
        hash TEXT,
        dirty INTEGER NOT NULL DEFAULT 0
     ) STRICT;
     INSERT INTO nodes_v4 (ino, parent, name, kind, size, mode, mtime_ns, base_version, hash, dirty)
        SELECT ino, parent, name, kind, size, mode, mtime_ns, base_version, hash, dirty FROM nodes;
     UPDATE sqlite_sequence SET seq = (SELECT seq FROM sqlite_sequence WHERE name = 'nodes')
        WHERE name = 'nodes_v4';
     DROP TABLE nodes;
     ALTER TABLE nodes_v4 RENAME TO nodes;",
    // 5: the queue sends each file's latest state; frozen copies of earlier
    // closes (snapshot uploads) are gone. Such ops left by an older version
    // were superseded by the file's later state (or its deletion).
    "DELETE FROM ops WHERE snapshot = 1;
     ALTER TABLE ops DROP COLUMN snapshot;",
    // 6: POSIX attributes kept on this mount (see SEMANTICS.md): owner and
    // group (NULL: the mount's user), atime (NULL: the mtime), ctime,
    // special files (FIFOs, sockets, devices), which are never sent, and
    // hard-link groups (0: none).
    "ALTER TABLE nodes ADD COLUMN uid INTEGER;
     ALTER TABLE nodes ADD COLUMN gid INTEGER;
     ALTER TABLE nodes ADD COLUMN atime_ns INTEGER;
     ALTER TABLE nodes ADD COLUMN ctime_ns INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE nodes ADD COLUMN special_format INTEGER;
     ALTER TABLE nodes ADD COLUMN rdev INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE nodes ADD COLUMN link_group INTEGER NOT NULL DEFAULT 0;",
    // 7: extended attributes, every namespace (JSON of `xattrs::Xattrs`; NULL: none).
    "ALTER TABLE nodes ADD COLUMN xattrs TEXT;",
    // 8: files on demand. `cached`: the byte ranges of the content the cache
    // file holds (pairs of little-endian u64s; NULL: all of it). `pinned`:
    // kept local (`ssync pin`), and so is everything below a pinned folder.
    "ALTER TABLE nodes ADD COLUMN cached BLOB;
     ALTER TABLE nodes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;",
    // 9: the attribute name `user.` (nothing after the namespace), which
    // hubs passed on before names were checked, is dropped.
    r#"UPDATE nodes SET xattrs = json_remove(xattrs, '$."user."') WHERE xattrs IS NOT NULL;"#,
    // 10: the sync engine on stable ids (#26, docs/sync-engine.md): Synced,
    // the merge base of each node; the hub's newest row of each path as this
    // mount read them (its Remote tree is derived from them) and the feed
    // cursor they reach; and operations sent to the hub whose outcome is not
    // recorded yet, confirmed from the feed after a crash. Ids are 32 hex
    // digits (the root: 32 zeros), content ids 64.
    "CREATE TABLE synced_nodes (
        id TEXT PRIMARY KEY,
        parent TEXT NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('file', 'dir', 'symlink')),
        content TEXT,
        mode INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE hub_rows (
        path TEXT PRIMARY KEY,
        node TEXT NOT NULL,
        version INTEGER NOT NULL,
        deleted INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('file', 'dir', 'symlink')),
        content TEXT,
        mode INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE hub_cursor (one INTEGER PRIMARY KEY CHECK (one = 1), cursor INTEGER NOT NULL);
     CREATE TABLE sent_ops (seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL);",
    // 11: each node's id (32 hex digits; NULL: not known yet, see
    // `tree::Node::id`), and the size and modification time of the hub's
    // rows, which a file brought down takes.
    "ALTER TABLE nodes ADD COLUMN node_id TEXT;
     ALTER TABLE hub_rows ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE hub_rows ADD COLUMN mtime_ns INTEGER NOT NULL DEFAULT 0;",
    // 12: owner and user extended attributes of Synced's nodes and of the
    // hub's rows (JSON of `canopy::Meta`; NULL: neither).
    "ALTER TABLE synced_nodes ADD COLUMN meta TEXT;
     ALTER TABLE hub_rows ADD COLUMN meta TEXT;",
    // 13: the hub keys its rows by node (its schema step 14): so does this
    // mount's picture of it, each row with its folder's node and its name.
    // The rows kept by path go, and the feed is read again from its start
    // (the hub's rows, not contents: Synced and the files stay as they are).
    "DROP TABLE hub_rows;
     CREATE TABLE hub_rows (
        node TEXT PRIMARY KEY,
        parent TEXT NOT NULL,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        deleted INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('file', 'dir', 'symlink')),
        content TEXT,
        mode INTEGER NOT NULL,
        size INTEGER NOT NULL DEFAULT 0,
        mtime_ns INTEGER NOT NULL DEFAULT 0,
        meta TEXT
     ) STRICT;
     DELETE FROM hub_cursor;",
];

mod old_queue;
pub use old_queue::{OldOp, OldOpKind};

pub struct LocalDb {
    /// Also used by the sync engine's keeper (`sync::keeper`), whose tables
    /// (steps 10 to 12) this file's schema makes.
    pub(crate) conn: Connection,
}

/// The POSIX columns of a node row (migration 6).
struct Posix {
    uid: Option<u32>,
    gid: Option<u32>,
    atime_ns: Option<i64>,
    ctime_ns: i64,
    special_format: Option<u32>,
    rdev: u32,
    group: u64,
    /// Migration 7.
    xattrs: Option<String>,
    /// Migration 8.
    cached: Option<Vec<u8>>,
    pinned: bool,
    /// Migration 11.
    node_id: Option<String>,
}

const NODE_COLUMNS: &str = "ino, parent, name, kind, size, mode, mtime_ns, base_version, hash, dirty, uid, gid, \
     atime_ns, ctime_ns, special_format, rdev, link_group, xattrs, cached, pinned, node_id";

impl LocalDb {
    pub fn open(path: &Path) -> Result<LocalDb, LocalDbError> {
        // Created 0600 before SQLite opens it: its -wal and -shm files take the same mode.
        ssync_common::private::precreate(path).map_err(|e| LocalDbError::Create(path.into(), e))?;
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL in WAL mode survives a killed process, which is the crash that matters here.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if current > STEPS.len() as i64 {
            return Err(LocalDbError::TooNew(current));
        }
        for (i, step) in STEPS.iter().enumerate().skip(current as usize) {
            tx.execute_batch(step)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        tx.commit()?;
        Ok(LocalDb { conn })
    }

    pub fn load_nodes(&self) -> Result<Vec<Node>, LocalDbError> {
        let mut st = self.conn.prepare(&format!("SELECT {NODE_COLUMNS} FROM nodes"))?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, i64>(9)?,
                Posix {
                    uid: r.get(10)?,
                    gid: r.get(11)?,
                    atime_ns: r.get(12)?,
                    ctime_ns: r.get(13)?,
                    special_format: r.get(14)?,
                    rdev: r.get(15)?,
                    group: r.get(16)?,
                    xattrs: r.get(17)?,
                    cached: r.get(18)?,
                    pinned: r.get::<_, i64>(19)? != 0,
                    node_id: r.get(20)?,
                },
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (ino, parent, name, kind, size, mode, mtime_ns, base, hash, dirty, posix) = row?;
            let kind =
                Kind::parse(&kind).ok_or_else(|| LocalDbError::Corrupt(format!("kind '{kind}' of node {ino}")))?;
            let hash = match hash {
                Some(h) => Some(h.parse().map_err(|_| LocalDbError::Corrupt(format!("hash of node {ino}")))?),
                None => None,
            };
            let xattrs = match posix.xattrs {
                Some(j) => Some(Box::new(
                    serde_json::from_str(&j)
                        .map_err(|e| LocalDbError::Corrupt(format!("xattrs of node {ino}: {e}")))?,
                )),
                None => None,
            };
            let cached = crate::local::residency::Residency::decode(posix.cached.as_deref())
                .map_err(|e| LocalDbError::Corrupt(format!("cached ranges of node {ino}: {e}")))?;
            let id = match posix.node_id {
                Some(t) => Some(t.parse().map_err(|_| LocalDbError::Corrupt(format!("node id of node {ino}")))?),
                None => None,
            };
            out.push(Node {
                ino: ino as u64,
                id,
                xattrs,
                cached,
                pinned: posix.pinned,
                size: size as u64,
                base_version: base as u64,
                hash,
                dirty: dirty != 0,
                owner: posix.uid.zip(posix.gid).map(|(uid, gid)| Owner { uid, gid }),
                atime_ns: posix.atime_ns,
                ctime_ns: if posix.ctime_ns == 0 { mtime_ns } else { posix.ctime_ns },
                special: posix.special_format.map(|format| Special { format, rdev: posix.rdev }),
                group: posix.group,
                ..Node::new(kind, parent as u64, &name, mode as u32, mtime_ns)
            });
        }
        Ok(out)
    }

    /// Writes `n`'s row, adding it if it is new.
    pub fn save_node(&self, n: &Node) -> Result<(), LocalDbError> {
        self.conn
            .prepare_cached(
                "INSERT INTO nodes (ino, parent, name, kind, size, mode, mtime_ns, base_version, hash, dirty,
                    uid, gid, atime_ns, ctime_ns, special_format, rdev, link_group, xattrs, cached, pinned, node_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)
                 ON CONFLICT (ino) DO UPDATE SET parent = ?2, name = ?3, kind = ?4, size = ?5, mode = ?6,
                 mtime_ns = ?7, base_version = ?8, hash = ?9, dirty = ?10, uid = ?11, gid = ?12,
                 atime_ns = ?13, ctime_ns = ?14, special_format = ?15, rdev = ?16, link_group = ?17,
                 xattrs = ?18, cached = ?19, pinned = ?20, node_id = ?21",
            )?
            .execute(params![
                n.ino as i64,
                if n.ino == ROOT { 0 } else { n.parent as i64 },
                n.name,
                n.kind.as_str(),
                n.size as i64,
                n.mode as i64,
                n.mtime_ns,
                n.base_version as i64,
                n.hash.map(|h| h.to_hex()),
                n.dirty as i64,
                n.owner.map(|o| o.uid),
                n.owner.map(|o| o.gid),
                n.atime_ns,
                n.ctime_ns,
                n.special.map(|s| s.format),
                n.special.map_or(0, |s| s.rdev),
                n.group as i64,
                n.xattrs.as_ref().map(|x| serde_json::to_string(x).expect("xattrs serialize")),
                n.cached.encode(n.size),
                n.pinned as i64,
                n.id.map(|i| i.to_string()),
            ])?;
        Ok(())
    }

    /// The highest inode number handed out so far (AUTOINCREMENT's mark,
    /// which `reserve_inos` moves ahead of the numbers in use).
    pub fn ino_mark(&self) -> Result<u64, LocalDbError> {
        self.seq("nodes")
    }

    /// Marks inode numbers up to `upto` as handed out, so that numbers given
    /// to nodes a crash kept from being recorded are never given again.
    pub fn reserve_inos(&self, upto: u64) -> Result<(), LocalDbError> {
        self.conn.execute(
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'nodes', 0
               WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'nodes')",
            [],
        )?;
        self.conn.execute("UPDATE sqlite_sequence SET seq = max(seq, ?1) WHERE name = 'nodes'", [upto as i64])?;
        Ok(())
    }

    /// The highest op id used so far.
    fn seq(&self, table: &str) -> Result<u64, LocalDbError> {
        let seq: Option<i64> =
            self.conn.query_row("SELECT seq FROM sqlite_sequence WHERE name = ?1", [table], |r| r.get(0)).optional()?;
        Ok(seq.unwrap_or(0) as u64)
    }

    /// Forgets a node, and the chunk index rows of its cache file.
    pub fn delete_node(&self, ino: u64) -> Result<(), LocalDbError> {
        for sql in [
            "DELETE FROM nodes WHERE ino = ?1",
            "DELETE FROM chunk_at WHERE ino = ?1",
            "DELETE FROM file_chunks WHERE ino = ?1",
        ] {
            self.conn.prepare_cached(sql)?.execute([ino as i64])?;
        }
        Ok(())
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>, LocalDbError> {
        Ok(self.conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), LocalDbError> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)")?
            .execute([key, value])?;
        Ok(())
    }

    /// Writes one commit of the write-behind journal in one transaction;
    /// `durable` also syncs it to disk (for fsync), not only to the OS.
    pub fn commit(&self, c: &Commit<'_>, durable: bool) -> Result<(), LocalDbError> {
        self.commit_with(c, durable, &mut |_| Ok(()))
    }

    /// `commit`, with `also`'s writes in the same transaction: what must be
    /// kept together with the tree, never ahead of it (the sync engine's
    /// merge base, see `sync::mount_keeper`).
    pub fn commit_with(&self, c: &Commit<'_>, durable: bool, also: AlsoWrite<'_>) -> Result<(), LocalDbError> {
        if durable {
            self.conn.pragma_update(None, "synchronous", "FULL")?;
        }
        let written = self.atomically(|db| {
            for (ino, node) in &c.nodes {
                match node {
                    Some(n) => db.save_node(n)?,
                    None => db.delete_node(*ino)?,
                }
            }
            if c.clear_old_queue {
                db.clear_old_queue()?;
            }
            c.settings.iter().try_for_each(|(k, v)| db.set_setting(k, v))?;
            also(db)
        });
        if durable {
            self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        written
    }

    /// Runs `f` in one transaction.
    pub(crate) fn atomically<R, E: From<LocalDbError>>(&self, f: impl FnOnce(&Self) -> Result<R, E>) -> Result<R, E> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(LocalDbError::from)?;
        match f(self) {
            Ok(r) => {
                self.conn.execute_batch("COMMIT").map_err(LocalDbError::from)?;
                Ok(r)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

/// Writes a commit carries beside the tree's rows (`LocalDb::commit_with`).
pub type AlsoWrite<'a> = &'a mut dyn FnMut(&LocalDb) -> Result<(), LocalDbError>;

/// The rows of one write-behind commit (see journal.rs), as they are now.
#[derive(Default)]
pub struct Commit<'a> {
    /// Each node to write, or to delete (None).
    pub nodes: Vec<(u64, Option<&'a Node>)>,
    /// The path-keyed engine's queue was adopted: it goes.
    pub clear_old_queue: bool,
    pub settings: Vec<(&'static str, &'a str)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_and_settings_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let db = LocalDb::open(&path).unwrap();
            assert_eq!(db.ino_mark().unwrap(), 1, "the root is 1");
            let mut n = Node::new(Kind::File, ROOT, "f.txt", 0o644, 7);
            n.ino = 2;
            n.dirty = true;
            n.base_version = 9;
            n.hash = Some(ssync_common::ContentHash::of(b"x"));
            n.owner = Some(Owner { uid: 1001, gid: 1002 });
            n.atime_ns = Some(3);
            n.ctime_ns = 11;
            let mut fifo = Node::new(Kind::File, ROOT, "pipe", 0o600, 7);
            fifo.ino = 3;
            fifo.special = Some(Special { format: libc::S_IFIFO, rdev: 0 });
            db.save_node(&fifo).unwrap();
            let c = Commit { nodes: vec![(2, Some(&n))], settings: vec![("cursor", "42")], ..Commit::default() };
            db.reserve_inos(100).unwrap();
            db.commit(&c, true).unwrap();
        }
        let db = LocalDb::open(&path).unwrap();
        let nodes = db.load_nodes().unwrap();
        let f = nodes.iter().find(|n| n.name == "f.txt").unwrap();
        assert!(f.dirty && f.base_version == 9 && f.hash.is_some());
        assert_eq!(
            (f.owner, f.atime_ns, f.ctime_ns, f.special),
            (Some(Owner { uid: 1001, gid: 1002 }), Some(3), 11, None)
        );
        let fifo = nodes.iter().find(|n| n.name == "pipe").unwrap();
        assert_eq!((fifo.owner, fifo.atime_ns, fifo.ctime_ns), (None, None, 7), "unset: the mount's user, the mtime");
        assert_eq!(fifo.special, Some(Special { format: libc::S_IFIFO, rdev: 0 }));
        assert_eq!(db.setting("cursor").unwrap().as_deref(), Some("42"));
        assert_eq!(db.ino_mark().unwrap(), 100, "numbers reserved, even unused, are never handed out again");
        db.commit(&Commit { nodes: vec![(2, None)], ..Commit::default() }, false).unwrap();
        assert!(db.load_nodes().unwrap().iter().all(|n| n.name != "f.txt"));
        assert_eq!(db.ino_mark().unwrap(), 100, "deleting keeps the mark");
    }

    #[test]
    fn the_symlink_step_keeps_nodes_and_never_reuses_inode_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = Connection::open(&path).unwrap();
            for step in &STEPS[..3] {
                conn.execute_batch(step).unwrap();
            }
            conn.pragma_update(None, "user_version", 3).unwrap();
            conn.execute_batch(
                "INSERT INTO nodes (parent, name, kind, size, mode, mtime_ns, base_version, hash, dirty)
                 VALUES (1, 'keep', 'file', 3, 420, 7, 5, NULL, 1), (1, 'gone', 'dir', 0, 493, 0, 0, NULL, 0);
                 DELETE FROM nodes WHERE name = 'gone';",
            )
            .unwrap();
            let refused = conn.execute_batch(
                "INSERT INTO nodes (parent, name, kind, size, mode, mtime_ns, base_version) VALUES (1, 'l', 'symlink', 1, 511, 0, 0)",
            );
            assert!(refused.is_err(), "before the step, the kind is refused");
        }
        let db = LocalDb::open(&path).unwrap();
        let nodes = db.load_nodes().unwrap();
        let keep = nodes.iter().find(|n| n.name == "keep").unwrap();
        assert_eq!((keep.ino, keep.kind, keep.size, keep.base_version, keep.dirty), (2, Kind::File, 3, 5, true));
        assert_eq!(nodes.len(), 2, "the root and 'keep'");
        assert_eq!(db.ino_mark().unwrap(), 3, "3 was used before the step; it is not used again");
        let mut link = Node::new(Kind::Symlink, ROOT, "l", 0o777, 0);
        link.ino = 4;
        db.save_node(&link).unwrap();
        assert!(db.load_nodes().unwrap().iter().any(|n| n.name == "l" && n.kind == Kind::Symlink));
    }

    #[test]
    fn the_latest_state_step_drops_snapshot_uploads_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = Connection::open(&path).unwrap();
            for step in &STEPS[..4] {
                conn.execute_batch(step).unwrap();
            }
            conn.pragma_update(None, "user_version", 4).unwrap();
            conn.execute_batch(
                "INSERT INTO ops (kind, ino, path, snapshot) VALUES ('upload', 2, 'f', 1), ('upload', 2, 'f', 0),
                 ('mkdir', 3, 'd', 0);",
            )
            .unwrap();
        }
        let db = LocalDb::open(&path).unwrap();
        let ops = db.load_old_queue().unwrap();
        let kept: Vec<(u64, String)> = ops.iter().map(|o| (o.ino, o.path.to_string())).collect();
        assert_eq!(kept, vec![(2, "f".into()), (3, "d".into())], "the frozen upload is gone, in order otherwise");
    }

    #[test]
    fn a_failed_commit_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = LocalDb::open(&dir.path().join("s.db")).unwrap();
        db.conn.execute_batch("DROP TABLE ops").unwrap(); // so clearing the old queue fails
        let c = Commit { clear_old_queue: true, settings: vec![("k", "v")], ..Commit::default() };
        assert!(db.commit(&c, false).is_err());
        assert_eq!(db.setting("k").unwrap(), None);
    }
}
