//! The rules of the versioned tree: every mutation checks the client's base
//! version, takes the next sequence numbers, and writes its rows in the caller's
//! transaction. Nothing here does I/O beyond SQL, so it is tested on an
//! in-memory database.
use crate::db::entries;
use crate::db::Scoped;
use ssync_common::api::{Entry, EntryKind, Owner};
use ssync_common::xattrs::Xattrs;
use ssync_common::{ContentHash, NodeId, PathError, PathLimits, RelPath};

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("'{path}' changed on the hub since version {base}")]
    Conflict { path: RelPath, base: u64, current: Option<Box<Entry>> },
    #[error("{message}")]
    Blocked { message: String, current: Option<Box<Entry>> },
    #[error("{0}")]
    NotFound(String),
    #[error("invalid path: {0}")]
    BadPath(#[from] PathError),
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
}

pub(crate) type TreeResult = Result<Vec<Entry>, TreeError>;

/// Who makes a change: recorded on every entry it writes.
#[derive(Debug, Clone, Default)]
pub struct Author {
    /// The device's name (`X-Ssync-Device`), shown in history.
    pub device: Option<String>,
    /// The mount's id (`X-Ssync-Mount`), by which it knows its own changes.
    pub origin: Option<String>,
}

pub type Dev<'a> = &'a Author;

mod exchange;
pub use exchange::exchange;

fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

fn live(e: Option<Entry>) -> Option<Entry> {
    e.filter(|e| !e.deleted)
}

/// A live entry must be at exactly `base`; an absent or deleted one at 0.
fn check_base(path: &RelPath, current: &Option<Entry>, base: u64) -> Result<(), TreeError> {
    let expected = current.as_ref().filter(|e| !e.deleted).map_or(0, |e| e.version);
    if expected == base {
        Ok(())
    } else {
        Err(TreeError::Conflict { path: path.clone(), base, current: current.clone().map(Box::new) })
    }
}

fn blocked(message: String, current: Option<Entry>) -> TreeError {
    TreeError::Blocked { message, current: current.map(Box::new) }
}

/// Creates any missing ancestor folders (mkdir -p), so a write inside a folder
/// another client just deleted brings the folder back instead of failing.
fn ensure_parents(conn: &Scoped, dev: Dev, path: &RelPath, out: &mut Vec<Entry>) -> Result<(), TreeError> {
    for anc in path.ancestors() {
        match live(entries::get(conn, &anc)?) {
            Some(e) if e.kind == EntryKind::Dir => {}
            Some(e) => return Err(blocked(format!("'{anc}' is a file, not a folder"), Some(e))),
            None => {
                let e = Entry {
                    path: anc,
                    kind: EntryKind::Dir,
                    version: entries::next_seq(conn)?,
                    deleted: false,
                    hash: None,
                    size: 0,
                    mode: 0o755,
                    mtime_ns: now_ns(),
                    device: dev.device.clone(),
                    origin: dev.origin.clone(),
                    moved_to: None,
                    owner: None,
                    xattrs: None,
                    node: Some(NodeId::random()),
                    parent: None,
                };
                out.push(entries::put(conn, &e)?);
            }
        }
    }
    Ok(())
}

/// What an entry carries beside its mode and mtime. Each is `None` when the
/// request did not send it, and the entry keeps what it has.
#[derive(Debug, Clone, Default)]
pub struct Carried {
    pub owner: Option<Owner>,
    /// Empty: none.
    pub xattrs: Option<Xattrs>,
    /// The id the client chose for the node it creates or changes. The sync
    /// engine names its nodes itself, so that a create sent again, or seen
    /// only in the feed after its answer was lost, is known as the same node.
    /// None: the hub keeps the node at the path, or makes a new one.
    pub node: Option<NodeId>,
}

impl Carried {
    pub fn owner(owner: Owner) -> Carried {
        Carried { owner: Some(owner), ..Carried::default() }
    }

    /// The folders a write to `path` needs. A client that names its nodes
    /// knows the hub's folders: a missing one was deleted since it looked,
    /// and making it again under a new id would hide that from its merge, so
    /// the write is refused. Otherwise they are made (mkdir -p), so a write
    /// inside a folder another client just deleted brings the folder back.
    fn parents_for(&self, conn: &Scoped, dev: Dev, path: &RelPath, out: &mut Vec<Entry>) -> Result<(), TreeError> {
        let Some(dir) = path.parent().filter(|_| self.node.is_some()) else {
            return ensure_parents(conn, dev, path, out);
        };
        match live(entries::get(conn, &dir)?) {
            Some(e) if e.kind == EntryKind::Dir => Ok(()),
            Some(e) => Err(blocked(format!("'{dir}' is a file, not a folder"), Some(e))),
            None => Err(blocked(format!("folder '{dir}' is not on the hub (deleted since)"), None)),
        }
    }

    /// The node a write to `path` makes or changes: the one there (`kept`),
    /// else the client's choice, else a new one. A client that names another
    /// node than the one there, or one that lives elsewhere, is refused: two
    /// places would hold one node.
    fn node_for(&self, conn: &Scoped, path: &RelPath, kept: Option<&Entry>) -> Result<NodeId, TreeError> {
        match (kept.and_then(|k| k.node), self.node) {
            (Some(there), Some(asked)) if there != asked => {
                Err(blocked(format!("'{path}' is another node on the hub ({there}), not {asked}"), kept.cloned()))
            }
            (Some(there), _) => Ok(there),
            (None, Some(asked)) if entries::node_live_elsewhere(conn, asked, path)? => {
                Err(blocked(format!("node {asked} already lives elsewhere on the hub"), None))
            }
            (None, asked) => Ok(asked.unwrap_or_else(NodeId::random)),
        }
    }

    /// Whether `e` has already everything this sends.
    fn held_by(&self, e: &Entry) -> bool {
        self.owner.as_ref().is_none_or(|o| e.owner.as_ref() == Some(o))
            && self.xattrs.as_ref().is_none_or(|x| e.xattrs.as_ref().unwrap_or(&Xattrs::default()) == x)
    }

    /// Sets what this sends on `e`, keeping the rest.
    fn onto(self, e: &mut Entry) {
        if let Some(o) = self.owner {
            e.owner = Some(o);
        }
        if let Some(x) = self.xattrs {
            e.xattrs = (!x.is_empty()).then_some(x);
        }
    }
}

pub struct FileCommit {
    pub path: RelPath,
    /// `File` or `Symlink`: both are content; a commit may turn one into the other.
    pub kind: EntryKind,
    pub base: u64,
    pub hash: ContentHash,
    pub size: u64,
    pub mode: u32,
    pub mtime_ns: i64,
    pub carried: Carried,
}

pub fn commit_file(conn: &Scoped, dev: Dev, c: FileCommit) -> TreeResult {
    let current = entries::get(conn, &c.path)?;
    if let Some(e) = live(current.clone()).filter(|e| e.kind == EntryKind::Dir) {
        return Err(blocked(format!("'{}' is a folder", c.path), Some(e)));
    }
    check_base(&c.path, &current, c.base)?;
    let same =
        |e: &Entry| e.kind == c.kind && e.hash == Some(c.hash) && e.mode == c.mode & 0o7777 && c.carried.held_by(e);
    let kept = live(current.clone());
    if let Some(cur) = live(current).filter(same) {
        return Ok(vec![cur]); // the same bytes again: no new version
    }
    let node = c.carried.node_for(conn, &c.path, kept.as_ref())?;
    let mut out = Vec::new();
    c.carried.parents_for(conn, dev, &c.path, &mut out)?;
    let mut e = Entry {
        path: c.path,
        kind: c.kind,
        version: entries::next_seq(conn)?,
        deleted: false,
        hash: Some(c.hash),
        size: c.size,
        mode: c.mode & 0o7777,
        mtime_ns: c.mtime_ns,
        device: dev.device.clone(),
        origin: dev.origin.clone(),
        moved_to: None,
        owner: kept.as_ref().and_then(|k| k.owner.clone()),
        node: Some(node),
        xattrs: kept.and_then(|k| k.xattrs),
        parent: None,
    };
    c.carried.onto(&mut e);
    out.push(entries::put(conn, &e)?);
    Ok(out)
}

pub fn mkdir(
    conn: &Scoped,
    dev: Dev,
    path: &RelPath,
    base: u64,
    mode: u32,
    mtime_ns: i64,
    carried: Carried,
) -> TreeResult {
    let current = entries::get(conn, path)?;
    match live(current.clone()) {
        // Already there: mkdir is idempotent, so a retried request succeeds
        // (unless it names another node: that one is not on the hub).
        Some(e) if e.kind == EntryKind::Dir && carried.node.is_none_or(|n| e.node == Some(n)) => return Ok(vec![e]),
        Some(e) if e.kind == EntryKind::Dir => {
            return Err(TreeError::Conflict { path: path.clone(), base, current: Some(Box::new(e)) })
        }
        Some(e) => return Err(blocked(format!("'{path}' is a file"), Some(e))),
        None => check_base(path, &current, base)?,
    }
    let node = carried.node_for(conn, path, None)?;
    let mut out = Vec::new();
    carried.parents_for(conn, dev, path, &mut out)?;
    let mut e = Entry {
        path: path.clone(),
        kind: EntryKind::Dir,
        version: entries::next_seq(conn)?,
        deleted: false,
        hash: None,
        size: 0,
        mode: mode & 0o7777,
        mtime_ns,
        device: dev.device.clone(),
        origin: dev.origin.clone(),
        moved_to: None,
        owner: None,
        xattrs: None,
        node: Some(node),
        parent: None,
    };
    carried.onto(&mut e);
    out.push(entries::put(conn, &e)?);
    Ok(out)
}

fn tombstone(conn: &Scoped, dev: Dev, e: &Entry, moved_to: Option<RelPath>) -> Result<Entry, TreeError> {
    let t = Entry {
        version: entries::next_seq(conn)?,
        deleted: true,
        hash: None,
        size: 0,
        device: dev.device.clone(),
        origin: dev.origin.clone(),
        moved_to,
        ..e.clone()
    };
    Ok(entries::put(conn, &t)?)
}

pub fn delete(conn: &Scoped, dev: Dev, path: &RelPath, base: u64) -> TreeResult {
    let current = entries::get(conn, path)?;
    let Some(e) = live(current.clone()) else {
        // Already gone: the end state the client asked for.
        return Ok(vec![]);
    };
    check_base(path, &current, base)?;
    if e.kind == EntryKind::Dir && entries::has_live_children(conn, path)? {
        return Err(blocked(format!("folder '{path}' is not empty on the hub"), Some(e)));
    }
    Ok(vec![tombstone(conn, dev, &e, None)?])
}

/// The folder `path` goes into must be node `folder`, when the client names
/// it: a client that names its nodes is refused a folder deleted or replaced
/// since it looked (see `Carried::parents_for`).
fn check_folder(conn: &Scoped, path: &RelPath, folder: Option<NodeId>) -> Result<(), TreeError> {
    let (Some(folder), Some(dir)) = (folder, path.parent()) else { return Ok(()) };
    match live(entries::get(conn, &dir)?) {
        Some(e) if e.kind == EntryKind::Dir && e.node == Some(folder) => Ok(()),
        there => Err(blocked(format!("folder '{dir}' is not node {folder} on the hub (changed since)"), there)),
    }
}

/// Checks, before anything is written, that what moves from `from` to `to`
/// stays within `limits`: a deep folder moved under a longer name could
/// outgrow them. Only the prefix changes, so the longest path below the
/// folder is the one to check (the names below are valid already).
fn check_moved_limits(
    conn: &Scoped,
    kind: EntryKind,
    from: &RelPath,
    to: &RelPath,
    limits: PathLimits,
) -> Result<(), TreeError> {
    limits.check(to)?;
    if kind != EntryKind::Dir {
        return Ok(());
    }
    if let Some(longest) = entries::longest_path_below(conn, from)? {
        let len = longest - from.as_str().len() + to.as_str().len();
        if len > limits.max_path_bytes {
            return Err(PathError::TooLong { len, max: limits.max_path_bytes }.into());
        }
    }
    Ok(())
}

// The arguments are the rename request's fields, as the routes and the
// simulation's hub have them.
#[allow(clippy::too_many_arguments)]
pub fn rename(
    conn: &Scoped,
    dev: Dev,
    from: &RelPath,
    to: &RelPath,
    base: u64,
    to_base: u64,
    to_parent: Option<NodeId>,
    limits: PathLimits,
) -> TreeResult {
    check_folder(conn, to, to_parent)?;
    if from == to {
        return Ok(vec![]);
    }
    if to.is_within(from) {
        return Err(blocked(format!("cannot move '{from}' into itself ('{to}')"), None));
    }
    let current = entries::get(conn, from)?;
    let Some(src) = live(current.clone()) else {
        return Err(TreeError::Conflict { path: from.clone(), base, current: current.map(Box::new) });
    };
    check_base(from, &current, base)?;
    let target = entries::get(conn, to)?;
    if let Some(t) = live(target.clone()) {
        check_base(to, &target, to_base)?;
        // A file or symlink may replace either; a folder only a folder.
        if t.kind.is_dir() != src.kind.is_dir() {
            return Err(blocked(format!("'{to}' exists and is not of the same kind as '{from}'"), Some(t)));
        }
        if t.kind == EntryKind::Dir && entries::has_live_children(conn, to)? {
            return Err(blocked(format!("folder '{to}' is not empty"), Some(t)));
        }
    }
    check_moved_limits(conn, src.kind, from, to, limits)?;
    let mut out = Vec::new();
    // A client that named the folder has it checked above: nothing is made for it.
    if to_parent.is_none() {
        ensure_parents(conn, dev, to, &mut out)?;
    }
    // What it replaces goes first, so no reader sees two nodes on one path.
    if let Some(t) = live(target) {
        out.push(tombstone(conn, dev, &t, None)?);
    }
    // One change, to the moved node: what is below a folder keeps its rows
    // (and their versions), and its paths follow.
    let moved = Entry {
        path: to.clone(),
        version: entries::next_seq(conn)?,
        device: dev.device.clone(),
        origin: dev.origin.clone(),
        ..src
    };
    out.push(entries::put(conn, &moved)?);
    entries::move_below(conn, from, to)?;
    Ok(out)
}

pub fn set_attr(
    conn: &Scoped,
    dev: Dev,
    path: &RelPath,
    base: u64,
    mode: Option<u32>,
    mtime_ns: Option<i64>,
    carried: Carried,
) -> TreeResult {
    let current = entries::get(conn, path)?;
    let Some(e) = live(current.clone()) else {
        return Err(TreeError::Conflict { path: path.clone(), base, current: current.map(Box::new) });
    };
    check_base(path, &current, base)?;
    let mut e = Entry {
        version: entries::next_seq(conn)?,
        mode: mode.map_or(e.mode, |m| m & 0o7777),
        mtime_ns: mtime_ns.unwrap_or(e.mtime_ns),
        device: dev.device.clone(),
        origin: dev.origin.clone(),
        ..e
    };
    carried.onto(&mut e);
    Ok(vec![entries::put(conn, &e)?])
}

/// Writes `state` (a past entry) as the new current entry at its path. It is
/// a new state of the node there now; where none is, of the node it was,
/// unless that node lives on elsewhere (a copy brought back beside it), which
/// makes it a new node.
fn revive(conn: &Scoped, dev: Dev, state: &Entry, out: &mut Vec<Entry>) -> Result<(), TreeError> {
    ensure_parents(conn, dev, &state.path, out)?;
    let there = live(entries::get(conn, &state.path)?).and_then(|e| e.node);
    let node = match (there, state.node) {
        (Some(n), _) => n,
        (None, Some(n)) if !entries::node_live_elsewhere(conn, n, &state.path)? => n,
        _ => NodeId::random(),
    };
    let e = Entry {
        version: entries::next_seq(conn)?,
        deleted: false,
        device: dev.device.clone(),
        origin: dev.origin.clone(),
        moved_to: None,
        node: Some(node),
        ..state.clone()
    };
    out.push(entries::put(conn, &e)?);
    Ok(())
}

/// Makes version `version` of `path` current again, at `as_path` if given.
/// Whatever is there now stays in the history.
pub fn restore(conn: &Scoped, dev: Dev, path: &RelPath, version: u64, as_path: Option<&RelPath>) -> TreeResult {
    let Some(old) = entries::version_of(conn, path, version)? else {
        return Err(TreeError::NotFound(format!("'{path}' has no version {version}; list them with GET /v1/versions")));
    };
    if old.deleted {
        return Err(blocked(
            format!("version {version} of '{path}' is its deletion; pick a version with content"),
            None,
        ));
    }
    let target = as_path.unwrap_or(path);
    let current = live(entries::get(conn, target)?);
    match &current {
        Some(c) if c.kind.is_dir() != old.kind.is_dir() => {
            return Err(blocked(format!("'{target}' is now a {:?}, the version is a {:?}", c.kind, old.kind), current))
        }
        Some(c) if c.kind == EntryKind::Dir => return Ok(vec![]),
        Some(c) if c.kind == old.kind && c.hash == old.hash && c.mode == old.mode => return Ok(vec![]),
        _ => {}
    }
    let mut out = Vec::new();
    revive(conn, dev, &Entry { path: target.clone(), ..old }, &mut out)?;
    Ok(out)
}

/// Brings folder `dir` and everything below it back to how it was at `at_ns`:
/// what existed then returns with its content of then, what appeared later is
/// deleted. Every state replaced stays in the history.
pub fn restore_tree(conn: &Scoped, dev: Dev, dir: &RelPath, at_ns: i64) -> TreeResult {
    use std::collections::BTreeMap;
    let then: BTreeMap<RelPath, Entry> =
        entries::tree_at(conn, dir, at_ns)?.into_iter().filter(|e| !e.deleted).map(|e| (e.path.clone(), e)).collect();
    if !then.contains_key(dir) {
        return Err(TreeError::NotFound(format!("'{dir}' did not exist as a folder at that time")));
    }
    let now: BTreeMap<RelPath, Entry> =
        entries::entries_within(conn, dir)?.into_iter().filter(|e| !e.deleted).map(|e| (e.path.clone(), e)).collect();
    let mut out = Vec::new();
    // Children before parents: what is not as it was goes first.
    for (p, e) in now.iter().rev() {
        if !then.get(p).is_some_and(|t| t.kind == e.kind) {
            out.push(tombstone(conn, dev, e, None)?);
        }
    }
    // Parents before children: bring back what differs.
    for (p, t) in &then {
        let same = now.get(p).is_some_and(|c| c.kind == t.kind && c.hash == t.hash && c.mode == t.mode);
        if !same {
            revive(conn, dev, t, &mut out)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::db::ShareId;
    use rusqlite::Connection;

    pub(crate) fn p(s: &str) -> RelPath {
        RelPath::parse(s).unwrap()
    }

    pub(crate) fn conn() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrate_for_tests(&mut c);
        c
    }

    pub(crate) fn file(c: &Scoped, path: &str, base: u64, data: &[u8]) -> TreeResult {
        content(c, path, base, data, EntryKind::File)
    }

    fn content(c: &Scoped, path: &str, base: u64, data: &[u8], kind: EntryKind) -> TreeResult {
        commit_file(
            c,
            &Author::default(),
            FileCommit {
                path: p(path),
                kind,
                base,
                hash: ContentHash::of(data),
                size: data.len() as u64,
                mode: 0o644,
                mtime_ns: 1,
                carried: Carried::default(),
            },
        )
    }

    #[test]
    fn owners_are_recorded_like_modes_and_kept_when_not_sent() {
        let db = conn();
        let c = Scoped::new(&db, ShareId::DEFAULT);
        let ann = Owner { uid: 1001, gid: 1002, user: Some("ann".into()), group: None };
        let commit = |base, data: &[u8], owner: Option<Owner>| {
            let (hash, size) = (ContentHash::of(data), data.len() as u64);
            let c2 = FileCommit {
                path: p("f"),
                kind: EntryKind::File,
                base,
                hash,
                size,
                mode: 0o644,
                mtime_ns: 1,
                carried: Carried { owner, ..Carried::default() },
            };
            commit_file(&c, &Author::default(), c2).unwrap().pop().unwrap()
        };
        let v1 = commit(0, b"one", Some(ann.clone()));
        assert_eq!(v1.owner.as_ref(), Some(&ann));
        let v2 = commit(v1.version, b"two", None);
        assert_eq!(v2.owner.as_ref(), Some(&ann), "a change that does not send an owner keeps it");
        let bob = Owner { uid: 7, gid: 7, user: None, group: None };
        let same_bytes = commit(v2.version, b"two", Some(bob.clone()));
        assert!(same_bytes.version > v2.version, "a new owner alone is a new version");
        let v4 = set_attr(&c, &Author::default(), &p("f"), same_bytes.version, None, None, Carried::owner(ann.clone()))
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!((v4.owner.as_ref(), v4.mode), (Some(&ann), 0o644));
        let d =
            mkdir(&c, &Author::default(), &p("d"), 0, 0o755, 0, Carried::owner(bob.clone())).unwrap().pop().unwrap();
        assert_eq!(d.owner, Some(bob.clone()));
        let history: Vec<Option<u32>> =
            entries::versions_of(&c, &p("f")).unwrap().into_iter().map(|v| v.entry.owner.map(|o| o.uid)).collect();
        assert_eq!(history, vec![Some(1001), Some(7), Some(1001), Some(1001)], "newest first, owners kept");
    }

    #[test]
    fn xattrs_are_recorded_kept_when_not_sent_and_cleared_when_sent_empty() {
        let db = conn();
        let c = Scoped::new(&db, ShareId::DEFAULT);
        let mut x = Xattrs::default();
        x.set("user.tag", b"blue").unwrap();
        let f = file(&c, "f", 0, b"one").unwrap().pop().unwrap();
        assert_eq!(f.xattrs, None);
        let with = |xattrs: Option<Xattrs>| Carried { xattrs, ..Carried::default() };
        let v2 = set_attr(&c, &Author::default(), &p("f"), f.version, None, None, with(Some(x.clone()))).unwrap();
        assert_eq!(v2[0].xattrs.as_ref(), Some(&x));
        let v3 = file(&c, "f", v2[0].version, b"two").unwrap().pop().unwrap();
        assert_eq!(v3.xattrs.as_ref(), Some(&x), "a commit that does not send them keeps them");
        let v4 = set_attr(&c, &Author::default(), &p("f"), v3.version, None, None, with(Some(Xattrs::default())));
        assert_eq!(v4.unwrap()[0].xattrs, None, "an empty set clears them");
        let history: Vec<bool> =
            entries::versions_of(&c, &p("f")).unwrap().into_iter().map(|v| v.entry.xattrs.is_some()).collect();
        assert_eq!(history, vec![false, true, true, false], "newest first, each version keeps its own");
        let d = mkdir(&c, &Author::default(), &p("d"), 0, 0o755, 0, with(Some(x.clone()))).unwrap().pop().unwrap();
        assert_eq!(d.xattrs, Some(x));
    }

    #[test]
    fn folder_digests_follow_every_change_and_match_a_rebuild() {
        let db = conn();
        let c = Scoped::new(&db, ShareId::DEFAULT);
        let dev = Author::default();
        let v = |r: TreeResult, path: &str| r.unwrap().iter().find(|e| e.path.as_str() == path).unwrap().version;
        let a = v(file(&c, "d/a", 0, b"1"), "d/a");
        file(&c, "d/e/b", 0, b"2").unwrap();
        file(&c, "top", 0, b"3").unwrap();
        let a = v(file(&c, "d/a", a, b"4"), "d/a");
        let moved =
            v(rename(&c, &dev, &p("d/a"), &p("d/e/a"), a, 0, None, ssync_common::PathLimits::default()), "d/e/a");
        delete(&c, &dev, &p("d/e/a"), moved).unwrap();
        let kept = |dir: &str| crate::db::digests::get(&c, dir).unwrap();
        let before: Vec<_> = ["", "d", "d/e"].iter().map(|d| kept(d)).collect();
        let live = crate::db::entries::all_live(&c).unwrap();
        let want = live.iter().fold(ssync_common::digest::EMPTY, |acc, e| {
            ssync_common::digest::xor(&acc, &ssync_common::digest::entry_digest(e.path.as_str(), e.version))
        });
        assert_eq!(before[0].1, want, "the root's subtree digest covers every live entry");
        crate::db::digests::rebuild(&c).unwrap();
        let after: Vec<_> = ["", "d", "d/e"].iter().map(|d| kept(d)).collect();
        assert_eq!(before, after, "kept in step, change by change, with what a rebuild computes");
        let subs = crate::db::digests::subfolders(&c, "").unwrap();
        assert_eq!(subs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), vec!["d"]);
        assert_eq!(crate::db::digests::subfolders(&c, "d").unwrap()[0].0, "e");
    }

    #[test]
    fn symlinks_are_content_that_may_replace_files_and_be_replaced() {
        let db = conn();
        let c = Scoped::new(&db, ShareId::DEFAULT);
        let link = content(&c, "l", 0, b"../target", EntryKind::Symlink).unwrap().pop().unwrap();
        assert_eq!(link.kind, EntryKind::Symlink);
        assert_eq!(entries::get(&c, &p("l")).unwrap().unwrap().kind, EntryKind::Symlink, "stored as a symlink");
        // The same bytes as a file are a new version: the kind changed.
        let f = file(&c, "l", link.version, b"../target").unwrap().pop().unwrap();
        assert_eq!((f.kind, f.version > link.version), (EntryKind::File, true));
        let other = content(&c, "m", 0, b"/etc/passwd", EntryKind::Symlink).unwrap().pop().unwrap();
        let out =
            rename(&c, &Author::default(), &p("m"), &p("l"), other.version, f.version, None, PathLimits::default())
                .unwrap();
        assert!(out[0].deleted && out[0].node == f.node, "the file it replaced goes first");
        assert_eq!(out[1].kind, EntryKind::Symlink, "a symlink renamed over a file");
        let d = mkdir(&c, &Author::default(), &p("d"), 0, 0o755, 0, Carried::default()).unwrap().pop().unwrap();
        let blocked =
            rename(&c, &Author::default(), &p("l"), &p("d"), out[1].version, d.version, None, PathLimits::default());
        assert!(matches!(blocked, Err(TreeError::Blocked { .. })), "not over a folder");
    }

    #[test]
    fn versions_follow_one_sequence_and_parents_are_created() {
        let db = conn();
        let c = Scoped::new(&db, ShareId::DEFAULT);
        let out = file(&c, "a/b/f.txt", 0, b"x").unwrap();
        let got: Vec<_> = out.iter().map(|e| (e.path.to_string(), e.version)).collect();
        assert_eq!(got, vec![("a".into(), 1), ("a/b".into(), 2), ("a/b/f.txt".into(), 3)]);
        let changed = entries::changed_since(&c, 1, 100).unwrap();
        assert_eq!(changed.len(), 2);
        assert_eq!(entries::last_seq(&c).unwrap(), 3);
    }

    #[test]
    fn stale_base_is_a_conflict_and_changes_nothing() {
        let db = conn();
        let c = Scoped::new(&db, ShareId::DEFAULT);
        let v1 = file(&c, "f", 0, b"one").unwrap()[0].version;
        file(&c, "f", v1, b"two").unwrap();
        let err = file(&c, "f", v1, b"three").unwrap_err();
        match err {
            TreeError::Conflict { current: Some(cur), .. } => assert_eq!(cur.hash, Some(ContentHash::of(b"two"))),
            other => panic!("expected conflict, got {other:?}"),
        }
        assert!(matches!(file(&c, "f", 0, b"new").unwrap_err(), TreeError::Conflict { .. }));
        assert_eq!(entries::last_seq(&c).unwrap(), 2);
    }

    #[test]
    fn delete_leaves_tombstone_and_refuses_non_empty_folder() {
        let db = conn();
        let c = Scoped::new(&db, ShareId::DEFAULT);
        let out = file(&c, "d/f", 0, b"x").unwrap();
        let (d, f) = (&out[0], &out[1]);
        assert!(matches!(delete(&c, &Author::default(), &p("d"), d.version).unwrap_err(), TreeError::Blocked { .. }));
        let t = delete(&c, &Author::default(), &p("f").clone(), 0).unwrap();
        assert!(t.is_empty(), "deleting a missing path is a no-op");
        let t = delete(&c, &Author::default(), &p("d/f"), f.version).unwrap();
        assert!(t[0].deleted);
        delete(&c, &Author::default(), &p("d"), d.version).unwrap();
        assert!(entries::all_live(&c).unwrap().is_empty());
        // A new file may take the place of a tombstone with base 0.
        file(&c, "d/f", 0, b"again").unwrap();
    }

    #[test]
    fn a_folder_rename_is_one_change_and_what_is_below_follows() {
        let db = conn();
        let c = Scoped::new(&db, ShareId::DEFAULT);
        file(&c, "d/x/1", 0, b"1").unwrap();
        file(&c, "d/2", 0, b"2").unwrap();
        let d = entries::get(&c, &p("d")).unwrap().unwrap();
        let below: Vec<Entry> = entries::live_descendants(&c, &p("d")).unwrap();
        let before = entries::last_seq(&c).unwrap();
        let out = rename(&c, &Author::default(), &p("d"), &p("e"), d.version, 0, None, PathLimits::default()).unwrap();
        let order: Vec<_> = out.iter().map(|e| format!("{}{}", if e.deleted { "-" } else { "+" }, e.path)).collect();
        assert_eq!(order, vec!["+e"]);
        assert_eq!(out[0].node, d.node, "the folder keeps its node");
        assert_eq!(entries::changed_since(&c, before, 100).unwrap().len(), 1, "one feed row");
        let live: Vec<_> = entries::all_live(&c).unwrap().into_iter().map(|e| e.path.to_string()).collect();
        assert_eq!(live, vec!["e", "e/2", "e/x", "e/x/1"]);
        let now: Vec<Entry> = entries::live_descendants(&c, &p("e")).unwrap();
        let kept = |es: &[Entry]| es.iter().map(|e| (e.node, e.version, e.parent)).collect::<Vec<_>>();
        assert_eq!(kept(&now), kept(&below), "the rows below keep their nodes, versions and folders");
        assert!(entries::entries_within(&c, &p("d")).unwrap().is_empty(), "nothing is left at the old paths");
        let digests = |c: &Scoped| crate::db::digests::get(c, "").unwrap();
        let kept_digest = digests(&c);
        crate::db::digests::rebuild(&c).unwrap();
        assert_eq!(digests(&c), kept_digest, "the digests followed the move");
        assert!(matches!(
            rename(&c, &Author::default(), &p("e"), &p("e/x/in"), 0, 0, None, PathLimits::default()),
            Err(TreeError::Blocked { .. })
        ));
    }

    /// A folder moved (renamed, or swapped) under a longer name is refused
    /// when a path below it would outgrow the hub's limits, and nothing is
    /// written; at the limit it moves.
    #[test]
    fn a_folder_that_would_outgrow_the_path_limit_does_not_move() {
        let db = conn();
        let c = Scoped::new(&db, ShareId::DEFAULT);
        file(&c, "d/sub/file", 0, b"1").unwrap(); // the longest path below d: 10 bytes
        file(&c, "others", 0, b"2").unwrap();
        let limits = PathLimits { max_path_bytes: 14, ..PathLimits::default() };
        let version = |path: &str| entries::get(&c, &p(path)).unwrap().unwrap().version;
        let before = entries::last_seq(&c).unwrap();
        let dev = Author::default();
        match rename(&c, &dev, &p("d"), &p("longer"), version("d"), 0, None, limits) {
            Err(TreeError::BadPath(PathError::TooLong { len: 15, max: 14 })) => {}
            other => panic!("expected the path limit, got {other:?}"),
        }
        let swapped = exchange(&c, &dev, &p("d"), &p("others"), version("d"), version("others"), limits);
        assert!(matches!(swapped, Err(TreeError::BadPath(PathError::TooLong { len: 15, max: 14 }))), "{swapped:?}");
        assert_eq!(entries::last_seq(&c).unwrap(), before, "nothing was written");
        rename(&c, &dev, &p("d"), &p("long"), version("d"), 0, None, limits).unwrap();
        assert!(entries::get(&c, &p("long/sub/file")).unwrap().is_some_and(|e| !e.deleted));
    }

    #[test]
    fn the_feed_shows_a_folder_before_what_is_in_it() {
        let db = conn();
        let c = Scoped::new(&db, ShareId::DEFAULT);
        let dev = Author::default();
        file(&c, "d/f", 0, b"1").unwrap(); // d: 1, d/f: 2
        let d = entries::get(&c, &p("d")).unwrap().unwrap();
        // The folder's newest row comes after the file's: moved, then chmodded.
        let moved = rename(&c, &dev, &p("d"), &p("top/d"), d.version, 0, None, PathLimits::default()).unwrap();
        set_attr(&c, &dev, &p("top/d"), moved.last().unwrap().version, Some(0o700), None, Carried::default()).unwrap();
        let page = entries::feed_page(&c, 0, 100).unwrap();
        let order: Vec<_> = page.entries.iter().map(|e| e.path.to_string()).collect();
        assert_eq!(order, vec!["top", "top/d", "top/d/f"], "folders first, each once");
        assert_eq!(page.cursor, entries::last_seq(&c).unwrap());
        // From a cursor past the folder's making, the rows that follow only.
        let later = entries::feed_page(&c, 2, 100).unwrap();
        let order: Vec<_> = later.entries.iter().map(|e| e.path.to_string()).collect();
        assert_eq!(order, vec!["top", "top/d"]);
    }

    #[test]
    fn rename_over_existing_file_needs_its_version() {
        let db = conn();
        let c = Scoped::new(&db, ShareId::DEFAULT);
        let a = file(&c, "a", 0, b"new").unwrap()[0].clone();
        let b = file(&c, "b", 0, b"old").unwrap()[0].clone();
        assert!(matches!(
            rename(&c, &Author::default(), &p("a"), &p("b"), a.version, 0, None, PathLimits::default()),
            Err(TreeError::Conflict { .. })
        ));
        rename(&c, &Author::default(), &p("a"), &p("b"), a.version, b.version, None, PathLimits::default()).unwrap();
        let now = entries::get(&c, &p("b")).unwrap().unwrap();
        assert_eq!((now.hash, now.node), (Some(ContentHash::of(b"new")), a.node));
        assert_eq!(entries::get(&c, &p("a")).unwrap(), None, "the node moved: nothing is left at its old path");
        assert!(entries::get_node(&c, b.node.unwrap()).unwrap().unwrap().deleted, "the file it replaced is gone");
    }

    #[test]
    fn committing_the_same_bytes_again_makes_no_version() {
        let db = conn();
        let c = Scoped::new(&db, ShareId::DEFAULT);
        let v = file(&c, "f", 0, b"same").unwrap()[0].version;
        let again = file(&c, "f", v, b"same").unwrap();
        assert_eq!(again[0].version, v);
        assert_eq!(entries::last_seq(&c).unwrap(), v, "no sequence number taken");
    }

    #[test]
    fn kinds_cannot_be_mixed() {
        let db = conn();
        let c = Scoped::new(&db, ShareId::DEFAULT);
        file(&c, "f", 0, b"x").unwrap();
        assert!(matches!(
            mkdir(&c, &Author::default(), &p("f"), 0, 0o755, 0, Carried::default()),
            Err(TreeError::Blocked { .. })
        ));
        assert!(matches!(file(&c, "f/under", 0, b"y"), Err(TreeError::Blocked { .. })));
        let d = mkdir(&c, &Author::default(), &p("d"), 0, 0o755, 0, Carried::default()).unwrap();
        assert_eq!(
            mkdir(&c, &Author::default(), &p("d"), 0, 0o700, 0, Carried::default()).unwrap(),
            d,
            "mkdir is idempotent"
        );
        assert!(matches!(file(&c, "d", 0, b"z"), Err(TreeError::Blocked { .. })));
    }

    #[test]
    fn set_attr_bumps_version_and_keeps_content() {
        let db = conn();
        let c = Scoped::new(&db, ShareId::DEFAULT);
        let f = file(&c, "f", 0, b"x").unwrap()[0].clone();
        let g = set_attr(&c, &Author::default(), &p("f"), f.version, Some(0o100755), None, Carried::default()).unwrap()
            [0]
        .clone();
        assert_eq!(g.mode, 0o755);
        assert_eq!(g.hash, f.hash);
        assert!(g.version > f.version);
    }

    #[test]
    fn every_change_is_kept_and_a_version_can_be_restored() {
        let db = conn();
        let c = Scoped::new(&db, ShareId::DEFAULT);
        let v1 = file(&c, "f", 0, b"one").unwrap()[0].version;
        let v2 = file(&c, "f", v1, b"two").unwrap()[0].version;
        let laptop = Author { device: Some("laptop".into()), origin: Some("mount-1".into()) };
        let gone = delete(&c, &laptop, &p("f"), v2).unwrap();
        assert_eq!(gone[0].origin.as_deref(), Some("mount-1"), "the answer names the mount that made it");
        assert_eq!(entries::get(&c, &p("f")).unwrap().unwrap().origin.as_deref(), Some("mount-1"));
        let hist = entries::versions_of(&c, &p("f")).unwrap();
        let states: Vec<_> = hist.iter().map(|v| (v.entry.version, v.entry.deleted)).collect();
        assert_eq!(states, vec![(3, true), (2, false), (1, false)], "newest first, the deletion included");
        assert_eq!(hist[0].entry.device.as_deref(), Some("laptop"));
        assert_eq!((hist[0].entry.origin.as_deref(), hist[1].entry.origin.as_deref()), (Some("mount-1"), None));

        let back = restore(&c, &Author { device: Some("pc".into()), origin: None }, &p("f"), v1, None).unwrap();
        assert_eq!(back[0].hash, Some(ContentHash::of(b"one")));
        assert!(back[0].version > 3, "a restore is a new change");
        let copy = restore(&c, &Author::default(), &p("f"), v2, Some(&p("old/f-v2"))).unwrap();
        assert_eq!(copy.last().unwrap().path.as_str(), "old/f-v2");
        assert!(
            matches!(restore(&c, &Author::default(), &p("f"), 3, None), Err(TreeError::Blocked { .. })),
            "a deletion has no content"
        );
        assert!(matches!(restore(&c, &Author::default(), &p("f"), 99, None), Err(TreeError::NotFound(_))));
    }

    #[test]
    fn a_node_keeps_its_id_and_its_history_through_renames() {
        let db = conn();
        let c = Scoped::new(&db, ShareId::DEFAULT);
        let dev = Author::default();
        file(&c, "d/x", 0, b"one").unwrap();
        let x = entries::get(&c, &p("d/x")).unwrap().unwrap();
        file(&c, "d/x", x.version, b"two").unwrap();
        let x = entries::get(&c, &p("d/x")).unwrap().unwrap();
        let node = x.node.expect("every entry has a node");
        let d = entries::get(&c, &p("d")).unwrap().unwrap();
        rename(&c, &dev, &p("d"), &p("e"), d.version, 0, None, PathLimits::default()).unwrap();
        let moved = entries::get(&c, &p("e/x")).unwrap().unwrap();
        assert_eq!(moved.node, Some(node), "a move keeps the node, folder and below");
        assert_eq!(entries::get(&c, &p("e")).unwrap().unwrap().node, d.node);
        rename(&c, &dev, &p("e/x"), &p("e/y"), moved.version, 0, None, PathLimits::default()).unwrap();
        let y = entries::get(&c, &p("e/y")).unwrap().unwrap();
        file(&c, "e/y", y.version, b"three").unwrap();
        // The history of e/y: its states here, and before under d/x and e/x.
        let history = entries::versions_of(&c, &p("e/y")).unwrap();
        let names: Vec<String> =
            history.iter().filter(|v| !v.entry.deleted).map(|v| v.entry.path.to_string()).collect();
        // (Moving its folder changed nothing of the file: no version of it
        // was made as e/x.)
        assert_eq!(names, ["e/y", "e/y", "d/x", "d/x"], "newest first, under every name");
        assert!(history.iter().all(|v| v.entry.node == Some(node)));
        // An earlier version is found (and restored) through the new name.
        let first = history.last().unwrap().entry.version;
        restore(&c, &dev, &p("e/y"), first, None).unwrap();
        let back = entries::get(&c, &p("e/y")).unwrap().unwrap();
        assert_eq!((back.hash, back.node), (Some(ContentHash::of(b"one")), Some(node)));
        // A new file at a path a deleted one had is a new node; a copy
        // restored beside the original is one too.
        delete(&c, &dev, &p("e/y"), back.version).unwrap();
        file(&c, "e/y", 0, b"new").unwrap();
        let fresh = entries::get(&c, &p("e/y")).unwrap().unwrap();
        assert_ne!(fresh.node, Some(node));
        restore(&c, &dev, &p("e/y"), fresh.version, Some(&p("e/copy"))).unwrap();
        assert_ne!(entries::get(&c, &p("e/copy")).unwrap().unwrap().node, fresh.node);
    }

    #[test]
    fn a_client_may_name_the_nodes_it_creates_but_not_take_another() {
        let db = conn();
        let c = Scoped::new(&db, ShareId::DEFAULT);
        let dev = Author::default();
        let chosen = |n: NodeId| Carried { node: Some(n), ..Carried::default() };
        let (d, x, y) = (NodeId::random(), NodeId::random(), NodeId::random());
        let made = mkdir(&c, &dev, &p("d"), 0, 0o755, 1, chosen(d)).unwrap().pop().unwrap();
        assert_eq!(made.node, Some(d));
        let commit = |path: &str, base, data: &[u8], node| FileCommit {
            path: p(path),
            kind: EntryKind::File,
            base,
            hash: ContentHash::of(data),
            size: data.len() as u64,
            mode: 0o644,
            mtime_ns: 1,
            carried: chosen(node),
        };
        let fx = commit_file(&c, &dev, commit("d/x", 0, b"one", x)).unwrap().pop().unwrap();
        assert_eq!(fx.node, Some(x));
        // Its next content names it again, and keeps it.
        let fx2 = commit_file(&c, &dev, commit("d/x", fx.version, b"two", x)).unwrap().pop().unwrap();
        assert_eq!(fx2.node, Some(x));
        // Another node at its place, even with the right base, is refused.
        let other = commit_file(&c, &dev, commit("d/x", fx2.version, b"three", y));
        assert!(matches!(other, Err(TreeError::Blocked { .. })), "{other:?}");
        // A node that lives at one place cannot be made at a second.
        let twice = commit_file(&c, &dev, commit("d/z", 0, b"one", x));
        assert!(matches!(twice, Err(TreeError::Blocked { .. })), "{twice:?}");
        assert!(entries::get(&c, &p("d/z")).unwrap().is_none(), "a refusal writes nothing");
        // A folder sent again is the same folder; another node at its place is stale.
        assert_eq!(mkdir(&c, &dev, &p("d"), 0, 0o755, 1, chosen(d)).unwrap(), vec![made.clone()]);
        let stale = mkdir(&c, &dev, &p("d"), 0, 0o755, 1, chosen(y));
        assert!(matches!(stale, Err(TreeError::Conflict { .. })), "{stale:?}");
        // A deleted node's id may come back at a new place (a restore does that).
        delete(&c, &dev, &p("d/x"), fx2.version).unwrap();
        let back = commit_file(&c, &dev, commit("d/w", 0, b"two", x)).unwrap().pop().unwrap();
        assert_eq!(back.node, Some(x));
        // A client that names its nodes gets no folder made for it: one
        // missing was deleted since it looked.
        let orphan = commit_file(&c, &dev, commit("gone/f", 0, b"one", y));
        assert!(matches!(orphan, Err(TreeError::Blocked { .. })), "{orphan:?}");
        assert!(entries::get(&c, &p("gone")).unwrap().is_none());
        let orphan = mkdir(&c, &dev, &p("gone/sub"), 0, 0o755, 1, chosen(y));
        assert!(matches!(orphan, Err(TreeError::Blocked { .. })), "{orphan:?}");
        // A move names the folder it goes into: refused once that folder is
        // another node at the same path.
        assert!(check_folder(&c, &p("d/moved"), Some(d)).is_ok());
        assert!(check_folder(&c, &p("top-level"), None).is_ok());
        let d_now = entries::get(&c, &p("d")).unwrap().unwrap();
        let w = entries::get(&c, &p("d/w")).unwrap().unwrap();
        delete(&c, &dev, &p("d/w"), w.version).unwrap();
        delete(&c, &dev, &p("d"), d_now.version).unwrap();
        mkdir(&c, &dev, &p("d"), 0, 0o755, 1, Carried::default()).unwrap();
        assert!(matches!(check_folder(&c, &p("d/moved"), Some(d)), Err(TreeError::Blocked { .. })));
        assert!(matches!(check_folder(&c, &p("gone/moved"), Some(d)), Err(TreeError::Blocked { .. })));
    }

    #[test]
    fn a_folder_comes_back_as_it_was() {
        let db = conn();
        let c = Scoped::new(&db, ShareId::DEFAULT);
        file(&c, "docs/a.txt", 0, b"a1").unwrap();
        file(&c, "docs/sub/b.txt", 0, b"b").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let t = now_ns();
        std::thread::sleep(std::time::Duration::from_millis(5));
        // After t: an edit, a new file, then everything deleted (rm -rf).
        let a = entries::get(&c, &p("docs/a.txt")).unwrap().unwrap();
        file(&c, "docs/a.txt", a.version, b"a2").unwrap();
        file(&c, "docs/new.txt", 0, b"later").unwrap();
        for path in ["docs/sub/b.txt", "docs/sub", "docs/new.txt", "docs/a.txt", "docs"] {
            let e = entries::get(&c, &p(path)).unwrap().unwrap();
            delete(&c, &Author::default(), &p(path), e.version).unwrap();
        }
        assert!(entries::all_live(&c).unwrap().is_empty());
        restore_tree(&c, &Author { device: Some("pc".into()), origin: None }, &p("docs"), t).unwrap();
        let live: Vec<_> = entries::all_live(&c)
            .unwrap()
            .into_iter()
            .map(|e| (e.path.to_string(), e.hash.map(|h| h == ContentHash::of(b"a1"))))
            .collect();
        assert_eq!(
            live,
            vec![
                ("docs".into(), None),
                ("docs/a.txt".into(), Some(true)),
                ("docs/sub".into(), None),
                ("docs/sub/b.txt".into(), Some(false)),
            ]
        );
        assert!(matches!(restore_tree(&c, &Author::default(), &p("nothing"), t), Err(TreeError::NotFound(_))));
    }
}
