//! A seeded, deterministic simulation of the engine's decisions, in the
//! manner of Dropbox's CanopyCheck: a hub tree and three mounts, each with
//! its three trees, users changing their mounts' trees at random (files,
//! folders and symlinks made, deep folder moves, exchanges, deletes of whole
//! subtrees, rewrites, chmods), operations carried out a few at a time from
//! plans made earlier (so some are stale and refused), answers lost on the
//! way, mounts that crash and a hub that restarts (plans lost, trees kept),
//! and the feed delivered to each mount at random moments. Then the users
//! stop, and every mount must converge on the hub's tree.
//!
//! Checked for every seed: the trees converge (and stay valid throughout),
//! the last content each user gave a node reached the hub, and no conflict
//! copy is made of a node that only its own mount changed.
//!
//! Each seed runs twice:
//! - against the planner's own rules (`apply` on a bare tree), with a loop
//!   of the simulation's own;
//! - against the hub's own tree rules (`memory_hub`), each mount running the
//!   engine the mounts run (`engine::Engine`, its `step` and `read_feed`),
//!   through its `HubView`, with answers lost after the hub carried the
//!   request out; every answer's rows placed one by one are checked against
//!   deriving the tree from all rows.
//!
//! `SSYNC_SIM_SEEDS=N` runs N seeds (default 10,000 each);
//! `SSYNC_SIM_SEED=S` replays one seed alone, with its steps printed.
use super::canopy::{Canopy, Kind, Meta, Node, NodeId, Place, Tree, ROOT};
use super::engine::{Engine, LocalSide};
use super::hub_view::{HubView, Request};
use super::local_tree::agreed_owner;
use super::memory_hub::MemoryHub;
use super::merge::{default_namer, merge, merge_in};
use super::planner::{apply, plan, Op, Side};
use super::remote::{BatchAnswer, Refusal, Remote};
use ssync_common::api::{EntriesPage, Entry, Owner};
use ssync_common::ContentHash;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

const MOUNTS: usize = 3;
const NAMES: [&str; 5] = ["a", "b", "c", "d.txt", "e"];

/// xorshift64*: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn id(&mut self) -> NodeId {
        ((self.next() as u128) << 64 | self.next() as u128).max(1)
    }
}

/// Who made a change: a mount's user.
type Actor = usize;

/// The owner of what mount `m`'s user makes.
fn user_owner(m: usize) -> Owner {
    Owner { uid: 1000 + m as u32, gid: 1000 + m as u32, user: None, group: None }
}

fn owner_in(meta: &Option<Box<Meta>>) -> Option<Owner> {
    meta.as_ref().and_then(|m| m.owner.clone())
}

struct Mount {
    canopy: Canopy,
    /// Its picture of the hub, with the hub's versions (the hub's own rules only).
    view: HubView,
    /// A plan made earlier, carried out a few operations at a time.
    plan: Vec<Op>,
    /// Operations sent to the hub whose answers were lost (with the number
    /// the engine keeps each under).
    unanswered: Vec<(i64, Op)>,
    /// Owners this mount's user set (made the node, or chowned it): what the
    /// mount's tree holds. A node brought here from the hub holds none, and
    /// Local says its owner as the mount does (`local_tree::agreed_owner`).
    owners_set: HashMap<NodeId, Owner>,
    /// The mount's database as it was before its last engine step, while
    /// nothing else happened on the mount since: a crash may lose the step's
    /// transactions (a power cut loses the tail of SQLite's log).
    before_step: Option<Box<BeforeStep>>,
}

/// What a crash that loses an engine step's transactions leaves: Local and
/// Synced (kept in one transaction, `MountKeeper`) and the hub's view as
/// they were; each operation the step sent stays sent, outcome unknown
/// (`Keeper::sending` keeps it before it goes).
struct BeforeStep {
    local: Tree,
    synced: Tree,
    view: HubView,
    unanswered: Vec<(i64, Op)>,
    /// The last content this mount's user gave each node, as the simulation
    /// knew it then (a conflict copy made in the step took some over).
    last_written: Vec<(NodeId, Option<ContentHash>)>,
}

/// The hub a seed runs against.
enum SimHub {
    /// The planner's own rules: a tree that operations are applied to as they are.
    Bare(Tree),
    /// The real hub's tree rules (path-keyed rows carrying node ids, bases as
    /// versions), which each mount's `Engine` reaches through its `SimRemote`.
    Shared(Rc<RefCell<MemoryHub>>),
}

impl SimHub {
    /// The feed reaches the mount: its Remote tree becomes the hub's.
    fn read_feed(&mut self, mount: &mut Mount) {
        match self {
            SimHub::Bare(tree) => mount.canopy.remote = tree.clone(),
            SimHub::Shared(hub) => {
                loop {
                    let page = hub.borrow_mut().changes_since(mount.view.cursor()).expect("the in-memory hub answers");
                    mount.view.fold_page(&page).expect("the hub's feed folds");
                    if page.entries.is_empty() {
                        break;
                    }
                }
                mount.view.settle_feed();
                mount.canopy.remote = mount.view.tree().clone();
            }
        }
    }

    fn tree(&mut self) -> Tree {
        match self {
            SimHub::Bare(tree) => tree.clone(),
            SimHub::Shared(hub) => hub.borrow_mut().tree(),
        }
    }

    /// The hub's rules, when the mounts run their `Engine` against them.
    fn shared(&self) -> Option<Rc<RefCell<MemoryHub>>> {
        match self {
            SimHub::Bare(_) => None,
            SimHub::Shared(hub) => Some(hub.clone()),
        }
    }
}

/// With the planner's rules: carries out a mount's Remote operation on the
/// bare tree. Unless its answer is lost, the mount's Remote tree then shows
/// what the hub did.
fn send_bare(hub: &mut Tree, mount: &mut Mount, op: &Op, answer_lost: bool) -> Result<(), String> {
    apply(hub, op).map_err(|e| e.to_string())?;
    if !answer_lost {
        let c = &mut mount.canopy;
        for id in op.nodes() {
            match hub.get(id) {
                Some(n) => c.remote.set(id, n.clone()),
                None => drop(c.remote.remove(id)),
            }
        }
        // The answer holds the hub's nodes: the mount's view stays a tree.
        if c.remote.check().is_err() {
            c.remote = hub.clone();
        }
    }
    Ok(())
}

/// One mount's way to the shared hub: answers lost at random after the hub
/// carried the request out (5 %), and the contents it took recorded.
struct SimRemote {
    hub: Rc<RefCell<MemoryHub>>,
    rng: Rng,
    took: Vec<Option<ContentHash>>,
}

impl Remote for SimRemote {
    fn send(&mut self, request: &Request) -> Result<Vec<Entry>, Refusal> {
        let answer = Remote::send(&mut *self.hub.borrow_mut(), request)?;
        if let Request::Commit { content, .. } = request {
            self.took.push(Some(*content));
        }
        match self.rng.chance(5) {
            true => Err(Refusal::NoAnswer("the answer was lost".into())),
            false => Ok(answer),
        }
    }

    /// As the hub over HTTP does, a batch may end early with the rest not
    /// sent (it sends a big file alone), and an answer may be lost.
    fn send_batch(&mut self, requests: &[Request]) -> BatchAnswer {
        let take = match requests.len() > 1 && self.rng.chance(30) {
            true => 1 + self.rng.below(requests.len() - 1),
            false => requests.len(),
        };
        super::remote::send_each(self, &requests[..take])
    }

    fn changes_since(&mut self, cursor: u64) -> Result<EntriesPage, Refusal> {
        self.hub.borrow_mut().changes_since(cursor)
    }
}

/// Local operations as the mount's engine carries them out: checked that a
/// conflict copy is made only of a node another mount changed too.
struct CopyCheck<'a> {
    m: Actor,
    editors: &'a HashMap<NodeId, HashSet<Actor>>,
    wrong: Option<String>,
}

impl LocalSide for CopyCheck<'_> {
    fn carry_out(&mut self, op: &Op, _: &HubView) -> Result<(), String> {
        if let Op::Create { copy_of: Some(from), id, .. } = op {
            let others = self.editors.get(from).is_some_and(|e| e.iter().any(|a| *a != self.m));
            if !others && self.wrong.is_none() {
                self.wrong =
                    Some(format!("mount {} made conflict copy {id:x} of {from:x}, which only it changed", self.m));
            }
        }
        Ok(())
    }
}

/// Puts `start` on a new in-memory hub, folders before what they hold.
fn memory_hub_holding(start: &Tree) -> MemoryHub {
    let mut hub = MemoryHub::new();
    let mut view = HubView::default();
    let mut ids: Vec<NodeId> = start.ids().collect();
    ids.sort_by_key(|id| start.depth(*id));
    for id in ids {
        let node = start.get(id).expect("listed").clone();
        let op = Op::Create { side: Side::Remote, id, node, copy_of: None };
        let request: Request = view.request_for(&op).expect("the start tree is valid");
        let rows = Remote::send(&mut hub, &request).expect("the start tree goes on the hub");
        view.fold_answer(&rows).expect("the hub's answer folds");
    }
    hub
}

struct World {
    rng: Rng,
    hub: SimHub,
    mounts: Vec<Mount>,
    /// Every content the hub ever held.
    hub_seen: HashSet<Option<ContentHash>>,
    /// The last content each user gave each node (gone when that user deletes it).
    last_written: HashMap<(Actor, NodeId), Option<ContentHash>>,
    /// Who changed each node's content.
    editors: HashMap<NodeId, HashSet<Actor>>,
    next_content: u64,
    log: Vec<String>,
    verbose: bool,
}

impl World {
    fn say(&mut self, line: String) {
        if self.verbose {
            eprintln!("{line}");
        }
        self.log.push(line);
    }

    fn fresh_content(&mut self) -> Option<ContentHash> {
        self.next_content += 1;
        Some(ContentHash::of(&self.next_content.to_le_bytes()))
    }

    fn folders(t: &Tree) -> Vec<NodeId> {
        std::iter::once(ROOT).chain(t.iter().filter(|(_, n)| n.kind == Kind::Dir).map(|(id, _)| id)).collect()
    }

    /// A free place in a random folder of `t` that `id` may take.
    fn free_place(&mut self, t: &Tree, id: Option<NodeId>) -> Option<Place> {
        let folders = Self::folders(t);
        let parent = folders[self.rng.below(folders.len())];
        if id.is_some_and(|id| t.is_within(parent, id)) {
            return None;
        }
        let name = NAMES[self.rng.below(NAMES.len())].to_string();
        let place = Place { parent, name };
        t.iter().all(|(_, n)| n.place != place).then_some(place)
    }

    fn pick(&mut self, t: &Tree) -> Option<(NodeId, Node)> {
        let ids: Vec<NodeId> = t.ids().collect();
        if ids.is_empty() {
            return None;
        }
        let id = ids[self.rng.below(ids.len())];
        Some((id, t.get(id).expect("listed").clone()))
    }

    /// One random change by mount `m`'s user to its Local tree.
    fn user_change(&mut self, m: usize) {
        self.mounts[m].before_step = None;
        let t = self.mounts[m].canopy.local.clone();
        let roll = self.rng.below(100);
        let op = match roll {
            0..=24 => {
                let Some(place) = self.free_place(&t, None) else { return };
                let kind = [Kind::File, Kind::Dir, Kind::Symlink, Kind::File][self.rng.below(4)];
                let content = if kind == Kind::Dir { None } else { self.fresh_content() };
                let id = self.rng.id();
                let meta = Meta::boxed(Some(user_owner(m)), None);
                self.mounts[m].owners_set.insert(id, user_owner(m));
                Op::Create {
                    side: Side::Local,
                    id,
                    node: Node { place, kind, content, mode: 0o644, meta },
                    copy_of: None,
                }
            }
            25..=49 => {
                let Some((id, n)) = self.pick(&t).filter(|(_, n)| n.kind != Kind::Dir) else { return };
                let content = self.fresh_content();
                Op::Edit { side: Side::Local, id, base: n.clone(), content, mode: n.mode, meta: n.meta.clone() }
            }
            50..=54 => {
                let Some((id, n)) = self.pick(&t) else { return };
                let (content, mode, meta) = (n.content, n.mode ^ 0o100, n.meta.clone());
                Op::Edit { side: Side::Local, id, base: n, content, mode, meta }
            }
            55..=57 => {
                // An extended attribute set (or cleared: value 0).
                let Some((id, n)) = self.pick(&t) else { return };
                let value = self.rng.below(3) as u8;
                let mut x = ssync_common::xattrs::Xattrs::default();
                if value > 0 {
                    x.set("user.tag", &[value]).expect("a valid attribute");
                }
                let meta = Meta::boxed(owner_in(&n.meta), Some(x));
                Op::Edit { side: Side::Local, id, base: n.clone(), content: n.content, mode: n.mode, meta }
            }
            58..=59 => {
                // A chown, to one of the users.
                let Some((id, n)) = self.pick(&t) else { return };
                let owner = user_owner(self.rng.below(MOUNTS));
                self.mounts[m].owners_set.insert(id, owner.clone());
                let meta = Meta::boxed(Some(owner), n.meta.as_ref().and_then(|m| m.xattrs.clone()));
                Op::Edit { side: Side::Local, id, base: n.clone(), content: n.content, mode: n.mode, meta }
            }
            60..=79 => {
                let Some((id, n)) = self.pick(&t) else { return };
                let Some(to) = self.free_place(&t, Some(id)) else { return };
                Op::Move { side: Side::Local, id, base: n, to }
            }
            80..=84 => {
                let (Some((a, a_base)), Some((b, b_base))) = (self.pick(&t), self.pick(&t)) else { return };
                if a == b {
                    return;
                }
                Op::Exchange { side: Side::Local, a, a_base, b, b_base }
            }
            85..=91 => {
                // A rename over another file, as a lock file is renamed onto
                // what it replaces (git, editors): the target node goes, the
                // renamed one takes its place.
                let files = |t: &Tree| -> Vec<NodeId> {
                    t.iter().filter(|(_, n)| n.kind != Kind::Dir).map(|(id, _)| id).collect()
                };
                let candidates = files(&t);
                if candidates.len() < 2 {
                    return;
                }
                let a = candidates[self.rng.below(candidates.len())];
                let b = candidates[self.rng.below(candidates.len())];
                if a == b {
                    return;
                }
                let local = &mut self.mounts[m].canopy.local;
                let (a_base, b_base) = (local.get(a).expect("listed").clone(), local.get(b).expect("listed").clone());
                apply(local, &Op::Delete { side: Side::Local, id: b, base: b_base.clone() }).expect("a file goes");
                let moved = Op::Move { side: Side::Local, id: a, base: a_base, to: b_base.place };
                apply(local, &moved).expect("its place is free now");
                self.last_written.remove(&(m, b));
                self.say(format!("user {m}: rename {a:x} over {b:x}"));
                return;
            }
            _ => {
                // rm -rf: the node and everything below it, deepest first.
                let Some((id, _)) = self.pick(&t) else { return };
                let mut doomed: Vec<NodeId> = t.ids().filter(|n| t.is_within(*n, id)).collect();
                doomed.sort_by_key(|n| std::cmp::Reverse(t.path_of(*n).map_or(0, |p| p.matches('/').count())));
                for d in doomed {
                    let base = self.mounts[m].canopy.local.get(d).expect("below the node").clone();
                    let op = Op::Delete { side: Side::Local, id: d, base };
                    apply(&mut self.mounts[m].canopy.local, &op).expect("deepest first is valid");
                    self.last_written.remove(&(m, d));
                }
                self.say(format!("user {m}: rm -rf {id:x}"));
                return;
            }
        };
        if apply(&mut self.mounts[m].canopy.local, &op).is_ok() {
            for id in op.nodes() {
                let n = self.mounts[m].canopy.local.get(id).cloned();
                let content_changed = t.get(id).map(|o| o.content) != n.as_ref().map(|n| n.content);
                if let Some(n) = n.filter(|n| n.kind != Kind::Dir && content_changed) {
                    self.last_written.insert((m, id), n.content);
                    self.editors.entry(id).or_default().insert(m);
                }
            }
            self.say(format!("user {m}: {op:?}"));
        }
    }

    /// Local's owners as the mount reads them from its tree before it plans:
    /// the one its user set, else the agreed one, else the hub's.
    fn read_owners(&mut self, m: usize) {
        let mount = &mut self.mounts[m];
        let c = &mut mount.canopy;
        let ids: Vec<NodeId> = c.local.ids().collect();
        for id in ids {
            let n = c.local.get(id).expect("listed");
            let owner = match mount.owners_set.get(&id) {
                Some(o) => Some(o.clone()),
                None => agreed_owner(c.synced.get(id), c.remote.get(id)).cloned(),
            };
            if owner_in(&n.meta) != owner {
                let meta = Meta::boxed(owner, n.meta.as_ref().and_then(|m| m.xattrs.clone()));
                c.local.set(id, Node { meta, ..n.clone() });
            }
        }
    }

    /// After the engine changed mount `m`'s Local: a node that took another
    /// owner from the hub no longer holds the one its user set (as the mount
    /// does without `--sync-owners`), and a node gone holds none.
    fn forget_owners(&mut self, m: usize) {
        let mount = &mut self.mounts[m];
        let local = &mount.canopy.local;
        mount.owners_set.retain(|id, o| local.get(*id).is_some_and(|n| owner_in(&n.meta).as_ref() == Some(o)));
    }

    /// The feed reaches mount `m`: its Remote tree becomes the hub's, and
    /// operations whose answers were lost are confirmed from it.
    fn deliver_feed(&mut self, m: usize) -> Result<(), String> {
        if self.verbose {
            eprintln!("feed reaches mount {m}");
        }
        self.read_owners(m);
        self.mounts[m].before_step = None;
        if let Some(hub) = self.hub.shared() {
            return self.with_engine(m, hub, |e| e.read_feed().map_err(|e| e.to_string()));
        }
        let mount = &mut self.mounts[m];
        self.hub.read_feed(mount);
        let c = &mut mount.canopy;
        for (_, op) in std::mem::take(&mut mount.unanswered) {
            c.confirm_sent(&op);
        }
        let ids: Vec<NodeId> = c.local.ids().chain(c.remote.ids()).chain(c.synced.ids()).collect();
        for id in ids {
            c.settle(id);
        }
        Ok(())
    }

    /// Runs `f` on mount `m` as the engine the mounts run (`sync::engine`),
    /// made from the mount's state and taken apart again afterwards (so the
    /// users can change Local between steps, and a crash drops the plan).
    fn with_engine<T>(
        &mut self,
        m: usize,
        hub: Rc<RefCell<MemoryHub>>,
        f: impl FnOnce(&mut Engine<SimRemote>) -> Result<T, String>,
    ) -> Result<T, String> {
        let mount = &mut self.mounts[m];
        let remote = SimRemote { hub, rng: Rng::new(self.rng.next()), took: Vec::new() };
        let mut view = std::mem::take(&mut mount.view);
        view.check_placement = true;
        let mut engine = Engine::from_parts(
            std::mem::take(&mut mount.canopy),
            view,
            remote,
            std::mem::take(&mut mount.unanswered),
            std::mem::take(&mut mount.plan),
        );
        let out = f(&mut engine);
        let (canopy, view, remote, unanswered, plan) = engine.into_parts();
        *mount = Mount {
            canopy,
            view,
            unanswered,
            plan,
            owners_set: std::mem::take(&mut mount.owners_set),
            before_step: mount.before_step.take(),
        };
        self.hub_seen.extend(remote.took);
        self.forget_owners(m);
        out
    }

    /// Mount `m` carries out up to `n` operations of its plan (making a new
    /// plan when it has none); a refusal drops the rest of the plan.
    fn run_engine(&mut self, m: usize, n: usize) -> Result<(), String> {
        self.read_owners(m);
        if let Some(hub) = self.hub.shared() {
            return self.run_real_engine(m, n, hub);
        }
        if self.mounts[m].plan.is_empty() {
            let c = &mut self.mounts[m].canopy;
            c.check_differing();
            let scope = c.differing();
            let merged = merge_in(c, &scope, &default_namer);
            merged.target.check().map_err(|e| format!("mount {m}: the merged target is not valid: {e}"))?;
            let ops = plan(c, &merged).map_err(|e| format!("mount {m}: {e}"))?;
            // Merging and planning the differing nodes gives what merging every node gives.
            let whole = merge(c, &default_namer);
            if (&whole.target, &whole.copies) != (&merged.target, &merged.copies) {
                return Err(format!("mount {m}: the merge of the differing nodes is not the whole merge"));
            }
            if plan(c, &whole).map_err(|e| format!("mount {m}: {e}"))? != ops {
                return Err(format!("mount {m}: the plan of the differing nodes is not the whole plan"));
            }
            self.mounts[m].plan = ops;
            self.mounts[m].plan.reverse();
        }
        for _ in 0..n {
            let Some(op) = self.mounts[m].plan.pop() else { return Ok(()) };
            let lost_answer = self.rng.chance(5);
            let done = match op.side() {
                Side::Remote => {
                    let SimHub::Bare(hub) = &mut self.hub else {
                        unreachable!("with the hub's rules the mounts run their Engine (run_real_engine)")
                    };
                    let done = send_bare(hub, &mut self.mounts[m], &op, lost_answer);
                    if lost_answer {
                        self.mounts[m].unanswered.push((0, op.clone()));
                    }
                    if done.is_ok() {
                        // What the hub holds now: the content this sent.
                        match &op {
                            Op::Create { node, .. } => drop(self.hub_seen.insert(node.content)),
                            Op::Edit { content, .. } => drop(self.hub_seen.insert(*content)),
                            _ => {}
                        }
                    }
                    done
                }
                Side::Local => {
                    if let Op::Create { copy_of: Some(from), id, .. } = &op {
                        let others = self.editors.get(from).is_some_and(|e| e.iter().any(|a| *a != m));
                        if !others {
                            let c = &self.mounts[m].canopy;
                            let (sy, l, r) = (c.synced.get(*from), c.local.get(*from), c.remote.get(*from));
                            return Err(format!(
                                "mount {m} made conflict copy {id:x} of {from:x}, which only it changed \
                                 (synced {sy:?}, local {l:?}, remote {r:?})"
                            ));
                        }
                    }
                    apply(&mut self.mounts[m].canopy.local, &op).map_err(|e| e.to_string())
                }
            };
            let lost = if lost_answer && op.side() == Side::Remote { " (answer lost)" } else { "" };
            self.say(format!("mount {m}: {op:?} -> {done:?}{lost}"));
            if done.is_err() {
                self.mounts[m].plan.clear();
                return Ok(());
            }
            // A conflict copy now holds what this mount's user last wrote to
            // the node it copies: from here on the copy's fate is that write's.
            if let Op::Create { copy_of: Some(from), id, node, .. } = &op {
                if self.last_written.get(&(m, *from)) == Some(&node.content) {
                    self.last_written.remove(&(m, *from));
                    self.last_written.insert((m, *id), node.content);
                }
            }
            let c = &mut self.mounts[m].canopy;
            match (op.side(), lost_answer) {
                (Side::Remote, true) => op.nodes().into_iter().for_each(|id| c.settle(id)),
                _ => c.agree(&op),
            }
            // An answer shows the hub's nodes as they are now: an earlier
            // operation whose own answer was lost may show there.
            if op.side() == Side::Remote && !lost_answer {
                let mount = &mut self.mounts[m];
                let c = &mut mount.canopy;
                mount.unanswered.retain(|(_, sent)| !c.confirm_sent(sent));
            }
        }
        Ok(())
    }

    /// `run_engine` with the hub's rules: the mount's own `Engine::step`.
    fn run_real_engine(&mut self, m: usize, n: usize, hub: Rc<RefCell<MemoryHub>>) -> Result<(), String> {
        let mount = &self.mounts[m];
        let mut before = BeforeStep {
            local: mount.canopy.local.clone(),
            synced: mount.canopy.synced.clone(),
            view: mount.view.clone(),
            unanswered: mount.unanswered.clone(),
            last_written: self
                .last_written
                .iter()
                .filter(|((a, _), _)| *a == m)
                .map(|((_, id), c)| (*id, *c))
                .collect(),
        };
        let editors = std::mem::take(&mut self.editors);
        let mut check = CopyCheck { m, editors: &editors, wrong: None };
        let round = self.with_engine(m, hub, |e| e.step(&mut check, n).map_err(|e| format!("mount {m}: {e}")));
        let wrong = check.wrong.take();
        self.editors = editors;
        let round = round?;
        let sent = round.tried.iter().filter(|(op, _)| op.side() == Side::Remote);
        before.unanswered.extend(sent.map(|(op, _)| (0, op.clone())));
        self.mounts[m].before_step = Some(Box::new(before));
        for (op, done) in &round.tried {
            self.say(format!("mount {m}: {op:?} -> {done:?}"));
            // A conflict copy now holds what this mount's user last wrote to
            // the node it copies: from here on the copy's fate is that write's.
            if let (Op::Create { copy_of: Some(from), id, node, .. }, Ok(())) = (op, done) {
                if self.last_written.get(&(m, *from)) == Some(&node.content) {
                    self.last_written.remove(&(m, *from));
                    self.last_written.insert((m, *id), node.content);
                }
            }
        }
        wrong.map_or(Ok(()), Err)
    }
}

fn random_tree(rng: &mut Rng, nodes: usize) -> Tree {
    let mut t = Tree::default();
    for i in 0..nodes {
        let folders = World::folders(&t);
        let parent = folders[rng.below(folders.len())];
        let name = NAMES[rng.below(NAMES.len())].to_string();
        let place = Place { parent, name };
        if t.iter().any(|(_, n)| n.place == place) {
            continue;
        }
        let kind = if rng.chance(40) { Kind::Dir } else { Kind::File };
        let content = (kind == Kind::File).then(|| ContentHash::of(&(1_000_000 + i as u64).to_le_bytes()));
        t.set(rng.id(), Node { place, kind, content, mode: 0o644, meta: None });
    }
    t
}

/// Which hub a seed runs against.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum HubRules {
    /// The planner's own `apply`: fast, for many seeds.
    Planner,
    /// The hub's tree rules over an in-memory SQLite, through `HubView`.
    Hub,
}

/// One seed; Err names what went wrong, with the steps that led there.
fn run_seed(seed: u64, rules: HubRules, verbose: bool) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let size = 4 + rng.below(12);
    let start = random_tree(&mut rng, size);
    let mut hub = match rules {
        HubRules::Planner => SimHub::Bare(start.clone()),
        HubRules::Hub => SimHub::Shared(Rc::new(RefCell::new(memory_hub_holding(&start)))),
    };
    let mut mounts: Vec<Mount> = (0..MOUNTS)
        .map(|_| Mount {
            canopy: Canopy::new(start.clone(), start.clone(), start.clone()),
            view: HubView::default(),
            plan: Vec::new(),
            unanswered: Vec::new(),
            owners_set: HashMap::new(),
            before_step: None,
        })
        .collect();
    for mount in &mut mounts {
        hub.read_feed(mount);
        if mount.canopy.remote != start {
            return Err(format!("seed {seed}: the hub's tree read from its feed is not the start tree"));
        }
    }
    let mut w = World {
        rng,
        hub_seen: start.iter().map(|(_, n)| n.content).collect(),
        hub,
        mounts,
        last_written: HashMap::new(),
        editors: HashMap::new(),
        next_content: 0,
        log: Vec::new(),
        verbose,
    };
    let busy_steps = 20 + w.rng.below(60);
    let result = (|| {
        for _ in 0..busy_steps {
            let m = w.rng.below(MOUNTS);
            match w.rng.below(20) {
                0..=7 => w.user_change(m),
                8..=15 => {
                    let n = 1 + w.rng.below(3);
                    w.run_engine(m, n)?;
                }
                16 => {
                    // The mount crashes and starts again: its trees were
                    // persisted, its plan was not, and the answer to what it
                    // had just sent is lost. Half the time, right after an
                    // engine step, the step's transactions are lost too.
                    w.mounts[m].plan.clear();
                    match w.mounts[m].before_step.take().filter(|_| w.rng.chance(50)) {
                        Some(b) => {
                            w.say(format!("mount {m} crashes and loses its last step"));
                            let mount = &mut w.mounts[m];
                            (mount.canopy.local, mount.canopy.synced) = (b.local, b.synced);
                            (mount.view, mount.unanswered) = (b.view, b.unanswered);
                            mount.canopy.remote = mount.view.tree().clone();
                            w.last_written.retain(|(a, _), _| *a != m);
                            w.last_written.extend(b.last_written.into_iter().map(|(id, c)| ((m, id), c)));
                        }
                        None => w.say(format!("mount {m} crashes")),
                    }
                }
                17 => {
                    // The hub restarts: requests in flight fail; each mount
                    // plans again once it is back.
                    w.say("the hub restarts".to_string());
                    w.mounts.iter_mut().for_each(|m| m.plan.clear());
                }
                _ => w.deliver_feed(m)?,
            }
            for (i, mount) in w.mounts.iter().enumerate() {
                for (name, t) in [("local", &mount.canopy.local), ("remote", &mount.canopy.remote)] {
                    t.check().map_err(|e| format!("mount {i}'s {name} tree is not valid: {e}"))?;
                }
            }
            w.hub.tree().check().map_err(|e| format!("the hub's tree is not valid: {e}"))?;
        }
        // The users stop: every mount must converge on the hub's tree.
        for round in 0.. {
            if round > 200 {
                return Err("no convergence after 200 rounds".to_string());
            }
            for m in 0..MOUNTS {
                w.deliver_feed(m)?;
                w.mounts[m].plan.clear();
                w.run_engine(m, usize::MAX)?;
            }
            let hub = w.hub.tree();
            let done = w.mounts.iter_mut().all(|m| m.canopy.converged() && m.canopy.local == hub);
            if done && (0..MOUNTS).all(|m| w.mounts[m].plan.is_empty()) {
                break;
            }
        }
        for ((m, id), content) in &w.last_written {
            if !w.hub_seen.contains(content) {
                return Err(format!("mount {m}'s last content of node {id:x} never reached the hub"));
            }
        }
        Ok(())
    })();
    result.map_err(|e| {
        let tail: Vec<&String> = w.log.iter().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
        format!("seed {seed}: {e}\nlast steps:\n{}", tail.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n"))
    })
}

/// Runs `SSYNC_SIM_SEEDS` seeds (or `default`), or replays `SSYNC_SIM_SEED` alone.
fn run_seeds(rules: HubRules, test: &str, default: u64) {
    if let Some(seed) = std::env::var("SSYNC_SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        run_seed(seed, rules, true).unwrap_or_else(|e| panic!("{e}"));
        return;
    }
    let seeds: u64 = std::env::var("SSYNC_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    let started = std::time::Instant::now();
    for seed in 0..seeds {
        if let Err(e) = run_seed(seed, rules, false) {
            panic!("{e}\nreplay alone: SSYNC_SIM_SEED={seed} cargo test -p ssync-fs --lib sync::canopy_check::{test}");
        }
    }
    eprintln!("{seeds} seeds against {rules:?} rules in {:?}", started.elapsed());
}

#[test]
fn seeds_converge_keep_every_last_write_and_copy_only_real_conflicts() {
    run_seeds(HubRules::Planner, "seeds_converge_keep_every_last_write_and_copy_only_real_conflicts", 10_000);
}

#[test]
fn seeds_converge_against_the_hubs_own_tree_rules() {
    run_seeds(HubRules::Hub, "seeds_converge_against_the_hubs_own_tree_rules", 10_000);
}

#[test]
fn a_folder_rename_is_one_operation_whatever_lies_below() {
    let mut rng = Rng::new(7);
    let mut t = Tree::default();
    let dir = rng.id();
    t.set(
        dir,
        Node {
            place: Place { parent: ROOT, name: "big".into() },
            kind: Kind::Dir,
            content: None,
            mode: 0o755,
            meta: None,
        },
    );
    for i in 0..1000 {
        let content = Some(ContentHash::of(&(i as u64).to_le_bytes()));
        let place = Place { parent: dir, name: format!("f{i}") };
        t.set(rng.id(), Node { place, kind: Kind::File, content, mode: 0o644, meta: None });
    }
    let mut c = Canopy::new(t.clone(), t.clone(), t);
    let moved = Node { place: Place { parent: ROOT, name: "renamed".into() }, ..c.local.get(dir).unwrap().clone() };
    c.local.set(dir, moved.clone());
    let merged = merge(&c, &default_namer);
    let ops = plan(&c, &merged).unwrap();
    assert_eq!(ops.len(), 1, "{ops:?}");
    assert!(matches!(&ops[0], Op::Move { side: Side::Remote, id, to, .. } if *id == dir && *to == moved.place));
}

/// A `tar x` of 5,000 files in 50 folders here, while the hub gets an
/// `rm -rf` of 2,000 others and a rename of their neighbours' folder: one
/// operation per node on the side that lacks it, one for the rename, and a
/// plan made in one go (its time is printed; it is not a test of speed).
#[test]
fn a_big_change_is_planned_one_operation_per_node() {
    let mut rng = Rng::new(11);
    let file = |parent: NodeId, name: String, i: u64| Node {
        place: Place { parent, name },
        kind: Kind::File,
        content: Some(ContentHash::of(&i.to_le_bytes())),
        mode: 0o644,
        meta: None,
    };
    let dir = |parent: NodeId, name: String| Node {
        place: Place { parent, name },
        kind: Kind::Dir,
        content: None,
        mode: 0o755,
        meta: None,
    };
    let mut base = Tree::default();
    let (old, kept) = (rng.id(), rng.id());
    base.set(old, dir(ROOT, "old".into()));
    base.set(kept, dir(ROOT, "kept".into()));
    for i in 0..2000u64 {
        base.set(rng.id(), file(old, format!("f{i}"), i));
        base.set(rng.id(), file(kept, format!("f{i}"), 10_000 + i));
    }
    let mut c = Canopy::new(base.clone(), base.clone(), base);
    let top = rng.id();
    c.local.set(top, dir(ROOT, "untar".into()));
    for d in 0..50u64 {
        let sub = rng.id();
        c.local.set(sub, dir(top, format!("d{d}")));
        for i in 0..100u64 {
            c.local.set(rng.id(), file(sub, format!("f{i}"), 100_000 + d * 100 + i));
        }
    }
    let doomed: Vec<NodeId> = c.remote.iter().filter(|(_, n)| n.place.parent == old).map(|(id, _)| id).collect();
    for id in doomed {
        c.remote.remove(id);
    }
    c.remote.remove(old);
    c.remote.set(kept, dir(ROOT, "renamed".into()));
    let started = std::time::Instant::now();
    let merged = merge(&c, &default_namer);
    let ops = plan(&c, &merged).unwrap();
    eprintln!("planned {} operations over {} nodes in {:?}", ops.len(), merged.target.len(), started.elapsed());
    let count = |side: Side, f: fn(&Op) -> bool| ops.iter().filter(|o| o.side() == side && f(o)).count();
    assert_eq!(count(Side::Remote, |o| matches!(o, Op::Create { .. })), 5051, "the untarred tree goes up");
    assert_eq!(count(Side::Local, |o| matches!(o, Op::Delete { .. })), 2001, "the rm -rf comes down");
    assert_eq!(count(Side::Local, |o| matches!(o, Op::Move { .. })), 1, "the rename comes down as one move");
    assert_eq!(ops.len(), 5051 + 2001 + 1);
}

#[test]
fn the_conflict_table_holds_on_one_node() {
    let f = 11;
    let file = |name: &str, content: u64, mode: u32| Node {
        place: Place { parent: ROOT, name: name.into() },
        kind: Kind::File,
        content: Some(ContentHash::of(&content.to_le_bytes())),
        mode,
        meta: None,
    };
    let target_of = |s: Option<Node>, l: Option<Node>, r: Option<Node>| {
        let mut c = Canopy::default();
        for (t, n) in [(&mut c.synced, s), (&mut c.local, l), (&mut c.remote, r)] {
            if let Some(n) = n {
                t.set(f, n);
            }
        }
        merge(&c, &default_namer)
    };
    let base = file("f", 1, 0o644);
    // Edit here, edit there: the hub's keeps the node, ours is a copy.
    let m = target_of(Some(base.clone()), Some(file("f", 2, 0o644)), Some(file("f", 3, 0o644)));
    assert_eq!(m.target.get(f).unwrap().content, file("f", 3, 0).content);
    assert_eq!(m.copies.len(), 1);
    let (copy, from) = m.copies.iter().next().unwrap();
    assert_eq!((*from, m.target.get(*copy).unwrap().content), (f, file("f", 2, 0).content));
    // The same edit on both: no copy.
    let m = target_of(Some(base.clone()), Some(file("f", 2, 0o644)), Some(file("f", 2, 0o644)));
    assert!(m.copies.is_empty());
    // An edit beats a delete, either way round.
    let m = target_of(Some(base.clone()), Some(file("f", 2, 0o644)), None);
    assert_eq!(m.target.get(f).unwrap().content, file("f", 2, 0).content);
    let m = target_of(Some(base.clone()), None, Some(file("f", 3, 0o644)));
    assert_eq!(m.target.get(f).unwrap().content, file("f", 3, 0).content);
    // A delete beats a rename or a chmod.
    assert!(target_of(Some(base.clone()), None, Some(file("g", 1, 0o644))).target.is_empty());
    assert!(target_of(Some(base.clone()), Some(file("f", 1, 0o600)), None).target.is_empty());
    // An edit follows a rename; two renames: the hub's first one wins.
    let m = target_of(Some(base.clone()), Some(file("f", 2, 0o644)), Some(file("g", 1, 0o644)));
    assert_eq!(m.target.get(f).unwrap(), &file("g", 2, 0o644));
    let m = target_of(Some(base.clone()), Some(file("h", 1, 0o644)), Some(file("g", 1, 0o644)));
    assert_eq!(m.target.get(f).unwrap().place.name, "g");
    // Our own new node coming back through the feed: no change, no copy.
    let m = target_of(None, Some(base.clone()), Some(base.clone()));
    assert_eq!((m.target.get(f), m.copies.len()), (Some(&base), 0));
}
