//! Which shares a token may use, and how (`grants`): read-only or
//! read-write. An admin token (`tokens.admin`) may use every share
//! read-write without a grant.
use super::ShareId;
use rusqlite::{params, Connection, OptionalExtension};

/// A token's access to one share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub share: ShareId,
    pub writable: bool,
}

/// Token `token`'s access to the share named `share`; None when it has no
/// grant there, or there is no such share (the two are not told apart, so a
/// share's name cannot be probed).
pub fn access(conn: &Connection, token: &str, share: &str) -> rusqlite::Result<Option<Access>> {
    conn.prepare_cached(
        "SELECT s.id, coalesce(t.admin, 0) OR coalesce(g.writable, 0)
         FROM shares s JOIN tokens t ON t.name = ?1
         LEFT JOIN grants g ON g.share = s.id AND g.token = t.name
         WHERE s.name = ?2 AND (t.admin OR g.token IS NOT NULL)",
    )?
    .query_row(params![token, share], |r| Ok(Access { share: ShareId(r.get(0)?), writable: r.get(1)? }))
    .optional()
}

/// Every share token `token` may use, by name, and whether it may write there.
pub fn shares_of(conn: &Connection, token: &str) -> rusqlite::Result<Vec<(String, bool)>> {
    let mut st = conn.prepare_cached(
        "SELECT s.name, t.admin OR coalesce(g.writable, 0)
         FROM shares s JOIN tokens t ON t.name = ?1
         LEFT JOIN grants g ON g.share = s.id AND g.token = t.name
         WHERE t.admin OR g.token IS NOT NULL
         ORDER BY s.name",
    )?;
    let rows = st.query_map(params![token], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Gives token `token` access to share `share` (read-write if `writable`),
/// replacing the access it had there.
pub fn set(conn: &Connection, token: &str, share: ShareId, writable: bool) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO grants (token, share, writable) VALUES (?1, ?2, ?3)
         ON CONFLICT (token, share) DO UPDATE SET writable = excluded.writable",
        params![token, share, writable],
    )?;
    Ok(())
}

/// Takes token `token`'s grant on share `share` away; false if it had none.
pub fn remove(conn: &Connection, token: &str, share: ShareId) -> rusqlite::Result<bool> {
    Ok(conn.execute("DELETE FROM grants WHERE token = ?1 AND share = ?2", params![token, share])? == 1)
}

/// Every grant, as (token, share name, writable), by token and share.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<(String, String, bool)>> {
    let mut st = conn.prepare(
        "SELECT g.token, s.name, g.writable FROM grants g JOIN shares s ON s.id = g.share ORDER BY g.token, s.name",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::tokens;

    #[test]
    fn a_token_reaches_only_its_granted_shares_and_an_admin_reaches_all() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrate_for_tests(&mut conn);
        conn.execute("INSERT INTO shares (id, name, created_ns) VALUES (2, 'photos', 0), (3, 'taxes', 0)", []).unwrap();
        tokens::add(&conn, "admin", &blake3::hash(b"a"), 1, true).unwrap();
        tokens::add(&conn, "laptop", &blake3::hash(b"b"), 2, false).unwrap();
        set(&conn, "laptop", ShareId(1), true).unwrap();
        set(&conn, "laptop", ShareId(2), true).unwrap();
        set(&conn, "laptop", ShareId(2), false).unwrap();
        set(&conn, "laptop", ShareId(3), false).unwrap();
        assert!(remove(&conn, "laptop", ShareId(3)).unwrap());
        assert!(!remove(&conn, "laptop", ShareId(3)).unwrap(), "no grant left to remove");

        let rw = |id| Some(Access { share: ShareId(id), writable: true });
        assert_eq!(access(&conn, "laptop", "default").unwrap(), rw(1));
        assert_eq!(access(&conn, "laptop", "photos").unwrap(), Some(Access { share: ShareId(2), writable: false }));
        assert_eq!(access(&conn, "laptop", "taxes").unwrap(), None, "no grant");
        assert_eq!(access(&conn, "laptop", "nosuch").unwrap(), None, "no share: the same answer");
        assert_eq!(access(&conn, "nobody", "default").unwrap(), None, "no token");
        assert_eq!(access(&conn, "admin", "taxes").unwrap(), rw(3));
        assert_eq!(access(&conn, "admin", "nosuch").unwrap(), None);

        assert_eq!(shares_of(&conn, "laptop").unwrap(), [("default".into(), true), ("photos".into(), false)]);
        let all: Vec<(String, bool)> = ["default", "photos", "taxes"].map(|n| (n.into(), true)).into();
        assert_eq!(shares_of(&conn, "admin").unwrap(), all);
        assert!(shares_of(&conn, "nobody").unwrap().is_empty());
        let listed = list(&conn).unwrap();
        assert_eq!(listed, [("laptop".into(), "default".into(), true), ("laptop".into(), "photos".into(), false)]);
    }
}
