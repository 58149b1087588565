//! `Shared`: the state the FUSE threads and the background tasks share.
//!
//! Lock order: `state` before `handles`; never hold either across an `.await`,
//! a network call, or a kernel notification (those go through `inval`, drained
//! by the invalidation thread).
use crate::local::db::{AlsoWrite, Commit, LocalDb, OldOp};
use crate::local::error::FsResult;
use crate::local::handles::Handles;
use crate::local::invalidate::Inval;
use crate::local::journal::Journal;
use crate::local::tree::Tree;
use parking_lot::Mutex;
use ssync_common::private;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

pub struct State {
    pub tree: Tree,
    db: LocalDb,
    /// What changed since the last commit to `db` (see journal.rs).
    journal: Journal,
    /// Told when the journal gets its first change after a commit.
    committer: Option<crossbeam_channel::Sender<()>>,
    /// The sync thread (`sync::driver`), told of every local change: it
    /// plans from the trees.
    engine_waker: Option<crossbeam_channel::Sender<()>>,
    /// Nodes changed since the sync thread last read them
    /// (`take_changed_for_sync`); None until its first read, which reads
    /// the whole tree.
    changed_for_sync: Option<std::collections::HashSet<u64>>,
    /// Nodes changed here whose content may need identifying
    /// (`take_written`); None until the first call, which looks at every node.
    written: Option<std::collections::HashSet<u64>>,
    /// The last inode number handed out, and the last one reserved in `db`.
    last_ino: u64,
    inos_reserved: u64,
    /// The queue a cache of the path-keyed engine left (see
    /// `local_db::old_queue`), until the sync thread adopts the cache.
    pub old_queue: Vec<OldOp>,
    /// `--cache-max` (see cache_limit.rs); None: a full mirror.
    pub limit: Option<crate::local::cache_limit::CacheLimit>,
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
    pub fn new(db: LocalDb, tree: Tree) -> Result<State, crate::local::db::LocalDbError> {
        let last_ino = db.ino_mark()?;
        let old_queue = db.load_old_queue()?;
        Ok(State {
            tree,
            db,
            journal: Journal::default(),
            committer: None,
            engine_waker: None,
            changed_for_sync: None,
            written: None,
            last_ino,
            inos_reserved: last_ino,
            old_queue,
            limit: None,
            tick: 0,
            fetch_soon: Vec::new(),
            evicted: Vec::new(),
        })
    }

    /// From now on, local changes wake the sync thread through `tx`.
    pub fn set_engine_waker(&mut self, tx: crossbeam_channel::Sender<()>) {
        self.engine_waker = Some(tx);
    }

    /// Wakes the sync thread (a no-op before it runs).
    pub fn wake_engine(&self) {
        if let Some(waker) = &self.engine_waker {
            let _ = waker.try_send(());
        }
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
        if let Some(changed) = &mut self.changed_for_sync {
            changed.insert(ino);
        }
        self.ask_commit();
    }

    /// The nodes changed (or gone) since the last call, for the sync
    /// thread's read of Local; None at the first call, which starts the
    /// record: the caller reads the whole tree (under the same lock).
    pub fn take_changed_for_sync(&mut self) -> Option<std::collections::HashSet<u64>> {
        self.changed_for_sync.replace(std::collections::HashSet::new())
    }

    /// The old queue was adopted: the next commit removes it.
    pub fn old_queue_adopted(&mut self) {
        self.old_queue.clear();
        self.journal.clear_old_queue = true;
        self.ask_commit();
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

    /// Records that `inos` changed here: the next commit writes them, and
    /// the sync thread looks at the trees again.
    pub fn persist(&mut self, inos: &[u64]) {
        inos.iter().for_each(|ino| self.note_node(*ino));
        if let Some(written) = &mut self.written {
            written.extend(inos);
        }
        self.wake_engine();
    }

    /// The nodes changed here since the last call (see `written`); None at
    /// the first call: the caller looks at every node. What it cannot
    /// identify yet it gives back (`written_again`).
    pub fn take_written(&mut self) -> Option<std::collections::HashSet<u64>> {
        self.written.replace(std::collections::HashSet::new())
    }

    /// Nodes whose content may be ready to identify without a change
    /// noted (sealed by a flush or fsync), or still written and not closed:
    /// looked at at the next `take_written`.
    pub fn written_again(&mut self, inos: &[u64]) {
        self.written.get_or_insert_with(Default::default).extend(inos);
    }

    /// `persist`, committed before returning: for a change a crash must not
    /// hide, such as "this cache file may now differ from the hub" before
    /// the kernel writes to it directly.
    pub fn persist_now(&mut self, inos: &[u64]) -> FsResult<()> {
        self.persist(inos);
        self.commit(false)
    }

    /// Writes everything the journal holds in one transaction; `durable`
    /// also syncs it to disk (fsync). On failure the journal keeps it all,
    /// for the next try.
    pub fn commit(&mut self, durable: bool) -> FsResult<()> {
        if self.journal.is_empty() && !durable {
            return Ok(());
        }
        self.commit_with(durable, &mut |_| Ok(()))
    }

    /// `commit`, with `also`'s writes in the same transaction (see
    /// `LocalDb::commit_with`), even when the journal is empty.
    pub fn commit_with(&mut self, durable: bool, also: AlsoWrite<'_>) -> FsResult<()> {
        let j = std::mem::take(&mut self.journal);
        let c = Commit {
            nodes: j.nodes.iter().map(|ino| (*ino, self.tree.get(*ino))).collect(),
            clear_old_queue: j.clear_old_queue,
            settings: j.settings.iter().map(|(k, v)| (*k, v.as_str())).collect(),
        };
        let written = self.db.commit_with(&c, durable, also);
        drop(c);
        if written.is_err() {
            self.journal = j;
        }
        Ok(written?)
    }

    /// A node whose cache file is gone (a crash between recording a node and
    /// moving its content into place): if the hub has its version, forget the
    /// hash so the sync thread fetches it again; an empty file stands in
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
        self.persist(&[ino]);
        refetch
    }

    /// Forgets an unlinked node (one the path-keyed engine kept for its
    /// queue; nothing else leaves one).
    pub fn drop_if_orphan(&mut self, ino: u64) {
        if ino != crate::local::tree::ROOT && self.tree.get(ino).is_some_and(|n| n.parent == 0) {
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

    /// Where content `id` is downloaded (a download cut off resumes from the
    /// chunks this file holds); `beside` names the node of a download of
    /// the same content while another one runs, in a file of its own.
    pub fn partial(&self, id: &ssync_common::ContentHash, beside: Option<u128>) -> PathBuf {
        match beside {
            None => self.partial.join(id.to_hex()),
            Some(node) => self.partial.join(format!("{}.{node:032x}", id.to_hex())),
        }
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
            self.since_ns.store(crate::local::clock::now_ns(), Ordering::Release);
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
    pub reaper: crate::local::reaper::Reaper,
    pub chunks: crate::content::chunk_index::ChunkIndex,
    pub inval: crossbeam_channel::Sender<Inval>,
    pub owner: (u32, u32),
    /// Give entries from the hub the owner they have there (`--sync-owners`),
    /// not the mount's user.
    pub sync_owners: bool,
    pub accounts: crate::local::accounts::Accounts,
    pub device: String,
    /// This mount's id (random, kept in the cache dir): the hub records it
    /// with each change this mount makes.
    pub mount_id: String,
    pub status: Status,
    /// Contents the hub cannot give this mount (a list that does not add up,
    /// content gone): each is refused and logged once, not fetched again by
    /// every compare with the hub.
    pub refused_contents: Mutex<std::collections::HashSet<ssync_common::ContentHash>>,
}

impl Shared {
    /// Records a successful exchange with the hub.
    pub fn hub_answered(&self) {
        self.status.set_online(true, &"");
    }

    /// Stops all syncing, saying why in the log and `ssync status`. Unsent
    /// changes stay in the trees.
    pub fn halt(&self, why: &str) {
        *self.status.halt_reason.lock() = Some(why.to_string());
        self.status.halted.store(true, Ordering::Release);
        tracing::error!("{why}");
    }

    pub fn invalidate(&self, invals: Vec<Inval>) {
        for i in invals {
            let _ = self.inval.send(i);
        }
    }
}
