//! Anti-entropy for an idle mount: compare the tree's folder digests with the
//! hub's (see `ssync_common::digest`) and reconcile only the folders whose
//! entries differ. When the trees agree this is one small request, whatever
//! the tree's size; the whole tree is fetched only at start and after a
//! refusal (`watch::reconcile` with `Scope::Tree`).
use crate::client::{ApiError, Remote};
use crate::state::Shared;
use crate::watch::{reconcile, Scope};
use ssync_common::RelPath;

/// Most folders one compare reconciles; the rest wait for the next round.
const MAX_FOLDERS: usize = 1000;

/// Walks down from the root into folders whose subtree digests differ, and
/// reconciles each folder whose own entries differ.
pub async fn compare(shared: &Shared, remote: &Remote, cursor: u64) -> Result<(), ApiError> {
    let versions = shared.state.lock().tree.versions();
    // Hashing a large tree takes a while: outside the state lock, off the async threads.
    let local = tokio::task::spawn_blocking(move || crate::tree::folder_digests(&versions))
        .await
        .map_err(|e| ApiError::Local(std::io::Error::other(e)))?;
    let mut todo: Vec<Option<RelPath>> = vec![None];
    let mut reconciled = 0;
    while let Some(dir) = todo.pop() {
        let key = dir.as_ref().map_or("", |d| d.as_str());
        let mine = local.get(key).cloned().unwrap_or_default();
        // Asked first without the subfolders' digests: when the trees agree,
        // this small answer is all an idle mount costs.
        let first = remote.digest(dir.as_ref(), false).await?;
        if first.subtree == mine.subtree && first.cursor == cursor {
            continue;
        }
        let hub = remote.digest(dir.as_ref(), true).await?;
        if hub.cursor != cursor {
            // Changes are on their way through the feed (or the hub is
            // behind, which the feed reports): compare next time.
            tracing::debug!(hub = hub.cursor, ours = cursor, "digest compare skipped: the feed is not caught up");
            return Ok(());
        }
        if hub.subtree == mine.subtree {
            continue;
        }
        if hub.direct != mine.direct {
            if reconciled == MAX_FOLDERS {
                tracing::warn!("more than {MAX_FOLDERS} folders differ from the hub; the rest are compared next round");
                return Ok(());
            }
            reconciled += 1;
            tracing::info!(folder = key, "this folder's entries differ from the hub's; reconciling it");
            reconcile(shared, remote, cursor, Scope::Folder(dir.clone())).await?;
        }
        for (child, _) in crate::tree::differing_subfolders(dir.as_ref(), &hub, &local) {
            todo.push(Some(child));
        }
    }
    Ok(())
}
