//! The operations that bring Local and Remote to the merged target, in an
//! order where each is valid on its tree as the ones before it left it:
//! folders exist before what goes in them, a folder is emptied before it is
//! deleted, a name is free before a node takes it, no move puts a folder
//! inside itself, and content goes to the hub only once it is here (and
//! comes here only once the hub has it). Two nodes that must take each
//! other's places are exchanged in one operation.
//!
//! Nothing here does I/O: the sync loop carries the operations out (Local
//! ones on the mount's own state, Remote ones as requests to the hub, each
//! with the state it expects, so a stale one is refused and changes
//! nothing), records what each did in its tree, settles Synced, and plans
//! again. There is no recovery code for a refusal: the next plan starts from
//! the trees as they are.
use super::canopy::{Canopy, Meta, Node, NodeId, Place, Tree};
use super::merge::Merged;
use ssync_common::ContentHash;
use std::collections::{BTreeSet, HashMap};

#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub enum Side {
    /// The mount's own tree: what its users see.
    Local,
    /// The hub.
    Remote,
}

/// One operation on one side's tree. `base` is the node as the plan expects
/// to find it: an operation whose base is stale is refused.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub enum Op {
    /// Make node `id`. Its content comes from the other side, or for a
    /// conflict copy (`copy_of`) from that local node.
    Create { side: Side, id: NodeId, node: Node, copy_of: Option<NodeId> },
    /// New content, mode, owner and extended attributes, in place.
    Edit {
        side: Side,
        id: NodeId,
        base: Node,
        content: Option<ContentHash>,
        mode: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        meta: Option<Box<Meta>>,
    },
    /// Another folder or name.
    Move { side: Side, id: NodeId, base: Node, to: Place },
    /// `a` and `b` take each other's places, in one step.
    Exchange { side: Side, a: NodeId, a_base: Node, b: NodeId, b_base: Node },
    /// Remove `id` (an empty folder, or not a folder).
    Delete { side: Side, id: NodeId, base: Node },
}

impl Op {
    pub fn side(&self) -> Side {
        match self {
            Op::Create { side, .. }
            | Op::Edit { side, .. }
            | Op::Move { side, .. }
            | Op::Exchange { side, .. }
            | Op::Delete { side, .. } => *side,
        }
    }

    /// The nodes it changes.
    pub fn nodes(&self) -> Vec<NodeId> {
        match self {
            Op::Create { id, .. } | Op::Edit { id, .. } | Op::Move { id, .. } | Op::Delete { id, .. } => vec![*id],
            Op::Exchange { a, b, .. } => vec![*a, *b],
        }
    }
}

/// Why an operation cannot be applied to a tree as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("node {0:x} is not as the operation expects (changed meanwhile)")]
    Stale(NodeId),
    #[error("the operation would leave the tree invalid: {0}")]
    Invalid(#[from] super::canopy::Invalid),
}

/// Applies `op` to `tree` if its base is current and the result is valid;
/// otherwise changes nothing. What the hub does with a request, and what the
/// mount does with an operation on its own tree.
///
/// An operation whose result is already there succeeds and changes nothing:
/// sent again after its answer was lost, it does no harm.
pub fn apply(tree: &mut Tree, op: &Op) -> Result<(), Refused> {
    use super::canopy::Invalid;
    if already_done(tree, op) {
        return Ok(());
    }
    let expect = |id: NodeId, base: &Node| match tree.get(id) {
        Some(n) if n == base => Ok(()),
        _ => Err(Refused::Stale(id)),
    };
    // What a node may take: a folder that exists, a free name, not inside itself.
    let may_take = |id: NodeId, place: &Place, freed: Option<NodeId>| {
        if !tree.contains(place.parent) {
            return Err(Invalid::Orphan(id, place.parent));
        }
        if !tree.is_dir(place.parent) {
            return Err(Invalid::NotInFolder(id, place.parent));
        }
        if tree.is_within(place.parent, id) {
            return Err(Invalid::Cycle(id));
        }
        match tree.holder(place) {
            Some(h) if h != id && Some(h) != freed => Err(Invalid::SameName(h, id)),
            _ => Ok(()),
        }
    };
    match op {
        Op::Create { id, node, .. } => {
            if tree.contains(*id) {
                return Err(Refused::Stale(*id));
            }
            may_take(*id, &node.place, None)?;
            tree.set(*id, node.clone());
        }
        Op::Edit { id, base, content, mode, meta, .. } => {
            expect(*id, base)?;
            tree.set(*id, Node { content: *content, mode: *mode, meta: meta.clone(), ..base.clone() });
        }
        Op::Move { id, base, to, .. } => {
            expect(*id, base)?;
            may_take(*id, to, None)?;
            tree.set(*id, Node { place: to.clone(), ..base.clone() });
        }
        Op::Exchange { a, a_base, b, b_base, .. } => {
            expect(*a, a_base)?;
            expect(*b, b_base)?;
            may_take(*a, &b_base.place, Some(*b))?;
            may_take(*b, &a_base.place, Some(*a))?;
            tree.set(*a, Node { place: b_base.place.clone(), ..a_base.clone() });
            tree.set(*b, Node { place: a_base.place.clone(), ..b_base.clone() });
        }
        Op::Delete { id, base, .. } => {
            expect(*id, base)?;
            if tree.has_children(*id) {
                return Err(Refused::Invalid(Invalid::NotEmpty(*id)));
            }
            tree.remove(*id);
        }
    }
    Ok(())
}

fn already_done(tree: &Tree, op: &Op) -> bool {
    match op {
        Op::Create { id, node, .. } => tree.get(*id) == Some(node),
        Op::Edit { id, base, content, mode, meta, .. } => tree
            .get(*id)
            .is_some_and(|n| n.content == *content && n.mode == *mode && n.meta == *meta && n.place == base.place),
        Op::Move { id, base, to, .. } => tree
            .get(*id)
            .is_some_and(|n| n.place == *to && n.content == base.content && n.mode == base.mode && n.meta == base.meta),
        Op::Delete { id, .. } => !tree.contains(*id),
        Op::Exchange { .. } => false,
    }
}

/// Work copies of the two trees as the plan so far leaves them, and the
/// nodes of each that still differ from the target.
struct Draft<'a> {
    local: Tree,
    remote: Tree,
    target: &'a Tree,
    merged: &'a Merged,
    /// Conflict copies by the node whose local content they keep.
    copies_of: HashMap<NodeId, Vec<NodeId>>,
    /// The nodes either tree may differ on from the target: the merge's
    /// scope, and every node an operation changed.
    scope: BTreeSet<NodeId>,
}

impl Draft<'_> {
    fn tree(&self, side: Side) -> &Tree {
        match side {
            Side::Local => &self.local,
            Side::Remote => &self.remote,
        }
    }

    fn tree_mut(&mut self, side: Side) -> &mut Tree {
        match side {
            Side::Local => &mut self.local,
            Side::Remote => &mut self.remote,
        }
    }

    /// The nodes of `side` that differ from the target: parents before
    /// children of the target, then what the target lacks, deepest first.
    fn pending(&self, side: Side) -> Vec<NodeId> {
        let t = self.tree(side);
        let mut to_place: Vec<(usize, NodeId)> = self
            .scope
            .iter()
            .filter_map(|id| {
                self.target.get(*id).filter(|n| t.get(*id) != Some(*n)).map(|_| (self.target.depth(*id), *id))
            })
            .collect();
        to_place.sort_unstable();
        let mut to_delete: Vec<(usize, NodeId)> = self
            .scope
            .iter()
            .filter(|id| t.contains(**id) && !self.target.contains(**id))
            .map(|id| (t.depth(*id), *id))
            .collect();
        to_delete.sort_unstable_by(|a, b| b.cmp(a));
        to_place.into_iter().chain(to_delete).map(|(_, id)| id).collect()
    }

    fn done(&self, side: Side, id: NodeId) -> bool {
        self.tree(side).get(id) == self.target.get(id)
    }

    /// Whether `side` can take `content` for `id` now: the bytes must be on
    /// the other side already (here, or on the hub).
    fn has_bytes(&self, side: Side, id: NodeId, content: Option<ContentHash>) -> bool {
        if content.is_none() {
            return true;
        }
        let source = match side {
            Side::Remote => self.local.get(id),
            Side::Local => self.remote.get(id),
        };
        source.is_some_and(|n| n.content == content)
    }

    /// Whether `id` may go to `place` in `side`'s tree now.
    fn can_take(&self, side: Side, id: NodeId, place: &Place) -> bool {
        let t = self.tree(side);
        t.is_dir(place.parent) && !t.is_within(place.parent, id) && t.holder(place).is_none_or(|h| h == id)
    }

    /// The next operation for node `id` of `side` that is valid now, if any.
    fn op_for(&self, side: Side, id: NodeId) -> Option<Op> {
        let t = self.tree(side);
        let Some(want) = self.target.get(id) else {
            // Gone from the target: deleted once it is empty.
            let base = t.get(id)?.clone();
            return (!t.has_children(id)).then_some(Op::Delete { side, id, base });
        };
        let Some(have) = t.get(id) else {
            let copy_of = match side {
                Side::Local => self.merged.copies.get(&id).copied(),
                Side::Remote => None,
            };
            let bytes = match copy_of {
                Some(from) => self.local.get(from).is_some_and(|n| n.content == want.content),
                None => self.has_bytes(side, id, want.content),
            };
            return (bytes && self.can_take(side, id, &want.place)).then(|| Op::Create {
                side,
                id,
                node: want.clone(),
                copy_of,
            });
        };
        let edit = have.content != want.content || have.mode != want.mode || have.meta != want.meta;
        // A node whose local content goes to a conflict copy keeps it until
        // the copy is made.
        let copies_made = side == Side::Remote
            || self.copies_of.get(&id).is_none_or(|copies| copies.iter().all(|c| self.local.contains(*c)));
        if edit && copies_made && self.has_bytes(side, id, want.content) {
            let (content, mode, meta) = (want.content, want.mode, want.meta.clone());
            return Some(Op::Edit { side, id, base: have.clone(), content, mode, meta });
        }
        if have.place != want.place && self.can_take(side, id, &want.place) {
            return Some(Op::Move { side, id, base: have.clone(), to: want.place.clone() });
        }
        None
    }

    /// When every remaining move waits for a place another moving node
    /// holds: exchange the two (the first then is where it must be).
    fn exchange(&self, side: Side, pending: &[NodeId]) -> Option<Op> {
        let t = self.tree(side);
        for id in pending {
            let (Some(have), Some(want)) = (t.get(*id), self.target.get(*id)) else { continue };
            if have.place == want.place {
                continue;
            }
            let Some(other) = t.holder(&want.place).filter(|o| o != id) else { continue };
            if self.target.get(other).is_none_or(|o| o.place != want.place) {
                let (a_base, b_base) = (have.clone(), t.get(other).expect("holds a place").clone());
                let op = Op::Exchange { side, a: *id, a_base, b: other, b_base };
                if apply(&mut t.clone(), &op).is_ok() {
                    return Some(op);
                }
            }
        }
        None
    }

    /// When a node must take a place that a node on its way elsewhere holds,
    /// and neither can go first (a folder made where a node that must move
    /// into it now is): the holder steps aside to a hidden name in its folder
    /// for the moment. Sent to the hub in one batch with what follows, no
    /// other mount sees that name.
    fn step_aside(&self, side: Side, pending: &[NodeId]) -> Option<Op> {
        let t = self.tree(side);
        for id in pending {
            let Some(want) = self.target.get(*id) else { continue };
            let Some(holder) = t.holder(&want.place).filter(|h| h != id) else { continue };
            let base = t.get(holder).expect("holds a place").clone();
            let to = Place { parent: base.place.parent, name: format!(".ssync-moving-{holder:032x}") };
            if self.can_take(side, holder, &to) {
                return Some(Op::Move { side, id: holder, base, to });
            }
        }
        None
    }

    /// Records `op` in the draft and the plan.
    fn push(&mut self, op: Op, ops: &mut Vec<Op>) -> bool {
        self.scope.extend(op.nodes());
        let done = apply(self.tree_mut(op.side()), &op);
        debug_assert!(done.is_ok(), "the planner made an invalid operation: {op:?}: {done:?}");
        ops.push(op);
        done.is_ok()
    }
}

/// What is left when the planner can find no valid operation although the
/// trees differ from the target: a bug, reported, never looped on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no valid operation brings {side:?} closer to the target ({left} nodes differ; first: {first})")]
pub struct Stuck {
    pub side: Side,
    pub left: usize,
    pub first: String,
}

/// The operations, in order, that take Local and Remote to the target.
///
/// Each side's differing nodes are gone through in passes, parents before
/// children; each pass does what is valid now (usually everything), and
/// only when a pass does nothing are exchanges and step-asides tried. The
/// cost is about one pass per level of dependency, not per operation.
pub fn plan(c: &Canopy, merged: &Merged) -> Result<Vec<Op>, Stuck> {
    let mut copies_of: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for (copy, from) in &merged.copies {
        copies_of.entry(*from).or_default().push(*copy);
    }
    let scope = merged.scope.clone();
    let mut d =
        Draft { local: c.local.clone(), remote: c.remote.clone(), target: &merged.target, merged, copies_of, scope };
    let mut ops = Vec::new();
    let bound = 4 * (merged.target.len() + c.local.len() + c.remote.len() + 4);
    'passes: for _ in 0..bound {
        let mut progress = false;
        // Remote first: the hub serializes; local work that only waits for
        // the hub's bytes follows.
        for side in [Side::Remote, Side::Local] {
            for id in d.pending(side) {
                // A node may need two operations (new content, then a move).
                for _ in 0..2 {
                    let Some(op) = d.op_for(side, id) else { break };
                    if !d.push(op, &mut ops) {
                        break 'passes;
                    }
                    progress = true;
                    if d.done(side, id) {
                        break;
                    }
                }
            }
        }
        if progress {
            continue;
        }
        let sides = [Side::Remote, Side::Local];
        let unblock = sides
            .into_iter()
            .find_map(|s| d.exchange(s, &d.pending(s)))
            .or_else(|| sides.into_iter().find_map(|s| d.step_aside(s, &d.pending(s))));
        let Some(op) = unblock else { break };
        if !d.push(op, &mut ops) {
            break;
        }
    }
    for (side, tree) in [(Side::Local, &d.local), (Side::Remote, &d.remote)] {
        let differ: Vec<NodeId> =
            d.scope.iter().copied().filter(|id| tree.get(*id) != merged.target.get(*id)).collect();
        if let Some(id) = differ.first() {
            let first = format!("{id:x}: {:?} -> {:?}", tree.get(*id), merged.target.get(*id));
            return Err(Stuck { side, left: differ.len(), first });
        }
    }
    Ok(ops)
}
