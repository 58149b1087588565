//! Chunks of small files (those that travel inline), kept in SQLite and
//! written in the same transaction as the commit that names them: one fsync
//! (the WAL's) makes a small file durable, where a chunk file would need two
//! more (its data and its folder). Larger files' chunks live in the chunk store.
use rusqlite::{params, Connection, OptionalExtension};
use ssync_common::ContentHash;
use std::collections::{HashMap, HashSet};

pub fn put(conn: &Connection, hash: &ContentHash, data: &[u8]) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO small_chunks (hash, data) VALUES (?1, ?2)")?
        .execute(params![hash.to_hex(), data])?;
    Ok(())
}

pub fn get(conn: &Connection, hash: &ContentHash) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT data FROM small_chunks WHERE hash = ?1")?
        .query_row(params![hash.to_hex()], |r| r.get(0))
        .optional()
}

/// Of `hashes`, the ones stored here, with their lengths.
pub fn present(conn: &Connection, hashes: &[ContentHash]) -> rusqlite::Result<HashMap<ContentHash, u32>> {
    let mut st = conn.prepare_cached("SELECT length(data) FROM small_chunks WHERE hash = ?1")?;
    let mut out = HashMap::new();
    for h in hashes {
        if let Some(len) = st.query_row(params![h.to_hex()], |r| r.get::<_, u32>(0)).optional()? {
            out.insert(*h, len);
        }
    }
    Ok(out)
}

/// Deletes the chunks no list names; returns (count, bytes).
pub fn delete_unreferenced(conn: &Connection, referenced: &HashSet<ContentHash>) -> rusqlite::Result<(usize, u64)> {
    let stored: Vec<(String, i64)> = {
        let mut st = conn.prepare("SELECT hash, length(data) FROM small_chunks")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let (mut n, mut bytes) = (0, 0);
    for (hex, len) in stored {
        let keep = hex.parse::<ContentHash>().is_ok_and(|h| referenced.contains(&h));
        if !keep {
            conn.execute("DELETE FROM small_chunks WHERE hash = ?1", params![hex])?;
            n += 1;
            bytes += len as u64;
        }
    }
    Ok((n, bytes))
}
