//! The mount's sync thread on the engine of stable ids (`--engine nodes`):
//! it owns the `Engine`, over the hub's HTTP API, with the mount's
//! database as its keeper (a connection of its own).
//!
//! It wakes on a local change (`State::persist` pokes it), on news in the
//! feed (a long-poll task on the runtime only pokes it), and on a timer
//! while something is left to do. Each wake: identify what was written and
//! closed (`content_ids`), read Local from the mount's tree, read the feed,
//! and run rounds until the trees agree or one is refused. Nothing is
//! retried by rule: a refused round is planned again from the trees at the
//! next wake.
use super::canopy::Tree;
use super::engine::{Engine, EngineError};
use super::http_remote::HttpRemote;
use super::local_reader::LocalReader;
use super::local_tree;
use super::mount_side::MountSide;
use super::remote::Refusal;
use crate::local::db::LocalDb;
use crate::local::state::Shared;
use crate::remote::client;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use ssync_common::log_limit::LogLimiter;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The longest a round waits for a wake while the trees differ (a refused
/// operation, the hub out of reach).
const RETRY: Duration = Duration::from_millis(500);
/// How often a mount whose token or grant the hub refused asks again.
const REFUSED_RETRY: Duration = Duration::from_secs(30);
/// Rounds run one after another while each carries something out.
const ROUNDS_PER_WAKE: usize = 64;
/// How long the feed's long-poll waits on the hub.
const FEED_WAIT: Duration = Duration::from_secs(25);

/// Starts the sync thread and the feed's waker. `client` must not name the
/// mount (the engine confirms its own changes from the feed).
pub fn spawn(
    shared: Arc<Shared>,
    on_demand: Arc<crate::local::on_demand::OnDemand>,
    db_path: &Path,
    client: client::Remote,
    runtime: tokio::runtime::Handle,
    cancel: CancellationToken,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let db = LocalDb::open(db_path)?;
    let kept = db.load_sync_state()?;
    tracing::debug!(
        synced = kept.synced.len(),
        rows = kept.view.tree().len(),
        cursor = kept.view.cursor(),
        sent = kept.sent.len(),
        "the sync state as kept"
    );
    let (wake_tx, wake_rx) = crossbeam_channel::bounded(1);
    shared.state.lock().set_engine_waker(wake_tx.clone());
    let cursor = Arc::new(AtomicU64::new(kept.view.cursor()));
    runtime.spawn(wake_on_feed(client.clone(), cursor.clone(), wake_tx.clone(), cancel.clone()));
    // Which inode each node of Local is on (the mount side keeps it): a
    // content to send is found by its node, not by looking through every
    // node under the state lock.
    let inos = super::inode_map::InoMap::default();
    let contents_of = shared.clone();
    let inos_of = inos.clone();
    let contents: super::http_remote::Contents = Box::new(move |node, id| {
        let ino = inos_of.lock().ino(node)?;
        let (mtime_ns, size) = {
            let st = contents_of.state.lock();
            let n = st.tree.get(ino)?;
            // Only bytes that are this content, all here (files on demand
            // may not be), and not being written.
            let held = n.hash.as_ref() == Some(id) && !n.dirty && n.parent != 0 && n.cached.is_full();
            held.then_some((n.mtime_ns, n.size))?
        };
        // A big file's list, as identifying it recorded it (the index's own
        // connection, outside the state lock).
        let list = (size > ssync_common::api::INLINE_MAX).then(|| contents_of.chunks.list_of(ino, id).ok().flatten());
        Some(super::http_remote::Held {
            file: contents_of.cache.file(ino),
            mtime_ns: Some(mtime_ns),
            list: list.flatten(),
        })
    });
    let lane_wake = wake_tx.clone();
    let wake_on_push = Arc::new(move || {
        let _ = lane_wake.try_send(());
    });
    let remote = HttpRemote::new(client.clone(), runtime.clone(), contents, wake_on_push);
    let keeper = Box::new(super::mount_keeper::MountKeeper { db, shared: shared.clone() });
    let engine = Engine::resume(remote, keeper, kept.synced, kept.view, kept.sent)
        .with_namer(conflict_namer(shared.device.clone()));
    let reader = LocalReader::new(inos.clone());
    let side = MountSide::new(shared.clone(), on_demand, client.clone(), runtime.clone(), inos);
    let heal = Heal { client, runtime, last: std::time::Instant::now() };
    let parts = Parts { engine, side, reader, heal };
    let thread = std::thread::Builder::new()
        .name("ssync-sync".into())
        .spawn(move || run(shared, parts, wake_rx, cursor, cancel))?;
    Ok(thread)
}

/// What the sync thread owns.
struct Parts {
    engine: Engine<HttpRemote>,
    side: MountSide,
    reader: LocalReader,
    heal: Heal,
}

/// After `drain` and the cancel: wakes the sync thread so it sees the
/// cancel, and waits (at most `bound`) for it to end its round, so that no
/// request of it is left waiting on a runtime being shut down (a wait on
/// it then panics). Whether it ended.
pub fn join(shared: &Shared, thread: &std::thread::JoinHandle<()>, bound: Duration) -> bool {
    shared.state.lock().wake_engine();
    ssync_common::wait::wait_while(bound, || !thread.is_finished())
}

/// Names a conflict copy this mount makes as users know them
/// (`NAME.conflict-DEVICE-YYYYMMDD-HHMMSS.EXT`, `conflict::conflict_name`),
/// at the time the planner first names it: the planner runs again until
/// the copy exists, and must name it the same each time.
fn conflict_namer(device: String) -> super::merge::OwnedNamer {
    let named = std::sync::Mutex::new(std::collections::HashMap::<(String, u128), String>::new());
    Box::new(move |name, id| {
        let mut named = named.lock().unwrap_or_else(|e| e.into_inner());
        named
            .entry((name.to_string(), id))
            .or_insert_with(|| {
                // A conflict copy that meets another of its name takes a number.
                let n = if crate::sync::conflict::original_name(name).len() < name.len() { 2 } else { 1 };
                crate::sync::conflict::numbered_conflict_name(name, &device, std::time::SystemTime::now(), n)
            })
            .clone()
    })
}

/// Pokes the sync thread whenever the feed has something past its cursor.
async fn wake_on_feed(
    client: client::Remote,
    cursor: Arc<AtomicU64>,
    wake: crossbeam_channel::Sender<()>,
    cancel: CancellationToken,
) {
    loop {
        let since = cursor.load(Ordering::Acquire);
        let page = tokio::select! {
            p = client.changes(since, FEED_WAIT) => p,
            _ = cancel.cancelled() => return,
        };
        match page {
            Ok(p) if !p.entries.is_empty() => {
                let _ = wake.try_send(());
                // Until the sync thread has read them, the same rows would
                // come back at once: wait for its cursor to move.
                let moved = async {
                    while cursor.load(Ordering::Acquire) == since {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                };
                tokio::select! {
                    _ = moved => {}
                    _ = tokio::time::sleep(RETRY) => {}
                    _ = cancel.cancelled() => return,
                }
            }
            Ok(_) => {}
            Err(e) if e.is_unauthorized() || e.is_forbidden() => {
                // The token or its grant was revoked: the sync thread's next
                // read of the feed meets the same refusal and stops syncing
                // (`Refusal::Halt`); this loop then only checks, rarely,
                // whether the hub still says so.
                tracing::debug!("the feed's long-poll was refused: {e}");
                let _ = wake.try_send(());
                tokio::select! {
                    _ = tokio::time::sleep(REFUSED_RETRY) => {}
                    _ = cancel.cancelled() => return,
                }
            }
            Err(e) => {
                tracing::debug!("the feed's long-poll failed: {e}");
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => {}
                    _ = cancel.cancelled() => return,
                }
            }
        }
    }
}

/// When the idle mount last compared its view with the hub (`heal`).
struct Heal {
    client: client::Remote,
    runtime: tokio::runtime::Handle,
    last: std::time::Instant,
}

impl Heal {
    /// Compares when the trees agree and the last compare is `HEAL_EVERY`
    /// old; whether it found anything to take.
    fn when_due(&mut self, engine: &mut Engine<HttpRemote>, warnings: &LogLimiter) -> bool {
        if self.last.elapsed() < HEAL_EVERY {
            return false;
        }
        self.last = std::time::Instant::now();
        match super::heal::compare(engine, &self.client, &self.runtime) {
            Ok(healed) => healed > 0,
            Err(e) => {
                match warnings.admit("heal") {
                    Some(left_out) => tracing::warn!(left_out, "comparing with the hub's tree failed: {e}"),
                    None => tracing::debug!("comparing with the hub's tree failed: {e}"),
                }
                false
            }
        }
    }
}

/// How often an idle mount compares its view of the hub with the hub's
/// digests (one small request when they agree).
const HEAL_EVERY: Duration = Duration::from_secs(15);

fn run(shared: Arc<Shared>, parts: Parts, wake: Receiver<()>, cursor: Arc<AtomicU64>, cancel: CancellationToken) {
    let Parts { mut engine, mut side, mut reader, mut heal } = parts;
    let mut adopted = false;
    let warnings = LogLimiter::new(Duration::from_secs(60), 5);
    let mut wait = Duration::ZERO;
    while !cancel.is_cancelled() {
        match wake.recv_timeout(wait) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let outcome = sync_once(&shared, &mut engine, &mut side, &mut reader, &mut adopted);
        shared.status.engine_converged.store(matches!(outcome, Ok(true)), Ordering::Release);
        shared.status.engine_passes.fetch_add(1, Ordering::AcqRel);
        match outcome {
            // In agreement: the next wake is a change, or the next compare.
            Ok(true) => wait = if heal.when_due(&mut engine, &warnings) { Duration::ZERO } else { HEAL_EVERY },
            Ok(false) => wait = RETRY,
            Err(EngineError::Feed(Refusal::Halt(why))) => {
                // Syncing stops until a user puts a valid token in place and
                // restarts the mount; the trees keep every change meanwhile.
                shared.halt(&why);
                return;
            }
            Err(EngineError::Feed(e)) => {
                // The status logs going offline and back, once each.
                shared.status.set_online(false, &e);
                wait = RETRY;
            }
            Err(e) => {
                let kind = match &e {
                    EngineError::Stuck(_) => "stuck",
                    EngineError::View(_) => "view",
                    _ => "keep",
                };
                match warnings.admit(kind) {
                    Some(left_out) => tracing::warn!(left_out, "sync round stopped: {e}"),
                    None => tracing::debug!("sync round stopped: {e}"),
                }
                wait = RETRY;
            }
        }
        cursor.store(engine.view().cursor(), Ordering::Release);
    }
}

/// One wake's work; whether the trees agree at its end.
fn sync_once(
    shared: &Shared,
    engine: &mut Engine<HttpRemote>,
    side: &mut MountSide,
    reader: &mut LocalReader,
    adopted: &mut bool,
) -> Result<bool, EngineError> {
    if !*adopted {
        // Before any content is identified: a file written and not sent by
        // the old engine still shows the content it was based on, which is
        // its merge base. Local first: reading the feed settles Synced
        // against Local, and a node the hub deleted while this mount was
        // away must stay in Synced until Local is known (else it would
        // look new here and be sent back).
        reader.read(shared, engine);
        engine.read_feed()?;
        adopt(shared, engine, reader);
        *adopted = true;
    }
    super::content_ids::identify_written(shared);
    engine.set_refused(shared.refused_contents.lock().clone());
    for _ in 0..ROUNDS_PER_WAKE {
        let started = std::time::Instant::now();
        reader.read(shared, engine);
        let local_read = started.elapsed();
        engine.read_feed()?;
        shared.hub_answered();
        if engine.converged() {
            tracing::debug!(nodes = engine.canopy.local.len(), "the trees agree");
            side.drop_unused_fetches();
            return Ok(true);
        }
        tracing::debug!(
            ?local_read,
            feed_read = ?(started.elapsed() - local_read),
            local = engine.canopy.local.len(),
            remote = engine.canopy.remote.len(),
            synced = engine.canopy.synced.len(),
            "round starts"
        );
        let planned = std::time::Instant::now();
        let round = engine.round(side)?;
        tracing::debug!(tried = round.tried.len(), took = ?planned.elapsed(), "round ran");
        for (op, outcome) in &round.tried {
            tracing::debug!(?outcome, "{op:?}");
        }
        let mut sent = Vec::new();
        for (op, _) in round.tried.iter().filter(|(op, ok)| ok.is_ok() && carries_content_up(op)) {
            let (id, content) = match op {
                super::planner::Op::Create { id, node, .. } => (*id, node.content),
                super::planner::Op::Edit { id, content, .. } => (*id, *content),
                _ => continue,
            };
            let version = engine.view().version(id);
            if let (Some(ino), Some(content), Some(version)) = (side.ino(id), content, version) {
                sent.push((ino, content, version));
            }
        }
        super::content_ids::mark_on_hub(shared, &sent);
        shared.status.uploads_done.fetch_add(sent.len() as u64, Ordering::Relaxed);
        if let Some(why) = &round.refused {
            tracing::debug!(done = round.done, last = ?round.tried.last().map(|t| &t.0), "round ended early: {why}");
            return Ok(false);
        }
        if round.done == 0 {
            return Ok(false);
        }
    }
    Ok(false)
}

/// Whether `op` sent a file's or symlink's content to the hub (what
/// `ssync status` counts as an upload).
fn carries_content_up(op: &super::planner::Op) -> bool {
    use super::planner::{Op, Side};
    match op {
        Op::Create { side: Side::Remote, node, .. } => node.content.is_some(),
        Op::Edit { side: Side::Remote, base, content, .. } => base.content != *content,
        _ => false,
    }
}

/// A cache from before identities: its nodes take the hub's ids, and
/// Synced the state each was based on (`local_tree::adopt_ids`). The
/// path-keyed engine's queue goes: what it held is planned again from the
/// files, with the moves and deletes it names.
fn adopt(shared: &Shared, engine: &mut Engine<HttpRemote>, reader: &mut LocalReader) {
    let bases = {
        let mut st = shared.state.lock();
        let without_id: Vec<u64> = st
            .tree
            .nodes()
            .filter(|n| n.id.is_none() && n.ino != crate::local::tree::ROOT && n.parent != 0 && n.special.is_none())
            .map(|n| n.ino)
            .collect();
        if without_id.is_empty() && st.old_queue.is_empty() {
            return;
        }
        let unsent = unsent_of(&st);
        let bases = local_tree::adopt_ids(&mut st.tree, engine.view(), &unsent);
        let queued = st.old_queue.len();
        st.old_queue_adopted();
        let unlinked: Vec<u64> =
            st.tree.nodes().filter(|n| n.parent == 0 && n.ino != crate::local::tree::ROOT).map(|n| n.ino).collect();
        for ino in unlinked {
            st.drop_if_orphan(ino);
        }
        // Only the nodes that took an id changed (committed before Synced
        // names them: `MountKeeper`).
        st.persist(&without_id);
        tracing::info!(
            nodes = without_id.len(),
            known_to_hub = bases.len(),
            queued,
            "this cache's nodes took their ids; its queue of changes is planned again from the files"
        );
        bases
    };
    let synced: &mut Tree = &mut engine.canopy.synced;
    for (id, node) in bases {
        if synced.get(id).is_none() {
            synced.set(id, node);
        }
    }
    reader.read_whole_next();
    reader.read(shared, engine);
}

/// The moves and deletes the path-keyed engine's queue holds.
fn unsent_of(st: &crate::local::state::State) -> local_tree::Unsent {
    use crate::local::db::OldOpKind;
    let mut unsent = local_tree::Unsent::default();
    let mut moved = std::collections::HashSet::new();
    for op in &st.old_queue {
        match op.kind {
            // The first move of a node says where the hub has it.
            OldOpKind::Rename if moved.insert(op.ino) => unsent.moved.push((op.ino, op.path.clone())),
            OldOpKind::Delete => {
                if let Some(base) = st.tree.get(op.ino).map(|n| n.base_version).filter(|v| *v > 0) {
                    unsent.deleted.push((op.path.clone(), base));
                }
            }
            _ => {}
        }
    }
    unsent
}

/// At a stop: waits until a pass that began after the last local change
/// ends with the trees agreeing, or the timeout passes (while the hub is
/// unreachable, at most a second). What is left stays in the trees and is
/// sent when the mount starts again.
pub async fn drain(shared: &Shared, timeout: Duration) {
    let start = std::time::Instant::now();
    let asked = shared.status.engine_passes.load(Ordering::Acquire);
    shared.state.lock().wake_engine();
    loop {
        if shared.status.halted.load(Ordering::Acquire) {
            return; // syncing stopped (a refused token): nothing will go out
        }
        let passes = shared.status.engine_passes.load(Ordering::Acquire);
        // The pass running when it was asked may have begun before the last change.
        if passes > asked + 1 && shared.status.engine_converged.load(Ordering::Acquire) {
            return;
        }
        let limit = if shared.status.is_online() { timeout } else { timeout.min(Duration::from_secs(1)) };
        if start.elapsed() >= limit {
            tracing::warn!("changes are still to be sent; they are kept and sent when the mount starts again");
            return;
        }
        if passes > asked {
            shared.state.lock().wake_engine();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
