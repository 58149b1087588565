//! The mount's picture of the hub: the Remote tree, built from the hub's
//! rows as the feed (or an answer) brings them, and the hub's version of
//! each node, which every request names as its base.
//!
//! The hub keys its rows by node: each names its node, the node of its
//! folder and its name, and the feed holds each node's newest row (a folder's
//! rename is one row; what is below it keeps its rows). The view keeps the
//! same: the newest row of each node, a newer row replacing an older one
//! whatever order answers and the feed bring them in. The Remote tree is
//! the live rows placed from the root down. Once the feed is read to its end
//! this is exactly the hub's tree; in between, a node whose folder is not
//! placed (yet) is left out until it is, and of two nodes that the view
//! has on one place the newer row holds it (the other's newer row, which
//! moves or deletes it, is still to come).
//!
//! Going the other way, `request_for` turns a planned Remote operation into
//! the hub's path-keyed request, with the version this view holds as its
//! base: a hub that changed since refuses it and changes nothing.
use super::canopy::{Kind, Meta, Node, NodeId, Place, Tree, ROOT};
use super::planner::Op;
use ssync_common::api::{EntriesPage, Entry, EntryKind};
use ssync_common::{ContentHash, RelPath};
use std::collections::{HashMap, HashSet};

/// A request to the hub, as the engine needs it said: paths, the hub's
/// versions as bases, and the ids of new nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Mkdir {
        path: RelPath,
        node: NodeId,
        mode: u32,
        meta: Option<Box<Meta>>,
    },
    /// New content (or a new file or symlink) at `path`; `base` 0 for a new node.
    Commit {
        path: RelPath,
        base: u64,
        node: NodeId,
        kind: Kind,
        content: ContentHash,
        mode: u32,
        meta: Option<Box<Meta>>,
    },
    /// Mode, owner and extended attributes (the node's, all of them).
    SetAttr {
        path: RelPath,
        base: u64,
        mode: u32,
        meta: Option<Box<Meta>>,
    },
    /// `to_parent`: the node `to`'s folder must be (None: the root).
    Rename {
        from: RelPath,
        to: RelPath,
        base: u64,
        to_parent: Option<NodeId>,
    },
    Exchange {
        a: RelPath,
        a_base: u64,
        b: RelPath,
        b_base: u64,
    },
    Delete {
        path: RelPath,
        base: u64,
    },
}

/// Why a row or an operation does not fit this view.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    #[error("the hub's row for '{0}' has no node or folder id (a hub older than this mount)")]
    NoNode(RelPath),
    #[error("the hub's row for '{0}' came before its folder's")]
    Orphan(RelPath),
    #[error("node {0:x} is not as the operation expects in the hub's tree (changed meanwhile)")]
    Stale(NodeId),
    #[error("node {0:x}'s place has no valid path: {1}")]
    BadPath(NodeId, String),
    /// Checked by the simulation only (`check_placement`).
    #[error("an answer's rows, placed one by one, gave another tree than deriving them all")]
    Misplaced,
}

/// A node's newest row, as far as the view needs it (and the mount keeps).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Where it is: its folder's node and its name.
    pub place: Place,
    pub version: u64,
    pub deleted: bool,
    pub kind: Kind,
    pub content: Option<ContentHash>,
    pub mode: u32,
    /// Not merged: what a file brought down from the hub takes.
    pub size: u64,
    pub mtime_ns: i64,
    pub meta: Option<Box<Meta>>,
}

impl Row {
    /// The node it shows.
    fn node(&self) -> Node {
        Node {
            place: self.place.clone(),
            kind: self.kind,
            content: self.content,
            mode: self.mode,
            meta: self.meta.clone(),
        }
    }
}

/// What folding an answer changed in the Remote tree.
#[derive(Debug, PartialEq, Eq)]
pub enum Changed {
    Nodes(Vec<NodeId>),
    /// The tree was derived anew: take all of it.
    Whole,
}

#[derive(Clone, Default, Debug)]
pub struct HubView {
    /// The newest row of each node (tombstones until the feed passes them).
    rows: HashMap<NodeId, Row>,
    /// Derived from `rows`: the Remote tree, and each node's version.
    tree: Tree,
    versions: HashMap<NodeId, u64>,
    /// Live nodes left out of the tree: their folder is not placed (yet).
    unplaced: usize,
    /// Nodes whose row changed since `take_changed_rows` (to persist).
    changed_rows: HashSet<NodeId>,
    /// Nodes whose row the feed brought since the last `settle_feed`, in
    /// the order it brought them: placed one by one when it settles.
    unsettled: Vec<NodeId>,
    /// The simulation checks every answer's placement against a full derive.
    #[cfg(test)]
    pub(crate) check_placement: bool,
    /// The newest feed sequence number folded in.
    cursor: u64,
}

impl HubView {
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    pub fn version(&self, id: NodeId) -> Option<u64> {
        self.versions.get(&id).copied()
    }

    /// A view as the mount kept it: its rows and the cursor they reach.
    pub fn restore(rows: impl IntoIterator<Item = (NodeId, Row)>, cursor: u64) -> HubView {
        let mut view = HubView { rows: rows.into_iter().collect(), cursor, ..HubView::default() };
        view.derive();
        view
    }

    /// The rows changed since the last call, each with its row now (None:
    /// gone), for the mount to keep.
    pub fn take_changed_rows(&mut self) -> Vec<(NodeId, Option<Row>)> {
        let ids: Vec<NodeId> = self.changed_rows.drain().collect();
        ids.into_iter().map(|id| (id, self.rows.get(&id).cloned())).collect()
    }

    /// Every placed node's path and version, and whether it is a folder:
    /// what the hub's folder digests are computed over (`tree::folder_digests`).
    pub fn live_versions(&self) -> Vec<(String, u64, bool)> {
        let placed = self.tree.iter().filter_map(|(id, n)| Some((self.tree.path_of(id)?, self.versions.get(&id)?, n)));
        placed.map(|(path, v, n)| (path, *v, n.kind == Kind::Dir)).collect()
    }

    /// Makes the rows directly in `dir` (None: the root) what the hub lists
    /// there (`listed`, its live rows as of this view's cursor), for what the
    /// feed never reported (a hub database restored from a backup): a newer
    /// row is folded, and a row the hub no longer has is forgotten with
    /// every row below it. Returns how many rows changed.
    pub fn heal_folder(&mut self, dir: Option<&RelPath>, listed: &[Entry]) -> Result<usize, ViewError> {
        let folder = match dir {
            None => ROOT,
            Some(d) => self.lookup(d).ok_or_else(|| ViewError::Orphan(d.clone()))?,
        };
        let mut changed = 0;
        for row in listed {
            changed += usize::from(self.fold(row)?);
        }
        let listed: HashSet<NodeId> = listed.iter().filter_map(|e| e.node).map(|n| n.0).collect();
        let mut gone: Vec<NodeId> = self
            .rows
            .iter()
            .filter(|(id, r)| !r.deleted && r.place.parent == folder && !listed.contains(*id))
            .map(|(id, _)| *id)
            .collect();
        while let Some(id) = gone.pop() {
            if self.rows.remove(&id).is_some() {
                self.changed_rows.insert(id);
                changed += 1;
                gone.extend(self.rows.iter().filter(|(_, r)| r.place.parent == id).map(|(c, _)| *c));
            }
        }
        if changed > 0 {
            self.derive();
        }
        Ok(changed)
    }

    /// Live nodes whose folder is not placed: none once the feed is read to its end.
    pub fn unplaced(&self) -> usize {
        self.unplaced
    }

    /// The path of `place` in `tree`.
    fn path_in(tree: &Tree, id: NodeId, place: &Place) -> Result<RelPath, ViewError> {
        let joined = match place.parent {
            ROOT => place.name.clone(),
            parent => {
                let dir = tree.path_of(parent).ok_or(ViewError::Stale(parent))?;
                format!("{dir}/{}", place.name)
            }
        };
        RelPath::parse(&joined).map_err(|e| ViewError::BadPath(id, e.to_string()))
    }

    fn path_of(&self, id: NodeId) -> Result<RelPath, ViewError> {
        Self::node_path_in(&self.tree, id)
    }

    fn node_path_in(tree: &Tree, id: NodeId) -> Result<RelPath, ViewError> {
        let node = tree.get(id).ok_or(ViewError::Stale(id))?;
        Self::path_in(tree, id, &node.place)
    }

    /// The hub's newest row of node `id`, if the Remote tree has it: what
    /// bringing the node down takes its size and modification time from.
    pub fn row_of(&self, id: NodeId) -> Option<&Row> {
        self.tree.get(id)?;
        self.rows.get(&id).filter(|r| !r.deleted)
    }

    /// Where node `id` is on the hub, if this view places it.
    pub fn path_of_node(&self, id: NodeId) -> Option<RelPath> {
        self.path_of(id).ok()
    }

    /// The node at `path` and its row, if the hub has one there.
    pub fn live_row_at(&self, path: &RelPath) -> Option<(NodeId, &Row)> {
        let id = self.lookup(path)?;
        Some((id, self.row_of(id)?))
    }

    /// Folds a page of the feed and moves the cursor to the page's: past
    /// its rows, and past changes whose rows the hub no longer has (else a
    /// mount would wait for them for ever, and never compare digests, which
    /// needs the hub's cursor). Only the page's cursor moves it: a page may
    /// bring a folder's row ahead of its turn (the hub shows a folder before
    /// what is in it). `settle_feed` then derives the tree (once for all the
    /// pages a read brings: deriving per page of 1,000 rows made reading a
    /// large feed quadratic).
    pub fn fold_page(&mut self, page: &EntriesPage) -> Result<(), ViewError> {
        for row in &page.entries {
            if self.fold(row)? {
                self.unsettled.extend(row.node.map(|n| n.0));
            }
        }
        self.cursor = self.cursor.max(page.cursor);
        Ok(())
    }

    /// After the pages of a read: drops the tombstones the cursor passed, and
    /// places what the feed brought in the Remote tree, row by row in the
    /// order it came (folders first: the hub shows a folder before what is
    /// in it), or derives the tree anew when a row does not place that way.
    pub fn settle_feed(&mut self) {
        // No row older than the cursor can come any more: a tombstone the
        // feed has passed has nothing left to hide.
        let cursor = self.cursor;
        let passed: Vec<NodeId> =
            self.rows.iter().filter(|(_, r)| r.deleted && r.version <= cursor).map(|(id, _)| *id).collect();
        let brought = std::mem::take(&mut self.unsettled);
        let mut placed = true;
        for id in &brought {
            if self.place_row(*id).is_none() {
                placed = false;
                break;
            }
        }
        for id in passed {
            self.rows.remove(&id);
            self.changed_rows.insert(id);
        }
        if !placed {
            self.derive();
        }
        #[cfg(test)]
        if self.check_placement && placed {
            assert_eq!(
                self.derived(),
                self.tree,
                "the feed's rows, placed one by one, gave another tree than deriving them"
            );
        }
    }

    /// Folds `rows` as a page of the feed that ends at the last of them,
    /// and settles.
    pub fn fold_feed(&mut self, rows: &[Entry]) -> Result<(), ViewError> {
        let cursor = rows.iter().map(|r| r.version).max().unwrap_or(0);
        self.fold_page(&EntriesPage { cursor, entries: rows.to_vec() })?;
        self.settle_feed();
        Ok(())
    }

    /// Folds the rows of an answer: what the hub wrote for this mount's
    /// request. The cursor stays: rows of other mounts may lie before them.
    ///
    /// An answer's rows are the hub's newest, so each places its node at
    /// once, without deriving the whole tree again (a plan of thousands of
    /// operations folds thousands of answers); only an answer that does not
    /// fit that way (its folder unknown here, a node it displaces that still
    /// holds nodes) falls back to deriving it all.
    pub fn fold_answer(&mut self, rows: &[Entry]) -> Result<Changed, ViewError> {
        let mut touched = Vec::new();
        for row in rows {
            if !self.fold(row)? {
                continue;
            }
            match row.node.and_then(|n| self.place_row(n.0)) {
                Some(ids) => touched.extend(ids),
                None => {
                    rows.iter().try_for_each(|row| self.fold(row).map(drop))?;
                    self.derive();
                    #[cfg(test)]
                    self.check_all_folded(rows)?;
                    return Ok(Changed::Whole);
                }
            }
        }
        #[cfg(test)]
        if self.check_placement {
            self.check_all_folded(rows)?;
            if self.derived() != self.tree {
                return Err(ViewError::Misplaced);
            }
        }
        Ok(Changed::Nodes(touched))
    }

    /// In the simulation: every row of an answer is folded (none is older
    /// than what this view holds of its node).
    #[cfg(test)]
    fn check_all_folded(&self, rows: &[Entry]) -> Result<(), ViewError> {
        let unfolded =
            rows.iter().any(|r| r.node.is_some_and(|n| self.rows.get(&n.0).is_none_or(|k| k.version < r.version)));
        match self.check_placement && unfolded {
            true => Err(ViewError::Misplaced),
            false => Ok(()),
        }
    }

    /// Places node `id` in the tree as its (newest, folded) row says; the
    /// nodes it changed, or None when only deriving the whole tree can
    /// place it.
    fn place_row(&mut self, id: NodeId) -> Option<Vec<NodeId>> {
        if self.unplaced > 0 {
            // A place this row frees may be one a left-out node's row names.
            return None;
        }
        let kept = self.rows.get(&id)?;
        if kept.deleted {
            if self.tree.get(id).is_none() {
                return Some(vec![]);
            }
            if self.tree.has_children(id) {
                return None;
            }
            self.tree.remove(id);
            self.versions.remove(&id);
            return Some(vec![id]);
        }
        let node = kept.node();
        let version = kept.version;
        if node.place.parent != ROOT && !self.tree.is_dir(node.place.parent) {
            return None;
        }
        if node.kind == Kind::Dir && self.tree.is_within(node.place.parent, id) {
            return None; // a cycle in between states of the view: derive decides
        }
        let mut changed = vec![id];
        // A node this view still has on that place: its newer row (a move or
        // a delete) is still to come, and until then it is left out.
        if let Some(other) = self.tree.holder(&node.place).filter(|h| *h != id) {
            if self.tree.has_children(other) {
                return None;
            }
            self.tree.remove(other);
            self.versions.remove(&other);
            self.unplaced += 1;
            changed.push(other);
        }
        self.tree.set(id, node);
        self.versions.insert(id, version);
        Some(changed)
    }

    /// The node this view has at `path`.
    fn lookup(&self, path: &RelPath) -> Option<NodeId> {
        path.as_str()
            .split('/')
            .try_fold(ROOT, |at, name| self.tree.holder(&Place { parent: at, name: name.to_string() }))
    }

    /// Records `row` as its node's newest, unless the view has a newer one;
    /// whether it did.
    fn fold(&mut self, row: &Entry) -> Result<bool, ViewError> {
        let (Some(node), Some(parent)) = (row.node, row.parent) else {
            return Err(ViewError::NoNode(row.path.clone()));
        };
        let node = node.0;
        if self.rows.get(&node).is_some_and(|r| r.version >= row.version) {
            return Ok(false); // this view has the node as it is since
        }
        let kind = match row.kind {
            EntryKind::File => Kind::File,
            EntryKind::Dir => Kind::Dir,
            EntryKind::Symlink => Kind::Symlink,
        };
        let content = if kind == Kind::Dir { None } else { row.hash };
        let kept = Row {
            place: Place { parent: parent.0, name: row.path.file_name().to_string() },
            version: row.version,
            deleted: row.deleted,
            kind,
            content,
            mode: row.mode & 0o7777,
            size: row.size,
            mtime_ns: row.mtime_ns,
            meta: Meta::boxed(row.owner.clone(), row.xattrs.clone()),
        };
        self.rows.insert(node, kept);
        self.changed_rows.insert(node);
        Ok(true)
    }

    /// Derives the tree from every row again (the simulation checks that
    /// answers placed row by row give the same).
    #[cfg(test)]
    pub fn rederive(&mut self) {
        self.derive();
    }

    /// The tree derived from every row, this view left as it is (so the
    /// simulation's checks do not replace the tree the engine follows).
    #[cfg(test)]
    fn derived(&self) -> Tree {
        let mut whole = self.clone();
        whole.derive();
        whole.tree
    }

    /// The nodes of the tree set or removed since the last call (a tree
    /// derived anew has another stamp: take all of it).
    pub fn take_touched(&mut self) -> Vec<NodeId> {
        self.tree.take_touched()
    }

    /// The Remote tree from the rows: the live ones placed from the root
    /// down, folders before what they hold; of two on one place, the newer.
    fn derive(&mut self) {
        let mut in_folder: HashMap<NodeId, Vec<(NodeId, &Row)>> = HashMap::new();
        let mut live = 0;
        for (id, row) in self.rows.iter().filter(|(_, r)| !r.deleted) {
            in_folder.entry(row.place.parent).or_default().push((*id, row));
            live += 1;
        }
        let mut tree = Tree::default();
        let mut versions = HashMap::new();
        let mut folders = vec![ROOT];
        while let Some(folder) = folders.pop() {
            let Some(mut children) = in_folder.remove(&folder) else { continue };
            // Newest first: it takes a place that two rows name.
            children.sort_by_key(|(_, r)| std::cmp::Reverse(r.version));
            for (id, row) in children {
                if tree.holder(&row.place).is_some() {
                    continue;
                }
                tree.set(id, row.node());
                versions.insert(id, row.version);
                if row.kind == Kind::Dir {
                    folders.push(id);
                }
            }
        }
        self.unplaced = live - tree.len();
        self.tree = tree;
        self.versions = versions;
    }

    /// The node as `tree` has it, with this view's version of it, if it is
    /// `base`: an operation planned on an older view is not sent (the hub
    /// would refuse it anyway).
    fn expect(&self, tree: &Tree, id: NodeId, base: &Node) -> Result<u64, ViewError> {
        match (tree.get(id), self.versions.get(&id)) {
            (Some(n), Some(v)) if n == base => Ok(*v),
            _ => Err(ViewError::Stale(id)),
        }
    }

    /// The hub's request that carries out `op` (a Remote operation).
    pub fn request_for(&self, op: &Op) -> Result<Request, ViewError> {
        self.request_in(op, &self.tree)
    }

    /// `request_for`, with paths as `tree` has them: for an operation later
    /// in a batch, `tree` is the Remote tree with the batch's operations
    /// before it applied. Versions are this view's, so a batch holds no
    /// two operations on one node.
    pub fn request_in(&self, op: &Op, tree: &Tree) -> Result<Request, ViewError> {
        Ok(match op {
            Op::Create { id, node, .. } => {
                let path = Self::path_in(tree, *id, &node.place)?;
                let meta = node.meta.clone();
                match (node.kind, node.content) {
                    (Kind::Dir, _) => Request::Mkdir { path, node: *id, mode: node.mode, meta },
                    (kind, Some(content)) => {
                        Request::Commit { path, base: 0, node: *id, kind, content, mode: node.mode, meta }
                    }
                    (_, None) => return Err(ViewError::BadPath(*id, "a file without content".into())),
                }
            }
            Op::Edit { id, base, content, mode, meta, .. } => {
                let version = self.expect(tree, *id, base)?;
                let path = Self::node_path_in(tree, *id)?;
                let (mode, meta) = (*mode, meta.clone());
                match content.filter(|c| base.content != Some(*c)) {
                    Some(content) => {
                        Request::Commit { path, base: version, node: *id, kind: base.kind, content, mode, meta }
                    }
                    None => Request::SetAttr { path, base: version, mode, meta },
                }
            }
            Op::Move { id, base, to, .. } => {
                let version = self.expect(tree, *id, base)?;
                let to_parent = Some(to.parent).filter(|p| *p != ROOT);
                Request::Rename {
                    from: Self::node_path_in(tree, *id)?,
                    to: Self::path_in(tree, *id, to)?,
                    base: version,
                    to_parent,
                }
            }
            Op::Exchange { a, a_base, b, b_base, .. } => Request::Exchange {
                a_base: self.expect(tree, *a, a_base)?,
                b_base: self.expect(tree, *b, b_base)?,
                a: Self::node_path_in(tree, *a)?,
                b: Self::node_path_in(tree, *b)?,
            },
            Op::Delete { id, base, .. } => {
                let version = self.expect(tree, *id, base)?;
                Request::Delete { path: Self::node_path_in(tree, *id)?, base: version }
            }
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sync::planner::Side;
    use ssync_common::NodeId as WireId;

    /// A hub row as the feed carries it, of node `node` in folder `parent`
    /// (content named after the path).
    pub(crate) fn row(path: &str, node: NodeId, parent: NodeId, version: u64, kind: EntryKind, deleted: bool) -> Entry {
        Entry {
            path: RelPath::parse(path).unwrap(),
            kind,
            version,
            deleted,
            hash: (kind != EntryKind::Dir).then(|| ContentHash::of(path.as_bytes())),
            size: 0,
            mode: 0o644,
            mtime_ns: 0,
            device: None,
            origin: None,
            moved_to: None,
            owner: None,
            xattrs: None,
            node: Some(WireId(node)),
            parent: Some(WireId(parent)),
        }
    }

    #[test]
    fn a_healed_folder_takes_the_hubs_rows_and_forgets_what_it_lost() {
        use EntryKind::{Dir, File};
        let mut view = HubView::default();
        let rows = [
            row("d", 1, ROOT, 1, Dir, false),
            row("d/a", 2, 1, 2, File, false),
            row("d/b", 3, 1, 3, File, false),
            row("d/sub", 4, 1, 4, Dir, false),
            row("d/sub/x", 5, 4, 5, File, false),
            row("e", 6, ROOT, 6, File, false),
        ];
        view.fold_feed(&rows).unwrap();
        view.take_changed_rows();
        // The hub lists d with a as it was, c new, and b and sub gone.
        let d = RelPath::parse("d").unwrap();
        let listed = [row("d/a", 2, 1, 2, File, false), row("d/c", 7, 1, 3, File, false)];
        let changed = view.heal_folder(Some(&d), &listed);
        assert_eq!(changed, Ok(4), "c came; b, sub and sub/x went");
        let mut paths: Vec<String> = view.tree().ids().filter_map(|id| view.tree().path_of(id)).collect();
        paths.sort();
        assert_eq!(paths, ["d", "d/a", "d/c", "e"]);
        assert_eq!(view.take_changed_rows().len(), 4, "kept as changed, for the mount's database");
        assert_eq!(view.cursor(), 6, "the cursor is the feed's alone");
    }

    #[test]
    fn a_folder_rename_is_one_row_and_moves_one_node() {
        let mut v = HubView::default();
        let (d, f) = (1, 2);
        v.fold_feed(&[row("d", d, ROOT, 1, EntryKind::Dir, false), row("d/f", f, d, 2, EntryKind::File, false)])
            .unwrap();
        // The hub's rename of d to e: one row, the folder's.
        v.fold_feed(&[row("e", d, ROOT, 3, EntryKind::Dir, false)]).unwrap();
        assert_eq!(v.tree().len(), 2);
        assert_eq!(v.tree().path_of(f).as_deref(), Some("e/f"));
        assert_eq!((v.version(d), v.version(f), v.cursor()), (Some(3), Some(2), 3));
        // Operations go out by path, with the hub's versions as bases.
        let base = v.tree().get(f).unwrap().clone();
        let op =
            Op::Move { side: Side::Remote, id: f, base: base.clone(), to: Place { parent: ROOT, name: "g".into() } };
        let (from, to) = (RelPath::parse("e/f").unwrap(), RelPath::parse("g").unwrap());
        let want = Request::Rename { from, to, base: 2, to_parent: None };
        assert_eq!(v.request_for(&op).unwrap(), want);
        // An operation planned on another state of the node is not sent.
        let stale = Op::Delete { side: Side::Remote, id: f, base: Node { mode: 0o600, ..base } };
        assert_eq!(v.request_for(&stale), Err(ViewError::Stale(f)));
    }

    #[test]
    fn rows_that_arrive_late_do_not_undo_newer_ones() {
        let mut v = HubView::default();
        let f = 7;
        // An answer shows the file deleted at 9; the feed then brings its creation at 5.
        v.fold_feed(&[row("f", f, ROOT, 5, EntryKind::File, false)]).unwrap();
        v.fold_answer(&[row("f", f, ROOT, 9, EntryKind::File, true)]).unwrap();
        assert!(v.tree().is_empty());
        v.fold_feed(&[row("f", f, ROOT, 5, EntryKind::File, false), row("g", 8, ROOT, 6, EntryKind::File, false)])
            .unwrap();
        assert!(v.tree().get(f).is_none(), "a row older than the delete brought the file back");
        // A newer row on a place another node holds: the newer holds it
        // until the other's own newer row comes.
        v.fold_feed(&[row("g", 3, ROOT, 10, EntryKind::File, false)]).unwrap();
        assert_eq!((v.tree().len(), v.tree().holder(&Place { parent: ROOT, name: "g".into() })), (1, Some(3)));
        assert_eq!(v.unplaced(), 1);
        v.fold_feed(&[row("h", 8, ROOT, 11, EntryKind::File, false)]).unwrap();
        assert_eq!((v.tree().len(), v.unplaced()), (2, 0));
    }

    #[test]
    fn the_cursor_follows_the_page_past_rows_the_hub_lost() {
        let mut v = HubView::default();
        let page = EntriesPage { cursor: 12, entries: vec![row("f", 7, ROOT, 5, EntryKind::File, false)] };
        v.fold_page(&page).unwrap();
        assert_eq!(v.cursor(), 12, "changes 6 to 12 have no row left; waiting for them would stop digest compares");
        // An empty page moves it too; an older page's cursor never takes it back.
        v.fold_page(&EntriesPage { cursor: 15, entries: vec![] }).unwrap();
        v.fold_page(&EntriesPage { cursor: 3, entries: vec![] }).unwrap();
        assert_eq!(v.cursor(), 15);
        // A folder's row brought ahead of its turn does not move it.
        v.fold_page(&EntriesPage { cursor: 16, entries: vec![row("d", 9, ROOT, 40, EntryKind::Dir, false)] }).unwrap();
        assert_eq!(v.cursor(), 16);
    }

    #[test]
    fn a_row_waits_for_its_folders_row() {
        let mut v = HubView::default();
        v.fold_feed(&[row("d/f", 2, 1, 5, EntryKind::File, false)]).unwrap();
        assert_eq!((v.tree().len(), v.unplaced(), v.cursor()), (0, 1, 5));
        v.fold_feed(&[row("d", 1, ROOT, 10, EntryKind::Dir, false)]).unwrap();
        assert_eq!((v.tree().len(), v.unplaced()), (2, 0));
        assert_eq!(v.tree().path_of(2).as_deref(), Some("d/f"));
    }
}
