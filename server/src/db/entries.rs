//! Row access for `entries`, `versions` and a share's sequence. Callers
//! hold a transaction scoped to one share (`Scoped`), and every query here
//! names that share; this module only reads and writes rows, the rules live
//! in `tree.rs`. Every entry written is also appended to `versions`, here and
//! only here, so history can never miss a change.
//!
//! Entries are keyed by node (schema step 14): one row per node, with the
//! node of its folder and its path now. A live path is unique; a path may
//! also hold tombstones of nodes that were there before.
use super::scoped::{Scoped, ShareId};
use rusqlite::{named_params, params, Connection, OptionalExtension, Row};
use ssync_common::api::{EntriesPage, Entry, EntryKind, VersionInfo};
use ssync_common::{NodeId, RelPath};

const COLUMNS: &str =
    "path, kind, version, deleted, hash, size, mode, mtime_ns, device, moved_to, origin, owner, xattrs, node, parent";
/// How many columns `COLUMNS` names: a query's next column is at this index.
const N_COLUMNS: usize = 15;

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
        parent: r
            .get::<_, Option<String>>(o + 14)?
            .filter(|p| !p.is_empty())
            .map(|n| n.parse().map_err(|_| bad(o + 14, "stored parent id is invalid")))
            .transpose()?,
    })
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<Entry> {
    from_row_at(r, 0)
}

/// The entry at `path`: the live one, else the newest tombstone there.
pub fn get(conn: &Scoped, path: &RelPath) -> rusqlite::Result<Option<Entry>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM entries WHERE share = ?2 AND path = ?1 ORDER BY deleted, version DESC LIMIT 1"
    ))?
    .query_row(params![path.as_str(), conn.share], from_row)
    .optional()
}

/// Node `node`'s row (live or its tombstone).
pub fn get_node(conn: &Scoped, node: NodeId) -> rusqlite::Result<Option<Entry>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM entries WHERE node = ?1 AND share = ?2"))?
        .query_row(params![node.to_string(), conn.share], from_row)
        .optional()
}

/// The node of the folder `path` is in: the root's, or the node at the
/// folder's path (a tombstone's folder may be gone too: its newest row).
fn folder_node(conn: &Scoped, path: &RelPath) -> rusqlite::Result<NodeId> {
    match path.parent() {
        None => Ok(NodeId::ROOT),
        Some(dir) => Ok(get(conn, &dir)?.and_then(|d| d.node).unwrap_or(NodeId::ROOT)),
    }
}

/// Fills in every entry's folder node from the paths (the step that keys
/// entries by node, before shares: every row is the default share's).
pub fn fill_parents(conn: &Connection) -> rusqlite::Result<()> {
    let conn = &Scoped::new(conn, ShareId::DEFAULT);
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT node, path FROM entries")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut set = conn.prepare("UPDATE entries SET parent = ?2 WHERE node = ?1")?;
    for (node, path) in rows {
        let path = parse_path(0, path)?;
        set.execute(params![node, folder_node(conn, &path)?.to_string()])?;
    }
    conn.execute("UPDATE versions SET parent = (SELECT e.parent FROM entries e WHERE e.node = versions.node)", [])?;
    Ok(())
}

/// Takes the next number of the share's change sequence (a counter row
/// updated in the transaction: numbers are gapless and in commit order).
pub fn next_seq(conn: &Scoped) -> rusqlite::Result<u64> {
    conn.prepare_cached("UPDATE shares SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq")?
        .query_row([conn.share], |r| r.get::<_, i64>(0))
        .map(|v| v as u64)
}

/// The share's latest change.
pub fn last_seq(conn: &Scoped) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT last_seq FROM shares WHERE id = ?1")?
        .query_row([conn.share], |r| r.get::<_, i64>(0))
        .map(|v| v as u64)
}

fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// Inserts or replaces the row of node `e.node` (its folder's node taken
/// from its path), records it in the history, and updates the digests of
/// its folders. Returns the entry as stored.
pub fn put(conn: &Scoped, e: &Entry) -> rusqlite::Result<Entry> {
    Ok(write(conn, std::slice::from_ref(e))?.pop().expect("one row written"))
}

/// `put` of two nodes that trade places (a swap): neither path is ever
/// held by two live rows.
pub fn put_swapped(conn: &Scoped, a: &Entry, b: &Entry) -> rusqlite::Result<Vec<Entry>> {
    write(conn, &[a.clone(), b.clone()])
}

fn write(conn: &Scoped, rows: &[Entry]) -> rusqlite::Result<Vec<Entry>> {
    let nodes: Vec<NodeId> = rows.iter().map(|e| e.node.expect("tree.rs gives every entry its node")).collect();
    let mut old = Vec::new();
    for node in &nodes {
        old.extend(get_node(conn, *node)?);
    }
    if rows.len() > 1 {
        // Off their paths first (a leading '/' no relative path has).
        for node in &nodes {
            conn.prepare_cached(
                "UPDATE entries SET path = '/' || path WHERE node = ?1 AND share = ?2 AND deleted = 0",
            )?
            .execute(params![node.to_string(), conn.share])?;
        }
    }
    let mut stored = Vec::with_capacity(rows.len());
    for (e, node) in rows.iter().zip(&nodes) {
        let e = Entry { parent: Some(folder_node(conn, &e.path)?), ..e.clone() };
        let values = params![
            e.path.as_str(),
            e.kind.as_str(),
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
            node.to_string(),
            e.parent.expect("set above").to_string(),
            conn.share,
        ];
        conn.prepare_cached(&format!(
            "INSERT OR REPLACE INTO entries ({COLUMNS}, share)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
        ))?
        .execute(values)?;
        // The history row is a copy of the row just written, stamped with the time.
        conn.prepare_cached(&format!(
            "INSERT INTO versions ({COLUMNS}, share, at_ns)
             SELECT {COLUMNS}, share, ?2 FROM entries WHERE node = ?1 AND share = ?3"
        ))?
        .execute(params![node.to_string(), now_ns(), conn.share])?;
        stored.push(e);
    }
    super::digests::on_move(conn, &old, &stored)?;
    Ok(stored)
}

/// What is below folder `from` moves below `to` (the folder's own row is
/// the caller's): each live row keeps its version and folder node, and its
/// path follows; the digests of both places follow. No row is written to
/// the history or the feed: a rename is one change, to the folder.
pub fn move_below(conn: &Scoped, from: &RelPath, to: &RelPath) -> rusqlite::Result<usize> {
    // Nothing lives below `to` (a folder is moved only to a free name or
    // over an empty folder): the paths change in one pass, not staged.
    let below = paths_below(conn, from)?;
    if below.is_empty() {
        return Ok(0);
    }
    let (lo, hi) = (format!("{from}/"), format!("{from}0"));
    conn.prepare_cached(
        "UPDATE entries SET path = ?3 || substr(path, length(?1))
         WHERE share = ?4 AND deleted = 0 AND path >= ?1 AND path < ?2",
    )?
    .execute(params![lo, hi, to.as_str(), conn.share])?;
    super::digests::on_paths_moved(conn, &below, &rebased(&below, from, to))?;
    Ok(below.len())
}

/// `move_below` both ways at once: what is below `a` goes below `b`, and
/// what is below `b` below `a` (a swap of two folders).
pub fn swap_below(conn: &Scoped, a: &RelPath, b: &RelPath) -> rusqlite::Result<()> {
    let (mut below, mut moved) = stage_below(conn, a, b)?;
    let (below_b, moved_b) = stage_below(conn, b, a)?;
    below.extend(below_b);
    moved.extend(moved_b);
    finish_moves(conn)?;
    super::digests::on_paths_moved(conn, &below, &moved)
}

/// A live row's path and version: all the digests need of a row that moves.
type PathVersion = (String, u64);

/// Gives the live rows below `from` their paths below `to`, behind a
/// leading '/' (which no relative path has) until `finish_moves`, so that
/// no two live rows share a path in between. Returns the rows' paths and
/// versions as they were and as they will be.
fn stage_below(conn: &Scoped, from: &RelPath, to: &RelPath) -> rusqlite::Result<(Vec<PathVersion>, Vec<PathVersion>)> {
    let below = paths_below(conn, from)?;
    let (lo, hi) = (format!("{from}/"), format!("{from}0"));
    conn.prepare_cached(
        "UPDATE entries SET path = '/' || ?3 || substr(path, length(?1))
         WHERE share = ?4 AND deleted = 0 AND path >= ?1 AND path < ?2",
    )?
    .execute(params![lo, hi, to.as_str(), conn.share])?;
    let moved = rebased(&below, from, to);
    Ok((below, moved))
}

/// The paths and versions of the live rows below `from`. Only these are
/// read: parsing whole rows (owners and xattrs in JSON) was most of the
/// cost of a large folder's rename.
fn paths_below(conn: &Scoped, from: &RelPath) -> rusqlite::Result<Vec<PathVersion>> {
    let (lo, hi) = (format!("{from}/"), format!("{from}0"));
    conn.prepare_cached(
        "SELECT path, version FROM entries WHERE share = ?3 AND deleted = 0 AND path >= ?1 AND path < ?2",
    )?
    .query_map(params![lo, hi, conn.share], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?
    .collect()
}

/// `below` (paths below `from`) with their paths below `to`.
fn rebased(below: &[PathVersion], from: &RelPath, to: &RelPath) -> Vec<PathVersion> {
    let keep = from.as_str().len();
    below.iter().map(|(p, v)| (format!("{}{}", to.as_str(), &p[keep..]), *v)).collect()
}

fn finish_moves(conn: &Scoped) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE entries SET path = substr(path, 2) WHERE share = ?1 AND deleted = 0 AND path >= '/' AND path < '0'",
    )?
    .execute([conn.share])?;
    Ok(())
}

/// The length in bytes of the longest live path strictly below `dir`.
pub fn longest_path_below(conn: &Scoped, dir: &RelPath) -> rusqlite::Result<Option<usize>> {
    let (lo, hi) = (format!("{dir}/"), format!("{dir}0"));
    conn.prepare_cached(
        "SELECT max(length(CAST(path AS BLOB))) FROM entries
         WHERE share = ?3 AND deleted = 0 AND path >= ?1 AND path < ?2",
    )?
    .query_row(params![lo, hi, conn.share], |r| r.get::<_, Option<i64>>(0))
    .map(|n| n.map(|n| n as usize))
}

/// Live entries strictly below `dir`, in path order (parents before children).
pub fn live_descendants(conn: &Scoped, dir: &RelPath) -> rusqlite::Result<Vec<Entry>> {
    // '/' is 0x2F and '0' is 0x30: the range covers exactly "dir/...".
    let (lo, hi) = (format!("{dir}/"), format!("{dir}0"));
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM entries WHERE share = ?3 AND path >= ?1 AND path < ?2 AND deleted = 0 ORDER BY path"
    ))?;
    let rows = st.query_map(params![lo, hi, conn.share], from_row)?;
    rows.collect()
}

/// Live entries directly in `dir` (None: the root), in path order.
pub fn live_children(conn: &Scoped, dir: Option<&RelPath>) -> rusqlite::Result<Vec<Entry>> {
    let rows = match dir {
        None => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM entries WHERE share = ?1 AND deleted = 0 AND instr(path, '/') = 0 ORDER BY path"
            ))?
            .query_map([conn.share], from_row)?
            .collect(),
        Some(d) => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM entries WHERE share = ?3 AND path > ?1 AND path < ?2 AND deleted = 0
                 AND instr(substr(path, length(?1) + 1), '/') = 0 ORDER BY path"
            ))?
            .query_map(params![format!("{d}/"), format!("{d}0"), conn.share], from_row)?
            .collect(),
    };
    rows
}

pub fn has_live_children(conn: &Scoped, dir: &RelPath) -> rusqlite::Result<bool> {
    let (lo, hi) = (format!("{dir}/"), format!("{dir}0"));
    conn.prepare_cached(
        "SELECT EXISTS(SELECT 1 FROM entries WHERE share = ?3 AND path >= ?1 AND path < ?2 AND deleted = 0)",
    )?
    .query_row(params![lo, hi, conn.share], |r| r.get(0))
}

/// Entries changed after `since`, oldest first, at most `limit`.
pub fn changed_since(conn: &Scoped, since: u64, limit: u32) -> rusqlite::Result<Vec<Entry>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM entries WHERE share = ?3 AND version > ?1 ORDER BY version LIMIT ?2"
    ))?;
    let rows = st.query_map(params![since as i64, limit as i64, conn.share], from_row)?;
    rows.collect()
}

/// A page of the change feed after `since`, with the cursor a reader is at
/// once it has folded it: the last row's version when the page is full,
/// else the hub's latest change (read in the same transaction), which may lie
/// past every row left in `entries` when rows were lost outside the feed.
///
/// The feed never shows a node before its folder: a row holds its node's
/// newest state, so a folder changed after a node was made in it (moved,
/// chmodded) has a row later than the node's. Such a folder's row (and
/// its folders', as far up as needed) comes before the node's too, in the
/// same page; it comes again at its own place (the same state: nothing to
/// fold twice).
pub fn feed_page(conn: &Scoped, since: u64, limit: u32) -> rusqlite::Result<EntriesPage> {
    let rows = changed_since(conn, since, limit)?;
    let cursor = match rows.last() {
        Some(e) if rows.len() as u32 == limit => e.version,
        _ => last_seq(conn)?,
    };
    let mut entries = Vec::with_capacity(rows.len());
    let mut shown: std::collections::HashSet<NodeId> = std::collections::HashSet::new();
    for e in rows {
        if !e.deleted {
            let mut folders = Vec::new();
            let mut up = e.parent.unwrap_or(NodeId::ROOT);
            while up != NodeId::ROOT && !shown.contains(&up) {
                match get_node(conn, up)? {
                    Some(f) if f.version > e.version => {
                        up = f.parent.unwrap_or(NodeId::ROOT);
                        folders.push(f);
                    }
                    _ => break, // in order already: before this row, or before `since`
                }
            }
            for f in folders.into_iter().rev() {
                shown.insert(f.node.expect("stored rows have nodes"));
                entries.push(f);
            }
        }
        if e.node.is_none_or(|n| shown.insert(n)) {
            entries.push(e);
        }
    }
    Ok(EntriesPage { cursor, entries })
}

pub fn all_live(conn: &Scoped) -> rusqlite::Result<Vec<Entry>> {
    let mut st =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM entries WHERE share = ?1 AND deleted = 0 ORDER BY path"))?;
    let rows = st.query_map([conn.share], from_row)?;
    rows.collect()
}

/// The versions a path's history holds: every state kept at this path, and
/// every state of the node that is (or was last) there, under its earlier
/// names too. (Named parameters: `:path`, `:share`.)
const HISTORY: &str = "share = :share AND (path = :path OR node = (SELECT node FROM entries WHERE share = :share
                                          AND path = :path ORDER BY deleted, version DESC LIMIT 1))";

/// The kept versions of `path`, newest first: what was at this path, and what
/// the node there was called before (a file keeps its history through renames).
pub fn versions_of(conn: &Scoped, path: &RelPath) -> rusqlite::Result<Vec<VersionInfo>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, at_ns FROM versions WHERE {HISTORY} ORDER BY version DESC, id DESC"
    ))?;
    let rows = st.query_map(named_params! {":path": path.as_str(), ":share": conn.share}, |r| {
        Ok(VersionInfo { entry: from_row(r)?, at_ns: r.get(N_COLUMNS)? })
    })?;
    rows.collect()
}

/// Version `version` from `path`'s history (see `versions_of`).
pub fn version_of(conn: &Scoped, path: &RelPath, version: u64) -> rusqlite::Result<Option<Entry>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM versions WHERE ({HISTORY}) AND version = :version ORDER BY id DESC LIMIT 1"),
        named_params! {":path": path.as_str(), ":share": conn.share, ":version": version as i64},
        from_row,
    )
    .optional()
}

/// Whether a live entry other than the one at `path` is node `node`.
pub fn node_live_elsewhere(conn: &Scoped, node: NodeId, path: &RelPath) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM entries WHERE node = ?1 AND share = ?3 AND deleted = 0 AND path != ?2")?
        .exists(params![node.to_string(), path.as_str(), conn.share])
}

/// For `dir` and every path below it: its newest state committed at or before `at_ns`.
pub fn tree_at(conn: &Scoped, dir: &RelPath, at_ns: i64) -> rusqlite::Result<Vec<Entry>> {
    let (lo, hi) = (format!("{dir}/"), format!("{dir}0"));
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM versions v
         WHERE share = ?5 AND (path = ?1 OR (path >= ?2 AND path < ?3)) AND at_ns <= ?4
           AND id = (SELECT MAX(id) FROM versions w WHERE w.share = ?5 AND w.path = v.path AND w.at_ns <= ?4)
         ORDER BY path"
    ))?;
    let rows = st.query_map(params![dir.as_str(), lo, hi, at_ns, conn.share], from_row)?;
    rows.collect()
}

/// Every path `dir` or below it that has an entry now (live or not).
pub fn entries_within(conn: &Scoped, dir: &RelPath) -> rusqlite::Result<Vec<Entry>> {
    let (lo, hi) = (format!("{dir}/"), format!("{dir}0"));
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM entries WHERE share = ?4 AND (path = ?1 OR (path >= ?2 AND path < ?3)) ORDER BY path"
    ))?;
    let rows = st.query_map(params![dir.as_str(), lo, hi, conn.share], from_row)?;
    rows.collect()
}

/// How long history is kept: the hub's rule, which a share may override
/// (`shares.keep_versions`, `shares.keep_days`).
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    /// At most this many versions of each path.
    pub versions: u32,
    /// Versions committed longer ago than this are dropped.
    pub for_ns: i64,
}

/// Drops, in every share, history rows beyond the newest `keep.versions` of
/// each path and rows committed more than `keep.for_ns` before `now_ns`,
/// each by the share's own rule where it has one; the newest row of a path
/// always stays.
pub fn prune_versions(conn: &Connection, keep: Keep, now_ns: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM versions WHERE id IN (
            SELECT id FROM (
                SELECT v.id, v.at_ns,
                       ROW_NUMBER() OVER (PARTITION BY v.share, v.path ORDER BY v.version DESC, v.id DESC) AS rn,
                       max(coalesce(s.keep_versions, ?1), 1) AS keep_n,
                       ?3 - coalesce(s.keep_days * 86400000000000, ?2) AS cutoff
                FROM versions v LEFT JOIN shares s ON s.id = v.share)
            WHERE rn > 1 AND (rn > keep_n OR at_ns < cutoff))",
        params![keep.versions.max(1) as i64, keep.for_ns, now_ns],
    )
}

/// Every content hash a live entry or a kept version of any share names.
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
    use super::*;

    #[test]
    fn the_column_count_matches_the_column_list() {
        assert_eq!(COLUMNS.split(',').count(), N_COLUMNS);
    }

    /// Four versions of one path in the default share and in a share that
    /// keeps 2 versions for 1 day; the hub keeps 3 for 30 days.
    #[test]
    fn each_share_keeps_history_by_its_own_rule_else_the_hubs() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrate_for_tests(&mut conn);
        conn.execute(
            "INSERT INTO shares (id, name, keep_versions, keep_days, created_ns) VALUES (2, 'p', 2, 1, 0)",
            [],
        )
        .unwrap();
        let day = 86_400_000_000_000i64;
        let now = 100 * day;
        for share in [1, 2] {
            for (version, age_days) in [(1, 10), (2, 3), (3, 2), (4, 0)] {
                conn.execute(
                    "INSERT INTO versions (share, path, version, kind, deleted, size, mode, mtime_ns, at_ns)
                     VALUES (?1, 'f', ?2, 'file', 0, 0, 420, 0, ?3)",
                    params![share, version, now - age_days * day],
                )
                .unwrap();
            }
        }
        let keep = Keep { versions: 3, for_ns: 30 * day };
        prune_versions(&conn, keep, now).unwrap();
        let kept = |share: i64| -> Vec<i64> {
            conn.prepare("SELECT version FROM versions WHERE share = ?1 ORDER BY version")
                .unwrap()
                .query_map([share], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(kept(1), [2, 3, 4], "the hub's rule: the newest 3");
        assert_eq!(kept(2), [4], "the share's: 2 at most, none older than a day but the newest");
    }
}
