//! Where each stored chunk lives: a pack file and the byte range in it (see
//! `store.rs`). `touched` (unix seconds) is when the chunk was stored or last
//! reported present, so a collection spares chunks an upload may still name.
use rusqlite::{params, Connection, OptionalExtension};
use ssync_common::ContentHash;
use std::collections::{HashMap, HashSet};

/// A chunk's place: pack file id, offset and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub pack: u64,
    pub offset: u64,
    pub len: u32,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn hash_of(raw: &[u8]) -> Option<ContentHash> {
    <[u8; 32]>::try_from(raw).ok().map(ContentHash::from_bytes)
}

/// Records the chunks of a pack just made durable. A chunk already recorded
/// (stored meanwhile by another request) keeps its place.
pub fn record(conn: &Connection, pack: u64, chunks: &[(ContentHash, u64, u32)]) -> rusqlite::Result<()> {
    let mut st = conn.prepare_cached(
        "INSERT OR IGNORE INTO pack_chunks (hash, pack, offset, len, touched) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let now = now_secs();
    for (hash, offset, len) in chunks {
        st.execute(params![hash.as_bytes(), pack as i64, *offset as i64, *len, now])?;
    }
    Ok(())
}

/// Points chunks at a new place (a repacked copy).
pub fn relocate(conn: &Connection, pack: u64, chunks: &[(ContentHash, u64, u32)]) -> rusqlite::Result<()> {
    let mut st = conn.prepare_cached("UPDATE pack_chunks SET pack = ?2, offset = ?3, len = ?4 WHERE hash = ?1")?;
    for (hash, offset, len) in chunks {
        st.execute(params![hash.as_bytes(), pack as i64, *offset as i64, *len])?;
    }
    Ok(())
}

/// Forgets chunks (found damaged).
pub fn forget(conn: &Connection, hashes: &[ContentHash]) -> rusqlite::Result<()> {
    let mut st = conn.prepare_cached("DELETE FROM pack_chunks WHERE hash = ?1")?;
    for h in hashes {
        st.execute(params![h.as_bytes()])?;
    }
    Ok(())
}

pub fn place(conn: &Connection, hash: &ContentHash) -> rusqlite::Result<Option<Place>> {
    conn.prepare_cached("SELECT pack, offset, len FROM pack_chunks WHERE hash = ?1")?
        .query_row(params![hash.as_bytes()], |r| {
            Ok(Place { pack: r.get::<_, i64>(0)? as u64, offset: r.get::<_, i64>(1)? as u64, len: r.get(2)? })
        })
        .optional()
}

/// Of `hashes`, the ones recorded, with their lengths; those last touched
/// more than `fresh_secs` ago are touched now.
pub fn present_touching(
    conn: &Connection,
    hashes: &[ContentHash],
    fresh_secs: u64,
) -> rusqlite::Result<HashMap<ContentHash, u32>> {
    let now = now_secs();
    let mut get = conn.prepare_cached("SELECT touched, len FROM pack_chunks WHERE hash = ?1")?;
    let mut touch = conn.prepare_cached("UPDATE pack_chunks SET touched = ?2 WHERE hash = ?1")?;
    let mut out = HashMap::new();
    for h in hashes {
        let found: Option<(i64, u32)> =
            get.query_row(params![h.as_bytes()], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        if let Some((t, len)) = found {
            if now.saturating_sub(t) > fresh_secs as i64 {
                touch.execute(params![h.as_bytes(), now])?;
            }
            out.insert(*h, len);
        }
    }
    Ok(out)
}

/// Deletes the records of chunks no list names that were not touched within
/// `grace_secs`; returns (count, bytes).
pub fn forget_unreferenced(
    conn: &Connection,
    referenced: &HashSet<ContentHash>,
    grace_secs: u64,
) -> rusqlite::Result<(usize, u64)> {
    let cutoff = now_secs().saturating_sub(grace_secs as i64);
    let old: Vec<(Vec<u8>, u32)> = {
        let mut st = conn.prepare("SELECT hash, len FROM pack_chunks WHERE touched <= ?1")?;
        let rows = st.query_map(params![cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut del = conn.prepare_cached("DELETE FROM pack_chunks WHERE hash = ?1")?;
    let (mut n, mut bytes) = (0, 0);
    for (raw, len) in old {
        let keep = hash_of(&raw).is_some_and(|h| referenced.contains(&h));
        if !keep {
            del.execute(params![raw])?;
            n += 1;
            bytes += len as u64;
        }
    }
    Ok((n, bytes))
}

/// Bytes of recorded chunks per pack.
pub fn live_bytes(conn: &Connection) -> rusqlite::Result<HashMap<u64, u64>> {
    let mut st = conn.prepare("SELECT pack, sum(len) FROM pack_chunks GROUP BY pack")?;
    let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)))?;
    rows.collect()
}

/// The chunks recorded in `pack`, in file order.
pub fn chunks_in(conn: &Connection, pack: u64) -> rusqlite::Result<Vec<(ContentHash, u64, u32)>> {
    let mut st = conn.prepare("SELECT hash, offset, len FROM pack_chunks WHERE pack = ?1 ORDER BY offset")?;
    let rows = st.query_map(params![pack as i64], |r| {
        Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)? as u64, r.get::<_, u32>(2)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (raw, off, len) = row?;
        if let Some(h) = hash_of(&raw) {
            out.push((h, off, len));
        }
    }
    Ok(out)
}
