//! Row access for `entries`, `versions` and `sequence`. Callers hold a
//! transaction; this module only reads and writes rows, the rules live in
//! `tree.rs`. Every entry written is also appended to `versions`, here and
//! only here, so history can never miss a change.
use rusqlite::{params, Connection, OptionalExtension, Row};
use ssync_common::api::{EntriesPage, Entry, EntryKind, VersionInfo};
use ssync_common::{NodeId, RelPath};

const COLUMNS: &str =
    "path, kind, version, deleted, hash, size, mode, mtime_ns, device, moved_to, origin, owner, xattrs, node";
/// How many columns `COLUMNS` names: a query's next column is at this index.
const N_COLUMNS: usize = 14;

fn bad(i: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, what.to_string().into())
}

fn parse_path(i: usize, s: String) -> rusqlite::Result<RelPath> {
    RelPath::parse(&s).map_err(|_| bad(i, "stored path is invalid"))
}

/// Decodes the `COLUMNS` starting at column `o`.
fn from_row_at(r: &Row<'_>, o: usize) -> rusqlite::Result<Entry> {
    let kind: String = r.get(o + 1)?;
    let hash: Option<String> = r.get(o + 4)?;
    Ok(Entry {
        path: parse_path(o, r.get(o)?)?,
        kind: EntryKind::parse(&kind).ok_or_else(|| bad(o + 1, "stored kind is unknown"))?,
        version: r.get::<_, i64>(o + 2)? as u64,
        deleted: r.get::<_, i64>(o + 3)? != 0,
        hash: hash.map(|h| h.parse().map_err(|_| bad(o + 4, "stored hash is invalid"))).transpose()?,
        size: r.get::<_, i64>(o + 5)? as u64,
        mode: r.get::<_, i64>(o + 6)? as u32,
        mtime_ns: r.get(o + 7)?,
        device: r.get(o + 8)?,
        moved_to: r.get::<_, Option<String>>(o + 9)?.map(|p| parse_path(o + 9, p)).transpose()?,
        origin: r.get(o + 10)?,
        owner: r
            .get::<_, Option<String>>(o + 11)?
            .map(|j| serde_json::from_str(&j).map_err(|_| bad(o + 11, "stored owner is invalid")))
            .transpose()?,
        xattrs: r
            .get::<_, Option<String>>(o + 12)?
            .map(|j| serde_json::from_str(&j).map_err(|_| bad(o + 12, "stored xattrs are invalid")))
            .transpose()?,
        node: r
            .get::<_, Option<String>>(o + 13)?
            .map(|n| n.parse().map_err(|_| bad(o + 13, "stored node id is invalid")))
            .transpose()?,
    })
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<Entry> {
    from_row_at(r, 0)
}

pub fn get(conn: &Connection, path: &RelPath) -> rusqlite::Result<Option<Entry>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM entries WHERE path = ?1"))?
        .query_row([path.as_str()], from_row)
        .optional()
}

/// Takes the next number of the change sequence.
pub fn next_seq(conn: &Connection) -> rusqlite::Result<u64> {
    conn.prepare_cached("UPDATE sequence SET last = last + 1 WHERE id = 1 RETURNING last")?
        .query_row([], |r| r.get::<_, i64>(0))
        .map(|v| v as u64)
}

pub fn last_seq(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT last FROM sequence WHERE id = 1", [], |r| r.get::<_, i64>(0)).map(|v| v as u64)
}

fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// Inserts or replaces the row for `e.path`, records it in the history, and
/// updates the digests of its folders.
pub fn put(conn: &Connection, e: &Entry) -> rusqlite::Result<()> {
    let kind = e.kind.as_str();
    let values = params![
        e.path.as_str(),
        kind,
        e.version as i64,
        e.deleted as i64,
        e.hash.map(|h| h.to_hex()),
        e.size as i64,
        e.mode as i64,
        e.mtime_ns,
        e.device,
        e.moved_to.as_ref().map(|p| p.as_str()),
        e.origin,
        e.owner.as_ref().map(|o| serde_json::to_string(o).expect("an owner serializes")),
        e.xattrs.as_ref().map(|x| serde_json::to_string(x).expect("xattrs serialize")),
        e.node.expect("tree.rs gives every entry its node").to_string(),
    ];
    let old = get(conn, &e.path)?;
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO entries ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    ))?
    .execute(values)?;
    super::digests::on_change(conn, old.as_ref(), e)?;
    // The history row is a copy of the row just written, stamped with the time.
    conn.prepare_cached(&format!(
        "INSERT INTO versions ({COLUMNS}, at_ns) SELECT {COLUMNS}, ?2 FROM entries WHERE path = ?1"
    ))?
    .execute(params![e.path.as_str(), now_ns()])?;
    Ok(())
}

/// Live entries strictly below `dir`, in path order (parents before children).
pub fn live_descendants(conn: &Connection, dir: &RelPath) -> rusqlite::Result<Vec<Entry>> {
    // '/' is 0x2F and '0' is 0x30: the range covers exactly "dir/...".
    let (lo, hi) = (format!("{dir}/"), format!("{dir}0"));
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM entries WHERE path >= ?1 AND path < ?2 AND deleted = 0 ORDER BY path"
    ))?;
    let rows = st.query_map([lo, hi], from_row)?;
    rows.collect()
}

/// Live entries directly in `dir` (None: the root), in path order.
pub fn live_children(conn: &Connection, dir: Option<&RelPath>) -> rusqlite::Result<Vec<Entry>> {
    let rows = match dir {
        None => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM entries WHERE deleted = 0 AND instr(path, '/') = 0 ORDER BY path"
            ))?
            .query_map([], from_row)?
            .collect(),
        Some(d) => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM entries WHERE path > ?1 AND path < ?2 AND deleted = 0
                 AND instr(substr(path, length(?1) + 1), '/') = 0 ORDER BY path"
            ))?
            .query_map([format!("{d}/"), format!("{d}0")], from_row)?
            .collect(),
    };
    rows
}

pub fn has_live_children(conn: &Connection, dir: &RelPath) -> rusqlite::Result<bool> {
    let (lo, hi) = (format!("{dir}/"), format!("{dir}0"));
    conn.prepare_cached("SELECT EXISTS(SELECT 1 FROM entries WHERE path >= ?1 AND path < ?2 AND deleted = 0)")?
        .query_row([lo, hi], |r| r.get(0))
}

/// Entries changed after `since`, oldest first, at most `limit`.
pub fn changed_since(conn: &Connection, since: u64, limit: u32) -> rusqlite::Result<Vec<Entry>> {
    let mut st =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM entries WHERE version > ?1 ORDER BY version LIMIT ?2"))?;
    let rows = st.query_map(params![since as i64, limit as i64], from_row)?;
    rows.collect()
}

/// A page of the change feed after `since`, with the cursor a reader is at
/// once it has folded it: the last row's version when the page is full,
/// else the hub's latest change (read in the same transaction), which may lie
/// past every row left in `entries` when rows were lost outside the feed.
pub fn feed_page(conn: &Connection, since: u64, limit: u32) -> rusqlite::Result<EntriesPage> {
    let entries = changed_since(conn, since, limit)?;
    let cursor = match entries.last() {
        Some(e) if entries.len() as u32 == limit => e.version,
        _ => last_seq(conn)?,
    };
    Ok(EntriesPage { cursor, entries })
}

pub fn all_live(conn: &Connection) -> rusqlite::Result<Vec<Entry>> {
    let mut st = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM entries WHERE deleted = 0 ORDER BY path"))?;
    let rows = st.query_map([], from_row)?;
    rows.collect()
}

/// The versions a path's history holds: every state kept at this path, and
/// every state of the node that is (or was last) there, under its earlier
/// names too. (`?1` is the path.)
const HISTORY: &str = "path = ?1 OR node = (SELECT node FROM entries WHERE path = ?1)";

/// The kept versions of `path`, newest first: what was at this path, and what
/// the node there was called before (a file keeps its history through renames).
pub fn versions_of(conn: &Connection, path: &RelPath) -> rusqlite::Result<Vec<VersionInfo>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, at_ns FROM versions WHERE {HISTORY} ORDER BY version DESC, id DESC"
    ))?;
    let rows = st.query_map([path.as_str()], |r| Ok(VersionInfo { entry: from_row(r)?, at_ns: r.get(N_COLUMNS)? }))?;
    rows.collect()
}

/// Version `version` from `path`'s history (see `versions_of`).
pub fn version_of(conn: &Connection, path: &RelPath, version: u64) -> rusqlite::Result<Option<Entry>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM versions WHERE ({HISTORY}) AND version = ?2 ORDER BY id DESC LIMIT 1"),
        params![path.as_str(), version as i64],
        from_row,
    )
    .optional()
}

/// Whether a live entry other than the one at `path` is node `node`.
pub fn node_live_elsewhere(conn: &Connection, node: NodeId, path: &RelPath) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM entries WHERE node = ?1 AND deleted = 0 AND path != ?2")?
        .exists(params![node.to_string(), path.as_str()])
}

/// For `dir` and every path below it: its newest state committed at or before `at_ns`.
pub fn tree_at(conn: &Connection, dir: &RelPath, at_ns: i64) -> rusqlite::Result<Vec<Entry>> {
    let (lo, hi) = (format!("{dir}/"), format!("{dir}0"));
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM versions v
         WHERE (path = ?1 OR (path >= ?2 AND path < ?3)) AND at_ns <= ?4
           AND id = (SELECT MAX(id) FROM versions w WHERE w.path = v.path AND w.at_ns <= ?4)
         ORDER BY path"
    ))?;
    let rows = st.query_map(params![dir.as_str(), lo, hi, at_ns], from_row)?;
    rows.collect()
}

/// Every path `dir` or below it that has an entry now (live or not).
pub fn entries_within(conn: &Connection, dir: &RelPath) -> rusqlite::Result<Vec<Entry>> {
    let (lo, hi) = (format!("{dir}/"), format!("{dir}0"));
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM entries WHERE path = ?1 OR (path >= ?2 AND path < ?3) ORDER BY path"
    ))?;
    let rows = st.query_map(params![dir.as_str(), lo, hi], from_row)?;
    rows.collect()
}

/// Drops history rows beyond the newest `keep_versions` of each path and rows
/// committed before `cutoff_ns`; the newest row of a path always stays.
pub fn prune_versions(conn: &Connection, keep_versions: u32, cutoff_ns: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM versions WHERE id IN (
            SELECT id FROM (
                SELECT id, at_ns, ROW_NUMBER() OVER (PARTITION BY path ORDER BY version DESC, id DESC) AS rn
                FROM versions)
            WHERE rn > 1 AND (rn > ?1 OR at_ns < ?2))",
        params![keep_versions.max(1) as i64, cutoff_ns],
    )
}

/// Every content hash a live entry or a kept version names.
pub fn referenced_hashes(conn: &Connection) -> rusqlite::Result<std::collections::HashSet<ssync_common::ContentHash>> {
    let mut st = conn.prepare(
        "SELECT hash FROM entries WHERE hash IS NOT NULL UNION SELECT hash FROM versions WHERE hash IS NOT NULL",
    )?;
    let rows = st.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = std::collections::HashSet::new();
    for h in rows {
        out.insert(h?.parse().map_err(|_| bad(0, "stored hash is invalid"))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_column_count_matches_the_column_list() {
        assert_eq!(super::COLUMNS.split(',').count(), super::N_COLUMNS);
    }
}
