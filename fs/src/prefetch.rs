//! Downloads the contents a page of feed entries needs, several at once,
//! before the watcher applies the entries one by one, in order. One file at
//! a time paid a round trip and an fsync per file in turn; with several in
//! flight the round trips overlap and the disk commits the fsyncs together,
//! which is what lets `tar x` on one mount reach another within seconds.
//! Only the downloads overlap: each entry is still applied in feed order.
use crate::chunk_download::fetch_file;
use crate::client::Remote;
use crate::state::Shared;
use futures_util::StreamExt;
use ssync_common::api::Entry;
use ssync_common::{ChunkList, ContentHash};
use std::collections::{HashMap, HashSet};

/// Downloads in flight.
const IN_FLIGHT: usize = 8;

/// Contents assembled in `partial/<id>`, by id, with their chunk lists.
pub type Prefetched = HashMap<ContentHash, ChunkList>;

/// Fetches the contents `entries` name that this cache lacks. A failure
/// only means the entry's apply downloads it itself (and reports it).
pub async fn contents(shared: &Shared, remote: &Remote, entries: &[Entry]) -> Prefetched {
    let wanted: Vec<(ContentHash, Option<(u64, ContentHash)>)> = {
        let st = shared.state.lock();
        let mut seen = HashSet::new();
        entries
            .iter()
            .filter(|e| !e.deleted && !shared.is_own(e))
            .filter_map(|e| {
                let id = e.hash?;
                let local = st.tree.resolve(&e.path).and_then(|i| st.tree.get(i));
                if local.is_some_and(|n| n.hash == Some(id)) || !seen.insert(id) {
                    return None;
                }
                let have = local.filter(|n| n.has_content()).and_then(|n| Some((n.ino, n.hash?)));
                Some((id, have))
            })
            .collect()
    };
    if wanted.len() < 2 {
        return Prefetched::new(); // a lone change goes the usual way
    }
    futures_util::stream::iter(wanted)
        .map(|(id, have)| async move {
            let partial = shared.cache.partial(&id);
            (id, fetch_file(remote, &shared.chunks, &shared.cache.files, partial, id, have).await)
        })
        .buffer_unordered(IN_FLIGHT)
        .filter_map(|(id, r)| async move { r.ok().map(|(_, list)| (id, list)) })
        .collect()
        .await
}
