//! The mount's picture of the hub: the Remote tree, built from the hub's
//! rows as the feed (or an answer) brings them, and the hub's version of
//! each node, which every request names as its base.
//!
//! The hub still keys its rows by path (each carrying its node's id), and
//! its feed holds only each path's newest row. So the view keeps the same:
//! the newest row of each path, a newer row replacing an older one whatever
//! order answers and the feed bring them in. The Remote tree is derived from
//! the live rows: each node where its newest row puts it, under the node its
//! folder's path holds. Once the feed is read to its end this is exactly the
//! hub's tree; in between (a folder rename split across feed pages) a node
//! whose folder is not placed yet is left out until it is.
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
    #[error("the hub's row for '{0}' has no node id (a hub older than this mount)")]
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

/// A path's newest row, as far as the view needs it (and the mount keeps).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub node: NodeId,
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
    /// The node it shows, in folder `parent`.
    fn node_in(&self, parent: NodeId, path: &RelPath) -> Node {
        let place = Place { parent, name: path.file_name().to_string() };
        Node { place, kind: self.kind, content: self.content, mode: self.mode, meta: self.meta.clone() }
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
    /// The newest row of each path (tombstones until the feed passes them).
    rows: HashMap<RelPath, Row>,
    /// Derived from `rows`: the Remote tree, and each node's version.
    tree: Tree,
    versions: HashMap<NodeId, u64>,
    /// Live nodes left out of the tree: their folder is not placed (yet).
    unplaced: usize,
    /// Paths whose row changed since `take_changed_rows` (to persist).
    changed_rows: HashSet<RelPath>,
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
    pub fn restore(rows: impl IntoIterator<Item = (RelPath, Row)>, cursor: u64) -> HubView {
        let mut view = HubView { rows: rows.into_iter().collect(), cursor, ..HubView::default() };
        view.derive();
        view
    }

    /// The rows changed since the last call, each with its row now (None:
    /// gone), for the mount to keep.
    pub fn take_changed_rows(&mut self) -> Vec<(RelPath, Option<Row>)> {
        let paths: Vec<RelPath> = self.changed_rows.drain().collect();
        paths.into_iter().map(|p| (p.clone(), self.rows.get(&p).cloned())).collect()
    }

    /// Every live row's path and version, and whether it is a folder: what
    /// the hub's folder digests are computed over (`tree::folder_digests`).
    pub fn live_versions(&self) -> Vec<(String, u64, bool)> {
        let live = self.rows.iter().filter(|(_, r)| !r.deleted);
        live.map(|(p, r)| (p.as_str().to_string(), r.version, r.kind == Kind::Dir)).collect()
    }

    /// Makes the rows directly in `dir` (None: the root) what the hub lists
    /// there (`listed`, its live rows as of this view's cursor), for what the
    /// feed never reported (a hub database restored from a backup): a newer
    /// row is folded, and a row the hub no longer has is forgotten with
    /// every row below it. Returns how many paths changed.
    pub fn heal_folder(&mut self, dir: Option<&RelPath>, listed: &[Entry]) -> Result<usize, ViewError> {
        let mut changed = 0;
        for row in listed {
            changed += usize::from(self.fold(row)?);
        }
        let listed: HashSet<&RelPath> = listed.iter().map(|e| &e.path).collect();
        let gone: Vec<RelPath> = self
            .rows
            .iter()
            .filter(|(p, r)| !r.deleted && p.parent().as_ref() == dir && !listed.contains(p))
            .map(|(p, _)| p.clone())
            .collect();
        for path in gone {
            let below = format!("{}/", path.as_str());
            let forgotten: Vec<RelPath> =
                self.rows.keys().filter(|p| *p == &path || p.as_str().starts_with(&below)).cloned().collect();
            for p in forgotten {
                self.rows.remove(&p);
                self.changed_rows.insert(p);
                changed += 1;
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

    /// The hub's newest row of node `id`, where the Remote tree has it: what
    /// bringing the node down takes its size and modification time from.
    pub fn row_of(&self, id: NodeId) -> Option<&Row> {
        let path = self.path_of(id).ok()?;
        self.rows.get(&path).filter(|r| r.node == id && !r.deleted)
    }

    /// Where node `id` is on the hub, if this view places it.
    pub fn path_of_node(&self, id: NodeId) -> Option<RelPath> {
        self.path_of(id).ok()
    }

    /// The live row at `path`, if the hub has one there.
    pub fn live_row_at(&self, path: &RelPath) -> Option<&Row> {
        self.rows.get(path).filter(|r| !r.deleted)
    }

    /// Folds a page of the feed, oldest row first, and moves the cursor to
    /// the page's: past its rows, and past changes whose rows the hub no
    /// longer has (else a mount would wait for them for ever, and never
    /// compare digests, which needs the hub's cursor). `settle_feed` then
    /// derives the tree (once for all the pages a read brings: deriving per
    /// page of 1,000 rows made reading a large feed quadratic).
    pub fn fold_page(&mut self, page: &EntriesPage) -> Result<(), ViewError> {
        self.fold_rows(&page.entries)?;
        self.cursor = self.cursor.max(page.cursor);
        Ok(())
    }

    fn fold_rows(&mut self, rows: &[Entry]) -> Result<(), ViewError> {
        for row in rows {
            self.fold(row)?;
            self.cursor = self.cursor.max(row.version);
        }
        Ok(())
    }

    /// After the pages of a read: drops the tombstones the cursor passed and
    /// derives the Remote tree.
    pub fn settle_feed(&mut self) {
        // No row older than the cursor can come any more: a tombstone the
        // feed has passed has nothing left to hide.
        let cursor = self.cursor;
        let passed: Vec<RelPath> =
            self.rows.iter().filter(|(_, r)| r.deleted && r.version <= cursor).map(|(p, _)| p.clone()).collect();
        for path in passed {
            self.rows.remove(&path);
            self.changed_rows.insert(path);
        }
        self.derive();
    }

    /// Folds `rows` as a page of the feed that ends at the last of them,
    /// and settles.
    pub fn fold_feed(&mut self, rows: &[Entry]) -> Result<(), ViewError> {
        self.fold_rows(rows)?;
        self.settle_feed();
        Ok(())
    }

    /// Folds the rows of an answer: what the hub wrote for this mount's
    /// request. The cursor stays: rows of other mounts may lie before them.
    ///
    /// An answer's rows are the hub's newest, so each places its node at
    /// once, without deriving the whole tree again (a plan of thousands of
    /// operations folds thousands of answers); only an answer that does not
    /// fit that way (its folder unknown here, a replaced folder that still
    /// holds nodes) falls back to deriving it all.
    pub fn fold_answer(&mut self, rows: &[Entry]) -> Result<Changed, ViewError> {
        let mut touched = Vec::new();
        for row in rows {
            if !self.fold(row)? {
                continue;
            }
            match self.place_answer_row(row) {
                Some(ids) => touched.extend(ids),
                None => {
                    rows.iter().try_for_each(|row| self.fold(row).map(drop))?;
                    self.derive();
                    return Ok(Changed::Whole);
                }
            }
        }
        #[cfg(test)]
        if self.check_placement {
            let placed = self.tree.clone();
            self.derive();
            if self.tree != placed {
                return Err(ViewError::Misplaced);
            }
        }
        Ok(Changed::Nodes(touched))
    }

    /// Places one (newest) row in the tree; the nodes it changed, or None
    /// when only deriving the whole tree can place it.
    fn place_answer_row(&mut self, row: &Entry) -> Option<Vec<NodeId>> {
        let id = row.node?.0;
        if row.deleted {
            // A move's tombstones name the old paths: only the node's own
            // place is removed by its tombstone.
            if self.tree.get(id).is_none() || self.path_of(id).ok().as_ref() != Some(&row.path) {
                return Some(vec![]);
            }
            if self.tree.has_children(id) {
                return None;
            }
            self.tree.remove(id);
            self.versions.remove(&id);
            return Some(vec![id]);
        }
        let parent = match row.path.parent() {
            None => ROOT,
            Some(dir) => self.lookup(&dir).filter(|p| self.tree.is_dir(*p))?,
        };
        let node = self.rows.get(&row.path)?.node_in(parent, &row.path);
        let mut changed = vec![id];
        // A row over a place another node held replaced that node.
        if let Some(other) = self.tree.holder(&node.place).filter(|h| *h != id) {
            if self.tree.has_children(other) {
                return None;
            }
            self.tree.remove(other);
            self.versions.remove(&other);
            changed.push(other);
        }
        self.tree.set(id, node);
        self.versions.insert(id, row.version);
        Some(changed)
    }

    /// The node this view has at `path`.
    fn lookup(&self, path: &RelPath) -> Option<NodeId> {
        path.as_str()
            .split('/')
            .try_fold(ROOT, |at, name| self.tree.holder(&Place { parent: at, name: name.to_string() }))
    }

    /// Records `row` as its path's newest, unless the view has a newer one;
    /// whether it did.
    fn fold(&mut self, row: &Entry) -> Result<bool, ViewError> {
        let node = row.node.ok_or_else(|| ViewError::NoNode(row.path.clone()))?.0;
        if self.rows.get(&row.path).is_some_and(|r| r.version >= row.version) {
            return Ok(false); // this view has the path as it is since
        }
        let kind = match row.kind {
            EntryKind::File => Kind::File,
            EntryKind::Dir => Kind::Dir,
            EntryKind::Symlink => Kind::Symlink,
        };
        let content = if kind == Kind::Dir { None } else { row.hash };
        let kept = Row {
            node,
            version: row.version,
            deleted: row.deleted,
            kind,
            content,
            mode: row.mode & 0o7777,
            size: row.size,
            mtime_ns: row.mtime_ns,
            meta: Meta::boxed(row.owner.clone(), row.xattrs.clone()),
        };
        self.rows.insert(row.path.clone(), kept);
        self.changed_rows.insert(row.path.clone());
        Ok(true)
    }

    /// Derives the tree from every row again (the simulation checks that
    /// answers placed row by row give the same).
    #[cfg(test)]
    pub fn rederive(&mut self) {
        self.derive();
    }

    /// The Remote tree from the rows: each node at its newest live row,
    /// folders before what they hold.
    fn derive(&mut self) {
        let mut newest: HashMap<NodeId, (&RelPath, &Row)> = HashMap::new();
        for (path, row) in self.rows.iter().filter(|(_, r)| !r.deleted) {
            match newest.get(&row.node) {
                Some((_, seen)) if seen.version >= row.version => {}
                _ => drop(newest.insert(row.node, (path, row))),
            }
        }
        let mut placed: Vec<(&RelPath, &Row)> = newest.into_values().collect();
        placed.sort_by_key(|(path, _)| path.as_str().matches('/').count());
        let mut tree = Tree::default();
        let mut versions = HashMap::new();
        let mut at_path: HashMap<&RelPath, NodeId> = HashMap::new();
        let live = placed.len();
        for (path, row) in placed {
            let parent = match path.parent() {
                None => ROOT,
                Some(dir) => match at_path.get(&dir) {
                    Some(p) if tree.is_dir(*p) => *p,
                    _ => continue, // its folder is not placed (yet)
                },
            };
            tree.set(row.node, row.node_in(parent, path));
            versions.insert(row.node, row.version);
            at_path.insert(path, row.node);
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
    /// two operations on one node, and nothing after a folder's move (the
    /// path-keyed hub gives everything below it new versions).
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

    /// A hub row as the feed carries it (content named after the path).
    pub(crate) fn row(path: &str, node: NodeId, version: u64, kind: EntryKind, deleted: bool) -> Entry {
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
        }
    }

    #[test]
    fn a_healed_folder_takes_the_hubs_rows_and_forgets_what_it_lost() {
        use EntryKind::{Dir, File};
        let mut view = HubView::default();
        let rows = [
            row("d", 1, 1, Dir, false),
            row("d/a", 2, 2, File, false),
            row("d/b", 3, 3, File, false),
            row("d/sub", 4, 4, Dir, false),
            row("d/sub/x", 5, 5, File, false),
            row("e", 6, 6, File, false),
        ];
        view.fold_feed(&rows).unwrap();
        view.take_changed_rows();
        // The hub lists d with a as it was, c new, and b and sub gone.
        let d = RelPath::parse("d").unwrap();
        let changed = view.heal_folder(Some(&d), &[row("d/a", 2, 2, File, false), row("d/c", 7, 3, File, false)]);
        assert_eq!(changed, Ok(4), "c came; b, sub and sub/x went");
        let paths: Vec<String> = view.tree().ids().filter_map(|id| view.tree().path_of(id)).collect();
        let mut paths = paths;
        paths.sort();
        assert_eq!(paths, ["d", "d/a", "d/c", "e"]);
        assert_eq!(view.take_changed_rows().len(), 4, "kept as changed, for the mount's database");
        assert_eq!(view.cursor(), 6, "the cursor is the feed's alone");
    }

    #[test]
    fn a_folder_rename_as_the_path_keyed_hub_writes_it_moves_one_node() {
        let mut v = HubView::default();
        let (d, f) = (1, 2);
        v.fold_feed(&[row("d", d, 1, EntryKind::Dir, false), row("d/f", f, 2, EntryKind::File, false)]).unwrap();
        // The hub's rename: new rows parent first, then tombstones child first.
        v.fold_feed(&[
            row("e", d, 3, EntryKind::Dir, false),
            row("e/f", f, 4, EntryKind::File, false),
            row("d/f", f, 5, EntryKind::File, true),
            row("d", d, 6, EntryKind::Dir, true),
        ])
        .unwrap();
        assert_eq!(v.tree().len(), 2);
        assert_eq!(v.tree().path_of(f).as_deref(), Some("e/f"));
        assert_eq!((v.version(d), v.version(f), v.cursor()), (Some(3), Some(4), 6));
        // Operations go out by path, with the hub's versions as bases.
        let base = v.tree().get(f).unwrap().clone();
        let op =
            Op::Move { side: Side::Remote, id: f, base: base.clone(), to: Place { parent: ROOT, name: "g".into() } };
        let (from, to) = (RelPath::parse("e/f").unwrap(), RelPath::parse("g").unwrap());
        let want = Request::Rename { from, to, base: 4, to_parent: None };
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
        v.fold_feed(&[row("f", f, 5, EntryKind::File, false)]).unwrap();
        v.fold_answer(&[row("f", f, 9, EntryKind::File, true)]).unwrap();
        assert!(v.tree().is_empty());
        v.fold_feed(&[row("f", f, 5, EntryKind::File, false), row("g", 8, 6, EntryKind::File, false)]).unwrap();
        assert!(v.tree().get(f).is_none(), "a row older than the delete brought the file back");
        // A row over a place another node held replaced that node.
        v.fold_feed(&[row("g", 3, 10, EntryKind::File, false)]).unwrap();
        assert_eq!((v.tree().len(), v.tree().holder(&Place { parent: ROOT, name: "g".into() })), (1, Some(3)));
    }

    #[test]
    fn the_cursor_follows_the_page_past_rows_the_hub_lost() {
        let mut v = HubView::default();
        let page = EntriesPage { cursor: 12, entries: vec![row("f", 7, 5, EntryKind::File, false)] };
        v.fold_page(&page).unwrap();
        assert_eq!(v.cursor(), 12, "changes 6 to 12 have no row left; waiting for them would stop digest compares");
        // An empty page moves it too; an older page's cursor never takes it back.
        v.fold_page(&EntriesPage { cursor: 15, entries: vec![] }).unwrap();
        v.fold_page(&EntriesPage { cursor: 3, entries: vec![] }).unwrap();
        assert_eq!(v.cursor(), 15);
    }

    #[test]
    fn a_row_waits_for_its_folders_row() {
        // The folder was chmodded after its file was made: the feed holds the
        // folder's newest row, after the file's.
        let mut v = HubView::default();
        v.fold_feed(&[row("d/f", 2, 5, EntryKind::File, false)]).unwrap();
        assert_eq!((v.tree().len(), v.unplaced(), v.cursor()), (0, 1, 5));
        v.fold_feed(&[row("d", 1, 10, EntryKind::Dir, false)]).unwrap();
        assert_eq!((v.tree().len(), v.unplaced()), (2, 0));
        assert_eq!(v.tree().path_of(2).as_deref(), Some("d/f"));
    }
}
