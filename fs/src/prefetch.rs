//! Downloads the contents a page of feed entries needs before the watcher
//! applies the entries one by one, in order. Small files come many to a
//! request (`POST /v1/manifests`, bytes inline) and are fsynced together,
//! from a few threads; larger ones download several at once. One file at a
//! time paid a round trip and an fsync per file in turn, which is what kept
//! a mount seconds behind another unpacking a tree of small files.
//! Only the downloads are early: each entry is still applied in feed order.
use crate::chunk_download::{fetch_file, list_of, write_inline};
use crate::client::{ApiError, Remote};
use crate::state::Shared;
use futures_util::StreamExt;
use ssync_common::api::{inline_decode, Entry, ManifestResponse, INLINE_MAX};
use ssync_common::{ChunkList, ContentHash, RelPath};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// Large downloads in flight.
const IN_FLIGHT: usize = 4;
/// Small files asked for per request.
const PER_REQUEST: usize = 512;

/// Contents fetched ahead, by the (path, id) of the entry that wants them:
/// a file ready to be renamed into the cache, and its chunk list. Small
/// files get one file per entry (many entries may name the same bytes: empty
/// files, copies), large ones `partial/<id>`, for the first entry naming it.
pub type Prefetched = HashMap<(RelPath, ContentHash), (PathBuf, ChunkList)>;

/// One content to fetch: its entry's path, its id and size, and (cache file,
/// id) of the version this cache holds for the path, to reuse its chunks.
struct Wanted {
    path: RelPath,
    id: ContentHash,
    size: u64,
    have: Option<(u64, ContentHash)>,
}

/// Removes the temp files fetched ahead that no entry took (a download in
/// `partial/` stays, for the next attempt).
pub fn discard(shared: &Shared, left: Prefetched) {
    for (file, _) in left.into_values() {
        if file.parent() == Some(shared.cache.tmp.as_path()) {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// Fetches the contents `entries` name that this cache lacks. A failure
/// only means the entry's apply downloads it itself (and reports it).
pub async fn contents(shared: &Shared, remote: &Remote, entries: &[Entry]) -> Prefetched {
    let wanted: Vec<Wanted> = {
        let st = shared.state.lock();
        let mut seen = HashSet::new();
        entries
            .iter()
            .filter(|e| !e.deleted && !shared.is_own(e) && !crate::watch::left_for_later(&st, e))
            .filter_map(|e| {
                let id = e.hash?;
                let local = st.tree.resolve(&e.path).and_then(|i| st.tree.get(i));
                if local.is_some_and(|n| n.hash == Some(id)) || !seen.insert((e.path.clone(), id)) {
                    return None;
                }
                let have = local.filter(|n| n.has_content()).and_then(|n| Some((n.ino, n.hash?)));
                Some(Wanted { path: e.path.clone(), id, size: e.size, have })
            })
            .collect()
    };
    if wanted.len() < 2 {
        return Prefetched::new(); // a lone change goes the usual way
    }
    let (small, large): (Vec<Wanted>, Vec<Wanted>) = wanted.into_iter().partition(|w| w.size <= INLINE_MAX);
    let mut out = Prefetched::new();
    for group in small.chunks(PER_REQUEST) {
        match small_files(shared, remote, group).await {
            Ok(got) => out.extend(got),
            Err(e) => tracing::debug!("small files not fetched ahead ({e}); each is fetched when applied"),
        }
    }
    let mut ids = HashSet::new();
    let large: Vec<Wanted> = large.into_iter().filter(|w| ids.insert(w.id)).collect();
    let fetched: Vec<((RelPath, ContentHash), (PathBuf, ChunkList))> = futures_util::stream::iter(large)
        .map(|w| async move {
            let partial = shared.cache.partial(&w.id);
            let got = fetch_file(remote, &shared.chunks, &shared.cache.files, partial, w.id, w.size, w.have).await;
            ((w.path, w.id), got)
        })
        .buffer_unordered(IN_FLIGHT)
        .filter_map(|(key, r)| async move { r.ok().map(|got| (key, got)) })
        .collect()
        .await;
    out.extend(fetched);
    out
}

/// Fetches small files in one request, writes one temp file per entry (its
/// hash checked) and syncs them all at once.
async fn small_files(shared: &Shared, remote: &Remote, group: &[Wanted]) -> Result<Prefetched, ApiError> {
    let mut ids: Vec<ContentHash> = group.iter().map(|w| w.id).collect();
    ids.sort();
    ids.dedup();
    let answer = remote.manifests(&ids).await?;
    let by_id: HashMap<ContentHash, ManifestResponse> = answer.manifests.into_iter().map(|m| (m.id, m)).collect();
    let wants: Vec<(RelPath, ContentHash, u64)> = group.iter().map(|w| (w.path.clone(), w.id, w.size)).collect();
    let tmp = shared.cache.tmp.clone();
    let written = tokio::task::spawn_blocking(move || -> std::io::Result<Prefetched> {
        let mut out = Prefetched::new();
        for (path, id, size) in wants {
            let Some(m) = by_id.get(&id) else { continue };
            let file = tempfile::Builder::new().prefix("ahead-").tempfile_in(&tmp)?.into_temp_path().keep()?;
            match assemble(m, size, &file) {
                Ok(list) => drop(out.insert((path, id), (file, list))),
                Err(e) => {
                    tracing::debug!(%id, "a small file fetched ahead is unusable ({e}); fetched again when applied");
                    let _ = std::fs::remove_file(&file);
                }
            }
        }
        sync_all(out.values().map(|(file, _)| file.as_path()).collect())?;
        Ok(out)
    })
    .await
    .map_err(|e| ApiError::Local(std::io::Error::other(e)))??;
    Ok(written)
}

/// Fsyncs `files` from a few threads at once: the filesystem commits
/// concurrent fsyncs together, so many small files cost about one. (A
/// syncfs would also wait for every other program's writes on the disk.)
fn sync_all(files: Vec<&std::path::Path>) -> std::io::Result<()> {
    const THREADS: usize = 8;
    let per = files.len().div_ceil(THREADS).max(1);
    std::thread::scope(|s| {
        let workers: Vec<_> = files
            .chunks(per)
            .map(|part| s.spawn(move || part.iter().try_for_each(|f| std::fs::File::open(f)?.sync_all())))
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().unwrap_or_else(|_| Err(std::io::Error::other("fsync thread panicked"))))
    })
}

/// Writes one small file from its manifest; returns its chunk list.
fn assemble(m: &ManifestResponse, size: u64, partial: &std::path::Path) -> std::io::Result<ChunkList> {
    let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let list = list_of(m, None, size).map_err(bad)?;
    let frames = inline_decode(m.inline.as_deref().unwrap_or_default()).map_err(|e| bad(e.0))?;
    write_inline(partial, &list, &frames)?;
    Ok(list)
}
