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
        conn.execute("INSERT INTO grants (token, share, writable) VALUES ('laptop', 2, 0)", []).unwrap();

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
    }
}
