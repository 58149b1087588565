//! The change watcher: a background task that follows the hub's change feed
//! and brings each change into the local tree and cache.
//!
//! At start (and whenever something went out of step) it reconciles with the
//! hub's tree. Then it long-polls `changes?since=cursor`. Content is
//! downloaded to a temp file (hash checked, fsynced) and renamed over the cache
//! file, so open handles keep the old copy and no reader sees a partial file;
//! then the kernel's caches are invalidated. Paths with queued local changes
//! are left alone (deferred) until the queue drains: local work is never
//! overwritten by a remote update.
use crate::client::{refused_token_message, ApiError, Remote, FEED_WAIT};
use crate::invalidate::Inval;
use crate::state::{Shared, State};
use crate::tree::{Kind, Node};
use crate::upload::Backoff;
use ssync_common::api::{Entry, EntryKind};
use ssync_common::RelPath;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const CURSOR_KEY: &str = "cursor";

/// How often an idle mount compares its tree's digests with the hub's.
const ANTI_ENTROPY: std::time::Duration = std::time::Duration::from_secs(15);

pub async fn run(shared: Arc<Shared>, remote: Remote, cancel: CancellationToken) {
    let mut cursor: u64 =
        shared.state.lock().setting(CURSOR_KEY).ok().flatten().and_then(|c| c.parse().ok()).unwrap_or(0);
    let mut need_full = true;
    let mut backoff = Backoff::new();
    let mut last_compare = tokio::time::Instant::now();
    loop {
        let compare_now = {
            let mut st = shared.state.lock();
            if std::mem::take(&mut st.needs_reconcile) {
                need_full = true;
            }
            // Anti-entropy: while idle, compare digests with the hub's now and
            // then, so any divergence heals (and is logged) instead of lasting.
            st.pending.is_empty() && last_compare.elapsed() >= ANTI_ENTROPY && !need_full
        };
        if compare_now {
            last_compare = tokio::time::Instant::now();
            let done = tokio::select! {
                r = crate::anti_entropy::compare(&shared, &remote, cursor) => r,
                _ = cancel.cancelled() => return,
            };
            fetch_soon(&shared);
            if let Err(e) = done {
                if failed(&shared, &e, &cancel, &mut backoff).await {
                    return;
                }
                continue;
            }
        }
        if need_full {
            last_compare = tokio::time::Instant::now();
            let done = tokio::select! {
                r = reconcile(&shared, &remote, cursor, Scope::Tree) => r,
                _ = cancel.cancelled() => return,
            };
            fetch_soon(&shared);
            match done {
                Ok(None) => {
                    cancel.cancelled().await;
                    return;
                }
                Ok(Some(c)) => {
                    cursor = c;
                    need_full = false;
                    save_cursor(&shared, cursor);
                    shared.hub_answered();
                    backoff.reset();
                }
                Err(e) => {
                    if failed(&shared, &e, &cancel, &mut backoff).await {
                        return;
                    }
                    continue;
                }
            }
        }
        tokio::select! {
            page = remote.changes(cursor, FEED_WAIT) => match page {
                Ok(page) if page.cursor < cursor => {
                    // Reconciling with a hub that lost its history would delete
                    // local files it no longer has: stop following instead.
                    refuse_hub_behind(&shared, cursor, page.cursor);
                    cancel.cancelled().await;
                    return;
                }
                Ok(page) => {
                    shared.hub_answered();
                    backoff.reset();
                    // This mount's own changes coming back: the local state already
                    // holds them, or something newer (applying them would bring
                    // back a lock file renamed away since, say).
                    let news = page.entries.into_iter().filter(|e| !shared.is_own(e)).collect();
                    let applied = apply_all(&shared, &remote, news, false).await;
                    fetch_soon(&shared);
                    match applied {
                        Ok(()) => {
                            cursor = page.cursor;
                            save_cursor(&shared, cursor);
                        }
                        Err(e) => if failed(&shared, &e, &cancel, &mut backoff).await { return; },
                    }
                }
                Err(e) => if failed(&shared, &e, &cancel, &mut backoff).await { return; },
            },
            _ = shared.wake_watcher.notified() => {
                if let Err(e) = apply_deferred(&shared, &remote).await {
                    tracing::debug!("deferred changes not applied yet: {e}");
                }
                fetch_soon(&shared);
            }
            _ = cancel.cancelled() => return,
        }
    }
}

/// Waits `d` (a backoff step), less if woken; true when cancelled.
async fn sleep_or_cancel(shared: &Shared, cancel: &CancellationToken, d: std::time::Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = shared.wake_watcher.notified() => false,
        _ = cancel.cancelled() => true,
    }
}

fn save_cursor(shared: &Shared, cursor: u64) {
    let mut st = shared.state.lock();
    st.set_setting(CURSOR_KEY, cursor.to_string());
    // Past the cursor, no older news of these paths can arrive any more.
    st.own_news.retain(|_, v| *v > cursor);
}

/// Applies `entries` in order, their contents fetched ahead; `counted`
/// shows the progress in `ssync status` (a tree page at start).
async fn apply_all(shared: &Shared, remote: &Remote, entries: Vec<Entry>, counted: bool) -> Result<(), ApiError> {
    use std::sync::atomic::Ordering::Relaxed;
    let s = &shared.status;
    if counted {
        s.sync_done.store(0, Relaxed);
        s.sync_total.store(entries.len() as u64, Relaxed);
    }
    let mut result = Ok(());
    let mut fetched = crate::prefetch::contents(shared, remote, &entries).await;
    for e in entries {
        result = apply(shared, remote, e, &mut fetched).await;
        if result.is_err() {
            break;
        }
        if counted {
            s.sync_done.fetch_add(1, Relaxed);
        }
    }
    crate::prefetch::discard(shared, fetched);
    if counted {
        s.sync_total.store(0, Relaxed);
    }
    result
}

/// Re-applies held-back entries once no queued op touches them, oldest first.
async fn apply_deferred(shared: &Shared, remote: &Remote) -> Result<(), ApiError> {
    let mut ready: Vec<Entry> = {
        let mut st = shared.state.lock();
        if !st.pending.is_empty() {
            return Ok(());
        }
        st.deferred.drain().map(|(_, e)| e).collect()
    };
    ready.sort_by_key(|e| e.version);
    apply_all(shared, remote, ready, false).await
}

/// After a failed exchange with the hub: a refused token halts syncing and
/// waits for the end (queued changes stay for a restart with a valid token);
/// anything else marks the hub offline and waits out the backoff. True when
/// the watcher must stop.
async fn failed(shared: &Shared, e: &ApiError, cancel: &CancellationToken, backoff: &mut Backoff) -> bool {
    if e.is_unauthorized() {
        shared.halt(&refused_token_message(e));
        cancel.cancelled().await;
        return true;
    }
    match e {
        // This machine's trouble, not the hub's: say so every time.
        ApiError::Local(_) => tracing::warn!("cannot apply the hub's changes yet, trying again: {e}"),
        _ => {
            tracing::debug!("exchange with the hub failed: {e}");
            let _ = shared.status.set_online(false, e);
        }
    }
    sleep_or_cancel(shared, cancel, backoff.step()).await
}

// Reconciling with a hub that lost its history would delete local files it no
// longer has: a mount stops following such a hub instead.
fn refuse_hub_behind(shared: &Shared, ours: u64, hubs: u64) {
    shared.halt(&crate::client::hub_behind_message(ours, hubs));
}

/// Brings the local tree in line with the hub's tree; returns its cursor,
/// or `None` when the hub is behind this cache and must not be followed.
/// What a reconcile compares: the whole tree, or the entries directly in one
/// folder (None: the root), which the digest compare found out of step.
#[derive(Debug, Clone)]
pub(crate) enum Scope {
    Tree,
    Folder(Option<RelPath>),
}

impl Scope {
    fn covers(&self, path: &RelPath) -> bool {
        match self {
            Scope::Tree => true,
            Scope::Folder(dir) => path.parent().as_ref() == dir.as_ref(),
        }
    }
}

/// Brings the local tree in line with the hub's within `scope`. Returns the
/// cursor to follow the feed from (a folder's compare leaves it as it was),
/// or None when the hub is behind this mount.
pub(crate) async fn reconcile(
    shared: &Shared,
    remote: &Remote,
    cursor: u64,
    scope: Scope,
) -> Result<Option<u64>, ApiError> {
    // The cursor can lag what the queue already recorded: count node versions
    // too, read before asking, since uploads may finish while the tree is on its way.
    let known = shared.state.lock().tree.nodes().map(|n| n.base_version).max().unwrap_or(0).max(cursor);
    let page = match &scope {
        Scope::Tree => remote.tree().await?,
        Scope::Folder(dir) => remote.list(dir.as_ref()).await?,
    };
    if page.cursor < known {
        refuse_hub_behind(shared, known, page.cursor);
        return Ok(None);
    }
    let live: HashSet<RelPath> = page.entries.iter().map(|e| e.path.clone()).collect();
    let finished_before = shared.state.lock().pending.finished();
    let (own_missing, entries) = split_own_missing(shared, page.entries);
    apply_all(shared, remote, entries, true).await?;
    let mut st = shared.state.lock();
    // Entries this mount made that it no longer has: its later state (a
    // delete or rename whose op finished while the tree was on its way, or
    // one whose answer never arrived) wins.
    let raced = st.pending.finished() != finished_before;
    let mut corrected = 0;
    for e in own_missing {
        if raced || st.pending.touches_path(&e.path) || st.tree.resolve(&e.path).is_some() {
            continue;
        }
        corrected += 1;
        tracing::warn!(path = %e.path, version = e.version, "the hub has an entry this mount made and no longer has; sending its delete");
        if let Err(err) = st.queue_delete_at(e.kind, &e.path, e.version) {
            tracing::error!(path = %e.path, "cannot queue a delete: {err}");
        }
    }
    // Local entries the hub no longer has, which hold nothing unsent: deleted remotely.
    let mut gone: Vec<(RelPath, u64)> = st
        .tree
        .nodes()
        // A node at a version newer than the page was sent after it was read.
        .filter(|n| n.base_version > 0 && n.base_version <= page.cursor && n.parent != 0)
        .filter_map(|n| st.tree.path_of(n.ino).map(|p| (p, n.ino)))
        .filter(|(p, _)| scope.covers(p) && !live.contains(p))
        .collect();
    gone.sort();
    // Held-back news of paths the hub no longer has, older than this page, is stale.
    st.deferred.retain(|p, d| !(scope.covers(p) && !live.contains(p) && d.version <= page.cursor));
    let mut invals = Vec::new();
    for (path, ino) in gone {
        if st.tree.live(ino).is_none() || st.is_busy(ino) || st.pending.touches_path(&path) {
            continue;
        }
        corrected += 1;
        tracing::info!(%path, ino, "the hub no longer has this entry; removed here too");
        if let Err(e) = remove_local(&mut st, shared, ino, &mut invals) {
            tracing::error!(%path, "cannot remove a file deleted on the hub: {e}");
        }
    }
    // Local entries the hub may not have (never sent, or a file marked
    // dirty) that no queued op will send: send them, as a restart would.
    // Folders first, parents before children.
    let mut orphans: Vec<(usize, u64, bool)> = st
        .tree
        .nodes()
        .filter(|n| n.parent != 0 && n.open_handles == 0 && n.is_synced())
        .filter(|n| if n.is_dir() { n.base_version == 0 } else { n.base_version == 0 || n.dirty })
        .filter(|n| !st.pending.touches_ino(n.ino))
        .filter_map(|n| Some((st.tree.path_of(n.ino)?.components().count(), n.ino, n.is_dir())))
        .collect();
    orphans.sort_by_key(|(depth, _, is_dir)| (!*is_dir, *depth));
    for (_, ino, is_dir) in orphans {
        corrected += 1;
        match (is_dir, st.tree.path_of(ino)) {
            (true, Some(path)) => st.persist(&[], vec![State::op(crate::queue::OpKind::Mkdir, ino, path)]),
            (true, None) => continue,
            (false, _) => {
                st.queue_upload(ino);
            }
        }
        tracing::warn!(ino, "a local entry the hub lacks was not queued; queued it");
    }
    if corrected > 0 {
        tracing::warn!(corrected, ?scope, "reconcile found local entries out of step with the hub and corrected them");
        shared.wake_uploader.notify_one();
    }
    drop(st);
    shared.invalidate(invals);
    tracing::debug!(cursor = page.cursor, ?scope, "reconciled with the hub's tree");
    Ok(Some(match scope {
        Scope::Tree => page.cursor,
        Scope::Folder(_) => cursor,
    }))
}

enum Plan {
    Done,
    /// Download it; `have`: (cache file, id) of the version held now, to reuse its chunks.
    Fetch {
        have: Option<(u64, ssync_common::ContentHash)>,
    },
}

/// Applies one remote entry: metadata changes at once, content after a download.
async fn apply(
    shared: &Shared,
    remote: &Remote,
    e: Entry,
    prefetched: &mut crate::prefetch::Prefetched,
) -> Result<(), ApiError> {
    let plan = {
        let mut st = shared.state.lock();
        let mut invals = Vec::new();
        let plan = plan_or_apply(&mut st, shared, &e, None, &mut invals);
        drop(st);
        shared.invalidate(invals);
        plan
    };
    let Plan::Fetch { have } = plan else { return Ok(()) };
    let id = e.hash.expect("live file entries carry a hash");
    if shared.refused_contents.lock().contains(&id) {
        tracing::debug!(path = %e.path, %id, "content refused before; not fetched again");
        return Ok(());
    }
    let fetched = match prefetched.remove(&(e.path.clone(), id)) {
        // Fetched ahead with the rest of its page.
        Some((file, list)) if file.exists() => Ok((file, list)),
        _ => {
            let partial = shared.cache.partial(&id);
            crate::chunk_download::fetch_file(remote, &shared.chunks, &shared.cache.files, partial, id, e.size, have)
                .await
        }
    };
    let partial = shared.cache.partial(&id);
    let (partial, list) = match fetched {
        Ok(got) => got,
        Err(err) if err.is_retryable() => return Err(err),
        Err(err) => {
            // Retrying cannot help; skip it rather than stall the whole feed,
            // and say so once.
            if shared.refused_contents.lock().insert(id) {
                tracing::error!(path = %e.path, %id, "cannot take this file from the hub, skipped: {err}");
            }
            let _ = std::fs::remove_file(&partial);
            return Ok(());
        }
    };
    shared.status.downloads_done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut st = shared.state.lock();
    let mut invals = Vec::new();
    plan_or_apply(&mut st, shared, &e, Some(partial.clone()), &mut invals);
    let installed = st.tree.resolve(&e.path).filter(|i| st.tree.get(*i).is_some_and(|n| n.hash == e.hash && !n.dirty));
    drop(st);
    if partial != shared.cache.partial(&id) {
        let _ = std::fs::remove_file(&partial); // a copy fetched ahead that a busy file did not take
    }
    shared.invalidate(invals);
    // If the file was busy the assembled copy stays in partial/ for the next
    // attempt, which then needs no network (unclaimed ones go after a day).
    if let Some(ino) = installed {
        if let Err(err) = shared.chunks.record(ino, &list) {
            tracing::warn!(path = %e.path, "cannot index the chunks of a downloaded file: {err}");
        }
    }
    Ok(())
}

/// Decides what `e` means for the local tree and applies it when no download
/// is needed, or when `fetched` holds the downloaded content.
fn plan_or_apply(
    st: &mut State,
    shared: &Shared,
    e: &Entry,
    fetched: Option<PathBuf>,
    invals: &mut Vec<Inval>,
) -> Plan {
    // Local changes come first; a held-back entry is applied once they are
    // sent, unless it is this mount's own (the local state is newer).
    if st.own_news.get(&e.path).is_some_and(|v| e.version < *v) {
        return Plan::Done; // older than what this mount itself made of the path since
    }
    if st.pending.touches_path(&e.path) {
        defer(st, shared, e);
        return Plan::Done;
    }
    st.drop_superseded(&e.path, e.version);
    let local = st.tree.resolve(&e.path);
    if let Some(ino) = local {
        let n = st.tree.get(ino).expect("resolved nodes exist");
        // Our own change coming back, or older news. At the same version a
        // clean node must also hold the same bytes; if not, fetch them again.
        if n.base_version > e.version || (n.base_version == e.version && (n.hash == e.hash || n.dirty)) {
            return Plan::Done;
        }
        if st.is_busy(ino) {
            defer(st, shared, e);
            return Plan::Done;
        }
    }
    let local_kind = local.and_then(|i| st.tree.get(i)).map(|n| n.kind);
    let result = match (e.deleted, e.kind, local_kind) {
        (true, _, None) => Ok(Plan::Done),
        (true, _, Some(_)) => remove_local(st, shared, local.expect("kind implies node"), invals).map(|_| Plan::Done),
        (false, EntryKind::Dir, Some(Kind::Dir)) => {
            update_meta(st, shared, local.expect("kind implies node"), e, invals)
        }
        (false, kind, Some(local_kind))
            if kind == local_kind
                && st.tree.get(local.expect("kind implies node")).is_some_and(|n| n.hash == e.hash)
                && updates_in_place(st, local.expect("kind implies node")) =>
        {
            update_meta(st, shared, local.expect("kind implies node"), e, invals)
        }
        (false, EntryKind::Dir, _) => {
            if let Some(ino) = local {
                if let Err(err) = remove_local(st, shared, ino, invals) {
                    tracing::error!(path = %e.path, "cannot replace a file by a folder: {err}");
                    return Plan::Done;
                }
            }
            create_local(st, shared, e, None, invals).map(|_| Plan::Done)
        }
        (false, EntryKind::File | EntryKind::Symlink, _) => match fetched {
            None if !fetch_now(st, e) => placeholder(st, shared, e, local, invals).map(|_| Plan::Done),
            None => Ok(Plan::Fetch {
                have: local
                    .and_then(|i| st.tree.get(i))
                    .filter(|n| n.has_content())
                    .and_then(|n| Some((n.ino, n.hash?))),
            }),
            Some(tmp) => install(st, shared, e, local, tmp, invals).map(|_| Plan::Done),
        },
    };
    result.unwrap_or_else(|err| {
        // Bigger than this machine's filesystem can hold (a false size from
        // an old hub, or a file beyond ext4's 16 TiB): no reconcile changes
        // that, so refuse this entry once and go on with the feed.
        if let (Some(id), libc::EFBIG) = (e.hash, err.errno()) {
            if shared.refused_contents.lock().insert(id) {
                tracing::error!(path = %e.path, size = e.size, "cannot hold this file here, skipped: {err}");
            }
            return Plan::Done;
        }
        tracing::error!(path = %e.path, "cannot apply a change from the hub: {err}");
        st.needs_reconcile = true;
        Plan::Done
    })
}

/// Whether `e`'s content is fetched before the entry is applied: without a
/// cache limit, always; with one, never for files (metadata first: a new
/// mount lists the whole tree before any content arrives). Small and pinned
/// files are then fetched at once in the background (`State::fetch_soon`),
/// the rest when read (on_demand.rs).
fn fetch_now(st: &State, e: &Entry) -> bool {
    st.limit.is_none() || e.kind != EntryKind::File
}

/// Whether the watcher leaves `e`'s content for later (the prefetcher must
/// not fetch it).
pub(crate) fn left_for_later(st: &State, e: &Entry) -> bool {
    !fetch_now(st, e)
}

/// Fetches in the background what the last entries applied want soon.
fn fetch_soon(shared: &Arc<Shared>) {
    let inos = std::mem::take(&mut shared.state.lock().fetch_soon);
    if !inos.is_empty() {
        shared.on_demand.spawn_ensure(shared.clone(), inos, 0..u64::MAX);
    }
}

/// Applies `e` with none of its content here: a sparse cache file of its
/// size stands in, filled in as it is read.
fn placeholder(
    st: &mut State,
    shared: &Shared,
    e: &Entry,
    local: Option<u64>,
    invals: &mut Vec<Inval>,
) -> crate::error::FsResult<()> {
    let tmp = tempfile::Builder::new().prefix("hole-").tempfile_in(&shared.cache.tmp)?;
    tmp.as_file().set_len(e.size)?;
    let tmp = tmp.into_temp_path().keep().map_err(|err| err.error)?;
    install(st, shared, e, local, tmp, invals)?;
    // An empty file is whole: nothing to fetch.
    if let Some(n) = st.tree.resolve(&e.path).and_then(|i| st.tree.get_mut(i)).filter(|_| e.size > 0) {
        n.cached = crate::residency::Residency::none();
        let ino = n.ino;
        st.persist(&[ino], vec![]);
        if e.size <= crate::config::EAGER_MAX || st.tree.is_pinned(ino) {
            st.fetch_soon.push(ino);
        }
    }
    Ok(())
}

/// From a tree page, this mount's own entries that have no local node (set
/// apart: see `reconcile`), and the rest.
fn split_own_missing(shared: &Shared, entries: Vec<Entry>) -> (Vec<Entry>, Vec<Entry>) {
    let st = shared.state.lock();
    entries.into_iter().partition(|e| shared.is_own(e) && !e.deleted && st.tree.resolve(&e.path).is_none())
}

/// Holds `e` back until local changes are sent; this mount's own entries
/// are dropped instead (the local state is newer).
fn defer(st: &mut State, shared: &Shared, e: &Entry) {
    if shared.is_own(e) {
        return;
    }
    let newer = st.deferred.get(&e.path).is_none_or(|d| d.version < e.version);
    if newer {
        st.deferred.insert(e.path.clone(), e.clone());
    }
}

fn update_meta(
    st: &mut State,
    shared: &Shared,
    ino: u64,
    e: &Entry,
    invals: &mut Vec<Inval>,
) -> crate::error::FsResult<Plan> {
    let n = st.tree.get_mut(ino).expect("caller resolved it");
    n.base_version = e.version;
    n.mode = e.mode;
    n.mtime_ns = e.mtime_ns;
    take_carried(shared, n, e);
    st.persist(&[ino], vec![]);
    invals.push(Inval::Inode(ino));
    Ok(Plan::Done)
}

/// `n` gets the `user.` extended attributes `e` has on the hub (keeping its
/// local-only ones) and, with `--sync-owners`, its owner (see accounts.rs).
fn take_carried(shared: &Shared, n: &mut Node, e: &Entry) {
    if let Some(o) = e.owner.as_ref().filter(|_| shared.sync_owners) {
        n.owner = Some(shared.accounts.to_local(o));
    }
    let hub = e.xattrs.clone().unwrap_or_default();
    let merged = n.xattrs.as_deref().cloned().unwrap_or_default().with_synced(&hub);
    n.xattrs = (!merged.is_empty()).then(|| Box::new(merged));
    n.touch_ctime();
}

/// The parent folder of `path`, created locally (mkdir -p) if missing.
pub(crate) fn ensure_parent(st: &mut State, path: &RelPath) -> crate::error::FsResult<u64> {
    let mut cur = crate::tree::ROOT;
    for name in path.parent().iter().flat_map(|p| p.components().map(str::to_string).collect::<Vec<_>>()) {
        cur = match st.tree.child(cur, &name) {
            Some(ino) if st.tree.get(ino).is_some_and(Node::is_dir) => ino,
            Some(_) => return Err(crate::error::FsError::NotDir),
            None => {
                // Its own entry is elsewhere in the feed; a reconcile gives it its version.
                st.needs_reconcile = true;
                let mut n = Node::new(Kind::Dir, cur, &name, 0o755, crate::fs::now_ns());
                n.ino = st.new_ino()?;
                let ino = n.ino;
                st.tree.insert(n);
                st.note_node(ino);
                ino
            }
        };
    }
    Ok(cur)
}

fn create_local(
    st: &mut State,
    shared: &Shared,
    e: &Entry,
    content: Option<PathBuf>,
    invals: &mut Vec<Inval>,
) -> crate::error::FsResult<()> {
    let parent = ensure_parent(st, &e.path)?;
    let mut n = Node::new(e.kind, parent, e.path.file_name(), e.mode, e.mtime_ns);
    n.base_version = e.version;
    n.size = e.size;
    n.hash = e.hash;
    take_carried(shared, &mut n, e);
    // The node is recorded only once its content is in place: a crash in
    // between leaves an unused file, never a node without content.
    n.ino = st.new_ino()?;
    if let Some(tmp) = &content {
        std::fs::rename(tmp, shared.cache.file(n.ino))?;
    }
    let (ino, name) = (n.ino, n.name.clone());
    st.tree.insert(n);
    st.note_node(ino);
    invals.push(Inval::Entry { parent, name });
    invals.push(Inval::Inode(parent));
    Ok(())
}

fn install(
    st: &mut State,
    shared: &Shared,
    e: &Entry,
    local: Option<u64>,
    tmp: PathBuf,
    invals: &mut Vec<Inval>,
) -> crate::error::FsResult<()> {
    match local.and_then(|i| st.tree.get(i)).map(|n| n.kind) {
        // Same kind: new content in place. A kind that changes gets a new
        // inode: the kernel does not let an inode change its type.
        Some(kind) if kind == e.kind && updates_in_place(st, local.expect("kind implies node")) => {
            let ino = local.expect("kind implies node");
            std::fs::rename(&tmp, shared.cache.file(ino))?;
            let n = st.tree.get_mut(ino).expect("resolved above");
            n.base_version = e.version;
            n.size = e.size;
            n.hash = e.hash;
            n.mode = e.mode;
            n.mtime_ns = e.mtime_ns;
            n.dirty = false;
            n.cached = crate::residency::Residency::full();
            take_carried(shared, n, e);
            st.persist(&[ino], vec![]);
            invals.push(Inval::Inode(ino));
            Ok(())
        }
        Some(_) => {
            remove_local(st, shared, local.expect("kind implies node"), invals)?;
            create_local(st, shared, e, Some(tmp), invals)
        }
        None => create_local(st, shared, e, Some(tmp), invals),
    }
}

/// Whether a remote change to `ino` may change it where it is. One name of
/// a hard-linked file (see `SyncFs::link`) leaves its group instead: the
/// change is that name's alone, so it becomes a file of its own, with a new
/// inode. So does a local special file (never sent) that the hub's entry
/// of the same name replaces.
fn updates_in_place(st: &State, ino: u64) -> bool {
    st.tree.get(ino).is_some_and(|n| n.is_synced()) && !st.tree.has_other_names(ino)
}

/// Removes `ino` and its subtree from the local tree and cache.
pub(crate) fn remove_local(
    st: &mut State,
    shared: &Shared,
    ino: u64,
    invals: &mut Vec<Inval>,
) -> crate::error::FsResult<()> {
    let Some(n) = st.tree.get(ino) else { return Ok(()) };
    let (parent, name, kernel_ino) = (n.parent, n.name.clone(), n.kernel_ino());
    let mut all = st.tree.subtree(ino);
    all.reverse();
    for i in all {
        if st.tree.get(i).is_some_and(Node::has_content) {
            shared.reaper.remove(shared.cache.file(i));
        }
        st.tree.remove(i);
        st.note_node(i);
    }
    invals.push(Inval::Delete { parent, child: kernel_ino, name });
    invals.push(Inval::Inode(parent));
    Ok(())
}
