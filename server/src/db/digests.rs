//! Folder digests (see `ssync_common::digest`), kept in step with `entries`:
//! `entries::put` calls `on_move` for every row it writes, in the same
//! transaction, so a digest always matches the entries it covers. Each
//! share has its own (`Scoped`).
use super::scoped::{Scoped, ShareId};
use rusqlite::{params, Connection, OptionalExtension};
use ssync_common::api::Entry;
use ssync_common::digest::{entry_digest, folder_of, folders_above, xor, EMPTY};
use ssync_common::ContentHash;
use std::collections::HashMap;

fn share(e: &Entry) -> ContentHash {
    if e.deleted {
        EMPTY
    } else {
        entry_digest(e.path.as_str(), e.version)
    }
}

fn hash_of(blob: Vec<u8>) -> ContentHash {
    ContentHash::from_bytes(blob.try_into().unwrap_or([0; 32]))
}

/// (direct, subtree) of `dir` ("" for the root).
pub fn get(conn: &Scoped, dir: &str) -> rusqlite::Result<(ContentHash, ContentHash)> {
    let row: Option<(Vec<u8>, Vec<u8>)> = conn
        .prepare_cached("SELECT direct, subtree FROM dir_digests WHERE share = ?2 AND dir = ?1")?
        .query_row(params![dir, conn.share], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row.map_or((EMPTY, EMPTY), |(d, s)| (hash_of(d), hash_of(s))))
}

fn put(conn: &Scoped, dir: &str, direct: &ContentHash, subtree: &ContentHash) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO dir_digests (share, dir, direct, subtree) VALUES (?4, ?1, ?2, ?3)")?
        .execute(params![dir, &direct.as_bytes()[..], &subtree.as_bytes()[..], conn.share])?;
    Ok(())
}

/// Rows replaced (`before`: the nodes' rows as they were, wherever they
/// were) by `after`: a write, or a swap.
pub fn on_move(conn: &Scoped, before: &[Entry], after: &[Entry]) -> rusqlite::Result<()> {
    apply(conn, before.iter().chain(after).map(|e| (e.path.as_str(), share(e))))
}

/// Live rows that moved from the paths of `before` to those of `after`
/// with their versions (what is below a renamed folder): `(path, version)`.
pub fn on_paths_moved(conn: &Scoped, before: &[(String, u64)], after: &[(String, u64)]) -> rusqlite::Result<()> {
    let shares = before.iter().chain(after).map(|(p, v)| (p.as_str(), entry_digest(p, *v)));
    apply(conn, shares)
}

/// XORs each `(path, share)` into the digests of the path's folders
/// (a share given twice cancels out), writing each folder's row once.
fn apply<'a>(conn: &Scoped, shares: impl Iterator<Item = (&'a str, ContentHash)>) -> rusqlite::Result<()> {
    let mut deltas: HashMap<&str, (ContentHash, ContentHash)> = HashMap::new();
    for (path, share) in shares {
        if share == EMPTY {
            continue;
        }
        let home = folder_of(path);
        for dir in folders_above(path) {
            let d = deltas.entry(dir).or_insert((EMPTY, EMPTY));
            if dir == home {
                d.0 = xor(&d.0, &share);
            }
            d.1 = xor(&d.1, &share);
        }
    }
    for (dir, (d_direct, d_subtree)) in deltas {
        if (d_direct, d_subtree) == (EMPTY, EMPTY) {
            continue;
        }
        let (direct, subtree) = get(conn, dir)?;
        put(conn, dir, &xor(&direct, &d_direct), &xor(&subtree, &d_subtree))?;
    }
    Ok(())
}

/// The subfolders of `dir` with something below them: (name, subtree digest).
pub fn subfolders(conn: &Scoped, dir: &str) -> rusqlite::Result<Vec<(String, ContentHash)>> {
    let (sql, lo, hi) = match dir {
        "" => (
            "SELECT dir, subtree FROM dir_digests WHERE share = ?1 AND dir <> '' AND instr(dir, '/') = 0",
            String::new(),
            String::new(),
        ),
        d => (
            "SELECT dir, subtree FROM dir_digests
             WHERE share = ?3 AND dir > ?1 AND dir < ?2 AND instr(substr(dir, length(?1) + 1), '/') = 0",
            format!("{d}/"),
            format!("{d}0"),
        ),
    };
    let mut st = conn.prepare_cached(sql)?;
    let map = |r: &rusqlite::Row<'_>| Ok((r.get::<_, String>(0)?, hash_of(r.get(1)?)));
    let rows: Vec<(String, ContentHash)> = match dir {
        "" => st.query_map([conn.share], map)?.collect::<Result<_, _>>()?,
        _ => st.query_map(params![lo, hi, conn.share], map)?.collect::<Result<_, _>>()?,
    };
    Ok(rows
        .into_iter()
        .filter(|(_, s)| *s != EMPTY)
        .map(|(d, s)| (d.rsplit_once('/').map_or(d.as_str(), |(_, n)| n).to_string(), s))
        .collect())
}

/// Computes every share's digests from the entries (the migration that
/// adds them, or a database restored without them).
pub fn rebuild_all(conn: &Connection) -> rusqlite::Result<()> {
    let shares: Vec<i64> =
        conn.prepare("SELECT id FROM shares")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    for id in shares {
        rebuild(&Scoped::new(conn, ShareId(id)))?;
    }
    Ok(())
}

/// Computes a share's digests from its entries.
pub fn rebuild(conn: &Scoped) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM dir_digests WHERE share = ?1", [conn.share])?;
    let mut sums: HashMap<String, (ContentHash, ContentHash)> = HashMap::new();
    for e in super::entries::all_live(conn)? {
        let share = share(&e);
        let path = e.path.as_str();
        let home = folder_of(path);
        for dir in folders_above(path) {
            let sum = sums.entry(dir.to_string()).or_insert((EMPTY, EMPTY));
            if dir == home {
                sum.0 = xor(&sum.0, &share);
            }
            sum.1 = xor(&sum.1, &share);
        }
    }
    for (dir, (direct, subtree)) in sums {
        put(conn, &dir, &direct, &subtree)?;
    }
    Ok(())
}
