//! Retention and garbage collection, in the background: prune versions past
//! the retention (`--keep-days`, `--keep-versions`), then delete content
//! objects that no entry and no kept version names.
//!
//! Safe against concurrent uploads: chunks younger than the grace period
//! (`--gc-grace`) are never deleted, a "have it" answer refreshes a chunk's
//! age, and both that answer and a commit's existence check hold the store's
//! `gc_lock` shared while a collection holds it exclusively.
use crate::db::{entries, manifests, small_chunks, DbError};
use crate::state::AppState;
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
    let keep_versions = state.retention.keep_versions;
    let cutoff = now_ns().saturating_sub(state.retention.keep.as_nanos() as i64);
    let (pruned_versions, referenced, small) = state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            let pruned = entries::prune_versions(&tx, keep_versions, cutoff)?;
            manifests::prune_unreferenced(&tx)?;
            let referenced = manifests::referenced_chunks(&tx)?;
            let small = small_chunks::delete_unreferenced(&tx, &referenced)?;
            tx.commit()?;
            Ok::<_, GcError>((pruned, referenced, small))
        })
        .await?;
    let store = state.store.clone();
    let grace = state.retention.grace;
    let (deleted_objects, freed_bytes) = tokio::task::spawn_blocking(move || -> Result<(usize, u64), GcError> {
        let (mut n, mut bytes) = small;
        let now = std::time::SystemTime::now();
        for (hash, size, modified) in store.list_objects()? {
            // Young unnamed chunks may belong to an upload whose commit is still to come.
            let young = now.duration_since(modified).map(|age| age < grace).unwrap_or(true);
            if !referenced.contains(&hash) && !young {
                store.remove_object(&hash)?;
                n += 1;
                bytes += size;
            }
        }
        Ok((n, bytes))
    })
    .await
    .map_err(|e| GcError::Io(std::io::Error::other(e)))??;
    Ok(GcReport { pruned_versions, deleted_objects, freed_bytes })
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
