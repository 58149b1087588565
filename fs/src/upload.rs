//! The uploader: a background task that sends queued operations to the hub,
//! in order, each with the base version its node has now. Small changes go
//! in batches; one large upload at a time goes on its own lane, and the ops
//! behind it that do not depend on it pass it (a 4 KiB file need not wait
//! for a 1 GiB one).
//!
//! Transport failures retry the same op with backoff (capped at 2 s), so a
//! returning hub is noticed quickly and nothing is skipped. A refusal (409) is
//! resolved without losing bytes: the local version becomes a conflict copy
//! (or, for a refused rename, is re-sent as new files) and the hub's version is
//! pulled in by a reconcile.
use crate::chunk_upload::{self, FileMeta};
use crate::client::{refused_token_message, ApiError, Remote};
use crate::handles::FileStamp;
use crate::queue::{Op, OpKind};
use crate::resolve;
use crate::state::{Shared, State};
use ssync_common::api::{
    codes, ContentKind, DeleteRequest, Entry, ExchangeRequest, MkdirRequest, MutationResponse, RenameRequest,
    SetAttrRequest,
};
use ssync_common::{ChunkList, ContentHash, RelPath};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) enum Request {
    Upload { meta: FileMeta, file: PathBuf, gen: u64, ino: u64, base_id: Option<ContentHash> },
    Mkdir(MkdirRequest),
    Delete(DeleteRequest),
    Rename(RenameRequest),
    Exchange(ExchangeRequest),
    SetAttr(SetAttrRequest),
}

pub struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    /// A returning hub is noticed within a second; retries against a hub that
    /// refuses connections cost next to nothing.
    const MAX: Duration = Duration::from_secs(1);
    pub fn new() -> Self {
        Backoff { next: Self::FIRST }
    }
    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
    pub fn step(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        d
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

/// A large upload sent on its own task, so that the ops behind it which do
/// not depend on it (small files elsewhere, folders, renames) keep flowing.
struct Lane {
    op: Op,
    task: tokio::task::JoinHandle<Result<(), Failed>>,
}

pub async fn run(shared: Arc<Shared>, remote: Remote, cancel: CancellationToken) {
    let mut backoff = Backoff::new();
    let mut lane: Option<Lane> = None;
    loop {
        if cancel.is_cancelled() {
            if let Some(l) = lane.take() {
                l.task.abort();
            }
            return;
        }
        if shared.status.halted.load(std::sync::atomic::Ordering::Acquire) {
            tracing::warn!(queued = shared.state.lock().pending.len(), "syncing stopped; queued changes are kept");
            cancel.cancelled().await;
            return;
        }
        if let Some(l) = lane.take_if(|l| l.task.is_finished()) {
            let joined = l.task.await;
            if lane_done(&shared, &remote, &cancel, &mut backoff, l.op, joined).await {
                return;
            }
            continue;
        }
        gather(&shared).await;
        let job = {
            let mut st = shared.state.lock();
            next_job(&mut st, &shared, lane.as_ref().map(|l| &l.op))
        };
        let Some((op, request, waiting)) = job else {
            // Queue drained (or all that is left waits for the lane): held-back
            // remote changes, or a reconcile, can go now.
            let watcher_has_work = {
                let st = shared.state.lock();
                !st.deferred.is_empty() || st.needs_reconcile
            };
            if watcher_has_work && lane.is_none() {
                shared.wake_watcher.notify_one();
            }
            let lane_ends = async {
                match &mut lane {
                    Some(l) => (&mut l.task).await,
                    None => std::future::pending().await,
                }
            };
            let joined = tokio::select! {
                _ = shared.wake_uploader.notified() => None,
                j = lane_ends => Some(j),
                _ = tokio::time::sleep(Duration::from_secs(5)) => None,
                _ = cancel.cancelled() => return,
            };
            // A join handle gives its result once: it is handled here.
            if let (Some(joined), Some(l)) = (joined, lane.take()) {
                if lane_done(&shared, &remote, &cancel, &mut backoff, l.op, joined).await {
                    return;
                }
            }
            continue;
        };
        let Some(request) = request else {
            tracing::debug!(op = op.kind.as_str(), path = %op.path, ino = op.ino, "nothing to send for this op");
            finish(&shared, &op, None, None, 0);
            continue;
        };
        if !crate::batch::takes(&request) {
            // next_job hands out a large upload only while the lane is free.
            tracing::debug!(op = op.id, path = %op.path, "large upload on its own lane");
            let (sh, re, o) = (shared.clone(), remote.clone(), op.clone());
            let task = tokio::spawn(async move { send_one(&sh, &re, o, request).await });
            lane = Some(Lane { op, task });
            continue;
        }
        let sent = crate::batch::send(&shared, &remote, op, request, &waiting).await;
        shared.state.lock().pending.end_sending(lane.as_ref().map(|l| l.op.id));
        if after_send(&shared, &remote, &cancel, &mut backoff, sent).await {
            return;
        }
    }
}

/// The lane's upload ended: handled like any send. True when the uploader
/// must stop.
async fn lane_done(
    shared: &Shared,
    remote: &Remote,
    cancel: &CancellationToken,
    backoff: &mut Backoff,
    op: Op,
    joined: Result<Result<(), Failed>, tokio::task::JoinError>,
) -> bool {
    let sent = match joined {
        Ok(sent) => sent,
        Err(e) => Err(Failed { op, err: ApiError::Local(std::io::Error::other(e)), sent: None, gen: 0 }),
    };
    shared.state.lock().pending.end_sending(None);
    after_send(shared, remote, cancel, backoff, sent).await
}

/// Handles the outcome of a send: retries with backoff, resolves a refusal.
/// True when the uploader must stop.
async fn after_send(
    shared: &Shared,
    remote: &Remote,
    cancel: &CancellationToken,
    backoff: &mut Backoff,
    sent: Result<(), Failed>,
) -> bool {
    let Err(Failed { op, err, sent, gen }) = sent else {
        backoff.reset();
        shared.hub_answered();
        return false;
    };
    match err {
        ApiError::ChangedWhileRead => {
            // What was read may be torn: read it again once the writes pause
            // (a close wakes this task at once).
            tracing::debug!(op = op.id, path = %op.path, "written while read; reading it again");
            sleep_or_cancel(shared, cancel, Duration::from_millis(20)).await
        }
        // This machine's trouble (a cache file unreadable, content that
        // could not be fetched first): the hub is not offline because of it.
        ApiError::Local(e) => {
            tracing::warn!(op = op.id, path = %op.path, "cannot read what to send, trying again: {e}");
            sleep_or_cancel(shared, cancel, backoff.step()).await
        }
        e if e.is_retryable() => {
            let _ = shared.status.set_online(false, &e);
            sleep_or_cancel(shared, cancel, backoff.step()).await
        }
        e if e.is_unauthorized() => {
            shared.halt(&refused_token_message(&e));
            false
        }
        e => {
            backoff.reset();
            shared.hub_answered();
            if rebase_on_own_change(shared, &op, &e) {
                return false;
            }
            match identical_on_hub(&e, sent) {
                // The same bytes are already there (a retried request, or both
                // sides wrote the same): adopt the hub's version, make no copy.
                Some(current) => {
                    finish(shared, &op, Some(&MutationResponse { entries: vec![current] }), sent, gen);
                    false
                }
                None => match resolve::decide(shared, remote, &op, &e).await {
                    Ok(decision) => {
                        if resolve::apply(shared, &op, &e, decision) {
                            finish(shared, &op, None, None, 0);
                        }
                        shared.wake_watcher.notify_one();
                        false
                    }
                    Err(lookup) => {
                        let _ = shared.status.set_online(false, &lookup);
                        sleep_or_cancel(shared, cancel, backoff.step()).await
                    }
                },
            }
        }
    }
}

/// While changes are still streaming in (tar x, git checkout), waits a
/// little so that they go in one batch: one request and one fsync on the hub
/// for dozens of files instead of one or two each. A lone change waits at
/// most `GATHER_QUIET`; a stream, at most `GATHER_MAX`.
async fn gather(shared: &Shared) {
    const GATHER_QUIET: Duration = Duration::from_millis(1);
    const GATHER_MAX: Duration = Duration::from_millis(10);
    let start = std::time::Instant::now();
    loop {
        let streaming = {
            let st = shared.state.lock();
            let len = st.pending.len();
            len > 0 && len < crate::batch::MAX_ITEMS && st.pending.since_last_push() < GATHER_QUIET
        };
        if !streaming || start.elapsed() >= GATHER_MAX {
            return;
        }
        tokio::time::sleep(GATHER_QUIET).await;
    }
}

/// An op the hub did not take: why, and what it sent (an upload's content
/// id and the write generation it read).
pub(crate) struct Failed {
    pub op: Op,
    pub err: ApiError,
    pub sent: Option<ContentHash>,
    pub gen: u64,
}

/// Sends one op on its own, and records what the hub took.
async fn send_one(shared: &Shared, remote: &Remote, op: Op, request: Request) -> Result<(), Failed> {
    let gen = match &request {
        Request::Upload { gen, .. } => *gen,
        _ => 0,
    };
    tracing::trace!(op = op.id, path = %op.path, "sending");
    let (result, sent_list) = send(shared, remote, request).await;
    let sent = sent_list.as_ref().map(|l| l.id());
    match result {
        Ok(resp) => {
            finish(shared, &op, Some(&resp), sent, gen);
            remember_chunks(shared, &op, sent_list);
            Ok(())
        }
        Err(err) => Err(Failed { op, err, sent, gen }),
    }
}

/// A refusal caused by this mount's own earlier change is no conflict: an
/// answer that never arrived (the hub applied the change, the mount did not
/// hear), or its echo still on the way. The hub's state is then one this
/// mount made, and the local state descends from it, so the op is rebased on
/// it and sent again. Returns false for a real refusal (another mount's
/// change, or no progress to make).
fn rebase_on_own_change(shared: &Shared, op: &Op, e: &ApiError) -> bool {
    // A swap sent again after one the hub applied would swap back: whether
    // it took is for `resolve::decide` to find out.
    if e.code() != Some(codes::CONFLICT) || op.kind == OpKind::Exchange {
        return false;
    }
    let Some(cur) = e.current().filter(|c| shared.is_own(c)) else { return false };
    let ino = match () {
        _ if cur.path == op.path => op.ino,
        _ if op.path2.as_ref() == Some(&cur.path) && op.ino2 != 0 => op.ino2,
        _ => return false,
    };
    let mut st = shared.state.lock();
    let base = if cur.deleted { 0 } else { cur.version };
    let Some(n) = st.tree.get_mut(ino).filter(|n| n.base_version != base) else { return false };
    tracing::info!(path = %cur.path, op = op.kind.as_str(), from = n.base_version, to = base, "refused because of this mount's own earlier change; rebased on it");
    n.base_version = base;
    n.set_hub_id(if cur.deleted { None } else { cur.hash });
    st.persist(&[ino], vec![]);
    true
}

/// Waits `d` (a backoff step), less if woken; true when cancelled.
async fn sleep_or_cancel(shared: &Shared, cancel: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = shared.wake_uploader.notified() => false,
        _ = cancel.cancelled() => true,
    }
}

/// Takes the next op to send and builds its request; `None` as the request
/// means the op has nothing left to do. With a large upload on the lane,
/// that is the first op which depends neither on it nor on an op waiting for
/// it (returned too: a batch must not take ops that depend on those either),
/// and never a second large upload.
fn next_job(st: &mut State, shared: &Shared, lane: Option<&Op>) -> Option<(Op, Option<Request>, Vec<Op>)> {
    let (op, waiting) = match lane {
        None => (st.pending.front()?.clone(), Vec::new()),
        Some(l) => st.pending.next_beside(l)?,
    };
    let req = request_for(st, shared, &op);
    if lane.is_some() && req.as_ref().is_some_and(|r| !crate::batch::takes(r)) {
        return None;
    }
    st.begin_send(&op);
    Some((op, req, waiting))
}

/// A writer has the file open and it changed since the last close or fsync:
/// the cache file holds no state a program finished, so nothing is sent now
/// (the op ends); that writer's close queues the upload again.
fn mid_write(n: &crate::tree::Node, file: &std::path::Path) -> bool {
    let sealed_now = || {
        n.sealed.is_some_and(|(gen, stamp)| {
            gen == n.write_gen && std::fs::File::open(file).and_then(|f| FileStamp::of(&f)).ok() == Some(stamp)
        })
    };
    n.open_writers > 0 && !sealed_now()
}

/// The request that sends `op` as the local state is now; `None` when the
/// op has nothing to send.
pub(crate) fn request_for(st: &State, shared: &Shared, op: &Op) -> Option<Request> {
    let node = st.tree.get(op.ino).cloned();
    let unlinked = node.as_ref().is_none_or(|n| n.parent == 0 && n.ino != crate::tree::ROOT);
    match (op.kind, node) {
        // A folder has no content to upload (`of` is None): nothing to do.
        (OpKind::Upload, Some(n)) if !unlinked && !mid_write(&n, &shared.cache.file(n.ino)) => ContentKind::of(n.kind)
            .map(|kind| Request::Upload {
                meta: FileMeta {
                    path: op.path.clone(),
                    kind,
                    base: n.base_version,
                    mode: n.mode,
                    mtime_ns: n.mtime_ns,
                    owner: n.owner.map(|o| shared.accounts.to_wire(o)),
                    xattrs: Some(synced_xattrs(&n)),
                    node: None, // the path-keyed engine lets the hub keep or pick the node
                },
                file: shared.cache.file(n.ino),
                gen: n.write_gen,
                ino: n.ino,
                base_id: n.hash.filter(|_| n.base_version > 0),
            }),
        (OpKind::Mkdir, Some(n)) if !unlinked => Some(Request::Mkdir(MkdirRequest {
            path: op.path.clone(),
            base: n.base_version,
            mode: n.mode,
            mtime_ns: n.mtime_ns,
            owner: n.owner.map(|o| shared.accounts.to_wire(o)),
            xattrs: Some(synced_xattrs(&n)),
            node: None, // the path-keyed engine lets the hub keep or pick the node
        })),
        (OpKind::SetAttr, Some(n)) if !unlinked && n.base_version > 0 => Some(Request::SetAttr(SetAttrRequest {
            path: op.path.clone(),
            base: n.base_version,
            mode: Some(n.mode),
            mtime_ns: Some(n.mtime_ns),
            owner: n.owner.map(|o| shared.accounts.to_wire(o)),
            xattrs: Some(synced_xattrs(&n)),
        })),
        (OpKind::Delete, Some(n)) if n.base_version > 0 => {
            Some(Request::Delete(DeleteRequest { path: op.path.clone(), base: n.base_version }))
        }
        // The source never reached the hub (it is gone, or `next_job` queues
        // it as new): what the rename replaced must still go (see
        // `State::drop_ops_of`).
        (OpKind::Rename, n) if n.as_ref().is_none_or(|n| n.base_version == 0) => {
            let (target, path) = (st.tree.get(op.ino2)?, op.path2.clone()?);
            (target.base_version > 0).then_some(Request::Delete(DeleteRequest { path, base: target.base_version }))
        }
        (OpKind::Rename, Some(n)) if n.base_version > 0 => Some(Request::Rename(RenameRequest {
            from: op.path.clone(),
            to: op.path2.clone().expect("a rename op has a target"),
            base: n.base_version,
            to_base: st.tree.get(op.ino2).map_or(0, |t| t.base_version),
            to_parent: None, // the path-keyed engine has the hub make a missing folder
        })),
        // A side the hub may have known when the swap was queued (its create
        // was being sent) but never took: the other side's move is all the hub
        // must hear, and the later close or upload of this one creates it.
        (OpKind::Exchange, Some(n)) => {
            let (a, b) = (op.path.clone(), op.path2.clone().expect("an exchange op has a second path"));
            let rename =
                |from, to, base| Some(Request::Rename(RenameRequest { from, to, base, to_base: 0, to_parent: None }));
            match (n.base_version, st.tree.get(op.ino2).map_or(0, |m| m.base_version)) {
                (0, 0) => None,
                (a_base, 0) => rename(a, b, a_base),
                (0, b_base) => rename(b, a, b_base),
                (a_base, b_base) => Some(Request::Exchange(ExchangeRequest { a, b, a_base, b_base })),
            }
        }
        _ => None,
    }
}

/// The extended attributes of `n` that travel (all of them: empty clears the hub's).
fn synced_xattrs(n: &crate::tree::Node) -> ssync_common::xattrs::Xattrs {
    n.xattrs.as_ref().map(|x| x.synced()).unwrap_or_default()
}

/// Sends one request; for an upload, also returns the chunk list it sent.
async fn send(
    shared: &Shared,
    remote: &Remote,
    req: Request,
) -> (Result<MutationResponse, ApiError>, Option<ChunkList>) {
    let result = match req {
        Request::Upload { meta, file, ino, base_id, gen } => {
            // Sent again whole (a refused move re-sends a subtree as new):
            // bytes never fetched must come first, not the cache file's holes.
            let partial = shared.state.lock().tree.get(ino).is_some_and(|n| !n.cached.is_full());
            if partial {
                if let Err(e) = tokio::task::block_in_place(|| shared.on_demand.make_whole(shared, ino)) {
                    return (Err(ApiError::Local(std::io::Error::other(e.to_string()))), None);
                }
            }
            let stamp = |f: &std::path::Path| std::fs::File::open(f).and_then(|f| FileStamp::of(&f)).ok();
            let Some(before) = stamp(&file) else {
                // Removed since it was queued: an empty answer finishes the op.
                return (Ok(MutationResponse { entries: vec![] }), None);
            };
            let base = base_id.and_then(|id| shared.chunks.list_of(ino, &id).ok().flatten().map(|l| (id, l)));
            // Unchanged while read: no write through the daemon (the generation),
            // none through kernel passthrough (size and mtime; the stat above
            // makes the next write's mtime a fine-grained one).
            let still_current = || {
                shared.state.lock().tree.get(ino).is_some_and(|n| n.write_gen == gen) && stamp(&file) == Some(before)
            };
            return chunk_upload::upload_file(remote, file.clone(), &meta, base, &still_current).await;
        }
        Request::Mkdir(r) => remote.mkdir(&r).await,
        Request::Delete(r) => remote.delete(&r).await,
        Request::Rename(r) => remote.rename(&r).await,
        Request::Exchange(r) => remote.exchange(&r).await,
        Request::SetAttr(r) => remote.set_attr(&r).await,
    };
    (result, None)
}

fn identical_on_hub(err: &ApiError, sent: Option<ContentHash>) -> Option<Entry> {
    match err {
        ApiError::Rejected { body, .. } if body.code == codes::CONFLICT => {
            body.current.clone().filter(|c| !c.deleted && sent.is_some() && c.hash == sent)
        }
        _ => None,
    }
}

/// Records what the hub accepted and takes the op off the queue.
pub(crate) fn finish(shared: &Shared, op: &Op, resp: Option<&MutationResponse>, sent: Option<ContentHash>, gen: u64) {
    tracing::debug!(op = op.id, kind = op.kind.as_str(), path = %op.path, to = ?op.path2, ino = op.ino, ino2 = op.ino2, sent = ?sent,
        versions = ?resp.map(|r| r.entries.iter().map(|e| (e.path.as_str(), e.version, e.deleted)).collect::<Vec<_>>()), "op done");
    let mut st = shared.state.lock();
    let mut touched = vec![op.ino];
    if let Some(resp) = resp {
        match op.kind {
            OpKind::Upload => {
                if let (Some(e), Some(n)) = (resp.live_at(&op.path), st.tree.get_mut(op.ino)) {
                    n.base_version = e.version;
                    n.hash = e.hash;
                    if n.write_gen == gen && n.open_writers == 0 && sent == e.hash {
                        n.dirty = false;
                    }
                }
                shared.status.uploads_done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            OpKind::Mkdir | OpKind::SetAttr => {
                if let (Some(e), Some(n)) = (resp.live_at(&op.path), st.tree.get_mut(op.ino)) {
                    n.base_version = e.version;
                }
            }
            OpKind::Rename => {
                let to = op.path2.as_ref().expect("a rename op has a target");
                adopt_moved(&mut st, op.ino, to, &resp.entries, &mut touched);
            }
            OpKind::Exchange => {
                let to = op.path2.as_ref().expect("an exchange op has a second path");
                adopt_moved(&mut st, op.ino, to, &resp.entries, &mut touched);
                adopt_moved(&mut st, op.ino2, &op.path, &resp.entries, &mut touched);
            }
            OpKind::Delete => {}
        }
        adopt_created_parents(&mut st, &resp.entries, &mut touched);
        for e in &resp.entries {
            st.drop_superseded(&e.path, e.version);
            let newest = st.own_news.entry(e.path.clone()).or_default();
            *newest = (*newest).max(e.version);
        }
    }
    st.persist(&touched, vec![]);
    st.op_done(op.id);
    for ino in [op.ino, op.ino2] {
        st.drop_if_orphan(ino);
    }
}

/// The nodes of `ino`'s subtree, which the hub moved to `to`, get the
/// versions it gave them there.
fn adopt_moved(st: &mut State, ino: u64, to: &RelPath, entries: &[Entry], touched: &mut Vec<u64>) {
    for e in entries.iter().filter(|e| !e.deleted && e.path.is_within(to)) {
        let suffix = &e.path.as_str()[to.as_str().len()..];
        if let Some(i) = st.tree.resolve_below(ino, suffix) {
            let n = st.tree.get_mut(i).expect("resolved nodes exist");
            // A rename redone on a version edited elsewhere moves bytes
            // this mount does not have yet: fetch them, don't claim them.
            if n.is_dir() || n.hash == e.hash {
                n.base_version = e.version;
            } else {
                st.needs_reconcile = true;
            }
            touched.push(i);
        }
    }
}

/// A clean cache file now holds exactly the list just sent: index it, so the
/// next upload sends a delta and downloads can reuse its chunks.
pub(crate) fn remember_chunks(shared: &Shared, op: &Op, list: Option<ChunkList>) {
    let Some(list) = list else { return };
    let clean = shared.state.lock().tree.get(op.ino).is_some_and(|n| !n.dirty && n.hash == Some(list.id()));
    if clean {
        if let Err(e) = shared.chunks.record(op.ino, &list) {
            tracing::warn!(path = %op.path, "cannot index the chunks of an uploaded file: {e}");
        }
    }
}

/// Folders the hub created or re-created on its own (mkdir -p for a write)
/// get the version it gave them.
fn adopt_created_parents(st: &mut State, entries: &[Entry], touched: &mut Vec<u64>) {
    for e in entries.iter().filter(|e| !e.deleted && e.kind == ssync_common::api::EntryKind::Dir) {
        if let Some(ino) = st.tree.resolve(&e.path) {
            if let Some(n) = st.tree.get_mut(ino).filter(|n| n.is_dir() && n.base_version < e.version) {
                n.base_version = e.version;
                touched.push(ino);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_one_second() {
        let mut b = Backoff::new();
        let steps: Vec<_> = (0..6).map(|_| b.step().as_millis()).collect();
        assert_eq!(steps, vec![100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.step().as_millis(), 100);
    }
}
