//! The three trees. A tree is a set of nodes keyed by `NodeId`, each with its
//! parent's id and its name; the root (`ROOT`) is implicit. A valid tree has
//! no orphan, no cycle, and at most one node of a name in a folder
//! (`Tree::check`); Local and Remote are always valid, Synced holds per node
//! the merge base and need not be.
use ssync_common::ContentHash;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// A node's identity: chosen at random by the machine that creates the node
/// and kept through every rename and move, on every machine and on the hub.
/// Chosen by the creator, so a create sent again after a lost answer names
/// the same node and cannot make two.
pub type NodeId = u128;

/// The root folder, which every tree has and no operation changes.
pub const ROOT: NodeId = 0;

/// A node's kind never changes: a file replaced by a folder of the same name
/// is another node.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

/// Where a node is: its folder and its name there.
#[derive(Clone, PartialEq, Eq, Debug, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Place {
    pub parent: NodeId,
    pub name: String,
}

/// One node as one tree has it.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct Node {
    pub place: Place,
    pub kind: Kind,
    /// The content's id (files and symlinks); None for folders.
    pub content: Option<ContentHash>,
    /// Permission bits.
    pub mode: u32,
    /// Owner and user extended attributes; None: neither (most nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Box<Meta>>,
}

/// What travels with a node besides its content and mode. One attribute
/// for the merge: both changed otherwise, and the hub's wins.
#[derive(Clone, PartialEq, Eq, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Meta {
    /// The owner as the hub keeps it (see `local_tree::owner_of`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<ssync_common::api::Owner>,
    /// `user.` extended attributes (the others stay on their mount); None: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xattrs: Option<ssync_common::xattrs::Xattrs>,
}

impl Meta {
    /// The attribute as a node holds it: None when there is nothing.
    pub fn boxed(
        owner: Option<ssync_common::api::Owner>,
        xattrs: Option<ssync_common::xattrs::Xattrs>,
    ) -> Option<Box<Meta>> {
        let xattrs = xattrs.filter(|x| !x.is_empty());
        (owner.is_some() || xattrs.is_some()).then(|| Box::new(Meta { owner, xattrs }))
    }
}

/// Why a tree is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("node {0:x} is in folder {1:x}, which the tree does not have")]
    Orphan(NodeId, NodeId),
    #[error("node {0:x} is in a file or symlink, {1:x}")]
    NotInFolder(NodeId, NodeId),
    #[error("node {0:x} is inside itself")]
    Cycle(NodeId),
    #[error("nodes {0:x} and {1:x} have the same name in one folder")]
    SameName(NodeId, NodeId),
    #[error("folder {0:x} is not empty")]
    NotEmpty(NodeId),
}

/// Nodes by id, with indexes kept as nodes change: who holds a place, and
/// how many nodes a folder holds (the planner asks both for every operation).
///
/// The maps are persistent (`imbl`): a copy shares what neither side changes
/// afterwards, so the merge and the planner work on copies of big trees at
/// the cost of what they change, not of the tree.
#[derive(Debug)]
pub struct Tree {
    /// Each node behind an `Arc`, and each place key too: a change to a
    /// copy of the tree copies the map's chunks on its path, and a chunk's
    /// copy then costs a count per entry, not a name's allocation.
    nodes: imbl::OrdMap<NodeId, Arc<Node>>,
    /// The nodes at each place (more than one only in a tree being made valid).
    places: imbl::HashMap<Arc<Place>, Holders>,
    /// How many nodes are directly in each folder.
    kids: imbl::HashMap<NodeId, usize>,
    /// Nodes set or removed since `take_changes`, when tracked: the engine
    /// persists only what changed of Synced.
    changes: Option<HashSet<NodeId>>,
    /// Nodes set or removed since `take_touched`: how a `Canopy` keeps the
    /// nodes its trees differ on without comparing the trees whole.
    touched: HashSet<NodeId>,
    /// Which tree this is: a new tree, or a copy, has a stamp of its own, so
    /// a `Canopy` whose tree was replaced compares that tree whole once.
    stamp: u64,
}

/// The nodes at one place: almost always one, kept inline.
type Holders = smallvec::SmallVec<[NodeId; 1]>;

fn next_stamp() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Default for Tree {
    fn default() -> Tree {
        Tree {
            nodes: imbl::OrdMap::new(),
            places: imbl::HashMap::new(),
            kids: imbl::HashMap::new(),
            changes: None,
            touched: HashSet::new(),
            stamp: next_stamp(),
        }
    }
}

impl Clone for Tree {
    /// A copy in O(1); it is another tree (its own stamp, nothing touched yet).
    fn clone(&self) -> Tree {
        Tree {
            nodes: self.nodes.clone(),
            places: self.places.clone(),
            kids: self.kids.clone(),
            changes: self.changes.clone(),
            touched: HashSet::new(),
            stamp: next_stamp(),
        }
    }
}

impl PartialEq for Tree {
    fn eq(&self, other: &Tree) -> bool {
        self.nodes == other.nodes // the indexes follow from the nodes
    }
}

impl Eq for Tree {}

impl Tree {
    pub fn get(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(&id).map(|n| &**n)
    }

    pub fn contains(&self, id: NodeId) -> bool {
        id == ROOT || self.nodes.contains_key(&id)
    }

    /// From now on, record which nodes are set or removed.
    pub fn track_changes(&mut self) {
        self.changes.get_or_insert_with(HashSet::new);
    }

    /// The nodes set or removed since the last call (none when not tracked).
    pub fn take_changes(&mut self) -> Vec<NodeId> {
        self.changes.as_mut().map(|c| c.drain().collect()).unwrap_or_default()
    }

    /// This tree's stamp (see `stamp`).
    pub fn stamp(&self) -> u64 {
        self.stamp
    }

    /// The nodes set or removed since the last call.
    pub fn take_touched(&mut self) -> Vec<NodeId> {
        self.touched.drain().collect()
    }

    pub fn set(&mut self, id: NodeId, node: Node) {
        debug_assert_ne!(id, ROOT, "the root is not a node of its own");
        if let Some(c) = &mut self.changes {
            c.insert(id);
        }
        self.touched.insert(id);
        match self.places.get_mut(&node.place) {
            Some(holders) => holders.push(id),
            None => drop(self.places.insert(Arc::new(node.place.clone()), Holders::from_elem(id, 1))),
        }
        match self.kids.get_mut(&node.place.parent) {
            Some(n) => *n += 1,
            None => drop(self.kids.insert(node.place.parent, 1)),
        }
        if let Some(old) = self.nodes.insert(id, Arc::new(node)) {
            self.unindex(id, &old);
        }
    }

    pub fn remove(&mut self, id: NodeId) -> Option<Node> {
        let old = self.nodes.remove(&id)?;
        if let Some(c) = &mut self.changes {
            c.insert(id);
        }
        self.touched.insert(id);
        self.unindex(id, &old);
        Some(Arc::unwrap_or_clone(old))
    }

    fn unindex(&mut self, id: NodeId, old: &Node) {
        if let Some(holders) = self.places.get_mut(&old.place) {
            if let Some(i) = holders.iter().position(|h| *h == id) {
                holders.swap_remove(i);
            }
            if holders.is_empty() {
                self.places.remove(&old.place);
            }
        }
        if let Some(n) = self.kids.get_mut(&old.place.parent) {
            *n -= 1;
            if *n == 0 {
                self.kids.remove(&old.place.parent);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes.keys().copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = (NodeId, &Node)> + '_ {
        self.nodes.iter().map(|(id, n)| (*id, &**n))
    }

    pub fn is_dir(&self, id: NodeId) -> bool {
        id == ROOT || self.get(id).is_some_and(|n| n.kind == Kind::Dir)
    }

    /// The node at `place`, if any.
    pub fn holder(&self, place: &Place) -> Option<NodeId> {
        self.places.get(place).and_then(|h| h.first().copied())
    }

    /// Every node at `place` (more than one only in a tree being made valid).
    pub fn holders(&self, place: &Place) -> &[NodeId] {
        self.places.get(place).map_or(&[], |h| h.as_slice())
    }

    /// Whether any node is directly in `id`.
    pub fn has_children(&self, id: NodeId) -> bool {
        self.kids.contains_key(&id)
    }

    /// How deep `id` lies (1 for a node in the root); cycles and orphans
    /// end the count where they are found.
    pub fn depth(&self, id: NodeId) -> usize {
        let mut at = id;
        let mut depth = 0;
        while let Some(n) = self.get(at) {
            depth += 1;
            if depth > self.nodes.len() {
                break;
            }
            at = n.place.parent;
        }
        depth
    }

    /// Whether `id` is `ancestor` or lies below it.
    pub fn is_within(&self, id: NodeId, ancestor: NodeId) -> bool {
        let mut at = id;
        for _ in 0..=self.nodes.len() {
            if at == ancestor {
                return true;
            }
            match self.get(at) {
                Some(n) => at = n.place.parent,
                None => return false,
            }
        }
        false // a cycle; `check` reports it
    }

    /// `id`'s path from the root, `/`-separated (None for the root, an
    /// orphan or a node in a cycle).
    pub fn path_of(&self, id: NodeId) -> Option<String> {
        let mut names = Vec::new();
        let mut at = id;
        while at != ROOT {
            let n = self.get(at)?;
            names.push(n.place.name.as_str());
            if names.len() > self.nodes.len() {
                return None;
            }
            at = n.place.parent;
        }
        names.reverse();
        (!names.is_empty()).then(|| names.join("/"))
    }

    /// No orphan, nothing inside a file, no cycle, one node per name in a folder.
    pub fn check(&self) -> Result<(), Invalid> {
        let mut seen: HashMap<&Place, NodeId> = HashMap::new();
        for (id, n) in &self.nodes {
            let parent = n.place.parent;
            if !self.contains(parent) {
                return Err(Invalid::Orphan(*id, parent));
            }
            if !self.is_dir(parent) {
                return Err(Invalid::NotInFolder(*id, parent));
            }
            if let Some(other) = seen.insert(&n.place, *id) {
                return Err(Invalid::SameName(other, *id));
            }
        }
        let mut rooted: HashSet<NodeId> = HashSet::from([ROOT]);
        for id in self.nodes.keys() {
            let mut chain = Vec::new();
            let mut at = *id;
            while !rooted.contains(&at) {
                if chain.contains(&at) {
                    return Err(Invalid::Cycle(at));
                }
                chain.push(at);
                at = self.nodes.get(&at).expect("every node was seen above").place.parent;
            }
            rooted.extend(chain);
        }
        Ok(())
    }
}

/// The three trees of one mount.
#[derive(Clone, Default, Debug)]
pub struct Canopy {
    pub local: Tree,
    pub remote: Tree,
    pub synced: Tree,
    /// The nodes the three trees do not all agree on, kept as the trees
    /// change (`refresh`): what a round settles, merges and plans. A round
    /// costs what changed, not the size of the tree.
    differ: Differ,
}

#[derive(Clone, Default, Debug)]
struct Differ {
    ids: BTreeSet<NodeId>,
    /// The stamps of the trees `ids` was kept for; a tree replaced since is
    /// compared whole.
    stamps: [u64; 3],
    /// Nodes changed in Remote or Synced since `take_changed_bases`, and
    /// whether either tree was replaced since (then: every node).
    bases: HashSet<NodeId>,
    bases_all: bool,
}

impl Canopy {
    pub fn new(local: Tree, remote: Tree, synced: Tree) -> Canopy {
        Canopy { local, remote, synced, differ: Differ::default() }
    }

    /// Whether the three trees agree on node `id` (all have it alike, or none).
    fn agreed(&self, id: NodeId) -> bool {
        let l = self.local.get(id);
        l == self.remote.get(id) && l == self.synced.get(id)
    }

    /// Brings the differing nodes up to date with what changed in the trees
    /// since: only the nodes touched, unless a tree was replaced.
    fn refresh(&mut self) {
        let stamps = [self.local.stamp(), self.remote.stamp(), self.synced.stamp()];
        if stamps != self.differ.stamps {
            if stamps[1..] != self.differ.stamps[1..] {
                self.differ.bases_all = true;
                self.differ.bases.clear();
            }
            for t in [&mut self.local, &mut self.remote, &mut self.synced] {
                t.touched.clear();
            }
            let all: BTreeSet<NodeId> = self.local.ids().chain(self.remote.ids()).chain(self.synced.ids()).collect();
            self.differ.ids = all.into_iter().filter(|id| !self.agreed(*id)).collect();
            self.differ.stamps = stamps;
            return;
        }
        let mut touched = self.local.take_touched();
        let bases = touched.len();
        touched.extend(self.remote.take_touched());
        touched.extend(self.synced.take_touched());
        if !self.differ.bases_all {
            self.differ.bases.extend(&touched[bases..]);
        }
        for id in touched {
            if self.agreed(id) {
                self.differ.ids.remove(&id);
            } else {
                self.differ.ids.insert(id);
            }
        }
    }

    /// The nodes changed in Remote or Synced since the last call (what Local
    /// says of a node's owner depends on them: `local_tree::agreed_owner`);
    /// None when either tree was replaced since: every node.
    pub fn take_changed_bases(&mut self) -> Option<Vec<NodeId>> {
        self.refresh();
        if std::mem::take(&mut self.differ.bases_all) {
            return None;
        }
        Some(self.differ.bases.drain().collect())
    }

    /// The nodes the trees do not all agree on, in order.
    pub fn differing(&mut self) -> Vec<NodeId> {
        self.refresh();
        self.differ.ids.iter().copied().collect()
    }

    /// In the simulation: the differing nodes as kept are those a whole
    /// comparison finds.
    #[cfg(test)]
    pub fn check_differing(&mut self) {
        let kept = self.differing();
        let all: BTreeSet<NodeId> = self.local.ids().chain(self.remote.ids()).chain(self.synced.ids()).collect();
        let whole: Vec<NodeId> = all.into_iter().filter(|id| !self.agreed(*id)).collect();
        assert_eq!(kept, whole, "the differing nodes as kept are not those the trees differ on");
    }

    /// After an operation changed `id` in Local or Remote: what both now
    /// agree on is the new merge base, attribute by attribute (a node both
    /// have moved alike but edited differently has its new place agreed,
    /// not its content); where neither has the node, it is gone from Synced.
    pub fn settle(&mut self, id: NodeId) {
        match (self.local.get(id), self.remote.get(id)) {
            (None, None) => drop(self.synced.remove(id)),
            (Some(l), Some(r)) if l == r && self.synced.get(id) != Some(l) => self.synced.set(id, l.clone()),
            // Most nodes, most of the time: agreed already, nothing to set.
            (Some(l), Some(r)) if l == r => {}
            (Some(l), Some(r)) => {
                let Some(mut s) = self.synced.get(id).cloned() else { return };
                if l.place == r.place {
                    s.place = l.place.clone();
                }
                if l.content == r.content {
                    s.content = l.content;
                }
                if l.mode == r.mode {
                    s.mode = l.mode;
                }
                if l.meta == r.meta {
                    s.meta = l.meta.clone();
                }
                self.synced.set(id, s);
            }
            _ => {}
        }
    }

    /// How many nodes this mount changed that the hub does not have yet
    /// (Local differs from Synced and from Remote): what `ssync status`
    /// calls queued.
    pub fn local_changes(&mut self) -> usize {
        self.refresh();
        let changed = |id: &&NodeId| {
            let l = self.local.get(**id);
            match l {
                Some(_) => l != self.synced.get(**id) && l != self.remote.get(**id),
                None => self.synced.contains(**id) && self.remote.contains(**id),
            }
        };
        self.differ.ids.iter().filter(changed).count()
    }

    /// Whether sync is complete: the three trees are equal.
    pub fn converged(&mut self) -> bool {
        self.refresh();
        self.differ.ids.is_empty()
    }
}
