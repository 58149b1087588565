//! The shares a hub holds (docs/shares.md): each a tree of its own, with its
//! own change sequence and, optionally, its own retention.
use super::ShareId;
use rusqlite::{params, Connection, OptionalExtension};

/// A share and what it holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareInfo {
    pub name: String,
    /// Live entries (files, folders, symlinks).
    pub entries: u64,
    /// The size of its live files.
    pub bytes: u64,
    /// Its latest change.
    pub last_seq: u64,
    /// Its own retention, where it sets one (else the hub's).
    pub keep_days: Option<u32>,
    pub keep_versions: Option<u32>,
}

/// Every share, by name.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<ShareInfo>> {
    let mut st = conn.prepare(
        "SELECT s.name, s.last_seq, s.keep_days, s.keep_versions,
                (SELECT count(*) FROM entries e WHERE e.share = s.id AND e.deleted = 0),
                (SELECT coalesce(sum(e.size), 0) FROM entries e
                  WHERE e.share = s.id AND e.deleted = 0 AND e.kind = 'file')
         FROM shares s ORDER BY s.name",
    )?;
    let rows = st.query_map([], |r| {
        Ok(ShareInfo {
            name: r.get(0)?,
            last_seq: r.get::<_, i64>(1)? as u64,
            keep_days: r.get(2)?,
            keep_versions: r.get(3)?,
            entries: r.get::<_, i64>(4)? as u64,
            bytes: r.get::<_, i64>(5)? as u64,
        })
    })?;
    rows.collect()
}

/// The id of the share named `name`.
pub fn id_of(conn: &Connection, name: &str) -> rusqlite::Result<Option<ShareId>> {
    conn.prepare_cached("SELECT id FROM shares WHERE name = ?1")?
        .query_row([name], |r| r.get(0).map(ShareId))
        .optional()
}

/// Adds an empty share; None if the name is taken.
pub fn add(
    conn: &Connection,
    name: &str,
    keep_days: Option<u32>,
    keep_versions: Option<u32>,
    created_ns: i64,
) -> rusqlite::Result<Option<ShareId>> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO shares (name, keep_days, keep_versions, created_ns) VALUES (?1, ?2, ?3, ?4)",
        params![name, keep_days, keep_versions, created_ns],
    )?;
    match n {
        1 => Ok(Some(ShareId(conn.last_insert_rowid()))),
        _ => Ok(None),
    }
}

/// Removes share `id` with its tree, its history and its grants (its
/// chunks no other share names go at the next collection). Call it in a
/// transaction.
pub fn remove(conn: &Connection, id: ShareId) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM versions WHERE share = ?1", [id])?;
    conn.execute("DELETE FROM entries WHERE share = ?1", [id])?;
    conn.execute("DELETE FROM dir_digests WHERE share = ?1", [id])?;
    conn.execute("DELETE FROM grants WHERE share = ?1", [id])?;
    super::share_chunks::remove_share(conn, id)?;
    conn.execute("DELETE FROM shares WHERE id = ?1", [id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Scoped, ShareId};
    use crate::tree::tests::{conn, file};

    #[test]
    fn a_share_is_listed_with_its_live_entries_bytes_and_latest_change() {
        let db = conn();
        let c = Scoped::new(&db, ShareId::DEFAULT);
        file(&c, "d/a", 0, b"12345").unwrap();
        let b = file(&c, "b", 0, b"123").unwrap();
        crate::tree::delete(&c, &Default::default(), &b[0].path, b[0].version).unwrap();
        db.execute("INSERT INTO shares (id, name, keep_days, created_ns) VALUES (2, 'photos', 7, 0)", []).unwrap();
        let listed = list(&db).unwrap();
        let default = ShareInfo {
            name: "default".into(),
            entries: 2,
            bytes: 5,
            last_seq: 4,
            keep_days: None,
            keep_versions: None,
        };
        let photos = ShareInfo {
            name: "photos".into(),
            entries: 0,
            bytes: 0,
            last_seq: 0,
            keep_days: Some(7),
            keep_versions: None,
        };
        assert_eq!(listed, [default, photos]);
    }

    #[test]
    fn a_share_is_added_once_and_removed_with_its_tree_alone() {
        let db = conn();
        let photos = add(&db, "photos", Some(30), None, 0).unwrap().expect("a new name");
        assert_eq!(add(&db, "photos", None, None, 0).unwrap(), None, "names are unique");
        assert_eq!(id_of(&db, "photos").unwrap(), Some(photos));
        file(&Scoped::new(&db, photos), "a", 0, b"photo").unwrap();
        file(&Scoped::new(&db, ShareId::DEFAULT), "a", 0, b"kept").unwrap();
        remove(&db, photos).unwrap();
        assert_eq!(id_of(&db, "photos").unwrap(), None);
        let rows = |table: &str, share: ShareId| -> i64 {
            db.query_row(&format!("SELECT count(*) FROM {table} WHERE share = ?1"), [share], |r| r.get(0)).unwrap()
        };
        for table in ["entries", "versions", "dir_digests"] {
            assert_eq!(rows(table, photos), 0, "{table} of the share removed");
            assert!(rows(table, ShareId::DEFAULT) > 0, "{table} of the other share kept");
        }
    }
}
