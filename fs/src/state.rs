//! `Shared`: the state the FUSE threads and the background tasks share.
//!
//! Lock order: `state` before `handles`; never hold either across an `.await`,
//! a network call, or a kernel notification (those go through `inval`, drained
//! by the invalidation thread).
use crate::error::FsResult;
use crate::handles::Handles;
use crate::invalidate::Inval;
use crate::journal::Journal;
use crate::local_db::{Commit, LocalDb};
use crate::queue::{Op, OpKind, Pending};
use crate::tree::Tree;
use parking_lot::Mutex;
use ssync_common::api::Entry;
use ssync_common::private;
use ssync_common::RelPath;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

pub struct State {
    pub tree: Tree,
    db: LocalDb,
    /// What changed since the last commit to `db` (see journal.rs).
    journal: Journal,
    /// Told when the journal gets its first change after a commit.
    committer: Option<crossbeam_channel::Sender<()>>,
    /// The sync thread of the engine on stable ids (`--engine nodes`), told
    /// of every local change. With it, no operation is queued: the engine
    /// plans from the trees.
    engine_waker: Option<crossbeam_channel::Sender<()>>,
    /// The last inode number handed out, and the last one reserved in `db`.
    last_ino: u64,
    inos_reserved: u64,
    last_op_id: u64,
    pub pending: Pending,
    /// Feed entries held back because queued local ops touch their paths;
    /// applied once the queue drains (newer versions replace older ones).
    pub deferred: HashMap<RelPath, Entry>,
    /// The newest version this mount's own ops gave each path, until the
    /// feed's cursor passes it: older news of the path, read before that op
    /// finished but applied after it, is stale (it would bring back a file
    /// this mount has just deleted).
    pub own_news: HashMap<RelPath, u64>,
    /// Something went out of step (a refused op): compare with the hub's tree.
    pub needs_reconcile: bool,
    /// `--cache-max` (see cache_limit.rs); None: a full mirror.
    pub limit: Option<crate::cache_limit::CacheLimit>,
    /// Counts uses of cached contents, for eviction's order.
    pub tick: u64,
    /// Files applied without content that are fetched at once in the
    /// background (small or pinned ones, with a cache limit).
    pub fetch_soon: Vec<u64>,
    /// Files evicted since the last `Shared::wait_for_room`, whose pages the
    /// kernel must drop too (it would go on serving them from memory).
    pub evicted: Vec<u64>,
}

/// Inode numbers reserved in the database at a time (see `State::new_ino`).
const INO_BLOCK: u64 = 4096;

impl State {
    pub fn new(db: LocalDb, tree: Tree, pending: Pending) -> Result<State, crate::local_db::LocalDbError> {
        let last_ino = db.ino_mark()?;
        let last_op_id = db.op_mark()?.max(pending.last_id().unwrap_or(0));
        Ok(State {
            tree,
            db,
            journal: Journal::default(),
            committer: None,
            engine_waker: None,
            last_ino,
            inos_reserved: last_ino,
            last_op_id,
            pending,
            deferred: HashMap::new(),
            own_news: HashMap::new(),
            needs_reconcile: false,
            limit: None,
            tick: 0,
            fetch_soon: Vec::new(),
            evicted: Vec::new(),
        })
    }

    /// From now on, local changes go to the engine on stable ids, which `tx`
    /// wakes, and no operation is queued.
    pub fn set_engine_waker(&mut self, tx: crossbeam_channel::Sender<()>) {
        self.engine_waker = Some(tx);
    }

    /// Wakes the engine's sync thread (a no-op for the path-keyed engine).
    pub fn wake_engine(&self) {
        if let Some(waker) = &self.engine_waker {
            let _ = waker.try_send(());
        }
    }

    /// Whether the engine on stable ids syncs this mount.
    pub fn engine_nodes(&self) -> bool {
        self.engine_waker.is_some()
    }

    /// From now on, `tx` hears when there is something to commit.
    pub fn set_committer(&mut self, tx: crossbeam_channel::Sender<()>) {
        self.committer = Some(tx);
    }

    /// A new inode number, never handed out before. Numbers are reserved in
    /// the database a block at a time, before use: a number given to a node
    /// that a crash kept from being recorded may have left a cache file or
    /// chunk index rows behind, so it is never given again.
    pub fn new_ino(&mut self) -> FsResult<u64> {
        if self.last_ino >= self.inos_reserved {
            let upto = self.last_ino + INO_BLOCK;
            self.db.reserve_inos(upto)?;
            self.inos_reserved = upto;
        }
        self.last_ino += 1;
        Ok(self.last_ino)
    }

    /// Wakes the committer (a no-op if it is already awake).
    pub fn ask_commit(&self) {
        if let Some(tx) = &self.committer {
            let _ = tx.try_send(());
        }
    }

    /// Records that `ino` changed (or went from the tree): the next commit writes it.
    pub fn note_node(&mut self, ino: u64) {
        self.journal.node(ino);
        self.ask_commit();
    }

    /// Takes op `id` off the queue.
    pub fn op_done(&mut self, id: u64) {
        if self.pending.remove(id).is_some() {
            self.journal.op_done(id);
            self.ask_commit();
        }
    }

    pub fn setting(&self, key: &'static str) -> FsResult<Option<String>> {
        match self.journal.settings.get(key) {
            Some(v) => Ok(Some(v.clone())),
            None => Ok(self.db.setting(key)?),
        }
    }

    pub fn set_setting(&mut self, key: &'static str, value: String) {
        self.journal.setting(key, value);
        self.ask_commit();
    }

    /// Records `inos` and queues `ops`; both reach the database together in
    /// the next commit.
    pub fn persist(&mut self, inos: &[u64], ops: Vec<Op>) {
        inos.iter().for_each(|ino| self.journal.node(*ino));
        if let Some(waker) = &self.engine_waker {
            let _ = waker.try_send(());
            self.ask_commit();
            return;
        }
        // Special files (FIFOs, sockets, devices) stay on this mount.
        for mut op in ops.into_iter().filter(|op| self.tree.get(op.ino).is_none_or(|n| n.is_synced())) {
            self.last_op_id += 1;
            op.id = self.last_op_id;
            self.pending.push(op.clone());
            self.journal.op_added(op);
        }
        self.ask_commit();
    }

    /// `persist`, committed before returning: for a change a crash must not
    /// hide, such as "this cache file may now differ from the hub" before
    /// the kernel writes to it directly.
    pub fn persist_now(&mut self, inos: &[u64]) -> FsResult<()> {
        self.persist(inos, vec![]);
        self.commit(false)
    }

    /// Writes everything the journal holds in one transaction; `durable`
    /// also syncs it to disk (fsync). On failure the journal keeps it all,
    /// for the next try.
    pub fn commit(&mut self, durable: bool) -> FsResult<()> {
        if self.journal.is_empty() && !durable {
            return Ok(());
        }
        let j = std::mem::take(&mut self.journal);
        let c = Commit {
            nodes: j.nodes.iter().map(|ino| (*ino, self.tree.get(*ino))).collect(),
            ops_added: j.ops_added.values().collect(),
            ops_done: j.ops_done.clone(),
            settings: j.settings.iter().map(|(k, v)| (*k, v.as_str())).collect(),
        };
        let written = self.db.commit(&c, durable);
        drop(c);
        if written.is_err() {
            self.journal = j;
        }
        Ok(written?)
    }

    pub fn op(kind: OpKind, ino: u64, path: RelPath) -> Op {
        Op { id: 0, kind, ino, ino2: 0, path, path2: None }
    }

    /// Queues an upload of `ino` unless one that has not started yet exists.
    pub fn queue_upload(&mut self, ino: u64) -> bool {
        let Some(path) = self.tree.path_of(ino) else {
            tracing::debug!(ino, parent = ?self.tree.get(ino).map(|n| n.parent), "upload not queued: the node has no path");
            return false;
        };
        if self.pending.has_waiting_upload(ino) {
            tracing::debug!(%path, ino, "upload already waiting; it will read the new bytes");
            self.persist(&[ino], vec![]);
            return false;
        }
        let op = Self::op(OpKind::Upload, ino, path.clone());
        self.persist(&[ino], vec![op]);
        tracing::debug!(%path, ino, op = ?self.pending.last_id(), "upload queued");
        true
    }

    /// Marks `op` as being sent (its request is built).
    pub fn begin_send(&mut self, op: &Op) {
        self.pending.begin(op.id);
        if op.kind == OpKind::Rename && self.tree.get(op.ino).is_some_and(|n| n.base_version == 0) {
            // Rename ops are queued only for entries the hub may know, so this
            // is one whose sends never took: it goes as the delete of what it
            // replaced (`upload::request_for`), and the source is created as
            // new wherever it is now (it may have moved again since).
            self.queue_as_new_unless_waiting(op.ino);
        }
    }

    /// Queues `ino` to be created on the hub at its path now (an upload, or
    /// a mkdir for a folder) unless such an op waits already; a file open
    /// for writing is queued by its close.
    pub fn queue_as_new_unless_waiting(&mut self, ino: u64) {
        let Some(n) = self.tree.live(ino) else { return };
        match n.kind {
            crate::tree::Kind::Dir if !self.pending.waiting_of(ino, OpKind::Mkdir) => {
                if let Some(path) = self.tree.path_of(ino) {
                    self.persist(&[ino], vec![Self::op(OpKind::Mkdir, ino, path)]);
                }
            }
            crate::tree::Kind::Dir => {}
            _ if n.open_writers > 0 => {}
            _ => {
                self.queue_upload(ino);
            }
        }
    }

    /// Whether the hub may know `ino`: it has a hub version, or an op of it
    /// was sent (an answer that never came may still have been applied).
    pub fn may_be_on_hub(&self, ino: u64) -> bool {
        self.tree.get(ino).is_some_and(|n| n.base_version > 0) || self.pending.was_attempted_for(ino)
    }

    /// Drops held-back news of `path` that version `version` of it supersedes:
    /// replayed after it, it would undo it (bring back a file deleted since).
    pub fn drop_superseded(&mut self, path: &RelPath, version: u64) {
        if self.deferred.get(path).is_some_and(|d| d.version <= version) {
            self.deferred.remove(path);
        }
    }

    /// Queues the delete of `path`, which the hub has at `version` and this
    /// mount no longer has: a node kept unlinked (forgotten once the delete
    /// is sent) carries that version.
    pub fn queue_delete_at(&mut self, kind: crate::tree::Kind, path: &RelPath, version: u64) -> FsResult<()> {
        let mut n = crate::tree::Node::new(kind, 0, path.file_name(), 0o644, 0);
        n.base_version = version;
        n.ino = self.new_ino()?;
        let ino = n.ino;
        self.tree.insert(n);
        self.persist(&[ino], vec![Self::op(OpKind::Delete, ino, path.clone())]);
        Ok(())
    }

    /// Whether the hub may know `ino` or anything below it.
    pub fn subtree_may_be_on_hub(&self, ino: u64) -> bool {
        self.tree.subtree(ino).iter().any(|i| self.may_be_on_hub(*i))
    }

    /// Drops the queued ops of `ino` (not those of others that name it as
    /// the node they replace), except the one being sent now.
    /// A rename of `ino` that replaces an entry the hub may have stays: it
    /// must still remove that entry (it is sent as its delete).
    pub fn drop_ops_of(&mut self, ino: u64) {
        for id in self.pending.ids_of(ino) {
            // A rename over a hub entry, or a swap with one, also moves what
            // the hub has: dropping it would leave the hub out of step.
            let moves_hubs = self.pending.get(id).is_some_and(|op| match op.kind {
                OpKind::Rename => op.ino == ino && op.ino2 != 0 && self.may_be_on_hub(op.ino2),
                OpKind::Exchange => {
                    let other = if op.ino == ino { op.ino2 } else { op.ino };
                    self.may_be_on_hub(other)
                }
                _ => false,
            });
            if !self.pending.is_in_flight(id) && !moves_hubs {
                self.op_done(id);
            }
        }
    }

    /// Queues `ino` and what is below it as new entries at their paths now,
    /// parents first, in place of whatever they had queued. A file still open
    /// for writing is queued by its close.
    pub fn queue_subtree_as_new(&mut self, ino: u64) {
        let inos = self.tree.subtree(ino);
        let mut ops = Vec::new();
        for &i in &inos {
            self.drop_ops_of(i);
            let (Some(n), Some(path)) = (self.tree.get(i), self.tree.path_of(i)) else { continue };
            match n.kind {
                crate::tree::Kind::Dir => ops.push(Self::op(OpKind::Mkdir, i, path)),
                _ if n.open_writers > 0 => {}
                _ => ops.push(Self::op(OpKind::Upload, i, path)),
            }
        }
        self.persist(&inos, ops)
    }

    /// A node whose cache file is gone (a crash between recording a node and
    /// moving its content into place): if the hub has its version, forget the
    /// hash so the next reconcile fetches it again; an empty file stands in
    /// meanwhile. Returns whether it will be fetched.
    pub fn cache_file_lost(&mut self, cache: &CacheDirs, ino: u64) -> bool {
        let Some(n) = self.tree.get_mut(ino).filter(|n| n.has_content()) else { return false };
        let refetch = n.base_version > 0 && !n.dirty;
        tracing::warn!(ino, base_version = n.base_version, refetch, "a cached file's content is missing");
        if refetch {
            n.hash = None;
            n.size = 0;
        }
        let _ = ssync_common::private::create_file(&cache.file(ino));
        self.needs_reconcile |= refetch;
        self.persist(&[ino], vec![]);
        refetch
    }

    /// Local writes or queued ops make a path off-limits to remote updates.
    pub fn is_busy(&self, ino: u64) -> bool {
        self.tree
            .subtree(ino)
            .into_iter()
            .any(|i| self.pending.touches_ino(i) || self.tree.get(i).is_some_and(|n| n.dirty || n.open_handles > 0))
    }

    /// Forgets an unlinked node once no queued op needs it any more.
    pub fn drop_if_orphan(&mut self, ino: u64) {
        let orphan = ino != crate::tree::ROOT
            && self.tree.get(ino).is_some_and(|n| n.parent == 0)
            && !self.pending.touches_ino(ino);
        if orphan {
            self.tree.remove(ino);
            self.note_node(ino);
        }
    }
}

/// Where cached contents live: `files/<ino>` and `tmp/` on the same filesystem.
#[derive(Debug, Clone)]
pub struct CacheDirs {
    pub root: PathBuf,
    pub files: PathBuf,
    pub tmp: PathBuf,
    /// Downloads being assembled, named by file id: kept across restarts so a
    /// cut-off download resumes from the chunks it already has.
    pub partial: PathBuf,
}

impl CacheDirs {
    pub fn create(root: &Path) -> std::io::Result<CacheDirs> {
        let dirs = CacheDirs {
            root: root.to_path_buf(),
            files: root.join("files"),
            tmp: root.join("tmp"),
            partial: root.join("partial"),
        };
        // Contents and names of every synced file: this user's alone.
        private::prepare(root, "the cache dir")?;
        private::dir(&dirs.files)?;
        private::dir(&dirs.partial)?;
        remove_older_than(&dirs.partial, std::time::Duration::from_secs(86_400));
        // Frozen copies of earlier closes, which older versions sent; the
        // queue now sends each file's latest state (see queue.rs).
        let _ = std::fs::remove_dir_all(root.join("snaps"));
        if dirs.tmp.exists() {
            std::fs::remove_dir_all(&dirs.tmp)?; // leftovers of transfers a crash cut short
        }
        private::dir(&dirs.tmp)?;
        Ok(dirs)
    }

    pub fn file(&self, ino: u64) -> PathBuf {
        self.files.join(ino.to_string())
    }

    pub fn partial(&self, id: &ssync_common::ContentHash) -> PathBuf {
        self.partial.join(id.to_hex())
    }
}

/// Best effort: a download nobody resumed for a day is not worth its space.
fn remove_older_than(dir: &Path, age: std::time::Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let old =
            e.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok()).is_some_and(|a| a > age);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Connection facts for logs and the drain at shutdown.
#[derive(Debug, Default)]
pub struct Status {
    online: AtomicBool,
    /// When `online` last changed (Unix ns).
    pub since_ns: AtomicI64,
    pub last_error: Mutex<Option<String>>,
    /// Set when syncing must stop (a hub that lost its history, a refused
    /// token); `halt_reason` says why. Queued changes stay queued.
    pub halted: AtomicBool,
    pub halt_reason: Mutex<Option<String>>,
    pub uploads_done: AtomicU64,
    pub recent_conflicts: Mutex<Vec<String>>,
    pub downloads_done: AtomicU64,
    /// Entries of the hub's tree being brought in (done, total); total 0: none.
    pub sync_done: AtomicU64,
    /// The engine on stable ids: passes its sync thread has finished, and
    /// whether the trees agreed at the end of the last one.
    pub engine_passes: AtomicU64,
    pub engine_converged: AtomicBool,
    /// The engine on stable ids: nodes changed here and not on the hub yet
    /// (at the start of its last pass).
    pub engine_unsent: AtomicU64,
    pub sync_total: AtomicU64,
}

impl Status {
    /// Records the hub as reachable or not; logs only on a change.
    /// Returns true when the hub just came back (offline -> online).
    pub fn set_online(&self, online: bool, why: &dyn std::fmt::Display) -> bool {
        let changed = self.online.swap(online, Ordering::AcqRel) != online;
        if changed {
            self.since_ns.store(crate::fs::now_ns(), Ordering::Release);
            if !online {
                *self.last_error.lock() = Some(why.to_string());
            }
            if online {
                tracing::info!("connected to the hub");
            } else {
                tracing::warn!("hub unreachable, working offline; changes are queued: {why}");
            }
        }
        changed && online
    }
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    /// The hub was reachable once and is not now (not just "not heard from yet").
    pub fn known_offline(&self) -> bool {
        !self.is_online() && self.since_ns.load(Ordering::Acquire) != 0
    }

    pub fn note_conflict(&self, name: &str) {
        tracing::warn!(copy = name, "conflict: the local version was kept as a conflict copy");
        let mut recent = self.recent_conflicts.lock();
        recent.push(name.to_string());
        let excess = recent.len().saturating_sub(20);
        recent.drain(..excess);
    }
}

pub struct Shared {
    pub state: Mutex<State>,
    pub handles: Mutex<Handles>,
    pub cache: CacheDirs,
    /// Removes the cache files of removed nodes, off the FUSE thread.
    pub reaper: crate::reaper::Reaper,
    pub chunks: crate::chunk_index::ChunkIndex,
    pub wake_uploader: tokio::sync::Notify,
    pub wake_watcher: tokio::sync::Notify,
    pub inval: crossbeam_channel::Sender<Inval>,
    pub owner: (u32, u32),
    /// Give entries from the hub the owner they have there (`--sync-owners`),
    /// not the mount's user.
    pub sync_owners: bool,
    pub accounts: crate::accounts::Accounts,
    pub device: String,
    /// This mount's id (random, kept in the cache dir): the hub records it
    /// with each change this mount makes.
    pub mount_id: String,
    pub status: Status,
    /// Fetches what a read needs of content not held (see on_demand.rs).
    pub on_demand: Arc<crate::on_demand::OnDemand>,
    /// Contents the hub cannot give this mount (a list that does not add up,
    /// content gone): each is refused and logged once, not fetched again by
    /// every compare with the hub.
    pub refused_contents: Mutex<std::collections::HashSet<ssync_common::ContentHash>>,
}

impl Shared {
    /// Records a successful exchange with the hub; when it ends an outage, the
    /// other task stops waiting out its backoff.
    pub fn hub_answered(&self) {
        if self.status.set_online(true, &"") {
            self.wake_uploader.notify_one();
            self.wake_watcher.notify_one();
        }
    }

    /// Stops all syncing, saying why in the log and `ssync status`; both
    /// tasks are woken to notice. Queued changes stay queued.
    pub fn halt(&self, why: &str) {
        *self.status.halt_reason.lock() = Some(why.to_string());
        self.status.halted.store(true, Ordering::Release);
        tracing::error!("{why}");
        self.wake_uploader.notify_one();
        self.wake_watcher.notify_one();
    }

    /// Whether `e` is a change this mount made (see `Entry::origin`).
    pub fn is_own(&self, e: &Entry) -> bool {
        e.origin.as_deref() == Some(self.mount_id.as_str())
    }

    pub fn invalidate(&self, invals: Vec<Inval>) {
        for i in invals {
            let _ = self.inval.send(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{Kind, Node, ROOT};

    fn node(ino: u64, parent: u64, name: &str, base_version: u64) -> Node {
        let kind = if ino == ROOT { Kind::Dir } else { Kind::File };
        Node { ino, base_version, ..Node::new(kind, parent, name, 0o644, 0) }
    }

    /// A file whose create never took was renamed over "c.txt" (which the hub
    /// has), then moved on to "config.lock" before that rename was sent: the
    /// hub must lose "c.txt" and get the file at "config.lock", not keep
    /// "c.txt" while the file claims its version.
    #[test]
    fn a_rename_whose_source_never_reached_the_hub_creates_it_where_it_is_now() {
        let dir = tempfile::tempdir().unwrap();
        let db = LocalDb::open(&dir.path().join("state.db")).unwrap();
        let (file, replaced) = (2, 3);
        let mut tree = Tree::from_nodes(vec![node(ROOT, 0, "", 0), node(file, ROOT, "config.lock", 0)]);
        tree.insert(node(replaced, 0, "c.txt", 7));
        let rename = Op {
            id: 1,
            kind: OpKind::Rename,
            ino: file,
            ino2: replaced,
            path: RelPath::parse("q").unwrap(),
            path2: Some(RelPath::parse("c.txt").unwrap()),
        };
        let mut st = State::new(db, tree, Pending::from_ops(vec![rename.clone()])).unwrap();
        st.begin_send(&rename);
        assert_eq!(st.tree.get(file).unwrap().base_version, 0, "it claims no version of the hub's");
        let queued: Vec<(OpKind, String)> =
            st.pending.ops().filter(|o| o.id != 1).map(|o| (o.kind, o.path.as_str().to_string())).collect();
        assert_eq!(queued, vec![(OpKind::Upload, "config.lock".to_string())]);
        st.begin_send(&rename);
        assert_eq!(st.pending.len(), 2, "sending it again queues nothing more");
    }
}
