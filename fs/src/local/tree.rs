//! The inode table: the local view of the synced tree, in memory.
//!
//! Inode numbers are the local database's row ids: stable across restarts and
//! never reused, so the kernel's `forget` needs no bookkeeping. A node whose
//! `parent` is 0 (and which is not the root) is unlinked: invisible to lookups,
//! kept only while queued operations still need its server version.
use ssync_common::{digest, ContentHash, RelPath};
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub const ROOT: u64 = 1;

/// A node is what the hub's entries are: a file, a folder or a symlink.
pub use ssync_common::api::EntryKind as Kind;

#[derive(Debug, Clone)]
pub struct Node {
    pub ino: u64,
    /// The node's identity in the sync engine on stable ids (see
    /// docs/sync-engine.md): kept through every rename, the same on every
    /// machine and on the hub. None: not known yet (a cache from before
    /// identities, or a folder made for an entry whose own row comes later):
    /// the hub's node at its path, once read.
    pub id: Option<ssync_common::NodeId>,
    pub parent: u64,
    pub name: String,
    pub kind: Kind,
    pub size: u64,
    pub mode: u32,
    pub mtime_ns: i64,
    /// The hub version this node's state derives from; 0: never on the hub.
    pub base_version: u64,
    /// Hash of the content at `base_version`.
    pub hash: Option<ContentHash>,
    /// The cache file holds writes the hub has not accepted yet.
    pub dirty: bool,
    pub children: BTreeMap<String, u64>,
    /// Open handles that may write (not persisted).
    pub open_writers: u32,
    /// All open handles, readers included (not persisted). The cache file is
    /// not replaced while any is open: passthrough opens of one inode must
    /// share one backing file.
    pub open_handles: u32,
    /// Bumped by every local write or truncate (not persisted): an upload that
    /// started at one generation can only mark the node clean at that generation.
    pub write_gen: u64,
    /// The generation and cache-file stamp of the last close or fsync (not
    /// persisted): while a writer has the file open, only that state is sent.
    pub sealed: Option<(u64, crate::local::handles::FileStamp)>,
    /// Owner and group; `None`: the mount's user, which every entry from the
    /// hub gets unless owners are synced.
    pub owner: Option<Owner>,
    /// Last access as set by utimensat; `None`: the mtime (the mount is
    /// `noatime`, so reads never change it).
    pub atime_ns: Option<i64>,
    /// Last change of this node's content or metadata on this mount; 0: its mtime.
    pub ctime_ns: i64,
    /// A FIFO, socket or device node: it lives on this mount only and is
    /// never sent (see SEMANTICS.md).
    pub special: Option<Special>,
    /// How many of `children` are folders: a folder's link count is 2 plus these.
    pub subdirs: u32,
    /// Hard links: the names of one file are nodes of one group (0: none),
    /// numbered by the inode the kernel knows them all by (see `Tree::by_kernel_ino`).
    pub group: u64,
    /// Extended attributes, every namespace (`None`: none); boxed, as most have none.
    pub xattrs: Option<Box<ssync_common::xattrs::Xattrs>>,
    /// Which bytes of the content the cache file holds (see residency.rs).
    pub cached: crate::local::residency::Residency,
    /// Kept local: never evicted, fetched whole; a pinned folder pins
    /// everything below it (`Tree::is_pinned`).
    pub pinned: bool,
    /// When the content was last used, for eviction (a tick of
    /// `State::tick`; not persisted: after a restart, by inode number).
    pub last_used: u64,
    /// Open handles that read a file not whole at open (not persisted):
    /// they read through the daemon, so eviction may take their bytes.
    pub streaming: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// A file type the hub does not hold; its mode's `S_IFMT` bits and device number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Special {
    pub format: u32,
    pub rdev: u32,
}

impl Node {
    pub fn new(kind: Kind, parent: u64, name: &str, mode: u32, mtime_ns: i64) -> Node {
        Node {
            ino: 0,
            id: None,
            parent,
            name: name.to_string(),
            kind,
            size: 0,
            mode,
            mtime_ns,
            base_version: 0,
            hash: None,
            dirty: false,
            children: BTreeMap::new(),
            open_writers: 0,
            open_handles: 0,
            write_gen: 0,
            sealed: None,
            owner: None,
            atime_ns: None,
            ctime_ns: mtime_ns,
            special: None,
            subdirs: 0,
            group: 0,
            xattrs: None,
            cached: crate::local::residency::Residency::full(),
            pinned: false,
            last_used: 0,
            streaming: 0,
        }
    }

    /// The inode number the kernel knows this node by: its group's, if it has hard links.
    pub fn kernel_ino(&self) -> u64 {
        if self.group != 0 {
            self.group
        } else {
            self.ino
        }
    }

    pub fn is_dir(&self) -> bool {
        self.kind == Kind::Dir
    }

    /// Files and symlinks keep their content (a symlink's: its target) in a cache file.
    pub fn has_content(&self) -> bool {
        self.kind != Kind::Dir && self.special.is_none()
    }

    /// Sets the content id this node claims on the hub, except for a file not
    /// all here: its id names the bytes it holds (the rest is fetched by
    /// it, before any upload), so it changes only with its content.
    pub fn set_hub_id(&mut self, id: Option<ContentHash>) {
        if self.cached.is_full() {
            self.hash = id;
        }
    }

    /// Whether the hub holds (or will hold) this node: everything but special files.
    pub fn is_synced(&self) -> bool {
        self.special.is_none()
    }

    /// What a write, truncate or chown does to a file, as the kernel's
    /// setattr_should_drop_suidgid says (the mount handles it:
    /// FUSE_HANDLE_KILLPRIV_V2): set-user-ID goes, and set-group-ID when group
    /// execute is on or the caller is not in the file's group
    /// (`in_group`). Whether the mode changed.
    pub fn drop_setid(&mut self, in_group: bool) -> bool {
        let before = self.mode;
        if !self.is_dir() {
            self.mode &= !libc::S_ISUID;
            if self.mode & libc::S_IXGRP != 0 || !in_group {
                self.mode &= !libc::S_ISGID;
            }
        }
        self.mode != before
    }

    pub fn has_setid(&self) -> bool {
        self.mode & (libc::S_ISUID | libc::S_ISGID) != 0
    }

    /// Records a change of content or metadata now.
    pub fn touch_ctime(&mut self) {
        self.ctime_ns = crate::local::clock::now_ns();
    }
}

#[derive(Debug, Default)]
pub struct Tree {
    nodes: HashMap<u64, Node>,
    /// Hard-link groups: the nodes (names) of each, by group number.
    groups: HashMap<u64, BTreeSet<u64>>,
}

impl Tree {
    /// Builds the tree from persisted nodes (children maps are derived).
    pub fn from_nodes(list: Vec<Node>) -> Tree {
        let mut nodes: HashMap<u64, Node> = list.into_iter().map(|n| (n.ino, n)).collect();
        let links: Vec<(u64, String, u64, bool)> =
            nodes.values().filter(|n| n.parent != 0).map(|n| (n.parent, n.name.clone(), n.ino, n.is_dir())).collect();
        for (parent, name, ino, is_dir) in links {
            if let Some(p) = nodes.get_mut(&parent) {
                p.children.insert(name, ino);
                p.subdirs += is_dir as u32;
            }
        }
        let mut groups: HashMap<u64, BTreeSet<u64>> = HashMap::new();
        for n in nodes.values().filter(|n| n.group != 0) {
            groups.entry(n.group).or_default().insert(n.ino);
        }
        Tree { nodes, groups }
    }

    /// The node a kernel inode number stands for: itself, or for a hard-link
    /// group a name of it that is still linked (the node the number came
    /// from may be gone).
    pub fn by_kernel_ino(&self, kino: u64) -> Option<u64> {
        if let Some(members) = self.groups.get(&kino) {
            let linked = members.iter().copied().find(|m| self.live(*m).is_some());
            return linked.or_else(|| self.nodes.contains_key(&kino).then_some(kino)).or(members.first().copied());
        }
        self.nodes.contains_key(&kino).then_some(kino)
    }

    /// The names of `ino`'s file that are linked, `ino` first (just `ino` without hard links).
    pub fn members(&self, ino: u64) -> Vec<u64> {
        let mut out = vec![ino];
        if let Some(members) = self.get(ino).filter(|n| n.group != 0).and_then(|n| self.groups.get(&n.group)) {
            out.extend(members.iter().copied().filter(|m| *m != ino && self.live(*m).is_some()));
        }
        out
    }

    /// How many names `ino`'s file has: its link count.
    pub fn link_count(&self, ino: u64) -> u32 {
        match self.get(ino) {
            Some(n) if n.group != 0 => {
                self.groups.get(&n.group).map_or(1, |m| m.iter().filter(|m| self.live(**m).is_some()).count() as u32)
            }
            _ => 1,
        }
    }

    /// Makes `new` another name of `existing`'s file (both must be in the table).
    pub fn join(&mut self, existing: u64, new: u64) {
        let group = match self.nodes.get_mut(&existing) {
            Some(n) if n.group != 0 => n.group,
            Some(n) => {
                n.group = n.ino;
                n.ino
            }
            None => return,
        };
        if let Some(n) = self.nodes.get_mut(&new) {
            n.group = group;
        }
        self.groups.entry(group).or_default().extend([existing, new]);
    }

    /// Applies `f` to `ino` and the other linked names of its file.
    pub fn update_members(&mut self, ino: u64, mut f: impl FnMut(&mut Node)) {
        for m in self.members(ino) {
            if let Some(n) = self.nodes.get_mut(&m) {
                f(n);
            }
        }
    }

    /// Whether other names of `ino`'s file are linked.
    pub fn has_other_names(&self, ino: u64) -> bool {
        self.members(ino).len() > 1
    }

    pub fn get(&self, ino: u64) -> Option<&Node> {
        self.nodes.get(&ino)
    }

    pub fn get_mut(&mut self, ino: u64) -> Option<&mut Node> {
        self.nodes.get_mut(&ino)
    }

    /// A node reachable from the root (not unlinked).
    pub fn live(&self, ino: u64) -> Option<&Node> {
        self.nodes.get(&ino).filter(|n| n.ino == ROOT || n.parent != 0)
    }

    pub fn child(&self, parent: u64, name: &str) -> Option<u64> {
        self.nodes.get(&parent)?.children.get(name).copied()
    }

    pub fn path_of(&self, ino: u64) -> Option<RelPath> {
        let mut names = Vec::new();
        let mut cur = ino;
        while cur != ROOT {
            let n = self.nodes.get(&cur)?;
            if n.parent == 0 {
                return None;
            }
            names.push(n.name.as_str());
            cur = n.parent;
        }
        names.reverse();
        RelPath::parse(&names.join("/")).ok()
    }

    pub fn resolve(&self, path: &RelPath) -> Option<u64> {
        path.components().try_fold(ROOT, |ino, name| self.child(ino, name))
    }

    /// Whether `ino` is kept local: it or a folder above it is pinned.
    pub fn is_pinned(&self, ino: u64) -> bool {
        let mut cur = Some(ino);
        while let Some(n) = cur.and_then(|i| self.nodes.get(&i)) {
            if n.pinned {
                return true;
            }
            cur = (n.ino != ROOT && n.parent != 0).then_some(n.parent);
        }
        false
    }

    /// Whether a file at `path` would be pinned: a folder on the way is
    /// (the file itself may not exist yet; new files inherit their folder's pin).
    pub fn is_pinned_path(&self, path: &RelPath) -> bool {
        let mut cur = ROOT;
        if self.nodes.get(&ROOT).is_some_and(|n| n.pinned) {
            return true;
        }
        for name in path.components() {
            match self.child(cur, name) {
                Some(i) if self.nodes.get(&i).is_some_and(|n| n.pinned) => return true,
                Some(i) => cur = i,
                None => return false,
            }
        }
        false
    }

    /// Resolves `suffix` components below `ino` (used after folder renames).
    pub fn resolve_below(&self, ino: u64, suffix: &str) -> Option<u64> {
        suffix.split('/').filter(|c| !c.is_empty()).try_fold(ino, |i, name| self.child(i, name))
    }

    /// Adds a node that already has its `ino`, linking it under its parent.
    pub fn insert(&mut self, node: Node) {
        if node.group != 0 {
            self.groups.entry(node.group).or_default().insert(node.ino);
        }
        if node.parent != 0 {
            self.link(node.parent, &node.name, node.ino, node.is_dir());
        }
        self.nodes.insert(node.ino, node);
    }

    /// Enters `ino` in `parent`'s children (the one place, with `unlink`, that
    /// changes them, so `subdirs` stays right).
    fn link(&mut self, parent: u64, name: &str, ino: u64, is_dir: bool) {
        let replaced = self.child(parent, name).filter(|old| *old != ino);
        if let Some(old) = replaced {
            // Callers detach what they replace first; stay consistent if one did not.
            let old_is_dir = self.nodes.get(&old).is_some_and(Node::is_dir);
            self.unlink(parent, name, old, old_is_dir);
        }
        if let Some(p) = self.nodes.get_mut(&parent) {
            if p.children.insert(name.to_string(), ino).is_none() {
                p.subdirs += is_dir as u32;
            }
        }
    }

    fn unlink(&mut self, parent: u64, name: &str, ino: u64, is_dir: bool) {
        if let Some(p) = self.nodes.get_mut(&parent) {
            if p.children.get(name) == Some(&ino) {
                p.children.remove(name);
                p.subdirs = p.subdirs.saturating_sub(is_dir as u32);
            }
        }
    }

    /// Unlinks `ino` from its parent; it stays in the table with parent 0.
    pub fn detach(&mut self, ino: u64) {
        let Some(n) = self.nodes.get_mut(&ino) else { return };
        let (parent, name, is_dir) = (n.parent, n.name.clone(), n.is_dir());
        n.parent = 0;
        self.unlink(parent, &name, ino, is_dir);
    }

    pub fn attach(&mut self, ino: u64, parent: u64, name: &str) {
        let Some(n) = self.nodes.get_mut(&ino) else { return };
        n.parent = parent;
        n.name = name.to_string();
        let is_dir = n.is_dir();
        self.link(parent, name, ino, is_dir);
    }

    pub fn remove(&mut self, ino: u64) -> Option<Node> {
        self.detach(ino);
        let n = self.nodes.remove(&ino)?;
        if let Some(members) = self.groups.get_mut(&n.group) {
            members.remove(&ino);
            if members.is_empty() {
                self.groups.remove(&n.group);
            }
        }
        Some(n)
    }

    /// `ino` and everything below it, parents before children.
    pub fn subtree(&self, ino: u64) -> Vec<u64> {
        let mut out = vec![ino];
        let mut i = 0;
        while i < out.len() {
            if let Some(n) = self.nodes.get(&out[i]) {
                out.extend(n.children.values().copied());
            }
            i += 1;
        }
        out
    }

    pub fn is_within(&self, ino: u64, ancestor: u64) -> bool {
        let mut cur = ino;
        loop {
            if cur == ancestor {
                return true;
            }
            match self.nodes.get(&cur) {
                Some(n) if n.parent != 0 && cur != ROOT => cur = n.parent,
                _ => return false,
            }
        }
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// Every live entry's path, hub version and whether it is a folder: what
    /// `folder_digests` needs, taken under the state lock so that the hashing
    /// can run outside it.
    pub fn versions(&self) -> Vec<(String, u64, bool)> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack = vec![(ROOT, String::new())];
        while let Some((ino, path)) = stack.pop() {
            let Some(n) = self.nodes.get(&ino) else { continue };
            for (name, child) in &n.children {
                let Some(c) = self.nodes.get(child).filter(|c| c.is_synced()) else { continue };
                let cpath = if path.is_empty() { name.clone() } else { format!("{path}/{name}") };
                if c.is_dir() {
                    stack.push((*child, cpath.clone()));
                }
                out.push((cpath, c.base_version, c.is_dir()));
            }
        }
        out
    }
}

/// Every folder's digests over `versions` (see `Tree::versions`), as the hub
/// keeps them (see `ssync_common::digest`), keyed by path ("" for the root).
/// A node never sent counts as version 0, which the hub never has: its
/// folders differ, and a compare looks there.
pub fn folder_digests(versions: &[(String, u64, bool)]) -> HashMap<String, FolderDigests> {
    let mut out: HashMap<String, FolderDigests> = HashMap::new();
    out.entry(String::new()).or_default();
    for (path, version, is_dir) in versions {
        let home = digest::folder_of(path);
        let h = out.entry(home.to_string()).or_default();
        h.direct = digest::xor(&h.direct, &digest::entry_digest(path, *version));
        if *is_dir {
            h.folders.push(path.rsplit_once('/').map_or(path.as_str(), |(_, n)| n).to_string());
            out.entry(path.clone()).or_default();
        }
    }
    // Deepest folders first: each adds its finished subtree to its parent's.
    let mut dirs: Vec<String> = out.keys().cloned().collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(if d.is_empty() { 0 } else { d.matches('/').count() + 1 }));
    for d in dirs {
        let f = out.get_mut(&d).expect("listed above");
        f.subtree = digest::xor(&f.subtree, &f.direct);
        if !d.is_empty() {
            let sub = f.subtree;
            let p = out.get_mut(digest::folder_of(&d)).expect("a folder's parent is listed");
            p.subtree = digest::xor(&p.subtree, &sub);
        }
    }
    out
}

/// One folder's digests on this mount (see `folder_digests`).
/// The subfolders of `dir` whose subtree digests differ between the hub
/// (`hub`, its answer for `dir` with subfolders) and this mount (`mine`,
/// from `folder_digests`), each with the hub's digest (`digest::EMPTY`: the
/// hub has nothing there). A compare descends into these.
pub fn differing_subfolders(
    dir: Option<&RelPath>,
    hub: &ssync_common::api::FolderDigest,
    mine: &HashMap<String, FolderDigests>,
) -> Vec<(RelPath, ContentHash)> {
    let key = dir.map_or("", |d| d.as_str());
    let hubs: HashMap<&str, ContentHash> = hub.folders.iter().map(|f| (f.name.as_str(), f.subtree)).collect();
    let ours = mine.get(key).map(|d| d.folders.as_slice()).unwrap_or_default();
    let names: BTreeSet<&str> = hubs.keys().copied().chain(ours.iter().map(String::as_str)).collect();
    let mut out = Vec::new();
    for name in names {
        let Ok(child) = RelPath::child_of(dir, name) else { continue };
        let theirs = hubs.get(name).copied().unwrap_or(digest::EMPTY);
        if theirs != mine.get(child.as_str()).map_or(digest::EMPTY, |d| d.subtree) {
            out.push((child, theirs));
        }
    }
    out
}

#[derive(Debug, Clone)]
pub struct FolderDigests {
    pub direct: ContentHash,
    pub subtree: ContentHash,
    /// The names of its subfolders.
    pub folders: Vec<String>,
}

impl Default for FolderDigests {
    fn default() -> Self {
        FolderDigests { direct: digest::EMPTY, subtree: digest::EMPTY, folders: Vec::new() }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn folder_digests_cover_direct_entries_and_everything_below() {
        use ssync_common::digest::{entry_digest as h, xor, EMPTY};
        let v = |p: &str, n: u64, d: bool| (p.to_string(), n, d);
        let versions =
            vec![v("a", 1, true), v("a/b", 2, false), v("a/c", 3, true), v("a/c/d", 4, false), v("top", 5, false)];
        let all = |xs: &[(&str, u64)]| xs.iter().fold(EMPTY, |acc, (p, n)| xor(&acc, &h(p, *n)));
        let d = folder_digests(&versions);
        assert_eq!(d[""].direct, all(&[("a", 1), ("top", 5)]));
        assert_eq!(d[""].subtree, all(&[("a", 1), ("a/b", 2), ("a/c", 3), ("a/c/d", 4), ("top", 5)]));
        assert_eq!(d["a"].direct, all(&[("a/b", 2), ("a/c", 3)]));
        assert_eq!(d["a"].subtree, all(&[("a/b", 2), ("a/c", 3), ("a/c/d", 4)]));
        assert_eq!((d["a/c"].direct, d["a/c"].subtree), (h("a/c/d", 4), h("a/c/d", 4)));
        assert_eq!((d[""].folders.clone(), d["a"].folders.clone()), (vec!["a".to_string()], vec!["c".to_string()]));
    }
    use super::*;

    fn node(ino: u64, parent: u64, name: &str, kind: Kind) -> Node {
        Node { ino, ..Node::new(kind, parent, name, 0o755, 0) }
    }

    fn sample() -> Tree {
        Tree::from_nodes(vec![
            node(ROOT, 0, "", Kind::Dir),
            node(2, ROOT, "d", Kind::Dir),
            node(3, 2, "f", Kind::File),
            node(4, ROOT, "g", Kind::File),
        ])
    }

    #[test]
    fn paths_resolve_both_ways() {
        let t = sample();
        assert_eq!(t.path_of(3).unwrap().as_str(), "d/f");
        assert_eq!(t.resolve(&RelPath::parse("d/f").unwrap()), Some(3));
        assert_eq!(t.resolve(&RelPath::parse("d/x").unwrap()), None);
        assert_eq!(t.resolve_below(2, "f"), Some(3));
    }

    #[test]
    fn detach_and_attach_move_a_subtree() {
        let mut t = sample();
        t.detach(2);
        assert!(t.path_of(3).is_none(), "below an unlinked folder nothing has a path");
        assert!(t.live(2).is_none());
        t.attach(2, ROOT, "e");
        assert_eq!(t.path_of(3).unwrap().as_str(), "e/f");
        assert_eq!(t.subtree(2), vec![2, 3]);
        assert!(t.is_within(3, 2) && !t.is_within(4, 2));
    }

    #[test]
    fn subfolder_counts_follow_every_change_of_children() {
        let mut t = sample();
        let subdirs = |t: &Tree, ino| t.get(ino).unwrap().subdirs;
        assert_eq!((subdirs(&t, ROOT), subdirs(&t, 2)), (1, 0), "counted when loaded");
        t.insert(node(5, 2, "e", Kind::Dir));
        t.insert(node(6, 2, "h", Kind::File));
        assert_eq!(subdirs(&t, 2), 1);
        t.detach(5);
        t.attach(5, ROOT, "e");
        assert_eq!((subdirs(&t, ROOT), subdirs(&t, 2)), (2, 0));
        t.attach(2, ROOT, "d"); // already there: counted once
        assert_eq!(subdirs(&t, ROOT), 2);
        t.remove(2);
        assert_eq!(subdirs(&t, ROOT), 1);
    }
}
