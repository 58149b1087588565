//! One mount's sync loop over any `Remote`: read the feed into the Remote
//! tree, merge the three trees, plan, and carry the operations out in order
//! (Remote ones as the hub's requests, Local ones on this machine), each
//! completed one advancing Synced. A refusal ends the round: nothing is
//! repaired, the next round plans again from the trees as they are then.
//!
//! An operation whose answer did not come is kept until the feed shows what
//! it did (`Canopy::confirm_sent`), so a change of this mount's own that
//! comes back through the feed is agreed, never a conflict.
use super::canopy::NodeId;
use super::canopy::{Canopy, Node, Tree};
use super::hub_view::{HubView, ViewError};
#[cfg(test)]
use super::merge::merge;
use super::merge::{default_namer, merge_in, OwnedNamer};
use super::planner::{apply, plan, Op, Side, Stuck};
use super::remote::{Refusal, Remote};
use ssync_common::api::Entry;
use ssync_common::ContentHash;
use std::collections::HashSet;

/// The most Remote operations sent to the hub in one batch.
const BATCH_MAX: usize = 256;

use crate::sync::keeper::SyncStateChange;

/// This machine's side of the operations the planner makes for Local:
/// bringing content from the hub, making folders, moving and removing what
/// the kernel shows. Called before the op is recorded in the Local tree;
/// `hub` tells what is not merged (a file's size and time on the hub).
pub trait LocalSide {
    fn carry_out(&mut self, op: &Op, hub: &HubView) -> Result<(), String>;

    /// The Local operations about to be carried out, in order: a side may
    /// bring their contents ahead, several at a time.
    fn prepare(&mut self, _ops: &[&Op], _hub: &HubView) {}
}

/// Local operations a side is told of ahead (`LocalSide::prepare`).
const PREPARED_AHEAD: usize = 64;

/// Where the engine keeps its state from step to step, so that a crash
/// loses nothing: Synced, the hub's rows and cursor, and each operation
/// sent to the hub, kept before it goes and settled once its outcome is in
/// the trees. The mount keeps them in its database (`LocalDb`).
pub trait Keeper {
    /// Before `ops` go to the hub (kept in one transaction): the number to
    /// settle each by.
    fn sending(&mut self, ops: &[Op]) -> Result<Vec<i64>, String>;
    fn keep(&mut self, change: &SyncStateChange) -> Result<(), String>;
}

/// Keeps nothing: for tests and the simulation.
pub struct Forgetful;

impl Keeper for Forgetful {
    fn sending(&mut self, ops: &[Op]) -> Result<Vec<i64>, String> {
        Ok(vec![0; ops.len()])
    }
    fn keep(&mut self, _: &SyncStateChange) -> Result<(), String> {
        Ok(())
    }
}

impl Keeper for crate::local::db::LocalDb {
    fn sending(&mut self, ops: &[Op]) -> Result<Vec<i64>, String> {
        self.keep_sent(ops).map_err(|e| e.to_string())
    }
    fn keep(&mut self, change: &SyncStateChange) -> Result<(), String> {
        self.keep_sync_change(change).map_err(|e| e.to_string())
    }
}

/// An operation tried, with its outcome.
type Tried = (Op, Result<(), String>);

/// What one round did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Operations carried out.
    pub done: usize,
    /// Each operation tried, in order, with its outcome.
    pub tried: Vec<(Op, Result<(), String>)>,
    /// What ended the round early, if anything did.
    pub refused: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Stuck(#[from] Stuck),
    #[error("the hub's rows do not fit this mount's view: {0}")]
    View(#[from] ViewError),
    #[error("the hub could not be read: {0}")]
    Feed(Refusal),
    #[error("the sync state could not be kept: {0}")]
    Keep(String),
}

pub struct Engine<R: Remote> {
    pub canopy: Canopy,
    view: HubView,
    remote: R,
    keeper: Box<dyn Keeper + Send>,
    /// Sent without an answer (with the number each is kept under):
    /// confirmed, or not, once the feed shows them.
    unanswered: Vec<(i64, Op)>,
    /// The rest of the current plan, next operation last. Carried out a few
    /// at a time, it may meet trees that changed since it was made: each
    /// operation is checked against its base, and a refusal drops the rest.
    plan: Vec<Op>,
    /// Names conflict copies (`merge::default_namer` unless set).
    namer: OwnedNamer,
    /// Contents this mount cannot take (they do not add up, or cannot be
    /// held here): Remote keeps them out (`remote_of`).
    refused: HashSet<ContentHash>,
    /// The stamp of the view's tree Remote was last taken whole from: while
    /// it is the same, Remote follows the nodes the view touched.
    remote_from: u64,
    /// In the simulation: each plan is checked against one made from every
    /// node of the trees.
    #[cfg(test)]
    pub(crate) check_scope: bool,
}

/// What the engine keeps through a crash (the rest is lost with it).
pub struct Kept<R> {
    pub remote: R,
    pub synced: Tree,
    pub view: HubView,
    pub sent: Vec<(i64, Op)>,
}

impl<R: Remote> Engine<R> {
    /// A new engine that keeps nothing.
    pub fn new(remote: R) -> Engine<R> {
        Engine::resume(remote, Box::new(Forgetful), Tree::default(), HubView::default(), Vec::new())
    }

    /// The engine as `keeper` kept it: Synced, the hub's view, and the
    /// operations sent whose outcome is not known (confirmed from the feed
    /// at the next read). Local is the caller's to set: it is what this
    /// machine's files are now.
    pub fn resume(
        remote: R,
        keeper: Box<dyn Keeper + Send>,
        synced: Tree,
        view: HubView,
        sent: Vec<(i64, Op)>,
    ) -> Engine<R> {
        let mut synced = synced;
        synced.track_changes();
        let mut engine = Engine {
            canopy: Canopy::new(Tree::default(), Tree::default(), synced),
            view,
            remote,
            keeper,
            unanswered: sent,
            plan: Vec::new(),
            namer: Box::new(default_namer),
            refused: HashSet::new(),
            remote_from: 0,
            #[cfg(test)]
            check_scope: false,
        };
        engine.take_remote();
        engine
    }

    /// Names this engine's conflict copies with `namer`, which must give the
    /// same name for the same name and copy id while the copy is being made.
    pub fn with_namer(mut self, namer: OwnedNamer) -> Engine<R> {
        self.namer = namer;
        self
    }

    /// The engine from its parts: the simulation keeps each mount's state
    /// between steps and lets its users change Local in between.
    #[cfg(test)]
    pub(crate) fn from_parts(
        canopy: Canopy,
        view: HubView,
        remote: R,
        sent: Vec<(i64, Op)>,
        plan: Vec<Op>,
    ) -> Engine<R> {
        Engine {
            canopy,
            view,
            remote,
            keeper: Box::new(Forgetful),
            unanswered: sent,
            plan,
            namer: Box::new(default_namer),
            refused: HashSet::new(),
            remote_from: 0,
            check_scope: true,
        }
    }

    #[cfg(test)]
    #[allow(clippy::type_complexity)]
    pub(crate) fn into_parts(self) -> (Canopy, HubView, R, Vec<(i64, Op)>, Vec<Op>) {
        (self.canopy, self.view, self.remote, self.unanswered, self.plan)
    }

    /// What a crash leaves: what the keeper kept (in the simulation, kept in
    /// memory as the database would have it). The plan and Local are gone.
    pub fn crash(self) -> Kept<R> {
        Kept { remote: self.remote, synced: self.canopy.synced, view: self.view, sent: self.unanswered }
    }

    /// Keeps what changed since the last time, with these sent operations
    /// settled (nothing, with no transaction, when nothing changed).
    fn keep(&mut self, settled: Vec<i64>, cursor: Option<u64>) -> Result<(), EngineError> {
        let ids = self.canopy.synced.take_changes();
        let synced: Vec<_> = ids.iter().map(|id| (*id, self.canopy.synced.get(*id))).collect();
        let change = SyncStateChange { synced, rows: self.view.take_changed_rows(), cursor, settled };
        if change.is_empty() {
            return Ok(());
        }
        self.keeper.keep(&change).map_err(EngineError::Keep)
    }

    pub fn remote(&mut self) -> &mut R {
        &mut self.remote
    }

    pub fn view(&self) -> &HubView {
        &self.view
    }

    /// Contents this mount cannot take: a node of the hub's with one keeps
    /// the content both sides last agreed on, or, new here, stays out of
    /// Remote, so nothing is planned for it and the rest goes on.
    pub fn set_refused(&mut self, refused: HashSet<ContentHash>) {
        if refused != self.refused {
            self.refused = refused;
            self.take_remote();
        }
    }

    /// Node `id` as Remote shows it: as the hub has it (`n`), unless its
    /// content is refused here (see `set_refused`).
    fn remote_of(&self, id: NodeId, n: &Node) -> Option<Node> {
        match n.content {
            Some(c) if self.refused.contains(&c) => {
                let agreed = self.canopy.synced.get(id)?;
                Some(Node { content: agreed.content, ..n.clone() })
            }
            _ => Some(n.clone()),
        }
    }

    /// Remote, as the view has it now: the nodes the view's tree touched
    /// since, or the whole tree when the view derived it anew.
    fn follow_view(&mut self) {
        if self.view.tree().stamp() != self.remote_from {
            return self.take_remote();
        }
        for id in self.view.take_touched() {
            match self.view.tree().get(id).and_then(|n| self.remote_of(id, n)) {
                Some(n) if self.canopy.remote.get(id) != Some(&n) => self.canopy.remote.set(id, n),
                Some(_) => {}
                None => drop(self.canopy.remote.remove(id)),
            }
        }
    }

    /// Remote, from the whole view.
    fn take_remote(&mut self) {
        self.view.take_touched();
        self.remote_from = self.view.tree().stamp();
        let mut remote = self.view.tree().clone();
        if !self.refused.is_empty() {
            let refused: Vec<(NodeId, Option<Node>)> = remote
                .iter()
                .filter(|(_, n)| n.content.is_some_and(|c| self.refused.contains(&c)))
                .map(|(id, n)| (id, self.remote_of(id, n)))
                .collect();
            for (id, shown) in refused {
                match shown {
                    Some(n) => remote.set(id, n),
                    None => drop(remote.remove(id)),
                }
            }
        }
        self.canopy.remote = remote;
    }

    /// Reads the feed to its end into the Remote tree. Local must be set
    /// first: what both trees now agree on becomes Synced.
    pub fn read_feed(&mut self) -> Result<(), EngineError> {
        let mut read = 0;
        loop {
            let page = self.remote.changes_since(self.view.cursor()).map_err(EngineError::Feed)?;
            self.view.fold_page(&page)?;
            if page.entries.is_empty() {
                break;
            }
            read += page.entries.len();
        }
        if read > 0 {
            self.view.settle_feed();
            self.follow_view();
        }
        let c = &mut self.canopy;
        // One the feed does not show was not done (or was undone since):
        // the next plan starts from what the hub has.
        let mut settled = Vec::new();
        for (seq, op) in std::mem::take(&mut self.unanswered) {
            c.confirm_sent(&op);
            settled.push(seq);
        }
        // Where the trees agree there is nothing to settle.
        c.differing().into_iter().for_each(|id| c.settle(id));
        let cursor = self.view.cursor();
        self.keep(settled, Some(cursor))
    }

    /// Changes the hub's view outside the feed (`heal`: what the hub has
    /// that the feed never reported), then takes Remote from it and settles
    /// Synced as after a read of the feed. Local must be set first.
    pub fn heal_view<T>(&mut self, f: impl FnOnce(&mut HubView) -> T) -> Result<T, EngineError> {
        let out = f(&mut self.view);
        self.follow_view();
        let c = &mut self.canopy;
        c.differing().into_iter().for_each(|id| c.settle(id));
        self.keep(vec![], None)?;
        Ok(out)
    }

    /// Whether Local, Remote and Synced are equal.
    pub fn converged(&mut self) -> bool {
        self.canopy.converged()
    }

    /// Logs each conflict the merge resolved, with the node as the three
    /// trees hold it: a conflict copy (changed here and on the hub) and a
    /// node renamed because another took its name. They are rare, and when
    /// one is not two machines' edits (a mount's own change seen as the
    /// hub's) this line is what tells how.
    fn say_conflicts(&self, merged: &super::merge::Merged) {
        let trees = |id: NodeId| (self.canopy.synced.get(id), self.canopy.local.get(id), self.canopy.remote.get(id));
        for (copy, from) in &merged.copies {
            let (synced, local, remote) = trees(*from);
            tracing::info!(
                node = format!("{from:032x}"),
                copy = format!("{copy:032x}"),
                ?synced,
                ?local,
                ?remote,
                "conflict copy: changed here and on the hub"
            );
        }
        for id in merged.scope.iter().filter(|id| !merged.copies.contains_key(id)) {
            let Some(target) = merged.target.get(*id) else { continue };
            let (synced, local, remote) = trees(*id);
            let named = |n: Option<&Node>| n.is_some_and(|n| n.place.name == target.place.name);
            if !named(local) && !named(remote) && !named(synced) {
                tracing::info!(
                    node = format!("{id:032x}"),
                    name = %target.place.name,
                    ?synced,
                    ?local,
                    ?remote,
                    "renamed: another node took its name"
                );
            }
        }
    }

    /// One round: plan from the trees as they are and carry the plan out,
    /// until it ends or something is refused.
    pub fn round(&mut self, local: &mut dyn LocalSide) -> Result<Round, EngineError> {
        self.plan.clear();
        self.step(local, usize::MAX)
    }

    /// Carries out up to `max` operations of the current plan, making one
    /// from the trees as they are when there is none. Remote operations go
    /// to the hub in batches (`next_batch`), Local ones one by one.
    pub fn step(&mut self, local: &mut dyn LocalSide, max: usize) -> Result<Round, EngineError> {
        if self.plan.is_empty() {
            let scope = self.canopy.differing();
            let merged = merge_in(&self.canopy, &scope, &*self.namer);
            self.say_conflicts(&merged);
            self.plan = plan(&self.canopy, &merged)?;
            #[cfg(test)]
            if self.check_scope {
                self.canopy.check_differing();
                let whole = merge(&self.canopy, &*self.namer);
                assert_eq!(whole.target, merged.target, "the merge of the differing nodes is not the whole merge");
                assert_eq!(whole.copies, merged.copies);
                assert_eq!(
                    plan(&self.canopy, &whole)?,
                    self.plan,
                    "the plan of the differing nodes is not the whole plan"
                );
            }
            self.plan.reverse();
        }
        let mut round = Round::default();
        // Nodes a Local operation failed on in this step: what is left of
        // them waits for the next plan, the rest of the plan goes on (a file
        // the hub cannot give, or one written here meanwhile, must not hold
        // up everything after it).
        let mut failed_here: HashSet<NodeId> = HashSet::new();
        while round.tried.len() < max {
            let Some(op) = self.plan.pop() else { break };
            if op.side() == Side::Local && op.nodes().iter().any(|n| failed_here.contains(n)) {
                continue;
            }
            let side = op.side();
            let (outcomes, settled) = match op.side() {
                Side::Remote => {
                    let batch = self.next_batch(op, max - round.tried.len());
                    self.send(batch)?
                }
                Side::Local => {
                    let ahead: Vec<&Op> = std::iter::once(&op)
                        .chain(self.plan.iter().rev().take_while(|o| o.side() == Side::Local))
                        .take(PREPARED_AHEAD)
                        .collect();
                    local.prepare(&ahead, &self.view);
                    let done = local
                        .carry_out(&op, &self.view)
                        .and_then(|()| apply(&mut self.canopy.local, &op).map_err(|e| e.to_string()));
                    (vec![(op, done)], Vec::new())
                }
            };
            if outcomes.is_empty() {
                break; // nothing was tried: the rest waits for the next step
            }
            let mut refused = None;
            for (op, done) in outcomes {
                match &done {
                    Ok(()) => {
                        self.canopy.agree(&op);
                        round.done += 1;
                    }
                    Err(e) => {
                        refused = Some(e.clone());
                        failed_here.extend(op.nodes());
                    }
                }
                round.tried.push((op, done));
            }
            // One transaction: what the operations changed in the mount's
            // tree, in Synced and in the hub's rows, and the sent ones settled.
            self.keep(settled, None)?;
            match (refused, side) {
                (Some(e), Side::Local) => drop(round.refused.get_or_insert(e)),
                (Some(e), Side::Remote) => {
                    round.refused = Some(e);
                    self.plan.clear();
                    break;
                }
                (None, _) => {}
            }
        }
        Ok(round)
    }

    /// `first` and the Remote operations after it in the plan that can go
    /// in one batch: at most `max` (and `BATCH_MAX`), no two on one node.
    /// (A folder's move may be followed by operations below it: the hub
    /// keys its rows by node, so what is below keeps its versions.)
    fn next_batch(&mut self, first: Op, max: usize) -> Vec<Op> {
        let mut touched: HashSet<NodeId> = first.nodes().into_iter().collect();
        let mut batch = vec![first];
        while batch.len() < max.min(BATCH_MAX) {
            match self.plan.last() {
                Some(next) if next.side() == Side::Remote && next.nodes().iter().all(|n| !touched.contains(n)) => {
                    touched.extend(next.nodes());
                    batch.push(self.plan.pop().expect("looked at"));
                }
                _ => break,
            }
        }
        batch
    }

    /// Sends a batch of Remote operations: the outcome of each one tried,
    /// and the sent ones to settle once the outcomes are in the trees.
    /// One whose request cannot be made (its base is not what this view
    /// holds) is refused if it is first; if not, it and the rest go back to
    /// the plan, as do any the remote did not send.
    fn send(&mut self, batch: Vec<Op>) -> Result<(Vec<Tried>, Vec<i64>), EngineError> {
        let mut tree = if batch.len() > 1 { Some(self.view.tree().clone()) } else { None };
        let mut requests = Vec::new();
        let mut ops = Vec::new();
        // One left for the next step, before the rest.
        let mut held = None;
        // Big files whose content is still on its way to the hub: they wait
        // in the plan, the rest of the batch goes (nothing in a batch
        // depends on a file's content).
        let mut waiting = Vec::new();
        let mut rest = batch.into_iter();
        for op in rest.by_ref() {
            let request = match &tree {
                Some(t) => self.view.request_in(&op, t),
                None => self.view.request_for(&op),
            };
            match request {
                Ok(r) if !self.remote.ready(&r) => waiting.push(op),
                Ok(r) => {
                    // One that does not apply to the Remote tree as the view
                    // has it goes alone (the hub decides); nothing follows it.
                    let applies = tree.as_mut().is_none_or(|t| apply(t, &op).is_ok());
                    if !applies && !ops.is_empty() {
                        held = Some(op);
                        break;
                    }
                    requests.push(r);
                    ops.push(op);
                    if !applies {
                        break;
                    }
                }
                Err(e) if ops.is_empty() => return Ok((vec![(op, Err(e.to_string()))], Vec::new())),
                Err(_) => {
                    held = Some(op);
                    break;
                }
            }
        }
        let rest: Vec<Op> = rest.collect();
        if ops.is_empty() {
            // All waiting: the step ends, and the remote wakes the engine.
            for op in waiting.into_iter().chain(held).chain(rest).rev() {
                self.plan.push(op);
            }
            return Ok((Vec::new(), Vec::new()));
        }
        // Not sent (this remote sends some alone), in plan order, then the rest.
        let mut back = Vec::new();
        let seqs = self.keeper.sending(&ops).map_err(EngineError::Keep)?;
        let answer = self.remote.send_batch(&requests);
        let mut outcomes = Vec::new();
        let mut settled = Vec::new();
        let done = answer.done.len();
        for (i, (op, seq)) in ops.into_iter().zip(seqs).enumerate() {
            if i < done {
                let placed = self.fold(&answer.done[i]);
                settled.push(seq);
                outcomes.push((op, placed));
                continue;
            }
            match (&answer.stopped, i == done) {
                (None, _) => {
                    settled.push(seq);
                    back.push(op);
                }
                (Some(Refusal::Refused(e) | Refusal::Halt(e)), true) => {
                    settled.push(seq);
                    outcomes.push((op, Err(e.clone())));
                }
                // After a refusal: not carried out, planned again.
                (Some(Refusal::Refused(_) | Refusal::Halt(_)), false) => settled.push(seq),
                (Some(Refusal::NoAnswer(e)), first) => {
                    self.unanswered.push((seq, op.clone()));
                    if first {
                        outcomes.push((op, Err(e.clone())));
                    }
                }
            }
        }
        for op in waiting.into_iter().chain(back).chain(held).chain(rest).rev() {
            self.plan.push(op);
        }
        Ok((outcomes, settled))
    }

    /// Folds a carried-out request's rows into the view and the Remote tree.
    fn fold(&mut self, rows: &[Entry]) -> Result<(), String> {
        // Placed row by row, or derived anew: the view's tree says which.
        self.view.fold_answer(rows).map_err(|e| e.to_string())?;
        self.follow_view();
        Ok(())
    }

    /// Rounds until the trees are equal or `rounds` have run; reads the feed
    /// before each. Returns the rounds it took.
    pub fn sync(&mut self, local: &mut dyn LocalSide, rounds: usize) -> Result<usize, EngineError> {
        for n in 0..rounds {
            self.read_feed()?;
            if self.converged() {
                return Ok(n);
            }
            self.round(local)?;
        }
        self.read_feed()?;
        Ok(rounds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::canopy::{Kind, Node, Place, ROOT};
    use crate::sync::memory_hub::MemoryHub;
    use ssync_common::ContentHash;

    struct Nothing;
    impl LocalSide for Nothing {
        fn carry_out(&mut self, _: &Op, _: &HubView) -> Result<(), String> {
            Ok(())
        }
    }

    /// A `tar x` of 5,000 files in 50 folders goes up, and a second engine
    /// brings it down; one file is edited; then the top folder is renamed.
    /// Times are printed (figures, not a test of speed; `SSYNC_ENGINE_FOLDERS`
    /// sets the folders of 100 files, for a release-build measurement); what
    /// is checked is the outcome.
    #[test]
    fn a_big_tree_goes_up_comes_down_and_is_renamed_in_one_request() {
        let folders: u64 = std::env::var("SSYNC_ENGINE_FOLDERS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
        let nodes = 1 + folders * 101;
        let mut a = Engine::new(MemoryHub::new());
        let top = 1u128 << 100;
        let dir = |parent, name: String| Node {
            place: Place { parent, name },
            kind: Kind::Dir,
            content: None,
            mode: 0o755,
            meta: None,
        };
        a.canopy.local.set(top, dir(ROOT, "untar".into()));
        let mut id = top;
        for d in 0..folders {
            id += 1;
            let sub = id;
            a.canopy.local.set(sub, dir(top, format!("d{d}")));
            for f in 0..100u64 {
                id += 1;
                let content = Some(ContentHash::of(&(d * 1000 + f).to_le_bytes()));
                let place = Place { parent: sub, name: format!("f{f}") };
                a.canopy.local.set(id, Node { place, kind: Kind::File, content, mode: 0o644, meta: None });
            }
        }
        let started = std::time::Instant::now();
        let rounds = a.sync(&mut Nothing, 5).unwrap();
        eprintln!("{nodes} nodes up in {:?} ({rounds} rounds)", started.elapsed());
        assert!(a.converged());
        // B reads the same hub.
        let hub = std::mem::replace(a.remote(), MemoryHub::new());
        let mut b = Engine::new(hub);
        let started = std::time::Instant::now();
        b.sync(&mut Nothing, 5).unwrap();
        eprintln!("{nodes} nodes down in {:?}", started.elapsed());
        assert!(b.converged());
        assert_eq!(b.canopy.local, a.canopy.local);
        // One edit on A, and B brings it down: the cost of one change in a big tree.
        *a.remote() = std::mem::replace(b.remote(), MemoryHub::new());
        let edited = top + 2;
        let base = a.canopy.local.get(edited).unwrap().clone();
        a.canopy.local.set(edited, Node { content: Some(ContentHash::of(b"edited")), ..base });
        let started = std::time::Instant::now();
        a.read_feed().unwrap();
        let up = a.round(&mut Nothing).unwrap();
        let sent = started.elapsed();
        *b.remote() = std::mem::replace(a.remote(), MemoryHub::new());
        let started = std::time::Instant::now();
        b.read_feed().unwrap();
        let down = b.round(&mut Nothing).unwrap();
        eprintln!("one edit in {nodes} nodes: sent in {sent:?}, brought down in {:?}", started.elapsed());
        assert_eq!((up.done, down.done), (1, 1));
        assert_eq!(b.canopy.local.get(edited).unwrap().content, Some(ContentHash::of(b"edited")));
        // A rename of the top folder on B is one request, whatever lies below.
        let base = b.canopy.local.get(top).unwrap().clone();
        let moved = Node { place: Place { parent: ROOT, name: "renamed".into() }, ..base.clone() };
        b.canopy.local.set(top, moved);
        let started = std::time::Instant::now();
        let before = b.view().cursor();
        let round = {
            b.read_feed().unwrap();
            b.round(&mut Nothing).unwrap()
        };
        eprintln!("a rename of {nodes} nodes planned and sent in {:?}", started.elapsed());
        assert_eq!((round.done, round.refused), (1, None));
        b.read_feed().unwrap();
        assert!(b.converged());
        assert!(b.view().cursor() > before);
    }

    /// The hub, whose answers to chosen requests are lost: each request in
    /// `lose` (by number, from 0) is carried out but answered NoAnswer, and
    /// each in `drop` never reaches the hub at all.
    struct Lossy {
        hub: MemoryHub,
        sent: usize,
        lose: Vec<usize>,
        drop: Vec<usize>,
    }

    impl Remote for Lossy {
        fn send(&mut self, r: &crate::sync::hub_view::Request) -> Result<Vec<ssync_common::api::Entry>, Refusal> {
            let n = self.sent;
            self.sent += 1;
            if self.drop.contains(&n) {
                return Err(Refusal::NoAnswer("cut off before the hub".into()));
            }
            let answer = self.hub.send(r)?;
            match self.lose.contains(&n) {
                true => Err(Refusal::NoAnswer("cut off after the hub".into())),
                false => Ok(answer),
            }
        }
        fn changes_since(&mut self, cursor: u64) -> Result<ssync_common::api::EntriesPage, Refusal> {
            self.hub.changes_since(cursor)
        }
    }

    /// A mount sends an edit whose answer is lost and crashes; its user then
    /// edits the file again. Resumed from its database, it knows the hub's
    /// version as its own earlier edit (kept as sent, confirmed from the
    /// feed), so the new edit is just an edit: no conflict copy of its own.
    #[test]
    fn a_crash_with_an_answer_lost_resumes_from_the_database_without_a_copy_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("state.db");
        let file = |parent, name: &str, n: u64| Node {
            place: Place { parent, name: name.into() },
            kind: Kind::File,
            content: Some(ContentHash::of(&n.to_le_bytes())),
            mode: 0o644,
            meta: None,
        };
        let (d, f, g) = (11u128, 12u128, 13u128);
        let mut local = Tree::default();
        local.set(
            d,
            Node {
                place: Place { parent: ROOT, name: "d".into() },
                kind: Kind::Dir,
                content: None,
                mode: 0o755,
                meta: None,
            },
        );
        local.set(f, file(d, "f", 1));
        local.set(g, file(d, "g", 2));
        let keeper = Box::new(crate::local::db::LocalDb::open(&db_path).unwrap());
        // Requests 0-2 make the tree; 3, the edit below, is carried out but its answer is lost.
        let lossy = Lossy { hub: MemoryHub::new(), sent: 0, lose: vec![3], drop: vec![] };
        let mut a = Engine::resume(lossy, keeper, Tree::default(), HubView::default(), vec![]);
        a.canopy.local = local.clone();
        a.sync(&mut Nothing, 5).unwrap();
        assert!(a.converged());
        local.set(f, file(d, "f", 5));
        a.canopy.local = local.clone();
        a.read_feed().unwrap();
        let round = a.round(&mut Nothing).unwrap();
        assert_eq!((round.done, a.remote().sent), (0, 4), "{round:?}");
        assert!(round.refused.is_some(), "the answer was lost");
        // The crash; then the user edits f again.
        let hub = std::mem::replace(&mut a.remote().hub, MemoryHub::new());
        drop(a);
        local.set(f, file(d, "f", 6));
        let db = crate::local::db::LocalDb::open(&db_path).unwrap();
        let kept = db.load_sync_state().unwrap();
        assert_eq!(kept.sent.len(), 1, "the edit whose answer was lost was kept as sent");
        // After the restart, the first request never reaches the hub.
        let remote = Lossy { hub, sent: 100, lose: vec![], drop: vec![100] };
        let mut a = Engine::resume(remote, Box::new(db), kept.synced, kept.view, kept.sent);
        a.canopy.local = local.clone();
        a.sync(&mut Nothing, 10).unwrap();
        assert!(a.converged());
        assert_eq!(a.canopy.local, local, "nothing was added here: no conflict copy of its own");
        assert_eq!(a.remote().hub.tree(), local, "the hub has f with the user's last edit");
    }
}
