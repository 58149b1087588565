//! Numbered schema steps, applied in order inside one IMMEDIATE transaction and
//! recorded in `PRAGMA user_version`. A database newer than the binary is refused.
use super::DbError;
use rusqlite::{Connection, TransactionBehavior};

const STEPS: &[&str] = &[
    // 1: the versioned tree and its sequence.
    "CREATE TABLE entries (
        path TEXT PRIMARY KEY,           -- RelPath, '/'-separated, validated before insert
        kind TEXT NOT NULL CHECK (kind IN ('file', 'dir')),
        version INTEGER NOT NULL UNIQUE, -- seq of the change that last touched this row
        deleted INTEGER NOT NULL DEFAULT 0, -- 1: a tombstone, kept so the feed reports deletes
        hash TEXT,                       -- BLAKE3 hex of the content (files only)
        size INTEGER NOT NULL DEFAULT 0,
        mode INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL
     ) STRICT;
     -- the one monotonically increasing change sequence
     CREATE TABLE sequence (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL) STRICT;
     INSERT INTO sequence (id, last) VALUES (1, 0);",
    // 2: who made each change, where renamed entries went, and the history of every path.
    "ALTER TABLE entries ADD COLUMN device TEXT;
     ALTER TABLE entries ADD COLUMN moved_to TEXT;   -- on a tombstone left by a rename
     CREATE TABLE versions (                          -- every state each path has had
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        path TEXT NOT NULL,
        version INTEGER NOT NULL,                     -- the change that produced this state
        kind TEXT NOT NULL,
        deleted INTEGER NOT NULL,
        hash TEXT,
        size INTEGER NOT NULL,
        mode INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        device TEXT,
        moved_to TEXT,
        at_ns INTEGER NOT NULL                        -- when the hub committed it
     ) STRICT;
     CREATE INDEX versions_by_path ON versions (path, version);
     CREATE INDEX versions_by_time ON versions (at_ns);",
    // 3: files as chunk lists; `entries.hash` becomes the id of a list (see
    // ssync_common::chunks). Older data is converted at start (`upgrade.rs`).
    "CREATE TABLE manifests (
        id TEXT PRIMARY KEY,          -- BLAKE3 hex of the encoded list
        size INTEGER NOT NULL,
        chunks BLOB NOT NULL          -- 36 bytes per chunk: hash, then length u32 LE
     ) STRICT;",
    // 4: chunks of small files, committed with the version that names them
    "CREATE TABLE small_chunks (
        hash TEXT PRIMARY KEY,        -- BLAKE3 hex of data
        data BLOB NOT NULL
     ) STRICT;",
    // 5: larger files' chunks in pack files, one per upload request (see
    // store.rs); chunk files under objects/ are moved into packs at start.
    "CREATE TABLE pack_chunks (
        hash BLOB PRIMARY KEY,        -- BLAKE3 of the chunk's bytes, 32 bytes
        pack INTEGER NOT NULL,        -- packs/<pack as 16 hex digits>.pack
        offset INTEGER NOT NULL,
        len INTEGER NOT NULL,
        touched INTEGER NOT NULL      -- unix seconds: stored, or last reported present
     ) STRICT;
     CREATE INDEX pack_chunks_by_pack ON pack_chunks (pack);",
    // 6: who may use the hub: one token per device, only its hash kept.
    "CREATE TABLE tokens (
        name TEXT PRIMARY KEY,
        hash BLOB NOT NULL UNIQUE,    -- BLAKE3 of the token
        created_ns INTEGER NOT NULL
     ) STRICT;",
    // 7: symlinks, kept as data (their content is the target). SQLite cannot
    // widen a CHECK in place, so the table is rebuilt with the same rows.
    "CREATE TABLE entries_v7 (
        path TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('file', 'dir', 'symlink')),
        version INTEGER NOT NULL UNIQUE,
        deleted INTEGER NOT NULL DEFAULT 0,
        hash TEXT,                       -- the content's id (files and symlinks)
        size INTEGER NOT NULL DEFAULT 0,
        mode INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        device TEXT,
        moved_to TEXT
     ) STRICT;
     INSERT INTO entries_v7 (path, kind, version, deleted, hash, size, mode, mtime_ns, device, moved_to)
        SELECT path, kind, version, deleted, hash, size, mode, mtime_ns, device, moved_to FROM entries;
     DROP TABLE entries;
     ALTER TABLE entries_v7 RENAME TO entries;",
    // 8: which mount made each change (its random id), so a mount can tell
    // its own changes from others' when they come back through the feed.
    "ALTER TABLE entries ADD COLUMN origin TEXT;
     ALTER TABLE versions ADD COLUMN origin TEXT;",
    // 9: per-folder digests of the live tree (see digests.rs), filled from
    // the entries right after this step.
    "CREATE TABLE dir_digests (
        dir TEXT PRIMARY KEY,         -- '' for the root
        direct BLOB NOT NULL,         -- XOR of the entries directly in it
        subtree BLOB NOT NULL         -- XOR of every entry below it
     ) STRICT;",
    // 10: owner and group (JSON of `api::Owner`), recorded like the mode.
    "ALTER TABLE entries ADD COLUMN owner TEXT;
     ALTER TABLE versions ADD COLUMN owner TEXT;",
    // 11: `user.` extended attributes (JSON of `xattrs::Xattrs`), recorded like the mode.
    "ALTER TABLE entries ADD COLUMN xattrs TEXT;
     ALTER TABLE versions ADD COLUMN xattrs TEXT;",
    // 12: the attribute name `user.` (nothing after the namespace), which
    // hubs took before names were checked and which Linux refuses, is dropped.
    r#"UPDATE entries SET xattrs = json_remove(xattrs, '$."user."') WHERE xattrs IS NOT NULL;
     UPDATE versions SET xattrs = json_remove(xattrs, '$."user."') WHERE xattrs IS NOT NULL;"#,
    // 13: stable node ids (docs/sync-engine.md): an entry keeps its node
    // through renames and moves, and its versions carry it, so its history
    // follows it under every name. Entries made before get a new node each,
    // and their kept versions the node of the entry now at their path.
    "ALTER TABLE entries ADD COLUMN node TEXT;       -- 32 hex digits (ssync_common::NodeId)
     ALTER TABLE versions ADD COLUMN node TEXT;
     UPDATE entries SET node = lower(hex(randomblob(16)));
     UPDATE versions SET node = (SELECT e.node FROM entries e WHERE e.path = versions.path);
     CREATE INDEX versions_by_node ON versions (node, version);
     CREATE INDEX entries_by_node ON entries (node);",
    // 14: the tree keyed by node (docs/sync-engine.md): one row per node,
    // with the node of its folder (`parent`, 32 zeros for the root) and its
    // path now. A rename rewrites one row's version; what is below a renamed
    // folder keeps its rows (their paths follow in place). Of a node's rows
    // under path keys (a renamed entry left a tombstone at each old path)
    // the live one is kept, else its newest tombstone (a second live one,
    // which no hub made, would become a node of its own, not be dropped);
    // `parent` is filled in by `entries::fill_parents` right after this step.
    "CREATE TABLE entries_v14 (
        node TEXT PRIMARY KEY,
        parent TEXT NOT NULL,
        path TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('file', 'dir', 'symlink')),
        version INTEGER NOT NULL UNIQUE,
        deleted INTEGER NOT NULL DEFAULT 0,
        hash TEXT,
        size INTEGER NOT NULL DEFAULT 0,
        mode INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        device TEXT,
        moved_to TEXT,
        origin TEXT,
        owner TEXT,
        xattrs TEXT
     ) STRICT;
     INSERT INTO entries_v14 (node, parent, path, kind, version, deleted, hash, size, mode, mtime_ns, device,
                              moved_to, origin, owner, xattrs)
        SELECT CASE WHEN rn = 1 THEN node ELSE lower(hex(randomblob(16))) END, '', path, kind, version, deleted,
               hash, size, mode, mtime_ns, device, moved_to, origin, owner, xattrs
        FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY node ORDER BY deleted, version DESC) AS rn
              FROM (SELECT coalesce(node, lower(hex(randomblob(16)))) AS node, path, kind, version, deleted, hash,
                           size, mode, mtime_ns, device, moved_to, origin, owner, xattrs FROM entries))
        WHERE rn = 1 OR deleted = 0;
     DROP TABLE entries;
     ALTER TABLE entries_v14 RENAME TO entries;
     CREATE UNIQUE INDEX entries_live_path ON entries (path) WHERE deleted = 0;
     CREATE INDEX entries_by_path ON entries (path, version);
     ALTER TABLE versions ADD COLUMN parent TEXT;",
    // 15: shares (README, "Shares"): several trees on one hub, each with its
    // own change sequence, and tokens granted some of them. The tree there
    // was becomes share 1, `default`, with the sequence it had; every token
    // gets read-write on it, and the first token made (the one made at first
    // start) is the admin. Rows of `entries`, `versions` and `dir_digests`
    // carry their share; a version number and a live path are unique within
    // a share. Contents stay one store (see `share_chunks`, later).
    "CREATE TABLE shares (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        last_seq INTEGER NOT NULL DEFAULT 0,   -- the share's change sequence
        keep_days INTEGER,                     -- NULL: the hub's --keep-days
        keep_versions INTEGER,                 -- NULL: the hub's --keep-versions
        created_ns INTEGER NOT NULL
     ) STRICT;
     INSERT INTO shares (id, name, last_seq, created_ns)
        SELECT 1, 'default', last, CAST(unixepoch('subsec') * 1e9 AS INTEGER) FROM sequence;
     DROP TABLE sequence;
     ALTER TABLE tokens ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
     UPDATE tokens SET admin = 1 WHERE name = (SELECT name FROM tokens ORDER BY created_ns, name LIMIT 1);
     CREATE TABLE grants (
        token TEXT NOT NULL REFERENCES tokens (name) ON DELETE CASCADE,
        share INTEGER NOT NULL REFERENCES shares (id) ON DELETE CASCADE,
        writable INTEGER NOT NULL,             -- 1: read-write, 0: read-only
        PRIMARY KEY (token, share)
     ) STRICT;
     INSERT INTO grants (token, share, writable) SELECT name, 1, 1 FROM tokens;
     CREATE TABLE entries_v15 (
        share INTEGER NOT NULL REFERENCES shares (id),
        node TEXT PRIMARY KEY,
        parent TEXT NOT NULL,
        path TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('file', 'dir', 'symlink')),
        version INTEGER NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        hash TEXT,
        size INTEGER NOT NULL DEFAULT 0,
        mode INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        device TEXT,
        moved_to TEXT,
        origin TEXT,
        owner TEXT,
        xattrs TEXT,
        UNIQUE (share, version)
     ) STRICT;
     INSERT INTO entries_v15 (share, node, parent, path, kind, version, deleted, hash, size, mode, mtime_ns, device,
                              moved_to, origin, owner, xattrs)
        SELECT 1, node, parent, path, kind, version, deleted, hash, size, mode, mtime_ns, device, moved_to, origin,
               owner, xattrs FROM entries;
     DROP TABLE entries;
     ALTER TABLE entries_v15 RENAME TO entries;
     CREATE UNIQUE INDEX entries_live_path ON entries (share, path) WHERE deleted = 0;
     CREATE INDEX entries_by_path ON entries (share, path, version);
     ALTER TABLE versions ADD COLUMN share INTEGER NOT NULL DEFAULT 1;
     DROP INDEX versions_by_path;
     CREATE INDEX versions_by_path ON versions (share, path, version);
     CREATE TABLE dir_digests_v15 (
        share INTEGER NOT NULL,
        dir TEXT NOT NULL,
        direct BLOB NOT NULL,
        subtree BLOB NOT NULL,
        PRIMARY KEY (share, dir)
     ) STRICT;
     INSERT INTO dir_digests_v15 (share, dir, direct, subtree) SELECT 1, dir, direct, subtree FROM dir_digests;
     DROP TABLE dir_digests;
     ALTER TABLE dir_digests_v15 RENAME TO dir_digests;",
    // 16: which chunks each share holds (`share_chunks.rs`): chunk requests
    // through a share answer from its rows alone, so deduplication across
    // shares tells nobody what another share holds. Everything stored so far
    // is the default share's (the one tree there was). Contents are looked
    // up by id within a share, so by hash. A node id is unique within its
    // share (ids are chosen by clients: one of another share's is not a
    // conflict, and must not fail the insert).
    "CREATE TABLE entries_v16 (
        share INTEGER NOT NULL REFERENCES shares (id),
        node TEXT NOT NULL,
        parent TEXT NOT NULL,
        path TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('file', 'dir', 'symlink')),
        version INTEGER NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        hash TEXT,
        size INTEGER NOT NULL DEFAULT 0,
        mode INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        device TEXT,
        moved_to TEXT,
        origin TEXT,
        owner TEXT,
        xattrs TEXT,
        PRIMARY KEY (share, node),
        UNIQUE (share, version)
     ) STRICT;
     INSERT INTO entries_v16 SELECT share, node, parent, path, kind, version, deleted, hash, size, mode, mtime_ns,
                                    device, moved_to, origin, owner, xattrs FROM entries;
     DROP TABLE entries;
     ALTER TABLE entries_v16 RENAME TO entries;
     CREATE UNIQUE INDEX entries_live_path ON entries (share, path) WHERE deleted = 0;
     CREATE INDEX entries_by_path ON entries (share, path, version);
     CREATE TABLE share_chunks (
        share INTEGER NOT NULL,
        hash BLOB NOT NULL,                    -- BLAKE3 of the chunk's bytes, 32 bytes
        PRIMARY KEY (share, hash)
     ) STRICT, WITHOUT ROWID;
     INSERT OR IGNORE INTO share_chunks (share, hash) SELECT 1, hash FROM pack_chunks;
     INSERT OR IGNORE INTO share_chunks (share, hash) SELECT 1, unhex(hash) FROM small_chunks;
     CREATE INDEX entries_by_hash ON entries (hash, share) WHERE hash IS NOT NULL;
     CREATE INDEX versions_by_hash ON versions (hash, share) WHERE hash IS NOT NULL;",
];

/// The step that adds folder digests; a database older than it gets them
/// computed from the entries once every step has run.
const DIGESTS_STEP: usize = 9;
/// The step that keys entries by node; a database older than it gets each
/// entry's folder node filled in once every step has run.
const NODES_STEP: usize = 14;

pub fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let supported = STEPS.len() as i64;
    if current > supported {
        return Err(DbError::TooNew { found: current, supported });
    }
    for (i, step) in STEPS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tracing::info!(step = i + 1, "applied database migration");
    }
    // Filled by code, which reads rows as the last step shapes them: after every step.
    if (current as usize) < NODES_STEP {
        super::entries::fill_parents(&tx)?;
    }
    // Digests are derived from the entries: a database without them (older
    // than them, or restored without them) has them computed.
    let none: bool = tx.query_row("SELECT NOT EXISTS (SELECT 1 FROM dir_digests)", [], |r| r.get(0))?;
    if (current as usize) < DIGESTS_STEP || none {
        super::digests::rebuild_all(&tx)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, STEPS.len() as i64);
        conn.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(migrate(&mut conn), Err(DbError::TooNew { found: 99, .. })));
    }

    #[test]
    fn the_symlink_step_keeps_every_entry() {
        let mut conn = Connection::open_in_memory().unwrap();
        for step in &STEPS[..6] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 6).unwrap();
        conn.execute_batch(
            "INSERT INTO entries (path, kind, version, deleted, hash, size, mode, mtime_ns, device, moved_to)
             VALUES ('d', 'dir', 1, 0, NULL, 0, 493, 5, 'laptop', NULL),
                    ('d/f', 'file', 2, 1, 'ab', 3, 420, 6, NULL, 'g')",
        )
        .unwrap();
        let bad = conn.execute(
            "INSERT INTO entries (path, kind, version, mode, mtime_ns) VALUES ('l', 'symlink', 3, 511, 0)",
            [],
        );
        assert!(bad.is_err(), "before the step, the kind is refused");
        migrate(&mut conn).unwrap();
        let row = "path || ' ' || kind || ' ' || version || ' ' || deleted || ' ' || ifnull(device, '-') || ' ' || ifnull(moved_to, '-')";
        let rows: Vec<String> = conn
            .prepare(&format!("SELECT {row} FROM entries ORDER BY path"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, ["d dir 1 0 laptop -", "d/f file 2 1 - g"]);
        conn.execute(
            "INSERT INTO entries (share, node, parent, path, kind, version, mode, mtime_ns) VALUES (1, '1', '', 'l', 'symlink', 3, 511, 0)",
            [],
        )
        .unwrap();
        let dup = conn.execute(
            "INSERT INTO entries (share, node, parent, path, kind, version, mode, mtime_ns) VALUES (1, '2', '', 'm', 'file', 3, 420, 0)",
            [],
        );
        assert!(dup.is_err(), "versions stay unique");
    }

    #[test]
    fn the_empty_xattr_name_is_dropped_and_the_rest_kept() {
        let mut conn = Connection::open_in_memory().unwrap();
        for step in &STEPS[..11] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 11).unwrap();
        conn.execute_batch(
            r#"INSERT INTO entries (path, kind, version, mode, mtime_ns, xattrs)
               VALUES ('f', 'file', 1, 420, 0, '{"user.":"eA==","user.a":"eQ=="}'), ('g', 'file', 2, 420, 0, NULL);
               INSERT INTO versions (path, version, kind, deleted, size, mode, mtime_ns, at_ns, xattrs)
               VALUES ('f', 1, 'file', 0, 0, 420, 0, 0, '{"user.":"eA=="}')"#,
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let get = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, Option<String>>(0)).unwrap();
        assert_eq!(get("SELECT xattrs FROM entries WHERE path = 'f'").as_deref(), Some(r#"{"user.a":"eQ=="}"#));
        assert_eq!(get("SELECT xattrs FROM entries WHERE path = 'g'"), None);
        assert_eq!(get("SELECT xattrs FROM versions WHERE path = 'f'").as_deref(), Some("{}"));
    }

    /// A hub of the release before node ids (schema step 11) keeps every
    /// entry and version, and each path's versions take the node of the
    /// entry there.
    #[test]
    fn node_ids_are_given_to_old_entries_and_their_versions() {
        let mut conn = Connection::open_in_memory().unwrap();
        for step in &STEPS[..11] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 11).unwrap();
        conn.execute_batch(
            "INSERT INTO entries (path, kind, version, deleted, mode, mtime_ns) VALUES
                ('a', 'file', 3, 0, 420, 0), ('b', 'file', 4, 1, 420, 0), ('d', 'dir', 1, 0, 493, 0);
             INSERT INTO versions (path, version, kind, deleted, size, mode, mtime_ns, at_ns) VALUES
                ('a', 2, 'file', 0, 0, 420, 0, 0), ('a', 3, 'file', 0, 0, 420, 0, 0),
                ('b', 4, 'file', 1, 0, 420, 0, 0), ('d', 1, 'dir', 0, 0, 493, 0, 0)",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(count("SELECT count(*) FROM versions"), 4, "every version is kept");
        assert_eq!(count("SELECT count(DISTINCT node) FROM entries WHERE length(node) = 32"), 3);
        assert_eq!(
            count("SELECT count(*) FROM versions v JOIN entries e ON e.path = v.path AND e.node = v.node"),
            4,
            "each version carries the node of its path's entry"
        );
    }

    /// A hub keyed by path (schema step 13) keeps one row per node: the
    /// live one (a rename left tombstones of the node at its old paths), and
    /// every row names its folder's node.
    #[test]
    fn entries_keyed_by_path_become_one_row_per_node_with_its_folder() {
        let mut conn = Connection::open_in_memory().unwrap();
        for step in &STEPS[..13] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 13).unwrap();
        let (d, x, gone) = ("d".repeat(32), "a".repeat(32), "b".repeat(32));
        conn.execute_batch(&format!(
            "INSERT INTO entries (path, kind, version, deleted, mode, mtime_ns, node, moved_to) VALUES
                ('e', 'dir', 4, 0, 493, 0, '{d}', NULL), ('e/x', 'file', 5, 0, 420, 0, '{x}', NULL),
                ('d', 'dir', 7, 1, 493, 0, '{d}', 'e'), ('d/x', 'file', 6, 1, 420, 0, '{x}', 'e/x'),
                ('e/old', 'file', 8, 1, 420, 0, '{gone}', NULL);
             INSERT INTO versions (path, version, kind, deleted, size, mode, mtime_ns, at_ns, node) VALUES
                ('d/x', 2, 'file', 0, 0, 420, 0, 0, '{x}'), ('e/x', 5, 'file', 0, 0, 420, 0, 0, '{x}')"
        ))
        .unwrap();
        migrate(&mut conn).unwrap();
        let rows: Vec<String> = conn
            .prepare("SELECT path || ' ' || deleted || ' ' || (parent = node) || ' ' || parent FROM entries ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let root = "0".repeat(32);
        assert_eq!(rows, [format!("e 0 0 {root}"), format!("e/x 0 0 {d}"), format!("e/old 1 0 {d}")]);
        let kept: i64 =
            conn.query_row("SELECT count(*) FROM versions WHERE parent IS NOT NULL", [], |r| r.get(0)).unwrap();
        assert_eq!(kept, 2, "every version is kept, with its node's folder");
        let twice = conn.execute(
            &format!("INSERT INTO entries (share, node, parent, path, kind, version, mode, mtime_ns) VALUES (1, 'c', '{root}', 'e', 'file', 9, 420, 0)"),
            [],
        );
        assert!(twice.is_err(), "one live entry per path");
    }
    /// A hub of the release before shares (schema step 14) becomes share
    /// `default`: every entry, version and digest is in it, its sequence
    /// goes on from where it was, every token may read and write it, and the
    /// first token made is the admin.
    #[test]
    fn the_tree_before_shares_becomes_the_default_share() {
        let mut conn = Connection::open_in_memory().unwrap();
        for step in &STEPS[..14] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 14).unwrap();
        let (root, d) = ("0".repeat(32), "d".repeat(32));
        conn.execute_batch(&format!(
            "UPDATE sequence SET last = 7;
             INSERT INTO entries (node, parent, path, kind, version, deleted, mode, mtime_ns) VALUES
                ('{d}', '{root}', 'd', 'dir', 6, 0, 493, 0), ('{}', '{d}', 'd/f', 'file', 7, 0, 420, 0);
             INSERT INTO versions (path, version, kind, deleted, size, mode, mtime_ns, at_ns, node) VALUES
                ('d/f', 5, 'file', 0, 0, 420, 0, 0, 'x'), ('d/f', 7, 'file', 0, 0, 420, 0, 0, 'x');
             INSERT INTO dir_digests (dir, direct, subtree) VALUES ('', x'01', x'02');
             INSERT INTO tokens (name, hash, created_ns) VALUES ('laptop', x'02', 20), ('first', x'01', 10)",
            "f".repeat(32)
        ))
        .unwrap();
        migrate(&mut conn).unwrap();
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(count("SELECT count(*) FROM shares"), 1);
        assert_eq!(count("SELECT last_seq FROM shares WHERE id = 1 AND name = 'default'"), 7);
        assert_eq!(count("SELECT count(*) FROM entries WHERE share = 1"), 2);
        assert_eq!(count("SELECT count(*) FROM versions WHERE share = 1"), 2, "every version is kept, in default");
        assert_eq!(count("SELECT count(*) FROM dir_digests WHERE share = 1"), 1);
        assert_eq!(count("SELECT count(*) FROM grants WHERE share = 1 AND writable = 1"), 2);
        let admin: String = conn.query_row("SELECT name FROM tokens WHERE admin = 1", [], |r| r.get(0)).unwrap();
        assert_eq!(admin, "first");
        // A version number and a live path are unique within a share, not across shares.
        conn.execute("INSERT INTO shares (id, name, created_ns) VALUES (2, 'photos', 0)", []).unwrap();
        let insert = |share: i64, node: &str| {
            conn.execute(
                &format!(
                    "INSERT INTO entries (share, node, parent, path, kind, version, mode, mtime_ns)
                     VALUES ({share}, '{node}', '{root}', 'd', 'dir', 6, 493, 0)"
                ),
                [],
            )
        };
        insert(2, &"e".repeat(32)).unwrap();
        assert!(insert(1, &"a".repeat(32)).is_err(), "share 1 holds version 6 and a live 'd' already");
        // So is a node id (clients choose them).
        let node_of_1: String =
            conn.query_row("SELECT node FROM entries WHERE share = 1 LIMIT 1", [], |r| r.get(0)).unwrap();
        conn.execute("DELETE FROM entries WHERE share = 2", []).unwrap();
        insert(2, &node_of_1).expect("a node id of share 1 is free in share 2");
        let again = conn.execute(
            &format!(
                "INSERT INTO entries (share, node, parent, path, kind, version, mode, mtime_ns)
                 VALUES (2, '{node_of_1}', '{root}', 'other', 'dir', 7, 493, 0)"
            ),
            [],
        );
        assert!(again.is_err(), "but not twice in one share");
    }
}
