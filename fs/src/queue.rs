//! The upload queue's contents: operations waiting to reach the hub, in the
//! order they happened, and the indexes that say which inodes and paths they
//! touch (the change watcher leaves those alone until the queue has spoken).
//!
//! Paths are captured when an operation is queued; base versions are read from
//! the node when it is sent, so each operation builds on the one before.
//!
//! The rule for contents: per inode, the queue sends the latest local state.
//! An upload reads the cache file as it is when sent, so a close that a later
//! close superseded before it was sent is coalesced into it, and an entry
//! made and removed before anything of it was sent sends nothing.
use ssync_common::RelPath;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Upload,
    Mkdir,
    Delete,
    Rename,
    /// `ino` (at `path`) and `ino2` (at `path2`) swapped places.
    Exchange,
    SetAttr,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Upload => "upload",
            OpKind::Mkdir => "mkdir",
            OpKind::Delete => "delete",
            OpKind::Rename => "rename",
            OpKind::Exchange => "exchange",
            OpKind::SetAttr => "setattr",
        }
    }

    pub fn parse(s: &str) -> Option<OpKind> {
        Some(match s {
            "upload" => OpKind::Upload,
            "mkdir" => OpKind::Mkdir,
            "delete" => OpKind::Delete,
            "rename" => OpKind::Rename,
            "exchange" => OpKind::Exchange,
            "setattr" => OpKind::SetAttr,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Op {
    pub id: u64,
    pub kind: OpKind,
    pub ino: u64,
    /// For a rename: the node it replaced at `path2` (0: none); for an
    /// exchange, the node that was at `path2`.
    pub ino2: u64,
    pub path: RelPath,
    pub path2: Option<RelPath>,
}

impl Op {
    /// Whether `self` must reach the hub after `other` (queued before it):
    /// they name a common inode, or a path of one is a path of the other,
    /// or lies above or below it.
    pub fn depends_on(&self, other: &Op) -> bool {
        let inos = |o: &Op| [o.ino, o.ino2].into_iter().filter(|i| *i != 0).collect::<Vec<_>>();
        let paths = |o: &Op| std::iter::once(o.path.clone()).chain(o.path2.clone()).collect::<Vec<_>>();
        let (mine, theirs) = (paths(self), paths(other));
        inos(self).iter().any(|i| inos(other).contains(i))
            || mine.iter().any(|p| theirs.iter().any(|q| p.is_within(q) || q.is_within(p)))
    }
}

#[derive(Debug, Default)]
pub struct Pending {
    /// By id, which is queue order: lookups and removals stay cheap when
    /// thousands of ops wait (FUSE callbacks consult the queue).
    ops: BTreeMap<u64, Op>,
    /// The ids of the ops that name each inode (as `ino` or `ino2`).
    by_ino: HashMap<u64, Vec<u64>>,
    /// Ordered, so "any path below this folder" is one range query.
    by_path: BTreeMap<String, u32>,
    /// The ops the uploader is sending now (one, or a batch).
    in_flight: HashSet<u64>,
    /// Ops sent at least once (by this process): the hub may have applied
    /// them even if no answer came back, so they are never dropped unsent.
    attempted: HashSet<u64>,
    /// Ops taken off the queue so far (by this process).
    finished: u64,
    /// When the newest op was queued.
    last_push: Option<std::time::Instant>,
}

impl Pending {
    pub fn from_ops(ops: Vec<Op>) -> Pending {
        let mut p = Pending::default();
        ops.into_iter().for_each(|op| p.push(op));
        p
    }

    fn keys(op: &Op) -> (Vec<u64>, Vec<RelPath>) {
        let inos = [op.ino, op.ino2].into_iter().filter(|i| *i != 0).collect();
        let paths = std::iter::once(op.path.clone()).chain(op.path2.clone()).collect();
        (inos, paths)
    }

    pub fn push(&mut self, op: Op) {
        let (inos, paths) = Self::keys(&op);
        inos.into_iter().for_each(|i| self.by_ino.entry(i).or_default().push(op.id));
        paths.into_iter().for_each(|p| *self.by_path.entry(p.as_str().to_owned()).or_default() += 1);
        self.ops.insert(op.id, op);
        self.last_push = Some(std::time::Instant::now());
    }

    /// How long ago the newest op was queued.
    pub fn since_last_push(&self) -> std::time::Duration {
        self.last_push.map_or(std::time::Duration::MAX, |t| t.elapsed())
    }

    /// The id of the op queued last.
    pub fn last_id(&self) -> Option<u64> {
        self.ops.last_key_value().map(|(id, _)| *id)
    }

    pub fn remove(&mut self, id: u64) -> Option<Op> {
        let op = self.ops.remove(&id)?;
        let (inos, paths) = Self::keys(&op);
        for i in inos {
            if let Some(ids) = self.by_ino.get_mut(&i) {
                ids.retain(|x| *x != id);
                if ids.is_empty() {
                    self.by_ino.remove(&i);
                }
            }
        }
        for p in paths {
            if let Some(c) = self.by_path.get_mut(p.as_str()) {
                *c -= 1;
                if *c == 0 {
                    self.by_path.remove(p.as_str());
                }
            }
        }
        self.in_flight.remove(&id);
        self.attempted.remove(&id);
        self.finished += 1;
        Some(op)
    }

    pub fn get(&self, id: u64) -> Option<&Op> {
        self.ops.get(&id)
    }

    pub fn front(&self) -> Option<&Op> {
        self.ops.values().next()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn ops(&self) -> impl Iterator<Item = &Op> {
        self.ops.values()
    }

    /// The queued ops of `ino` itself (not those naming it as replaced).
    fn own_ops(&self, ino: u64) -> impl Iterator<Item = &Op> {
        let ids = self.by_ino.get(&ino).map(Vec::as_slice).unwrap_or_default();
        ids.iter().filter_map(|id| self.ops.get(id)).filter(move |o| o.ino == ino)
    }

    pub fn touches_ino(&self, ino: u64) -> bool {
        self.by_ino.contains_key(&ino)
    }

    /// True when a queued op names `path`, a folder above it, or a path below it.
    pub fn touches_path(&self, path: &RelPath) -> bool {
        self.by_path.contains_key(path.as_str())
            || path.ancestors().iter().any(|a| self.by_path.contains_key(a.as_str()))
            || self.has_path_below(path)
    }

    /// Paths below `dir` sort between "dir/" and "dir0" ('0' follows '/').
    fn has_path_below(&self, dir: &RelPath) -> bool {
        let from = format!("{}/", dir.as_str());
        let to = format!("{}0", dir.as_str());
        self.by_path.range::<str, _>((Bound::Excluded(from.as_str()), Bound::Excluded(to.as_str()))).next().is_some()
    }

    /// Whether a queued op of `kind` on `ino` exists, waiting or being sent.
    pub fn has_op(&self, ino: u64, kind: OpKind) -> bool {
        self.own_ops(ino).any(|o| o.kind == kind)
    }

    /// An upload of `ino` that has not started yet will read the newest bytes
    /// (and send mode and mtime too), so another upload or setattr would be
    /// redundant.
    pub fn has_waiting_upload(&self, ino: u64) -> bool {
        self.waiting_of(ino, OpKind::Upload)
    }

    /// A queued op of `kind` on `ino` that has not started yet.
    pub fn waiting_of(&self, ino: u64, kind: OpKind) -> bool {
        self.own_ops(ino).any(|o| o.kind == kind && !self.in_flight.contains(&o.id))
    }

    /// How many ops were taken off the queue so far.
    pub fn finished(&self) -> u64 {
        self.finished
    }

    /// Marks `id` as being sent now.
    pub fn begin(&mut self, id: u64) {
        self.in_flight.insert(id);
        self.attempted.insert(id);
    }

    pub fn is_in_flight(&self, id: u64) -> bool {
        self.in_flight.contains(&id)
    }

    /// `id` was taken for sending but is not sent after all. It stays
    /// "attempted": a rename queued meanwhile counted on it reaching the hub
    /// first, which it will, being ahead in the queue.
    pub fn put_back(&mut self, id: u64) {
        self.in_flight.remove(&id);
    }

    /// Nothing but `keep` (the lane's op) is being sent any more (what was,
    /// stays queued).
    pub fn end_sending(&mut self, keep: Option<u64>) {
        self.in_flight.retain(|id| Some(*id) == keep);
    }

    /// The first op, in queue order, that may be sent while `lane` is: not
    /// in flight, and depending neither on `lane` nor on an op before it that
    /// waits. Also returns the ops it passed, which wait.
    pub fn next_beside(&self, lane: &Op) -> Option<(Op, Vec<Op>)> {
        // Deep queues of dependent ops are not scanned to the end.
        const SCAN: usize = 4096;
        let mut waiting = vec![lane.clone()];
        for op in self.ops.values().take(SCAN).filter(|o| o.id != lane.id) {
            if !self.in_flight.contains(&op.id) && !waiting.iter().any(|w| op.depends_on(w)) {
                return Some((op.clone(), waiting));
            }
            waiting.push(op.clone());
        }
        None
    }

    /// Whether an op on `ino` was sent (or is being sent): the hub may have it.
    pub fn was_attempted_for(&self, ino: u64) -> bool {
        self.own_ops(ino).any(|o| self.attempted.contains(&o.id))
    }

    /// The ops of `ino` itself.
    pub fn ids_of(&self, ino: u64) -> Vec<u64> {
        self.own_ops(ino).map(|o| o.id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: u64, kind: OpKind, ino: u64, path: &str, path2: Option<&str>) -> Op {
        Op {
            id,
            kind,
            ino,
            ino2: 0,
            path: RelPath::parse(path).unwrap(),
            path2: path2.map(|p| RelPath::parse(p).unwrap()),
        }
    }

    #[test]
    fn ops_independent_of_a_large_upload_pass_it_and_the_rest_wait_in_order() {
        let mut p = Pending::default();
        let big = op(1, OpKind::Upload, 5, "big/file.iso", None);
        p.push(big.clone());
        p.push(op(2, OpKind::Rename, 6, "big", Some("moved"))); // above the upload: waits
        p.push(op(3, OpKind::Upload, 7, "moved/x", None)); // below what waits: waits
        p.push(op(4, OpKind::SetAttr, 5, "other-name", None)); // the same inode: waits
        p.push(op(5, OpKind::Upload, 8, "small.txt", None));
        p.push(op(6, OpKind::Upload, 9, "small2.txt", None));
        p.begin(1);
        let (next, waiting) = p.next_beside(&big).unwrap();
        assert_eq!(next.id, 5, "the first op that depends on nothing waiting");
        assert_eq!(waiting.iter().map(|o| o.id).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert!(!op(9, OpKind::Upload, 9, "big.txt", None).depends_on(&big), "a name that only shares a prefix");
        p.begin(5);
        assert_eq!(p.next_beside(&big).unwrap().0.id, 6, "ops in flight are passed");
        p.end_sending(Some(1));
        assert!(p.is_in_flight(1) && !p.is_in_flight(5), "the lane's op stays in flight");
    }

    #[test]
    fn indexes_follow_pushes_and_removals() {
        let mut p = Pending::default();
        p.push(op(1, OpKind::Upload, 5, "a/f", None));
        p.push(op(2, OpKind::Rename, 5, "a/f", Some("b/g")));
        assert!(p.touches_ino(5));
        assert!(p.touches_path(&RelPath::parse("a").unwrap()), "a path below a folder makes it busy");
        assert!(p.touches_path(&RelPath::parse("b/g/x").unwrap()), "so does a folder above the path");
        assert!(!p.touches_path(&RelPath::parse("c").unwrap()));
        for sibling in ["a-", "a0", "ab", "a.x"] {
            assert!(!p.touches_path(&RelPath::parse(sibling).unwrap()), "{sibling} only shares a prefix with a/f");
        }
        assert!(p.has_waiting_upload(5));
        assert!(!p.was_attempted_for(5));
        p.begin(1);
        assert!(!p.has_waiting_upload(5), "the upload in flight may have read old bytes");
        assert!(p.was_attempted_for(5));
        assert_eq!(p.ids_of(5), vec![1, 2]);
        p.push(Op { ino2: 5, ..op(3, OpKind::Rename, 6, "c", Some("a/f")) });
        assert_eq!(p.ids_of(5), vec![1, 2], "a rename that replaces 5 is not one of its own ops");
        assert!(p.touches_ino(5) && !p.waiting_of(6, OpKind::Upload) && p.waiting_of(6, OpKind::Rename));
        p.remove(3);
        p.remove(1);
        p.remove(2);
        assert!(p.is_empty() && !p.touches_ino(5) && !p.touches_path(&RelPath::parse("a/f").unwrap()));
        assert!(!p.is_in_flight(1));
    }
}
