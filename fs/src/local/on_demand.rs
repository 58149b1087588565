//! Fetching the parts of a file this cache does not hold, when they are
//! read (files on demand, with `--cache-max`).
//!
//! A read asks for the chunks that cover its range: their list comes as a
//! slice of the file's manifest, chunks found in other cache files (the
//! chunk index) are copied, the rest come from the hub, a few requests in
//! flight, and each batch goes into the sparse cache file at its offsets.
//!
//! A fetch claims the byte ranges it brings. A reader whose range another
//! fetch has claimed (read-ahead, mostly) waits for those bytes to land, not
//! for the whole fetch: each batch is recorded as held the moment it is
//! written, and readers are woken. Bytes are readable once written (the page
//! cache has them); they are recorded as held in the database only after
//! the sync thread has synced the cache file (`Residency::unsynced`), so
//! neither a reader nor the next batch waits for the disk.
//!
//! Fetched bytes go in under the file's content lock, and only while the
//! file is still the version the fetch began with (same content id, no
//! eviction or write since): a truncate (which takes the same lock)
//! followed by new writes must never get old chunks written over them.
//! Every wait is bounded (`WAIT`); with the hub unreachable, it fails at
//! once with EIO and the log names the file.
use crate::local::error::{FsError, FsResult};
use crate::local::state::Shared;
use crate::remote::chunk_download::{batches, fetch_batches, read_verified};
use crate::remote::client::Remote;
use parking_lot::{Condvar, Mutex};
use rangemap::RangeSet;
use ssync_common::{ChunkRef, ContentHash};
use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How long a read waits for its bytes before it fails with EIO.
pub const WAIT: Duration = Duration::from_secs(30);
/// Fetches of its own one `ensure` makes before it gives up on a file that
/// keeps changing under it.
const ATTEMPTS: usize = 3;

pub struct OnDemand {
    remote: Remote,
    rt: tokio::runtime::Handle,
    /// The byte ranges of each file that a fetch is bringing.
    claims: Mutex<HashMap<u64, RangeSet<u64>>>,
    /// Signalled, with `claims` held, when fetched bytes are recorded or a
    /// claim ends.
    landed: Condvar,
    /// Held while fetched bytes go into a cache file, and by whatever
    /// truncates one in place: never across a network wait.
    content: InodeLocks,
    /// Files with fetched bytes to sync, for the sync thread.
    to_sync: crossbeam_channel::Sender<u64>,
    to_sync_rx: Mutex<Option<crossbeam_channel::Receiver<u64>>>,
    /// Chunk bytes fetched from the hub on demand (for `ssync status` and the bench).
    pub fetched_bytes: AtomicU64,
    /// Set when the mount stops (`stop`): no new fetch starts.
    stopping: std::sync::atomic::AtomicBool,
    /// Fetches waiting on the runtime now (`by_deadline`): the runtime is
    /// shut down only once they end, since a wait on it then panics.
    waiting: std::sync::atomic::AtomicUsize,
}

/// What a fetch starts from: the node's content id, size and write
/// generation, and the parts of the range not held.
struct Start {
    id: ContentHash,
    size: u64,
    gen: u64,
    path: String,
    missing: Vec<Range<u64>>,
}

impl OnDemand {
    pub fn new(remote: Remote, rt: tokio::runtime::Handle) -> OnDemand {
        let (to_sync, rx) = crossbeam_channel::unbounded();
        OnDemand {
            remote,
            rt,
            claims: Mutex::default(),
            landed: Condvar::new(),
            content: InodeLocks::default(),
            to_sync,
            to_sync_rx: Mutex::new(Some(rx)),
            fetched_bytes: AtomicU64::new(0),
            stopping: Default::default(),
            waiting: Default::default(),
        }
    }

    /// Starts the thread that syncs fetched bytes and records them as held
    /// in the database. It ends with the mount (`shared` dropped).
    pub fn start_syncing(&self, shared: Weak<Shared>) -> std::io::Result<()> {
        let Some(rx) = self.to_sync_rx.lock().take() else { return Ok(()) };
        std::thread::Builder::new().name("ssync-sync-fetched".into()).spawn(move || {
            while let Ok(first) = rx.recv() {
                let inos: BTreeSet<u64> = std::iter::once(first).chain(rx.try_iter()).collect();
                let Some(shared) = shared.upgrade() else { return };
                for ino in inos {
                    if let Err(e) = sync_fetched(&shared, ino) {
                        tracing::warn!(ino, "fetched bytes not synced ({e}); they are fetched again after a restart");
                    }
                }
            }
        })?;
        Ok(())
    }

    /// Blocks until `range` of `ino`'s content is in its cache file. Not on
    /// a runtime thread (FUSE workers call it).
    pub fn ensure(&self, shared: &Shared, ino: u64, range: Range<u64>) -> FsResult<()> {
        let deadline = Instant::now() + WAIT;
        let mut attempts = 0;
        loop {
            let (start, mine) = {
                let mut claims = self.claims.lock();
                let Some(start) = self.start(shared, ino, &range)? else { return Ok(()) };
                let mine: Vec<Range<u64>> = match claims.get(&ino) {
                    Some(taken) => start.missing.iter().flat_map(|m| taken.gaps(m)).collect(),
                    None => start.missing.clone(),
                };
                if mine.is_empty() {
                    // Another fetch is bringing all of it: wait for bytes to land.
                    if self.landed.wait_until(&mut claims, deadline).timed_out() {
                        return Err(no_answer(start.path));
                    }
                    continue;
                }
                if attempts == ATTEMPTS {
                    return Err(kept_changing(start.path));
                }
                attempts += 1;
                let taken = claims.entry(ino).or_default();
                mine.iter().for_each(|m| taken.insert(m.clone()));
                (start, mine)
            };
            let path = start.path.clone();
            let fetched = self.fetch(shared, ino, start, &mine, deadline);
            self.release(ino, &mine);
            match fetched {
                Ok(()) => {}
                Err(FetchError::Fs(e)) => return Err(e),
                Err(FetchError::Hub(why)) => return Err(FsError::NotLocal { path, why }),
                Err(FetchError::TimedOut) => return Err(no_answer(path)),
            }
        }
    }

    /// Fetches whatever of `ino`'s content is not here, until all of it is
    /// (an eviction may come between a fetch and the check).
    pub fn make_whole(&self, shared: &Shared, ino: u64) -> FsResult<()> {
        for _ in 0..ATTEMPTS {
            self.ensure(shared, ino, 0..u64::MAX)?;
            if shared.state.lock().tree.get(ino).is_none_or(|n| n.cached.is_full()) {
                return Ok(());
            }
        }
        Err(changed_while_fetched(shared, ino))
    }

    /// Fetches `range` of each of `inos` in the background, one after the
    /// other (read-ahead, pinning); failures only log.
    pub fn spawn_ensure(self: &Arc<Self>, shared: Arc<Shared>, inos: Vec<u64>, range: Range<u64>) {
        let me = self.clone();
        self.rt.spawn_blocking(move || {
            for ino in inos {
                if me.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                if let Err(e) = me.ensure(&shared, ino, range.clone()) {
                    tracing::info!(ino, "not fetched in the background: {e}");
                }
            }
        });
    }

    /// The lock to hold while changing `ino`'s cache file in place (a
    /// truncate): taken before the state lock, it waits for at most one
    /// local write of fetched bytes, never for the network.
    pub fn content_lock(&self, ino: u64) -> Arc<Mutex<()>> {
        self.content.get(ino)
    }

    fn release(&self, ino: u64, mine: &[Range<u64>]) {
        let mut claims = self.claims.lock();
        if let Some(taken) = claims.get_mut(&ino) {
            mine.iter().for_each(|m| taken.remove(m.clone()));
            if taken.is_empty() {
                claims.remove(&ino);
            }
        }
        self.landed.notify_all();
    }

    /// Wakes the readers waiting for bytes to land.
    fn wake_readers(&self) {
        let _seen = self.claims.lock();
        self.landed.notify_all();
    }

    /// Writes fetched `chunks` at their offsets and records them as held if
    /// the file is still the version the fetch began with; false when it
    /// changed (nothing recorded).
    fn write_if_current(
        &self,
        shared: &Shared,
        ino: u64,
        s: &Start,
        file: &std::fs::File,
        chunks: &[(u64, &[u8])],
    ) -> FsResult<bool> {
        let current = |n: &crate::local::tree::Node| n.hash == Some(s.id) && n.write_gen == s.gen;
        let lock = self.content.get(ino);
        let _writing = lock.lock();
        if !shared.state.lock().tree.get(ino).is_some_and(current) {
            return Ok(false);
        }
        for (off, bytes) in chunks {
            file.write_all_at(bytes, *off)?;
        }
        // Writeback starts now, so the sync thread finds little left to do.
        if let (Some((first, _)), Some((last, bytes))) = (chunks.first(), chunks.last()) {
            ssync_common::writeback::start(file, *first, last + bytes.len() as u64 - first)?;
        }
        let written = chunks.iter().map(|(off, bytes)| *off..off + bytes.len() as u64);
        let mut st = shared.state.lock();
        match st.tree.get_mut(ino) {
            Some(n) if current(n) => {
                written.for_each(|r| n.cached.add_unsynced(r, s.size));
                st.note_used(ino);
            }
            Some(n) => {
                // Evicted while the bytes went in: they must not stay on disk
                // uncounted. (No other fetch writes meanwhile: we hold the
                // content lock.)
                let stray: Vec<Range<u64>> = written.flat_map(|r| n.cached.missing(r, n.size)).collect();
                drop(st);
                crate::local::cache_limit::punch_holes(file, &stray)?;
                return Ok(false);
            }
            None => return Ok(false),
        }
        drop(st);
        let _ = self.to_sync.send(ino);
        self.wake_readers();
        Ok(true)
    }

    /// What is missing of `range`, or None when it is all held.
    fn start(&self, shared: &Shared, ino: u64, range: &Range<u64>) -> FsResult<Option<Start>> {
        let st = shared.state.lock();
        let n = st.tree.get(ino).ok_or(FsError::NotFound)?;
        let missing = n.cached.missing(range.clone(), n.size);
        if missing.is_empty() {
            return Ok(None);
        }
        let path = st.tree.path_of(ino).map_or_else(|| format!("inode {ino}"), |p| p.to_string());
        let Some(id) = n.hash else {
            return Err(FsError::NotLocal { path, why: "the file has no version on the hub".into() });
        };
        if shared.status.known_offline() {
            return Err(FsError::NotLocal { path, why: "the hub is unreachable (working offline)".into() });
        }
        Ok(Some(Start { id, size: n.size, gen: n.write_gen, path, missing }))
    }

    /// Runs `work` on the runtime, from this (non-runtime) thread, until
    /// `deadline`; refused once the mount is stopping.
    fn by_deadline<F: std::future::Future>(&self, deadline: Instant, work: F) -> Result<F::Output, FetchError> {
        use std::sync::atomic::Ordering::SeqCst;
        // Counted before the check, so that `stop` either sees this wait or
        // this wait sees `stopping`.
        self.waiting.fetch_add(1, SeqCst);
        let out = match self.stopping.load(SeqCst) {
            true => Err(FetchError::Hub("the mount is stopping".into())),
            false => {
                let left = deadline.saturating_duration_since(Instant::now());
                self.rt.block_on(async { tokio::time::timeout(left, work).await }).map_err(|_| FetchError::TimedOut)
            }
        };
        self.waiting.fetch_sub(1, SeqCst);
        out
    }

    /// The mount is stopping: no fetch starts from now on, and this waits
    /// (at most `bound`) for those running to end, before the runtime they
    /// wait on shuts down.
    pub fn stop(&self, bound: std::time::Duration) {
        use std::sync::atomic::Ordering::SeqCst;
        self.stopping.store(true, SeqCst);
        ssync_common::wait::wait_while(bound, || self.waiting.load(SeqCst) > 0);
    }

    /// Fetches the chunks that cover `mine` (parts of `s.missing`), by
    /// `deadline`. Network work runs on the runtime; this thread writes.
    fn fetch(
        &self,
        shared: &Shared,
        ino: u64,
        s: Start,
        mine: &[Range<u64>],
        deadline: Instant,
    ) -> Result<(), FetchError> {
        let began = Instant::now();
        let span = mine[0].start..mine[mine.len() - 1].end;
        let (offset, list, size) =
            self.by_deadline(deadline, self.remote.manifest_range(&s.id, span))?.map_err(|e| hub(shared, e))?;
        if size != s.size {
            return Err(FetchError::Hub(format!("the hub has {size} bytes for this version, not {}", s.size)));
        }
        let wanted: Vec<(u64, ChunkRef)> = list
            .with_offsets()
            .map(|(o, c)| (o + offset, c))
            .filter(|(o, c)| mine.iter().any(|m| *o < m.end && o + c.len as u64 > m.start))
            .collect();
        let need: u64 = wanted.iter().map(|(_, c)| c.len as u64).sum();
        let cache = shared.cache.clone();
        let mut s = s;
        let at = mine[0].start;
        s.gen = shared.wait_for_room(deadline, |st| st.make_room_to_fetch(&cache, need, ino, at, s.gen))?;
        let file = std::fs::OpenOptions::new().write(true).open(cache.file(ino)).map_err(FsError::from)?;
        // Chunks this machine already has, in any cache file, first.
        let mut from_hub = Vec::new();
        for (off, c) in &wanted {
            let local = shared
                .chunks
                .locate(&c.hash)
                .unwrap_or_default()
                .into_iter()
                .filter(|(i, _)| *i != ino)
                .find_map(|(i, o)| read_verified(&cache.file(i), o, c));
            match local {
                Some(bytes) if !self.write_if_current(shared, ino, &s, &file, &[(*off, &bytes)])? => return Ok(()),
                Some(_) => {}
                None => from_hub.push((*off, *c)),
            }
        }
        let listed = began.elapsed();
        let _in_runtime = self.rt.enter();
        let (mut arriving, _fetching) = fetch_batches(self.remote.clone(), batches(from_hub));
        while let Some(got) = self.by_deadline(deadline, arriving.recv())? {
            let (batch, chunks) = got.map_err(|e| hub(shared, e))?;
            let bytes: u64 = chunks.iter().map(|c| c.data.len() as u64).sum();
            self.fetched_bytes.fetch_add(bytes, Ordering::Relaxed);
            let at: Vec<(u64, &[u8])> = batch.iter().zip(&chunks).map(|((off, _), c)| (*off, &c.data[..])).collect();
            if !self.write_if_current(shared, ino, &s, &file, &at)? {
                return Ok(()); // truncated, replaced or evicted meanwhile: the caller looks again
            }
        }
        tracing::debug!(ino, start = mine[0].start, need, ?listed, took = ?began.elapsed(), "fetched");
        Ok(())
    }
}

/// Syncs `ino`'s cache file and records the bytes fetched into it before
/// the sync as held in the database.
fn sync_fetched(shared: &Shared, ino: u64) -> std::io::Result<()> {
    let path = shared.cache.file(ino);
    let file = match std::fs::File::open(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()), // removed since
        other => other?,
    };
    let file_id = file.metadata()?.ino();
    let todo = {
        let st = shared.state.lock();
        let Some(todo) = st.tree.get(ino).and_then(|n| n.cached.unsynced()) else { return Ok(()) };
        if !std::fs::metadata(&path).is_ok_and(|m| m.ino() == file_id) {
            return Ok(()); // replaced since: with a new residency, synced by its own fetches
        }
        todo
    };
    file.sync_data()?;
    let mut st = shared.state.lock();
    if let Some(n) = st.tree.get_mut(ino) {
        n.cached.synced(&todo);
        st.persist(&[ino]);
    }
    Ok(())
}

/// Syncs every file with fetched bytes not synced yet (a clean stop), so
/// the next start finds them recorded as held.
pub fn sync_all_fetched(shared: &Shared) {
    let inos: Vec<u64> = shared.state.lock().tree.nodes().filter(|n| n.cached.has_unsynced()).map(|n| n.ino).collect();
    for ino in inos {
        if let Err(e) = sync_fetched(shared, ino) {
            tracing::warn!(ino, "fetched bytes not synced ({e}); they are fetched again after a restart");
        }
    }
}

pub(crate) fn changed_while_fetched(shared: &Shared, ino: u64) -> FsError {
    kept_changing(shared.state.lock().tree.path_of(ino).map_or_else(|| format!("inode {ino}"), |p| p.to_string()))
}

fn kept_changing(path: String) -> FsError {
    FsError::NotLocal { path, why: "it kept changing while it was fetched".into() }
}

fn no_answer(path: String) -> FsError {
    FsError::NotLocal { path, why: format!("no answer within {} s", WAIT.as_secs()) }
}

enum FetchError {
    Fs(FsError),
    Hub(String),
    TimedOut,
}

impl From<FsError> for FetchError {
    fn from(e: FsError) -> Self {
        FetchError::Fs(e)
    }
}

/// A failed exchange: an unreachable hub is noted, so the next open of
/// uncached content fails at once.
fn hub(shared: &Shared, e: crate::remote::client::ApiError) -> FetchError {
    if matches!(e, crate::remote::client::ApiError::Transport(_)) {
        shared.status.set_online(false, &e);
    }
    FetchError::Hub(e.to_string())
}

/// One lock per inode, made on first use and dropped with its last holder.
#[derive(Default)]
struct InodeLocks(Mutex<HashMap<u64, Weak<Mutex<()>>>>);

impl InodeLocks {
    fn get(&self, ino: u64) -> Arc<Mutex<()>> {
        let mut locks = self.0.lock();
        if let Some(l) = locks.get(&ino).and_then(Weak::upgrade) {
            return l;
        }
        locks.retain(|_, w| w.strong_count() > 0);
        let l = Arc::new(Mutex::new(()));
        locks.insert(ino, Arc::downgrade(&l));
        l
    }
}
