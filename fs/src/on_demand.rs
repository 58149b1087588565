//! Fetching the parts of a file this cache does not hold, when they are
//! read (files on demand, with `--cache-max`).
//!
//! A read asks for the chunks that cover its range: their list comes as a
//! slice of the file's manifest, chunks found in other cache files (the
//! chunk index) are copied, the rest come from the hub, and all go into the
//! sparse cache file at their offsets. Only then are the ranges recorded as
//! held, under the state lock, and only if the file is still the one the
//! fetch began with (same content id, no eviction or write since).
//! The bytes themselves go in under the file's content lock, and only while
//! the file is still that version: a truncate (which takes the same lock)
//! followed by new writes must never get old chunks written over them.
//! Every wait is bounded (`WAIT`); with the hub unreachable, it fails at
//! once with EIO and the log names the file.
use crate::chunk_download::read_verified;
use crate::client::Remote;
use crate::error::{FsError, FsResult};
use crate::state::Shared;
use futures_util::StreamExt;
use parking_lot::Mutex;
use ssync_common::{ChunkRef, ContentHash};
use std::collections::HashMap;
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How long a read waits for its bytes before it fails with EIO.
pub const WAIT: Duration = Duration::from_secs(30);
/// Requests in flight for one fetch.
const IN_FLIGHT: usize = 3;

pub struct OnDemand {
    remote: Remote,
    rt: tokio::runtime::Handle,
    /// One fetch per file at a time: a second reader waits, then finds its bytes there.
    busy: InodeLocks,
    /// Held while fetched bytes go into a cache file, and by whatever
    /// truncates one in place: never across a network wait.
    content: InodeLocks,
    /// Chunk bytes fetched from the hub on demand (for `ssync status` and the bench).
    pub fetched_bytes: AtomicU64,
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
        OnDemand {
            remote,
            rt,
            busy: InodeLocks::default(),
            content: InodeLocks::default(),
            fetched_bytes: AtomicU64::new(0),
        }
    }

    /// Blocks until `range` of `ino`'s content is in its cache file. Not on
    /// a runtime thread (FUSE workers call it).
    pub fn ensure(&self, shared: &Shared, ino: u64, range: Range<u64>) -> FsResult<()> {
        if self.start(shared, ino, &range)?.is_none() {
            return Ok(());
        }
        let lock = self.busy.get(ino);
        let _one_at_a_time = lock.lock();
        let Some(start) = self.start(shared, ino, &range)? else { return Ok(()) };
        let path = start.path.clone();
        let fetched = self.rt.block_on(async { tokio::time::timeout(WAIT, self.fetch(shared, ino, start)).await });
        match fetched {
            Ok(Ok(())) => Ok(()),
            Ok(Err(FetchError::Fs(e))) => Err(e),
            Ok(Err(FetchError::Hub(why))) => Err(FsError::NotLocal { path, why }),
            Err(_) => Err(FsError::NotLocal { path, why: format!("no answer within {} s", WAIT.as_secs()) }),
        }
    }

    /// Fetches `range` of each of `inos` in the background, one after the
    /// other (read-ahead, pinning); failures only log.
    pub fn spawn_ensure(self: &Arc<Self>, shared: Arc<Shared>, inos: Vec<u64>, range: Range<u64>) {
        let me = self.clone();
        self.rt.spawn_blocking(move || {
            for ino in inos {
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

    /// Writes fetched `chunks` at their offsets if the file is still the
    /// version the fetch began with; false when it changed (nothing written).
    fn write_if_current(
        &self,
        shared: &Shared,
        ino: u64,
        s: &Start,
        file: &std::fs::File,
        chunks: &[(u64, &[u8])],
    ) -> FsResult<bool> {
        let lock = self.content.get(ino);
        let _writing = lock.lock();
        let current = shared.state.lock().tree.get(ino).is_some_and(|n| n.hash == Some(s.id) && n.write_gen == s.gen);
        if !current {
            return Ok(false);
        }
        for (off, bytes) in chunks {
            file.write_all_at(bytes, *off)?;
        }
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

    async fn fetch(&self, shared: &Shared, ino: u64, s: Start) -> Result<(), FetchError> {
        let span = s.missing[0].start..s.missing[s.missing.len() - 1].end;
        let (offset, list, size) = self.remote.manifest_range(&s.id, span).await.map_err(|e| hub(shared, e))?;
        if size != s.size {
            return Err(FetchError::Hub(format!("the hub has {size} bytes for this version, not {}", s.size)));
        }
        let wanted: Vec<(u64, ChunkRef)> = list
            .with_offsets()
            .map(|(o, c)| (o + offset, c))
            .filter(|(o, c)| s.missing.iter().any(|m| *o < m.end && o + c.len as u64 > m.start))
            .collect();
        let need: u64 = wanted.iter().map(|(_, c)| c.len as u64).sum();
        let cache = shared.cache.clone();
        shared.state.lock().make_room(&cache, need, ino)?;
        let file = std::fs::OpenOptions::new().write(true).open(cache.file(ino)).map_err(FsError::from)?;
        let file_id = file.metadata().map_err(FsError::from)?.ino();
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
        let mut arriving = futures_util::stream::iter(crate::chunk_download::batches(from_hub))
            .map(|batch| async move {
                let hashes: Vec<ContentHash> = batch.iter().map(|(_, c)| c.hash).collect();
                self.remote.fetch_chunks(&hashes).await.map(|chunks| (batch, chunks))
            })
            .buffered(IN_FLIGHT);
        while let Some(got) = arriving.next().await {
            let (batch, chunks) = got.map_err(|e| hub(shared, e))?;
            if chunks.len() != batch.len() {
                return Err(FetchError::Hub(format!("asked for {} chunks, got {}", batch.len(), chunks.len())));
            }
            for ((_, want), c) in batch.iter().zip(&chunks) {
                if c.hash != want.hash {
                    return Err(FetchError::Hub(format!("asked for chunk {}, got {}", want.hash, c.hash)));
                }
                self.fetched_bytes.fetch_add(c.data.len() as u64, Ordering::Relaxed);
            }
            let at: Vec<(u64, &[u8])> = batch.iter().zip(&chunks).map(|((off, _), c)| (*off, &c.data[..])).collect();
            if !self.write_if_current(shared, ino, &s, &file, &at)? {
                return Ok(()); // truncated or replaced meanwhile: the caller looks again
            }
        }
        // Held means on disk: a crash must never leave a range recorded as
        // held that reads back as a hole.
        file.sync_data().map_err(FsError::from)?;
        let mut st = shared.state.lock();
        let same_file = std::fs::metadata(cache.file(ino)).is_ok_and(|m| m.ino() == file_id);
        let Some(n) = st.tree.get_mut(ino) else { return Ok(()) };
        if !same_file || n.hash != Some(s.id) || n.write_gen != s.gen {
            return Ok(()); // replaced, written or evicted meanwhile: the caller looks again
        }
        for (off, c) in &wanted {
            n.cached.add(*off..off + c.len as u64, s.size);
        }
        st.persist(&[ino], vec![]);
        st.note_used(ino);
        Ok(())
    }
}

enum FetchError {
    Fs(FsError),
    Hub(String),
}

impl From<FsError> for FetchError {
    fn from(e: FsError) -> Self {
        FetchError::Fs(e)
    }
}

/// A failed exchange: an unreachable hub is noted, so the next open of
/// uncached content fails at once.
fn hub(shared: &Shared, e: crate::client::ApiError) -> FetchError {
    if matches!(e, crate::client::ApiError::Transport(_)) {
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
