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
use ssync_common::ChunkList;
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

/// Reads the chunk list of each file in `todo`, on as many threads as
/// there are cores (after a burst of writes this is gigabytes to read, cut
/// and hash): each file's path, its stamp before the read, and its list.
type Read = (std::path::PathBuf, Option<FileStamp>, std::io::Result<ChunkList>);

fn read_lists(shared: &Shared, todo: &[(u64, u64, Option<FileStamp>)]) -> Vec<Read> {
    let read_one = |ino: u64| {
        let file = shared.cache.file(ino);
        let before = stamp(&file);
        let list = crate::content::file_chunks::list_of_file(&file);
        (file, before, list)
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4).min(todo.len());
    if threads <= 1 {
        return todo.iter().map(|(ino, ..)| read_one(*ino)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut out: Vec<Option<Read>> = Vec::new();
    out.resize_with(todo.len(), || None);
    let parts: Vec<Vec<(usize, Read)>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((ino, ..)) = todo.get(i) else { break };
                        mine.push((i, read_one(*ino)));
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_default()).collect()
    });
    for (i, r) in parts.into_iter().flatten() {
        out[i] = Some(r);
    }
    // A worker that panicked left its files unread: they wait for the next call.
    out.into_iter()
        .zip(todo)
        .map(|(r, (ino, ..))| {
            r.unwrap_or_else(|| (shared.cache.file(*ino), None, Err(std::io::Error::other("not read"))))
        })
        .collect()
}

/// Identifies the content of every node written and closed since the last
/// call; returns how many got a new content id.
pub fn identify_written(shared: &Shared) -> usize {
    let todo: Vec<(u64, u64, Option<FileStamp>)> = {
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
                Some(n) if waiting(n) => todo.push((n.ino, n.write_gen, n.sealed.map(|s| s.1))),
                Some(n) if may_wait(n) => later.push(ino),
                _ => {}
            }
        }
        st.written_again(&later);
        if cfg!(debug_assertions) {
            // The tests check that no closed file is left out.
            let taken: std::collections::HashSet<u64> = todo.iter().map(|t| t.0).collect();
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
    let (started, tried, mut bytes, mut done) = (std::time::Instant::now(), todo.len(), 0u64, 0);
    for ((ino, gen, sealed), (file, before, list)) in todo.iter().copied().zip(read_lists(shared, &todo)) {
        let list = match list {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(ino, "cannot read a written file to identify its content yet: {e}");
                shared.state.lock().written_again(&[ino]);
                continue;
            }
        };
        bytes += list.size();
        let mut st = shared.state.lock();
        let Some(n) = st.tree.get_mut(ino) else { continue };
        // Written while it was read (through the daemon: the generation; by
        // the kernel, with passthrough: the file's stamp), or still open for
        // writing with bytes after its fsync: the next close tries again.
        let unchanged = n.write_gen == gen && stamp(&file) == before;
        let settled = n.open_writers == 0 || (sealed.is_some() && sealed == before);
        if !n.dirty {
            continue;
        }
        if !unchanged || !settled {
            st.written_again(&[ino]);
            continue;
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
        done += 1;
    }
    if tried > 0 {
        tracing::debug!(tried, done, bytes, took = ?started.elapsed(), "identified written files");
    }
    done
}
