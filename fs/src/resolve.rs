//! What to do when the hub refuses a queued change (409): nothing closed is
//! lost, and each pair of concurrent changes ends in one documented state.
//!
//! | ours      | the hub already has               | outcome |
//! |-----------|-----------------------------------|---------|
//! | edit      | another edit (or a new file)      | hub's version keeps the name; ours becomes `NAME.conflict-DEVICE-TIME.EXT` |
//! | edit      | a delete                          | the edit wins: the file comes back at its path with our content |
//! | edit      | a rename to NEW                   | the edit follows: NEW gets our content (a conflict copy beside NEW if NEW changed too) |
//! | delete    | an edit                           | the edit wins: our delete is dropped, the file comes back |
//! | delete    | a delete                          | nothing to do (the hub accepts it as done) |
//! | rename    | an edit of the source             | the rename is redone on the edited file (if we also edited it, ours becomes a conflict copy) |
//! | rename    | another rename of the same source | the first rename wins; our copy moves to that name |
//! | rename    | a delete of the source            | the rename wins: the moved files are sent again as new files |
//! | write in a folder | the folder deleted        | the hub re-creates the folders (mkdir -p): the file and its parents survive |
//! | file/folder | a folder/file of the same name  | the first keeps the name; the other becomes a conflict copy |
//!
//! Decisions that need the hub (where did a renamed entry go?) are made
//! without locks; applying them takes the state lock once.
use crate::client::{ApiError, Remote};
use crate::conflict::numbered_conflict_name;
use crate::fs::now_ns;
use crate::invalidate::Inval;
use crate::queue::{Op, OpKind};
use crate::state::{Shared, State};
use ssync_common::api::{codes, Entry};
use ssync_common::RelPath;
use std::time::SystemTime;

#[derive(Debug)]
pub enum Decision {
    /// The hub deleted it: our edit re-creates it at the same path.
    Recreate,
    /// The hub renamed it: our edit follows to where it lives now.
    FollowTo(Box<Entry>),
    /// The hub changed the rename's source: redo the rename on that version.
    RetryRename(u64),
    /// Keep ours beside the hub's version under a conflict name.
    ConflictCopy,
    /// Send the moved subtree again as new files.
    ResendSubtree,
    /// A swap the hub already applied (its answer was lost): the versions it
    /// gave the entries now at the op's first and second paths.
    Swapped(u64, u64),
    /// Drop ours; a reconcile brings the hub's state.
    TakeHubs,
}

/// Decides what a refusal means; may ask the hub where a renamed entry went.
/// An error means the hub could not be asked: try the op again later.
pub async fn decide(shared: &Shared, remote: &Remote, op: &Op, err: &ApiError) -> Result<Decision, ApiError> {
    let conflict = err.code() == Some(codes::CONFLICT);
    let current = err.current().cloned();
    let node_dirty = shared.state.lock().tree.get(op.ino).is_some_and(|n| n.dirty);
    Ok(match op.kind {
        OpKind::Upload if conflict => match current {
            Some(c) if c.deleted && c.moved_to.is_some() => match follow_moves(remote, c).await? {
                Some(live) => Decision::FollowTo(Box::new(live)),
                None => Decision::Recreate,
            },
            None => Decision::Recreate,
            Some(c) if c.deleted => Decision::Recreate,
            Some(_) => Decision::ConflictCopy,
        },
        // A conflict copy whose name the hub already has (made elsewhere the
        // same second) takes the next free name; nothing is ever dropped.
        OpKind::Upload | OpKind::Mkdir => Decision::ConflictCopy,
        OpKind::Rename => match current {
            Some(c) if c.path == op.path && !c.deleted && !node_dirty => Decision::RetryRename(c.version),
            Some(c) if c.path == op.path && c.deleted && c.moved_to.is_some() && !node_dirty => Decision::TakeHubs,
            _ => Decision::ResendSubtree,
        },
        // One side changed elsewhere: both are sent again as new files at
        // their new paths, so whatever the hub has there becomes a conflict copy.
        OpKind::Exchange => match swapped_on_hub(shared, remote, op).await? {
            Some((at_a, at_b)) => Decision::Swapped(at_a, at_b),
            None => Decision::ResendSubtree,
        },
        OpKind::Delete | OpKind::SetAttr => Decision::TakeHubs,
    })
}

/// Whether the hub holds `op`'s swap already, made by this mount: at each
/// path a live entry of this mount's with what the local node now there has
/// (kind, and content for files). No other op of this mount can have made
/// them: later ops on these paths wait for this one.
async fn swapped_on_hub(shared: &Shared, remote: &Remote, op: &Op) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(b) = op.path2.as_ref() else { return Ok(None) };
    let (at_a, at_b) = (remote.entry(&op.path).await?, remote.entry(b).await?);
    let st = shared.state.lock();
    let holds = |e: &Option<Entry>, ino: u64| {
        let (Some(e), Some(n)) = (e, st.tree.get(ino)) else { return false };
        !e.deleted && shared.is_own(e) && e.kind == n.kind && (n.is_dir() || e.hash == n.hash)
    };
    Ok(match (&at_a, &at_b) {
        (Some(x), Some(y)) if holds(&at_a, op.ino2) && holds(&at_b, op.ino) => Some((x.version, y.version)),
        _ => None,
    })
}

/// Follows `moved_to` links (a few hops at most) to the live entry.
async fn follow_moves(remote: &Remote, mut tomb: Entry) -> Result<Option<Entry>, ApiError> {
    for _ in 0..8 {
        let Some(next) = tomb.moved_to.clone() else { return Ok(None) };
        match remote.entry(&next).await? {
            Some(e) if !e.deleted => return Ok(Some(e)),
            Some(e) => tomb = e,
            None => return Ok(None),
        }
    }
    Ok(None)
}

/// The files a refused rename or swap took from paths the hub has them at,
/// where nothing local stands now: their kinds, those paths and versions.
fn left_behind_by(st: &State, op: &Op) -> Vec<(crate::tree::Kind, RelPath, u64)> {
    let sides = match (op.kind, &op.path2) {
        (OpKind::Rename, _) => vec![(op.ino, &op.path)],
        (OpKind::Exchange, Some(b)) => vec![(op.ino, &op.path), (op.ino2, b)],
        _ => vec![],
    };
    sides
        .into_iter()
        .filter_map(|(ino, path)| {
            let n = st.tree.get(ino)?;
            let vacant = n.base_version > 0 && !n.is_dir() && st.tree.resolve(path).is_none();
            vacant.then(|| (n.kind, path.clone(), n.base_version))
        })
        .collect()
}

/// Applies `d`; returns true when the op is done, false to send it again.
pub fn apply(shared: &Shared, op: &Op, err: &ApiError, d: Decision) -> bool {
    let mut st = shared.state.lock();
    tracing::warn!(path = %op.path, op = op.kind.as_str(), decision = ?d, "the hub refused a change: {err}");
    let (done, result) = match d {
        Decision::Recreate => {
            set_base(&mut st, op.ino, 0);
            (false, Ok(()))
        }
        Decision::RetryRename(v) => {
            set_base(&mut st, op.ino, v);
            (false, Ok(()))
        }
        Decision::FollowTo(live) => (true, follow_to(&mut st, shared, op.ino, &live)),
        Decision::ConflictCopy => (true, keep_as_conflict_copy(&mut st, shared, op.ino)),
        Decision::Swapped(at_a, at_b) => {
            set_base(&mut st, op.ino2, at_a);
            set_base(&mut st, op.ino, at_b);
            // What moved below two folders got versions this mount did not hear.
            (true, Ok(()))
        }
        Decision::ResendSubtree => {
            let swapped = if op.kind == OpKind::Exchange { Some(op.ino2) } else { None };
            let left_behind = left_behind_by(&st, op);
            let r = std::iter::once(op.ino).chain(swapped).try_for_each(|i| resend_subtree(&mut st, i));
            // The hub still has the files where the refused move took them from.
            let r =
                r.and_then(|()| left_behind.iter().try_for_each(|(kind, path, v)| st.queue_delete_at(*kind, path, *v)));
            (true, r)
        }
        // The hub moved the rename's source elsewhere first: its move wins.
        // The moved nodes must not stay where this mount put them, claiming
        // versions of the path they came from (nothing would ever replace
        // them): clean and idle, they go (the hub has their content where it
        // moved it); otherwise they claim no version and are sent as new.
        Decision::TakeHubs if op.kind == OpKind::Rename => {
            let nodes = st.tree.subtree(op.ino);
            let idle = nodes.iter().all(|&i| {
                st.tree.get(i).is_some_and(|n| !n.dirty && n.open_handles == 0)
                    && st.pending.ids_of(i).iter().all(|id| *id == op.id)
            });
            let r = if idle {
                let mut invals = Vec::new();
                let r = crate::watch::remove_local(&mut st, shared, op.ino, &mut invals);
                shared.invalidate(invals);
                r
            } else {
                nodes.into_iter().for_each(|i| set_base(&mut st, i, 0));
                Ok(())
            };
            (true, r)
        }
        Decision::TakeHubs => (true, Ok(())),
    };
    if done {
        st.needs_reconcile = true;
    }
    if let Err(e) = result {
        tracing::error!("cannot record how a refused change was resolved: {e}");
    }
    drop(st);
    shared.wake_uploader.notify_one();
    done
}

fn set_base(st: &mut State, ino: u64, base: u64) {
    if let Some(n) = st.tree.get_mut(ino) {
        n.base_version = base;
    }
    st.persist(&[ino], vec![]);
}

/// Moves our node to where the hub's renamed entry lives and queues our
/// content there: on top of it if it still holds what we started from,
/// else as a new file (which then becomes a conflict copy beside it).
fn follow_to(st: &mut State, shared: &Shared, ino: u64, live: &Entry) -> crate::error::FsResult<()> {
    let Some(n) = st.tree.live(ino) else { return Ok(()) };
    let (old_parent, old_name, started_from) = (n.parent, n.name.clone(), n.hash);
    let mut invals = vec![Inval::Entry { parent: old_parent, name: old_name }, Inval::Inode(old_parent)];
    if let Some(there) = st.tree.resolve(&live.path).filter(|t| *t != ino) {
        if st.is_busy(there) {
            return keep_as_conflict_copy(st, shared, ino);
        }
        crate::watch::remove_local(st, shared, there, &mut invals)?;
    }
    let parent = crate::watch::ensure_parent(st, &live.path)?;
    st.tree.detach(ino);
    st.tree.attach(ino, parent, live.path.file_name());
    let n = st.tree.get_mut(ino).expect("attached above");
    n.base_version = if started_from.is_some() && started_from == live.hash { live.version } else { 0 };
    invals.push(Inval::Entry { parent, name: live.path.file_name().to_string() });
    invals.push(Inval::Inode(parent));
    shared.invalidate(invals);
    st.drop_ops_of(ino);
    st.persist(&[ino], vec![State::op(OpKind::Upload, ino, live.path.clone())]);
    Ok(())
}

/// The first conflict name for `name` not taken in `parent` (its own current
/// name counts as taken: the hub just refused it).
fn free_conflict_name(st: &State, parent: u64, name: &str, device: &str) -> String {
    let now = SystemTime::now();
    (1..)
        .map(|n| numbered_conflict_name(name, device, now, n))
        .find(|c| st.tree.child(parent, c).is_none() && c != name)
        .expect("an unbounded range always yields a free name")
}

/// Moves the local node to a conflict name beside it and queues it as new.
pub fn keep_as_conflict_copy(st: &mut State, shared: &Shared, ino: u64) -> crate::error::FsResult<()> {
    let Some(n) = st.tree.live(ino) else { return Ok(()) };
    let (parent, old_name) = (n.parent, n.name.clone());
    let name = free_conflict_name(st, parent, &old_name, &shared.device);
    st.tree.detach(ino);
    st.tree.attach(ino, parent, &name);
    shared.invalidate(vec![
        Inval::Entry { parent, name: old_name },
        Inval::Entry { parent, name: name.clone() },
        Inval::Inode(parent),
    ]);
    shared.status.note_conflict(&name);
    resend_subtree(st, ino)
}

/// Forgets the hub versions of `ino`'s subtree and queues all of it as new.
pub fn resend_subtree(st: &mut State, ino: u64) -> crate::error::FsResult<()> {
    for i in st.tree.subtree(ino) {
        let n = st.tree.get_mut(i).expect("subtree lists existing nodes");
        n.base_version = 0;
        n.set_hub_id(None);
        if n.has_content() {
            n.dirty = true;
            n.mtime_ns = n.mtime_ns.max(now_ns() - 1);
        }
    }
    st.queue_subtree_as_new(ino);
    Ok(())
}
