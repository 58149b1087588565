//! Which chunks each share holds (docs/shares.md, "Chunks without a side
//! channel"): those uploaded through it, those committed inline through it,
//! and, at the upgrade to shares, everything the hub stored. The chunk
//! store keeps each chunk once whatever share sent it; what a request
//! through share B learns comes only from B's rows here and B's own
//! contents, so deduplication cannot confirm that share A holds a file
//! (Harnik, Pinkas and Shulman-Peleg, IEEE S&P 2010).
use super::ShareId;
use rusqlite::{params, Connection};
use ssync_common::ContentHash;
use std::collections::HashSet;

/// Records that share `share` holds `hashes`.
pub fn record(conn: &Connection, share: ShareId, hashes: &[ContentHash]) -> rusqlite::Result<()> {
    let mut st = conn.prepare_cached("INSERT OR IGNORE INTO share_chunks (share, hash) VALUES (?1, ?2)")?;
    for h in hashes {
        st.execute(params![share, h.as_bytes().as_slice()])?;
    }
    Ok(())
}

/// Records that share `share` holds every chunk in packs (contents an
/// older hub stored, converted at start: all the default share's).
pub fn record_all_packed(conn: &Connection, share: ShareId) -> rusqlite::Result<()> {
    conn.execute("INSERT OR IGNORE INTO share_chunks (share, hash) SELECT ?1, hash FROM pack_chunks", [share])?;
    Ok(())
}

/// Of `hashes`, those share `share` holds.
pub fn held(conn: &Connection, share: ShareId, hashes: &[ContentHash]) -> rusqlite::Result<HashSet<ContentHash>> {
    let mut st = conn.prepare_cached("SELECT 1 FROM share_chunks WHERE share = ?1 AND hash = ?2")?;
    let mut out = HashSet::new();
    for h in hashes {
        if st.exists(params![share, h.as_bytes().as_slice()])? {
            out.insert(*h);
        }
    }
    Ok(out)
}

/// Whether content `id` is a version, live or kept, of share `share`: only
/// then may the share read its chunk list and bytes.
pub fn has_content(conn: &Connection, share: ShareId, id: &ContentHash) -> rusqlite::Result<bool> {
    let hex = id.to_hex();
    let live =
        conn.prepare_cached("SELECT 1 FROM entries WHERE hash = ?1 AND share = ?2")?.exists(params![hex, share])?;
    Ok(live
        || conn.prepare_cached("SELECT 1 FROM versions WHERE hash = ?1 AND share = ?2")?.exists(params![hex, share])?)
}

/// Forgets, for every share, the chunks the store no longer holds (after a
/// collection), so no share is told a chunk is there that is gone.
pub fn forget_collected(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM share_chunks
         WHERE NOT EXISTS (SELECT 1 FROM pack_chunks p WHERE p.hash = share_chunks.hash)
           AND NOT EXISTS (SELECT 1 FROM small_chunks s WHERE s.hash = lower(hex(share_chunks.hash)))",
        [],
    )
}

/// Forgets what share `share` held (it is removed).
pub fn remove_share(conn: &Connection, share: ShareId) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM share_chunks WHERE share = ?1", [share])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Scoped;
    use crate::tree::tests::{conn, file};

    #[test]
    fn a_share_holds_what_went_through_it_and_reads_only_its_own_contents() {
        let db = conn();
        db.execute("INSERT INTO shares (id, name, created_ns) VALUES (2, 'photos', 0)", []).unwrap();
        let (a, b, c) = (ContentHash::of(b"a"), ContentHash::of(b"b"), ContentHash::of(b"c"));
        record(&db, ShareId::DEFAULT, &[a, b]).unwrap();
        record(&db, ShareId(2), &[b]).unwrap();
        record(&db, ShareId(2), &[b]).unwrap();
        assert_eq!(held(&db, ShareId::DEFAULT, &[a, b, c]).unwrap(), HashSet::from([a, b]));
        assert_eq!(held(&db, ShareId(2), &[a, b, c]).unwrap(), HashSet::from([b]));

        let made = file(&Scoped::new(&db, ShareId::DEFAULT), "f", 0, b"default's").unwrap();
        let id: ContentHash = made[0].hash.expect("a file has content");
        assert!(has_content(&db, ShareId::DEFAULT, &id).unwrap());
        assert!(!has_content(&db, ShareId(2), &id).unwrap(), "another share's content is not photos'");

        // Nothing of these is in the store: a collection forgets them all.
        assert_eq!(forget_collected(&db).unwrap(), 3);
        assert!(held(&db, ShareId::DEFAULT, &[a, b]).unwrap().is_empty());
    }
}
