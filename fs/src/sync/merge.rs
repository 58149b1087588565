//! The tree Local and Remote must both end at: a pure function of the three
//! trees. Each node is merged on its own, attribute by attribute, against its
//! merge base in Synced; then the result is made a valid tree.
//!
//! Per node (the conflict table; docs/sync-engine.md says it in words):
//! - changed on one side only: that side's state;
//! - the same change on both sides: that state, nothing else happens;
//! - location (folder and name), mode, or owner and extended attributes
//!   changed differently on both sides:
//!   the hub's, which already took its change (the first rename wins);
//! - content changed differently on both sides: the hub's content keeps the
//!   node, and this mount's becomes a conflict copy, a new node beside it;
//! - deleted on one side, content changed on the other: the change wins and
//!   the node comes back; deleted on one side and only moved or chmodded on
//!   the other: the delete wins;
//! - new on this side: as made here (also when the hub already has it
//!   because an answer was lost on the way).
//!
//! Then, on the whole: a node whose folder is gone brings the folder back
//! (a write inside a folder deleted elsewhere keeps both); a cycle made of
//! two moves is undone on the side of this mount's moves; two nodes that
//! end with one name in one folder leave it to the one that has it on the
//! hub, and the other gets a conflict name.
use super::canopy::{Canopy, Node, NodeId, Place, Tree, ROOT};
use ssync_common::ContentHash;
use std::collections::{BTreeMap, BTreeSet};

/// Names a conflict copy of `name` that is node `id`; must be deterministic
/// for a given pair, as the planner runs again and again until it is done.
pub type Namer<'a> = &'a dyn Fn(&str, NodeId) -> String;

/// A `Namer` an engine owns.
pub type OwnedNamer = Box<dyn Fn(&str, NodeId) -> String + Send>;

/// The target tree, and the conflict copies in it: copy id -> the node
/// whose local content it keeps.
#[derive(Debug, Clone, Default)]
pub struct Merged {
    pub target: Tree,
    pub copies: BTreeMap<NodeId, NodeId>,
    /// The nodes the target may differ on from Local or Remote: those
    /// merged, the conflict copies, and what making the target valid
    /// changed. Elsewhere the target is Local, which is Remote there.
    pub scope: BTreeSet<NodeId>,
}

/// The id of the conflict copy of `from`'s local content `content`: the same
/// on every run of the planner, so a copy is made once.
pub fn copy_id(from: NodeId, content: Option<ContentHash>) -> NodeId {
    let mut h = blake3::Hasher::new();
    h.update(b"ssync conflict copy");
    h.update(&from.to_le_bytes());
    h.update(content.as_ref().map_or(&[][..], |c| c.as_bytes()));
    let b = h.finalize();
    u128::from_le_bytes(b.as_bytes()[..16].try_into().expect("16 bytes")).max(1)
}

/// A conflict name: `stem.conflict-ID.ext`, ID from the copy's id.
pub fn default_namer(name: &str, id: NodeId) -> String {
    let short = format!("{id:032x}");
    let short = &short[..8];
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}.conflict-{short}.{ext}"),
        _ => format!("{name}.conflict-{short}"),
    }
}

fn pick<T: PartialEq + Clone>(base: &T, local: &T, remote: &T) -> T {
    if local == base {
        remote.clone()
    } else {
        // Local changed: it wins unless the hub changed it otherwise first.
        match remote == base {
            true => local.clone(),
            false => remote.clone(),
        }
    }
}

/// One node's state in the target, and a conflict copy of its local
/// content when both sides changed the content differently.
fn merge_node(s: Option<&Node>, l: Option<&Node>, r: Option<&Node>) -> (Option<Node>, Option<Node>) {
    let Some(s) = s else {
        // New: made here (even if the hub has it already), or from the hub.
        return (l.or(r).cloned(), None);
    };
    match (l, r) {
        (None, None) => (None, None),
        // A content change beats a delete; a move or chmod does not.
        (None, Some(r)) => ((r.content != s.content).then(|| r.clone()), None),
        (Some(l), None) => ((l.content != s.content).then(|| l.clone()), None),
        (Some(l), Some(r)) => {
            let place = pick(&s.place, &l.place, &r.place);
            let mode = pick(&s.mode, &l.mode, &r.mode);
            let meta = pick(&s.meta, &l.meta, &r.meta);
            let both_changed = l.content != s.content && r.content != s.content && l.content != r.content;
            let content = pick(&s.content, &l.content, &r.content);
            let merged = Node { place: place.clone(), kind: s.kind, content, mode, meta };
            let copy = both_changed.then(|| Node {
                place: Place { parent: place.parent, name: place.name.clone() }, // named in `merge`
                kind: s.kind,
                content: l.content,
                mode: l.mode,
                meta: l.meta.clone(),
            });
            (Some(merged), copy)
        }
    }
}

/// The target, merging every node of the three trees.
pub fn merge(c: &Canopy, namer: Namer) -> Merged {
    let ids: BTreeSet<NodeId> = c.local.ids().chain(c.remote.ids()).chain(c.synced.ids()).collect();
    merge_in(c, &ids.into_iter().collect::<Vec<_>>(), namer)
}

/// The target, merging the nodes of `scope` (in order): it must hold every
/// node the trees do not all agree on (`Canopy::differing`). Any other is
/// the same in Local, Remote and Synced, so the target has it as Local does:
/// the target starts as a copy of Local (O(1)), and a round costs what
/// changed. Gives what `merge` gives.
pub fn merge_in(c: &Canopy, scope: &[NodeId], namer: Namer) -> Merged {
    let mut out = Merged { target: c.local.clone(), ..Merged::default() };
    out.scope.extend(scope.iter().copied());
    for &id in scope {
        let (node, copy) = merge_node(c.synced.get(id), c.local.get(id), c.remote.get(id));
        match node {
            Some(n) if out.target.get(id) != Some(&n) => out.target.set(id, n),
            Some(_) => {}
            None => drop(out.target.remove(id)),
        }
        if let Some(mut copy) = copy {
            let cid = copy_id(id, copy.content);
            // Made already (and maybe renamed or edited since): a node of its
            // own now, merged like any other; the hub's content stays here.
            if [&c.local, &c.remote, &c.synced].iter().any(|t| t.contains(cid)) {
                continue;
            }
            copy.place.name = namer(&copy.place.name, cid);
            out.target.set(cid, copy);
            out.copies.insert(cid, id);
            out.scope.insert(cid);
        }
    }
    make_valid(c, &mut out.target, &mut out.scope, namer);
    out
}

/// Brings back folders that nodes of the target are in, undoes this mount's
/// side of cycles, and renames all but one of the nodes that share a name.
/// Only nodes of `scope` can need it (any other is where Local has it, in
/// a folder Local has), and each node changed joins `scope`.
fn make_valid(c: &Canopy, t: &mut Tree, scope: &mut BTreeSet<NodeId>, namer: Namer) {
    // Each pass fixes something or ends; a bound keeps a bug from looping.
    for _ in 0..=4 * (t.len() + 2) {
        if restore_folders(c, t, scope) || undo_cycles(c, t, scope) || rename_same_names(c, t, scope, namer) {
            continue;
        }
        return;
    }
    debug_assert!(false, "make_valid did not settle: {:?}", t.check());
}

/// A node in a folder the target lacks brings the folder back, as the hub
/// has it, else as this mount has it, else as both last agreed.
fn restore_folders(c: &Canopy, t: &mut Tree, scope: &mut BTreeSet<NodeId>) -> bool {
    let missing: BTreeSet<NodeId> =
        scope.iter().filter_map(|id| t.get(*id)).map(|n| n.place.parent).filter(|p| !t.contains(*p)).collect();
    let mut changed = false;
    for p in missing {
        if t.contains(p) {
            continue;
        }
        let back = c.remote.get(p).or(c.local.get(p)).or(c.synced.get(p)).cloned();
        match back {
            Some(folder) => {
                t.set(p, folder);
                scope.insert(p);
            }
            // Never known anywhere: its nodes go to the root.
            None => {
                let lost: Vec<NodeId> =
                    scope.iter().copied().filter(|id| t.get(*id).is_some_and(|n| n.place.parent == p)).collect();
                for id in lost {
                    let mut n = t.get(id).expect("listed").clone();
                    n.place.parent = ROOT;
                    t.set(id, n);
                }
            }
        }
        changed = true;
    }
    changed
}

/// A node inside itself (two moves that cross): its nodes that the hub has
/// elsewhere go back to where the hub has them. Of several cycles, the one
/// with the smallest node goes first, whatever the scope.
fn undo_cycles(c: &Canopy, t: &mut Tree, scope: &mut BTreeSet<NodeId>) -> bool {
    let mut first: Option<Vec<NodeId>> = None;
    for &id in scope.iter() {
        let mut chain = vec![id];
        let mut at = t.get(id).map(|n| n.place.parent);
        while let Some(p) = at.filter(|p| *p != ROOT) {
            if let Some(i) = chain.iter().position(|x| *x == p) {
                let mut cycle = chain[i..].to_vec();
                let low = cycle.iter().enumerate().min_by_key(|(_, n)| **n).map_or(0, |(i, _)| i);
                cycle.rotate_left(low);
                if first.as_ref().is_none_or(|f| cycle[0] < f[0]) {
                    first = Some(cycle);
                }
                break;
            }
            chain.push(p);
            at = t.get(p).map(|n| n.place.parent);
        }
    }
    let Some(cycle) = first else { return false };
    let mut fixed = false;
    for n in &cycle {
        if let Some(r) = c.remote.get(*n) {
            let mut node = t.get(*n).expect("in the cycle").clone();
            if node.place != r.place {
                node.place = r.place.clone();
                t.set(*n, node);
                scope.insert(*n);
                fixed = true;
            }
        }
    }
    if !fixed {
        let mut node = t.get(cycle[0]).expect("in the cycle").clone();
        node.place.parent = ROOT;
        t.set(cycle[0], node);
        scope.insert(cycle[0]);
    }
    true
}

/// One node per name in a folder: the one the hub has there keeps it, else
/// the one this mount has there, else the smallest id; the others take a
/// conflict name.
fn rename_same_names(c: &Canopy, t: &mut Tree, scope: &mut BTreeSet<NodeId>, namer: Namer) -> bool {
    // Ordered, so that a seed replays the same renames.
    let mut by_place: BTreeMap<Place, Vec<NodeId>> = BTreeMap::new();
    for id in scope.iter() {
        let Some(n) = t.get(*id) else { continue };
        let holders = t.holders(&n.place);
        if holders.len() > 1 {
            by_place.entry(n.place.clone()).or_insert_with(|| holders.to_vec());
        }
    }
    let mut changed = false;
    for (place, mut ids) in by_place {
        let holds = |tree: &Tree, id: NodeId| tree.get(id).is_some_and(|n| n.place == place);
        ids.sort_by_key(|id| (!holds(&c.remote, *id), !holds(&c.local, *id), *id));
        for id in &ids[1..] {
            let mut n = t.get(*id).expect("grouped").clone();
            let mut name = namer(&place.name, *id);
            while t.holder(&Place { parent: place.parent, name: name.clone() }).is_some() {
                name.push('~');
            }
            n.place.name = name;
            t.set(*id, n);
            scope.insert(*id);
            changed = true;
        }
    }
    changed
}
