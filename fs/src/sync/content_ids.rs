//! Content ids of what users wrote. A file or symlink written here has its
//! cache file read into its chunk list once it is closed, or fsynced while
//! still open (its `sealed` stamp), outside every lock. The list's id
//! becomes the node's content (`hash`, which the Local tree shows) only if
//! nothing wrote to the file meanwhile; otherwise the next close tries
//! again. Until then Local shows the content the node had, so the planner
//! never sees a half-written file. The list goes into the chunk index:
//! downloads of other files take their chunks from it.
use crate::local::handles::FileStamp;
use crate::local::state::Shared;
use crate::local::tree::{Kind, Node};
use std::path::Path;

/// Whether `n` is written and may wait to be closed (or fsynced).
fn may_wait(n: &Node) -> bool {
    n.dirty && n.kind != Kind::Dir && n.special.is_none() && n.parent != 0
}

/// Whether `n` was written and is now closed (or fsynced since its last write).
fn waiting(n: &Node) -> bool {
    n.dirty
        && n.kind != Kind::Dir
        && n.special.is_none()
        && n.parent != 0
        && (n.open_writers == 0 || n.sealed.is_some_and(|(gen, _)| gen == n.write_gen))
}

fn stamp(file: &Path) -> Option<FileStamp> {
    std::fs::File::open(file).and_then(|f| FileStamp::of(&f)).ok()
}

/// Records that the hub holds `content` as node `ino`'s, at `version`
/// (after this mount sent it): the cache file may then be evicted under a
/// cache limit, as it can be fetched again. Nothing changes if the node's
/// content changed since.
pub fn mark_on_hub(shared: &Shared, sent: &[(u64, ssync_common::ContentHash, u64)]) {
    // One lock and one persist for a round's uploads: per file, each
    // waited for the commit of the one before (18 s for 3,000 files).
    let mut st = shared.state.lock();
    let mut changed = Vec::new();
    for (ino, content, version) in sent {
        let Some(n) = st.tree.get_mut(*ino).filter(|n| n.hash == Some(*content) && !n.dirty) else { continue };
        if n.base_version != *version {
            n.base_version = *version;
            changed.push(*ino);
        }
    }
    if !changed.is_empty() {
        st.persist(&changed);
    }
}

/// How identifying one file ended.
enum Identified {
    /// It got a content id: this many bytes.
    Done(u64),
    /// Written, or opened for writing, around its read (or unreadable): the
    /// next call tries again.
    Again,
    /// Gone, or no longer written (nothing to do).
    Nothing,
}

/// Identifies one written file. Its generation and stamp are taken just
/// before its read and compared just after, under the lock, so that only a
/// write during its own read sends it back: a check against the whole
/// call's start failed nine files in ten under fsstress (each call read
/// for seconds, and four writers touched most files meanwhile), and the
/// mount then identified almost nothing until the writers stopped.
fn identify_one(shared: &Shared, ino: u64) -> Identified {
    let (gen, sealed) = {
        let st = shared.state.lock();
        match st.tree.get(ino) {
            Some(n) if waiting(n) => (n.write_gen, n.sealed.map(|s| s.1)),
            Some(n) if may_wait(n) => return Identified::Again,
            _ => return Identified::Nothing,
        }
    };
    let file = shared.cache.file(ino);
    let before = stamp(&file);
    let list = match crate::content::file_chunks::list_of_file(&file) {
        Ok(l) => l,
        Err(e) => {
            tracing::debug!(ino, "cannot read a written file to identify its content yet: {e}");
            return Identified::Again;
        }
    };
    let mut st = shared.state.lock();
    let Some(n) = st.tree.get_mut(ino) else { return Identified::Nothing };
    if !n.dirty {
        return Identified::Nothing;
    }
    // Written while it was read (through the daemon: the generation; by
    // the kernel, with passthrough: the file's stamp), or still open for
    // writing with bytes after its fsync: the next close tries again.
    let unchanged = n.write_gen == gen && stamp(&file) == before;
    let settled = n.open_writers == 0 || (sealed.is_some() && sealed == before);
    if !unchanged || !settled {
        return Identified::Again;
    }
    n.hash = Some(list.id());
    n.size = list.size();
    n.dirty = false;
    // Not on the hub yet: a cache limit must not evict it until it is
    // (`mark_on_hub`).
    n.base_version = 0;
    st.persist(&[ino]);
    drop(st);
    if let Err(e) = shared.chunks.record(ino, &list) {
        tracing::debug!(ino, "cannot index the chunks of a written file: {e}");
    }
    Identified::Done(list.size())
}

/// Identifies each file of `todo` on as many threads as there are cores
/// (up to 4: after a burst of writes this is gigabytes to read, cut and
/// hash); the files to try again, and (files, bytes) identified.
fn identify_all(shared: &Shared, todo: &[u64]) -> (Vec<u64>, (usize, u64)) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4).min(todo.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let (mut again, mut done, mut bytes) = (Vec::new(), 0, 0);
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(&ino) = todo.get(i) else { break };
            match identify_one(shared, ino) {
                Identified::Done(b) => (done, bytes) = (done + 1, bytes + b),
                Identified::Again => again.push(ino),
                Identified::Nothing => {}
            }
        }
        (again, (done, bytes))
    };
    if threads <= 1 {
        return work();
    }
    let parts: Vec<std::thread::Result<_>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
        workers.into_iter().map(|w| w.join()).collect()
    });
    let (mut again, mut done, mut bytes) = (Vec::new(), 0, 0);
    let mut lost = false;
    for part in parts {
        match part {
            Ok((a, (d, b))) => {
                again.extend(a);
                done += d;
                bytes += b;
            }
            Err(_) => lost = true,
        }
    }
    if lost {
        // A worker that panicked left files untried: all wait for the next call.
        again = todo.to_vec();
    }
    (again, (done, bytes))
}

/// Identifies the content of every node written and closed since the last
/// call; returns how many got a new content id.
pub fn identify_written(shared: &Shared) -> usize {
    let todo: Vec<u64> = {
        let mut st = shared.state.lock();
        // The nodes changed here since the last call (every node at the
        // first): a scan of the whole tree under the lock at every wake cost
        // FUSE calls their share of it on a big tree.
        let candidates: Vec<u64> = match st.take_written() {
            Some(changed) => changed.into_iter().collect(),
            None => st.tree.nodes().filter(|n| n.dirty).map(|n| n.ino).collect(),
        };
        let (mut todo, mut later) = (Vec::new(), Vec::new());
        for ino in candidates {
            match st.tree.get(ino) {
                Some(n) if waiting(n) => todo.push(n.ino),
                Some(n) if may_wait(n) => later.push(ino),
                _ => {}
            }
        }
        st.written_again(&later);
        if cfg!(debug_assertions) {
            // The tests check that no closed file is left out.
            let taken: std::collections::HashSet<u64> = todo.iter().copied().collect();
            let missed = st.tree.nodes().find(|n| waiting(n) && !taken.contains(&n.ino));
            if let Some(n) = missed {
                panic!(
                    "a written file was not identified: ino {} ({:?}), dirty {}, writers {}, gen {}, sealed {:?}",
                    n.ino,
                    st.tree.path_of(n.ino),
                    n.dirty,
                    n.open_writers,
                    n.write_gen,
                    n.sealed.map(|s| s.0)
                );
            }
        }
        todo
    };
    if todo.is_empty() {
        return 0;
    }
    let started = std::time::Instant::now();
    let (again, (done, bytes)) = identify_all(shared, &todo);
    shared.state.lock().written_again(&again);
    tracing::debug!(tried = todo.len(), done, bytes, took = ?started.elapsed(), "identified written files");
    done
}
