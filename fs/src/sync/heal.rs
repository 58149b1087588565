//! Anti-entropy for the engine: an idle mount compares the hub's folder
//! digests with those of its view of the hub (`ssync_common::digest`), and
//! where a folder's entries differ, lists that folder and takes what the
//! feed never reported (`HubView::heal_folder`). When the two agree this is
//! one small request, whatever the tree's size; the planner then does the
//! rest, as for any change from the hub.
use super::engine::{Engine, EngineError};
use super::http_remote::HttpRemote;
use crate::remote::client::{self, ApiError};
use ssync_common::digest::EMPTY;
use ssync_common::RelPath;

/// Most folders one compare heals; the rest wait for the next one.
const MAX_FOLDERS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum HealError {
    #[error("the hub could not be asked: {0}")]
    Hub(#[from] ApiError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the hub's rows do not fit this mount's view: {0}")]
    View(#[from] super::hub_view::ViewError),
}

/// Walks down from the root into folders whose subtree digests differ, and
/// heals each folder whose own entries differ. Returns how many it healed.
pub fn compare(
    engine: &mut Engine<HttpRemote>,
    client: &client::Remote,
    runtime: &tokio::runtime::Handle,
) -> Result<usize, HealError> {
    let cursor = engine.view().cursor();
    let mine = crate::local::tree::folder_digests(&engine.view().live_versions());
    let mut todo: Vec<Option<RelPath>> = vec![None];
    let mut healed = 0;
    while let Some(dir) = todo.pop() {
        let key = dir.as_ref().map_or("", |d| d.as_str());
        let ours = mine.get(key).cloned().unwrap_or_default();
        // Without the subfolders' digests first: when the trees agree, this
        // small answer is all an idle mount costs.
        let first = runtime.block_on(client.digest(dir.as_ref(), false))?;
        if first.subtree == ours.subtree && first.cursor == cursor {
            continue;
        }
        let hub = runtime.block_on(client.digest(dir.as_ref(), true))?;
        if hub.cursor != cursor {
            // Changes are on their way through the feed: compare next time.
            tracing::debug!(hub = hub.cursor, ours = cursor, "digest compare skipped: the feed is not caught up");
            return Ok(healed);
        }
        if hub.subtree == ours.subtree {
            continue;
        }
        if hub.direct != ours.direct {
            if healed == MAX_FOLDERS {
                tracing::warn!("more than {MAX_FOLDERS} folders differ from the hub; the rest are compared next time");
                return Ok(healed);
            }
            healed += 1;
            tracing::info!(folder = key, "this folder's entries differ from the hub's; reconciling it");
            let page = runtime.block_on(client.list(dir.as_ref()))?;
            if page.cursor != cursor {
                return Ok(healed); // the hub moved on meanwhile: next time
            }
            let dir_ref = dir.as_ref();
            engine.heal_view(|view| view.heal_folder(dir_ref, &page.entries))??;
        }
        for (child, theirs) in crate::local::tree::differing_subfolders(dir.as_ref(), &hub, &mine) {
            // A folder the hub no longer has went with its parent's heal.
            if theirs != EMPTY {
                todo.push(Some(child));
            }
        }
    }
    Ok(healed)
}
