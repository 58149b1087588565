//! Which chunks the cached files hold, and where: a download takes every chunk
//! it can from local files instead of the network, and an upload sends only
//! what the previous version lacked. Its own SQLite connection (same file as
//! `local_db`, which owns the schema), so lookups never hold the state lock.
//!
//! Entries can go stale when a cache file is rewritten; every use reads the
//! bytes and checks their hash, so a stale entry costs a lookup, never data.
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};
use ssync_common::{ChunkList, ContentHash};
use std::path::Path;

pub struct ChunkIndex {
    conn: Mutex<Connection>,
}

impl ChunkIndex {
    pub fn open(db_path: &Path) -> rusqlite::Result<ChunkIndex> {
        let conn = Connection::open(db_path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(ChunkIndex { conn: Mutex::new(conn) })
    }

    /// Records that the cache file of `ino` holds `list` (file id `list.id()`).
    /// Small files travel inline and gain nothing from the index: they are not
    /// recorded, which keeps its writes off the path of many small files.
    pub fn record(&self, ino: u64, list: &ChunkList) -> rusqlite::Result<()> {
        if list.size() <= ssync_common::api::INLINE_MAX {
            return Ok(());
        }
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM chunk_at WHERE ino = ?1", params![ino as i64])?;
        tx.execute(
            "INSERT OR REPLACE INTO file_chunks (ino, id, chunks) VALUES (?1, ?2, ?3)",
            params![ino as i64, list.id().to_hex(), list.to_bytes()],
        )?;
        {
            let mut ins = tx.prepare("INSERT INTO chunk_at (hash, ino, offset, len) VALUES (?1, ?2, ?3, ?4)")?;
            for (off, c) in list.with_offsets() {
                ins.execute(params![&c.hash.as_bytes()[..], ino as i64, off as i64, c.len as i64])?;
            }
        }
        tx.commit()
    }

    /// The chunk list of `ino`'s cache file, if it was recorded as file `id`.
    pub fn list_of(&self, ino: u64, id: &ContentHash) -> rusqlite::Result<Option<ChunkList>> {
        let conn = self.conn.lock();
        let row: Option<(String, Vec<u8>)> = conn
            .query_row("SELECT id, chunks FROM file_chunks WHERE ino = ?1", params![ino as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        Ok(row.filter(|(rid, _)| *rid == id.to_hex()).and_then(|(_, b)| ChunkList::from_bytes(&b).ok()))
    }

    /// Cache files that may hold chunk `hash`: (ino, offset), a few at most.
    pub fn locate(&self, hash: &ContentHash) -> rusqlite::Result<Vec<(u64, u64)>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare_cached("SELECT ino, offset FROM chunk_at WHERE hash = ?1 LIMIT 4")?;
        let rows = st.query_map(params![&hash.as_bytes()[..]], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
        })?;
        rows.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssync_common::chunks::list_of;

    #[test]
    fn records_locates_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(crate::local::db::LocalDb::open(&path).unwrap());
        let idx = ChunkIndex::open(&path).unwrap();
        let mut data = vec![0u8; 600_000];
        blake3::Hasher::new().update(b"chunk index").finalize_xof().fill(&mut data);
        let list = list_of(&data);
        idx.record(7, &list).unwrap();
        assert_eq!(idx.list_of(7, &list.id()).unwrap(), Some(list.clone()));
        assert_eq!(idx.list_of(7, &ContentHash::of(b"other")).unwrap(), None);
        let (off, c) = list.with_offsets().nth(1).unwrap();
        assert_eq!(idx.locate(&c.hash).unwrap(), vec![(7, off)]);
        let other = list_of(&data[..400_000]);
        idx.record(7, &other).unwrap();
        assert_eq!(idx.list_of(7, &list.id()).unwrap(), None, "re-recording replaces the old list");
        assert_eq!(idx.list_of(7, &other.id()).unwrap(), Some(other.clone()));
        assert_eq!(idx.locate(&c.hash).unwrap(), vec![(7, off)], "rows are replaced, not added");
        idx.record(9, &list_of(b"small")).unwrap();
        assert_eq!(idx.list_of(9, &list_of(b"small").id()).unwrap(), None, "small files are not indexed");
        // Deleting a node in the local database drops its rows.
        idx.record(8, &list).unwrap();
        crate::local::db::LocalDb::open(&path).unwrap().delete_node(8).unwrap();
        assert_eq!(idx.list_of(8, &list.id()).unwrap(), None);
        assert_eq!(idx.locate(&c.hash).unwrap(), vec![(7, off)], "node 8's rows are gone");
    }
}
