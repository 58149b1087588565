//! Converts data written before chunking: an id in `entries.hash` was then
//! the BLAKE3 hash of the whole content, stored as one object. Each such
//! object is cut into chunks and its versions renamed to the new list id, so
//! old and new uploads of the same bytes have the same id. Runs at start,
//! before the hub serves; safe to interrupt (each file is one transaction,
//! and the old object stays until GC finds it unnamed).
use crate::db::{manifests, Db, DbError};
use crate::store::ContentStore;
use ssync_common::chunks::Chunker;
use ssync_common::{ChunkList, ContentHash};
use std::io::Write;

pub async fn convert_whole_objects(db: &Db, store: &ContentStore) -> Result<usize, DbError> {
    let old = db.call(|c| Ok::<_, DbError>(manifests::unlisted_ids(c)?)).await?;
    let mut converted = 0;
    for (id, size) in old {
        let store = store.clone();
        let list =
            tokio::task::spawn_blocking(
                move || if size == 0 { Ok(ChunkList::default()) } else { chunk_object(&store, &id) },
            )
            .await
            .map_err(|e| DbError::Join(e.to_string()))?;
        let list = match list {
            Ok(l) if l.size() == size => l,
            Ok(l) => {
                tracing::error!(%id, size, found = l.size(), "stored content has the wrong size; left as it is");
                continue;
            }
            Err(e) => {
                tracing::error!(%id, "cannot convert stored content to chunks: {e}");
                continue;
            }
        };
        db.call(move |c| {
            let tx = c.transaction()?;
            let new = manifests::put(&tx, &list)?;
            manifests::rename_id(&tx, &id, &new)?;
            tx.commit()?;
            Ok::<_, DbError>(())
        })
        .await?;
        converted += 1;
    }
    if converted > 0 {
        tracing::info!(converted, "converted contents stored before chunking");
    }
    Ok(converted)
}

fn chunk_object(store: &ContentStore, id: &ContentHash) -> std::io::Result<ChunkList> {
    let file = std::fs::File::open(store.object_path(id))?;
    let mut list = Vec::new();
    for c in Chunker::new(file) {
        let (r, data) = c?;
        let dest = store.object_path(&r.hash);
        if !dest.exists() {
            let dir = dest.parent().expect("object path has a parent");
            std::fs::create_dir_all(dir)?;
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            tmp.write_all(&data)?;
            tmp.as_file().sync_all()?;
            tmp.persist(&dest).map_err(|e| e.error)?;
            std::fs::File::open(dir)?.sync_all()?;
        }
        list.push(r);
    }
    Ok(ChunkList(list))
}
