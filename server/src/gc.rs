//! Retention and garbage collection, in the background: prune versions past
//! the retention (`--keep-days`, `--keep-versions`), then forget chunks that
//! no entry and no kept version names, delete packs nothing uses and rewrite
//! packs less than half used.
//!
//! Safe against concurrent uploads: chunks younger than the grace period
//! (`--gc-grace`) are never deleted, a "have it" answer refreshes a chunk's
//! age, and both that answer and a commit's existence check hold the store's
//! `gc_lock` shared while a collection holds it exclusively.
use crate::db::{entries, manifests, packs, small_chunks, DbError};
use crate::state::AppState;
use crate::store::StoreError;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    pub pruned_versions: usize,
    pub deleted_objects: usize,
    pub freed_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("content store: {0}")]
    Io(#[from] std::io::Error),
}

impl From<StoreError> for GcError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Db(d) => GcError::Db(d),
            StoreError::Io(e) => GcError::Io(e),
            StoreError::NotFound(h) => GcError::Io(std::io::Error::other(format!("chunk {h} not found"))),
        }
    }
}

impl From<rusqlite::Error> for GcError {
    fn from(e: rusqlite::Error) -> Self {
        GcError::Db(DbError::Sqlite(e))
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

pub async fn collect(state: &AppState) -> Result<GcReport, GcError> {
    let _exclusive = state.store.gc_lock.write().await;
    let keep = entries::Keep {
        versions: state.retention.keep_versions,
        for_ns: i64::try_from(state.retention.keep.as_nanos()).unwrap_or(i64::MAX),
    };
    let now = now_ns();
    let grace = state.retention.grace;
    let (pruned_versions, (small_n, small_bytes), (packed_n, packed_bytes), live) = state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            let pruned = entries::prune_versions(&tx, keep, now)?;
            manifests::prune_unreferenced(&tx)?;
            let referenced = manifests::referenced_chunks(&tx)?;
            let small = small_chunks::delete_unreferenced(&tx, &referenced)?;
            // Young unnamed chunks may belong to an upload whose commit is still to come.
            let packed = packs::forget_unreferenced(&tx, &referenced, grace.as_secs())?;
            crate::db::share_chunks::forget_collected(&tx)?;
            let live = packs::live_bytes(&tx)?;
            tx.commit()?;
            Ok::<_, GcError>((pruned, small, packed, live))
        })
        .await?;
    let store = state.store.clone();
    let listed = tokio::task::spawn_blocking(move || store.list_packs())
        .await
        .map_err(|e| GcError::Io(std::io::Error::other(e)))??;
    let now = std::time::SystemTime::now();
    let mut freed_pack_bytes = 0;
    for (pack, size, modified) in listed {
        // A young pack may be one whose chunks are being recorded right now.
        if now.duration_since(modified).map(|age| age < grace).unwrap_or(true) {
            continue;
        }
        match live.get(&pack).copied().unwrap_or(0) {
            0 => {
                state.store.remove_pack(pack)?;
                freed_pack_bytes += size;
            }
            used if used * 2 < size => freed_pack_bytes += repack(state, pack, size).await?,
            _ => {}
        }
    }
    tracing::debug!(packed_bytes, freed_pack_bytes, "pack space reclaimed");
    Ok(GcReport { pruned_versions, deleted_objects: small_n + packed_n, freed_bytes: small_bytes + freed_pack_bytes })
}

/// Copies the chunks still recorded in `pack` (less than half of it) to a
/// new pack, points their records there, and deletes the old one. A reader
/// that looked the old place up just before looks again (`read_chunk`).
/// Returns the bytes freed.
async fn repack(state: &AppState, pack: u64, size: u64) -> Result<u64, GcError> {
    let chunks = state.db.call(move |c| Ok::<_, GcError>(packs::chunks_in(c, pack)?)).await?;
    let store = state.store.clone();
    let (writer, corrupt) = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        use std::os::unix::fs::FileExt;
        let old = std::fs::File::open(store.pack_path(pack))?;
        let mut w = store.writer()?;
        let mut corrupt = Vec::new();
        for (hash, off, len) in chunks {
            let mut buf = vec![0; len as usize];
            match old.read_exact_at(&mut buf, off) {
                Ok(()) if ssync_common::ContentHash::of(&buf) == hash => w.add(hash, &buf)?,
                _ => corrupt.push(hash),
            }
        }
        Ok((w, corrupt))
    })
    .await
    .map_err(|e| GcError::Io(std::io::Error::other(e)))??;
    if !corrupt.is_empty() {
        // Forgotten, so the next upload that needs them sends them again.
        tracing::error!(pack, chunks = corrupt.len(), "chunks in a pack do not match their hashes; forgetting them");
    }
    let new_len = writer.len();
    // Written, then recorded with the move, in one transaction.
    let installed = match writer.is_empty() {
        true => None,
        false => Some(state.store.write_pack(writer).await?),
    };
    state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            if let Some((id, index)) = &installed {
                packs::relocate(&tx, *id, index)?;
            }
            packs::forget(&tx, &corrupt)?;
            tx.commit()?;
            Ok::<_, GcError>(())
        })
        .await?;
    state.store.remove_pack(pack)?;
    Ok(size.saturating_sub(new_len))
}

/// Collects every `retention.gc_interval` until `cancel`.
pub async fn run(state: AppState, cancel: CancellationToken) {
    let interval = state.retention.gc_interval.max(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = cancel.cancelled() => return,
        }
        match collect(&state).await {
            Ok(r) if r != GcReport::default() => tracing::info!(
                pruned_versions = r.pruned_versions,
                deleted_objects = r.deleted_objects,
                freed_bytes = r.freed_bytes,
                "history pruned and unreferenced contents deleted"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!("garbage collection failed: {e}"),
        }
    }
}
