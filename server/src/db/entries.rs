//! Row access for `entries` and `sequence`. Callers hold a transaction; this
//! module only reads and writes rows, the rules live in `tree.rs`.
use rusqlite::{params, Connection, OptionalExtension, Row};
use ssync_common::api::{Entry, EntryKind};
use ssync_common::RelPath;

const COLUMNS: &str = "path, kind, version, deleted, hash, size, mode, mtime_ns";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Entry> {
    let path: String = r.get(0)?;
    let kind: String = r.get(1)?;
    let hash: Option<String> = r.get(4)?;
    let bad = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, what.to_string().into())
    };
    Ok(Entry {
        path: RelPath::parse(&path).map_err(|_| bad(0, "stored path is invalid"))?,
        kind: if kind == "dir" { EntryKind::Dir } else { EntryKind::File },
        version: r.get::<_, i64>(2)? as u64,
        deleted: r.get::<_, i64>(3)? != 0,
        hash: hash.map(|h| h.parse().map_err(|_| bad(4, "stored hash is invalid"))).transpose()?,
        size: r.get::<_, i64>(5)? as u64,
        mode: r.get::<_, i64>(6)? as u32,
        mtime_ns: r.get(7)?,
    })
}

pub fn get(conn: &Connection, path: &RelPath) -> rusqlite::Result<Option<Entry>> {
    conn.query_row(&format!("SELECT {COLUMNS} FROM entries WHERE path = ?1"), [path.as_str()], from_row).optional()
}

/// Takes the next number of the change sequence.
pub fn next_seq(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("UPDATE sequence SET last = last + 1 WHERE id = 1 RETURNING last", [], |r| r.get::<_, i64>(0))
        .map(|v| v as u64)
}

pub fn last_seq(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT last FROM sequence WHERE id = 1", [], |r| r.get::<_, i64>(0)).map(|v| v as u64)
}

/// Inserts or replaces the row for `e.path`.
pub fn put(conn: &Connection, e: &Entry) -> rusqlite::Result<()> {
    conn.execute(
        &format!("INSERT OR REPLACE INTO entries ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        params![
            e.path.as_str(),
            match e.kind {
                EntryKind::File => "file",
                EntryKind::Dir => "dir",
            },
            e.version as i64,
            e.deleted as i64,
            e.hash.map(|h| h.to_hex()),
            e.size as i64,
            e.mode as i64,
            e.mtime_ns
        ],
    )?;
    Ok(())
}

/// Live entries strictly below `dir`, in path order (parents before children).
pub fn live_descendants(conn: &Connection, dir: &RelPath) -> rusqlite::Result<Vec<Entry>> {
    // '/' is 0x2F and '0' is 0x30: the range covers exactly "dir/...".
    let lo = format!("{dir}/");
    let hi = format!("{dir}0");
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM entries WHERE path >= ?1 AND path < ?2 AND deleted = 0 ORDER BY path"
    ))?;
    let rows = st.query_map([lo, hi], from_row)?;
    rows.collect()
}

pub fn has_live_children(conn: &Connection, dir: &RelPath) -> rusqlite::Result<bool> {
    let lo = format!("{dir}/");
    let hi = format!("{dir}0");
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM entries WHERE path >= ?1 AND path < ?2 AND deleted = 0)",
        [lo, hi],
        |r| r.get(0),
    )
}

/// Entries changed after `since`, oldest first, at most `limit`.
pub fn changed_since(conn: &Connection, since: u64, limit: u32) -> rusqlite::Result<Vec<Entry>> {
    let mut st =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM entries WHERE version > ?1 ORDER BY version LIMIT ?2"))?;
    let rows = st.query_map(params![since as i64, limit as i64], from_row)?;
    rows.collect()
}

pub fn all_live(conn: &Connection) -> rusqlite::Result<Vec<Entry>> {
    let mut st = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM entries WHERE deleted = 0 ORDER BY path"))?;
    let rows = st.query_map([], from_row)?;
    rows.collect()
}
