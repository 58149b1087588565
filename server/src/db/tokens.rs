//! Access tokens: a name per device and the BLAKE3 hash of its secret. The
//! secret itself is never stored.
use rusqlite::{params, Connection, OptionalExtension};

/// A token's name, when it was made, and whether it is an admin's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub name: String,
    pub created_ns: i64,
    pub admin: bool,
}

/// Adds a token; false if the name is taken. An admin token may use every
/// share; any other only those it is granted (`grants.rs`).
pub fn add(conn: &Connection, name: &str, hash: &blake3::Hash, created_ns: i64, admin: bool) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO tokens (name, hash, created_ns, admin) VALUES (?1, ?2, ?3, ?4)",
        params![name, hash.as_bytes().as_slice(), created_ns, admin],
    )?;
    Ok(n == 1)
}

/// Whether the token named is an admin's.
pub fn is_admin(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT admin FROM tokens WHERE name = ?1")?
        .query_row(params![name], |r| r.get::<_, bool>(0))
        .optional()
        .map(|a| a.unwrap_or(false))
}

/// Removes a token and its grants; false if there was none of that name.
/// In one transaction: a reader never sees the token without its grants
/// (a held long-poll would answer 403 instead of 401).
pub fn revoke(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    let tx = conn.unchecked_transaction()?;
    tx.execute("DELETE FROM grants WHERE token = ?1", params![name])?;
    let gone = tx.execute("DELETE FROM tokens WHERE name = ?1", params![name])? == 1;
    tx.commit()?;
    Ok(gone)
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<TokenInfo>> {
    let mut st = conn.prepare("SELECT name, created_ns, admin FROM tokens ORDER BY name")?;
    let rows = st.query_map([], |r| Ok(TokenInfo { name: r.get(0)?, created_ns: r.get(1)?, admin: r.get(2)? }))?;
    rows.collect()
}

pub fn count(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT count(*) FROM tokens", [], |r| r.get::<_, i64>(0)).map(|n| n as u64)
}

/// The name of the token whose hash is `hash`. Every stored hash is compared
/// (blake3's comparison takes the same time whatever the bytes), so the
/// answer's timing says nothing about how close a guess was.
pub fn find(conn: &Connection, hash: &blake3::Hash) -> rusqlite::Result<Option<String>> {
    let mut st = conn.prepare_cached("SELECT name, hash FROM tokens")?;
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
    let mut found = None;
    for row in rows {
        let (name, raw) = row?;
        let stored = <[u8; 32]>::try_from(raw.as_slice()).map(blake3::Hash::from_bytes).ok();
        if stored.is_some_and(|s| s == *hash) {
            found = Some(name);
        }
    }
    Ok(found)
}

/// Whether a token of this name still exists (checked during long-polls).
pub fn exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM tokens WHERE name = ?1")?
        .query_row(params![name], |_| Ok(()))
        .optional()
        .map(|o| o.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_added_once_and_revoking_takes_its_grants() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrate_for_tests(&mut conn);
        assert!(add(&conn, "admin", &blake3::hash(b"a"), 1, true).unwrap());
        assert!(add(&conn, "laptop", &blake3::hash(b"b"), 2, false).unwrap());
        assert!(!add(&conn, "laptop", &blake3::hash(b"c"), 3, false).unwrap(), "names are unique");
        assert!(is_admin(&conn, "admin").unwrap());
        assert!(!is_admin(&conn, "laptop").unwrap());
        assert_eq!(list(&conn).unwrap().iter().map(|t| t.admin).collect::<Vec<_>>(), [true, false]);
        assert_eq!(find(&conn, &blake3::hash(b"b")).unwrap().as_deref(), Some("laptop"));
        crate::db::grants::set(&conn, "laptop", crate::db::ShareId::DEFAULT, true).unwrap();
        assert!(revoke(&conn, "laptop").unwrap());
        assert!(crate::db::grants::list(&conn).unwrap().is_empty(), "a revoked token keeps no grant");
        assert!(!exists(&conn, "laptop").unwrap());
    }
}
