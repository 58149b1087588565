//! File ids to chunk lists: `manifests(id, size, chunks)`, the encoded list.
//! A file version names its id in `entries.hash`/`versions.hash`; the list
//! is written in the same transaction as the first version that names it.
use rusqlite::{params, Connection, OptionalExtension};
use ssync_common::{ChunkList, ContentHash};
use std::collections::HashSet;

fn bad(msg: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, msg.to_string().into())
}

pub fn get(conn: &Connection, id: &ContentHash) -> rusqlite::Result<Option<ChunkList>> {
    let blob: Option<Vec<u8>> = conn
        .prepare_cached("SELECT chunks FROM manifests WHERE id = ?1")?
        .query_row(params![id.to_hex()], |r| r.get(0))
        .optional()?;
    blob.map(|b| ChunkList::from_bytes(&b).map_err(|_| bad("stored chunk list is invalid"))).transpose()
}

/// Records `list` under its id (a no-op if it is already there).
pub fn put(conn: &Connection, list: &ChunkList) -> rusqlite::Result<ContentHash> {
    let id = list.id();
    conn.prepare_cached("INSERT OR IGNORE INTO manifests (id, size, chunks) VALUES (?1, ?2, ?3)")?.execute(params![
        id.to_hex(),
        list.size() as i64,
        list.to_bytes()
    ])?;
    Ok(id)
}

/// Drops lists no entry and no kept version names; returns how many.
pub fn prune_unreferenced(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM manifests WHERE id NOT IN (
            SELECT hash FROM entries WHERE hash IS NOT NULL
            UNION SELECT hash FROM versions WHERE hash IS NOT NULL)",
        [],
    )
}

/// Every chunk a remaining list names.
pub fn referenced_chunks(conn: &Connection) -> rusqlite::Result<HashSet<ContentHash>> {
    let mut st = conn.prepare("SELECT chunks FROM manifests")?;
    let mut rows = st.query([])?;
    let mut out = HashSet::new();
    while let Some(r) = rows.next()? {
        let blob: Vec<u8> = r.get(0)?;
        let list = ChunkList::from_bytes(&blob).map_err(|_| bad("stored chunk list is invalid"))?;
        out.extend(list.0.iter().map(|c| c.hash));
    }
    Ok(out)
}

/// File ids some entry or version names but no list describes (data from
/// before chunking, when an id was the hash of the whole content).
pub fn unlisted_ids(conn: &Connection) -> rusqlite::Result<Vec<(ContentHash, u64)>> {
    let mut st = conn.prepare(
        "SELECT hash, MAX(size) FROM (SELECT hash, size FROM entries WHERE hash IS NOT NULL
            UNION ALL SELECT hash, size FROM versions WHERE hash IS NOT NULL)
         WHERE hash NOT IN (SELECT id FROM manifests) GROUP BY hash",
    )?;
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    rows.map(|r| {
        let (h, size) = r?;
        Ok((h.parse().map_err(|_| bad("stored hash is invalid"))?, size as u64))
    })
    .collect()
}

/// Renames a file id everywhere it is named.
pub fn rename_id(conn: &Connection, old: &ContentHash, new: &ContentHash) -> rusqlite::Result<()> {
    for table in ["entries", "versions"] {
        conn.execute(&format!("UPDATE {table} SET hash = ?2 WHERE hash = ?1"), params![old.to_hex(), new.to_hex()])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use ssync_common::chunks::list_of;

    #[tokio::test]
    async fn lists_are_stored_once_and_pruned_when_unnamed() {
        let db = Db::open_in_memory().unwrap();
        db.call(|c| {
            let list = list_of(&vec![7u8; 300_000]);
            let id = put(c, &list)?;
            assert_eq!(put(c, &list)?, id);
            assert_eq!(get(c, &id)?, Some(list.clone()));
            assert!(referenced_chunks(c)?.contains(&list.0[0].hash));
            assert_eq!(prune_unreferenced(c)?, 1, "no entry names it");
            assert_eq!(get(c, &id)?, None);
            Ok::<_, crate::db::DbError>(())
        })
        .await
        .unwrap();
    }
}
