//! Eviction under the cache limit (see `cache_limit.rs`): room made under
//! the state lock by emptying the least recently used clean contents.
use crate::local::cache_limit::{punch_holes, CacheFigures, CacheLimit, SLACK_DIVISOR};
use crate::local::error::{FsError, FsResult};
use crate::local::state::{CacheDirs, State};
use crate::local::tree::{Kind, Node};

impl crate::local::state::Shared {
    /// Runs `make` (a `make_room` call) under the state lock until it finds
    /// room or `deadline` passes: while the cache holds only unsent data,
    /// uploads finishing make files evictable. ENOSPC after that.
    pub fn wait_for_room<T>(
        &self,
        deadline: std::time::Instant,
        mut make: impl FnMut(&mut State) -> FsResult<T>,
    ) -> FsResult<T> {
        loop {
            let (made, evicted) = {
                let mut st = self.state.lock();
                let made = make(&mut st);
                (made, std::mem::take(&mut st.evicted))
            };
            // What was evicted is no longer held: the kernel must not serve
            // it from its page cache either (reads come back through the
            // mount, which fetches it again, or fails with EIO offline).
            self.invalidate(evicted.into_iter().map(crate::local::invalidate::Inval::Inode).collect());
            match made {
                Err(FsError::CacheFull { .. }) if std::time::Instant::now() < deadline => {
                    // Sending what is written here frees room to evict.
                    self.state.lock().wake_engine();
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }
}

impl State {
    /// Records that `ino`'s content was just used (it goes last in line for eviction).
    pub fn note_used(&mut self, ino: u64) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(n) = self.tree.get_mut(ino) {
            n.last_used = tick;
        }
    }

    /// At start, orders the cached contents for eviction by when their cache
    /// files were last read or written (the later of atime and mtime), as
    /// the use counts of the last run are not kept: without it, the first
    /// evictions after a restart went by inode number.
    pub fn order_by_cache_file_age(&mut self, cache: &CacheDirs) {
        use std::os::unix::fs::MetadataExt;
        let mut ages: Vec<(i64, u64)> = (self.tree.nodes())
            .filter(|n| n.has_content() && n.cached.bytes(n.size) > 0)
            .filter_map(|n| {
                let m = std::fs::metadata(cache.file(n.ino)).ok()?;
                let used = (m.atime() * 1_000_000_000 + m.atime_nsec()).max(m.mtime() * 1_000_000_000 + m.mtime_nsec());
                Some((used, n.ino))
            })
            .collect();
        ages.sort_unstable();
        for (_, ino) in ages {
            self.note_used(ino);
        }
    }

    pub fn cache_figures(&self) -> CacheFigures {
        let mut f = CacheFigures::default();
        let mut groups = std::collections::HashSet::new();
        for n in self.tree.nodes().filter(|n| n.has_content()) {
            if n.group != 0 && !groups.insert(n.group) {
                continue; // the names of one file share its cache file
            }
            let held = n.cached.bytes(n.size);
            f.cached += held;
            if n.dirty {
                f.dirty += n.size;
            }
            let pinned = self.tree.is_pinned(n.ino);
            if pinned {
                f.pinned += held;
            }
            if pinned || !self.evictable(n) {
                f.kept += held;
            }
        }
        f
    }

    /// Whether eviction may empty `n`'s cache file now.
    fn evictable(&self, n: &Node) -> bool {
        n.kind == Kind::File
            && n.special.is_none()
            && !n.dirty
            && n.base_version > 0
            && n.hash.is_some()
            && n.group == 0
            && n.open_writers == 0
            // Handles that read through the daemon check residency under the
            // state lock; passthrough ones (whole at open) read the file directly.
            && n.open_handles == n.streaming
    }

    /// Makes room for `need` more bytes in the cache, evicting least recently
    /// used contents (never `keep`'s: the file being filled). Without a
    /// limit, always room.
    pub fn make_room(&mut self, cache: &CacheDirs, need: u64, keep: u64) -> FsResult<()> {
        let Some(limit) = self.limit else { return Ok(()) };
        if limit.est.saturating_add(need) <= limit.max {
            self.limit = Some(CacheLimit { est: limit.est + need, ..limit });
            return Ok(());
        }
        let mut used = self.cache_figures().cached;
        if used + need > limit.max {
            let target = limit.max.saturating_sub(need).saturating_sub(limit.max / SLACK_DIVISOR);
            let mut victims: Vec<(u64, u64, u64)> = self
                .tree
                .nodes()
                .filter(|n| n.ino != keep && self.evictable(n) && !self.tree.is_pinned(n.ino))
                .map(|n| (n.last_used, n.ino, n.cached.bytes(n.size)))
                .filter(|(_, _, held)| *held > 0)
                .collect();
            victims.sort_unstable();
            for (_, ino, held) in victims {
                if used <= target {
                    break;
                }
                match self.evict(cache, ino) {
                    Ok(()) => used = used.saturating_sub(held),
                    Err(e) => tracing::warn!(ino, "cannot evict a cached file: {e}"),
                }
            }
        }
        self.limit = Some(CacheLimit { est: used + need, ..limit });
        if used + need > limit.max {
            return Err(FsError::CacheFull { limit: limit.max });
        }
        Ok(())
    }

    /// `make_room` for bytes fetched into `ino` at `at`, by a fetch that
    /// began at write generation `gen`. When other files cannot make room,
    /// `ino`'s own bytes well behind `at` are evicted, so a file bigger than
    /// the limit streams through the cache. Returns the generation the fetch
    /// goes on with (bumped by that eviction, which other fetches of the
    /// file must see).
    pub fn make_room_to_fetch(&mut self, cache: &CacheDirs, need: u64, ino: u64, at: u64, gen: u64) -> FsResult<u64> {
        match self.make_room(cache, need, ino) {
            // A fetch of more than half the limit (a whole file for a writer)
            // could not stream: the file must fit.
            Err(FsError::CacheFull { limit }) if need <= limit / 2 => {
                let freed = self.evict_behind(cache, ino, at.saturating_sub(limit / 4), need + limit / SLACK_DIVISOR);
                if freed.is_none() {
                    return Err(FsError::CacheFull { limit });
                }
                self.make_room(cache, need, ino)?;
                let n = self.tree.get_mut(ino).expect("evicted from a node");
                Ok(if n.write_gen == gen + 1 { n.write_gen } else { gen })
            }
            other => other.map(|()| gen),
        }
    }

    /// Evicts up to `want` bytes of `ino`'s that lie before `before`, lowest
    /// first (a sequential reader's oldest); None when it may not or holds none.
    fn evict_behind(&mut self, cache: &CacheDirs, ino: u64, before: u64, want: u64) -> Option<u64> {
        let n = self.tree.get(ino).filter(|n| self.evictable(n) && !self.tree.is_pinned(n.ino))?;
        let size = n.size;
        let mut gone = Vec::new();
        let mut freed = 0;
        for r in n.cached.held_in(0..before, size) {
            if freed >= want {
                break;
            }
            let r = r.start..r.end.min(r.start + (want - freed));
            freed += r.end - r.start;
            gone.push(r);
        }
        if gone.is_empty() {
            return None;
        }
        let file = std::fs::OpenOptions::new().write(true).open(cache.file(ino)).ok()?;
        let n = self.tree.get_mut(ino).expect("checked above");
        for r in gone {
            if let Err(e) = punch_holes(&file, std::slice::from_ref(&r)) {
                tracing::warn!(ino, "cannot evict part of a cached file: {e}");
                break;
            }
            n.cached.forget(r, size);
        }
        // A fetch into this file that started before must not mark its bytes held.
        n.write_gen += 1;
        tracing::debug!(ino, freed, before, "evicted the bytes behind a reader");
        self.persist(&[ino]);
        Some(freed)
    }

    /// Empties `ino`'s cache file (a hole of the same size) and records that
    /// none of its content is local.
    fn evict(&mut self, cache: &CacheDirs, ino: u64) -> std::io::Result<()> {
        let size = self.tree.get(ino).map_or(0, |n| n.size);
        let file = std::fs::OpenOptions::new().write(true).open(cache.file(ino))?;
        punch_holes(&file, std::slice::from_ref(&(0..size)))?;
        let n = self.tree.get_mut(ino).expect("a victim is a node");
        n.cached = crate::local::residency::Residency::none();
        // A fetch into this file that started before must not mark its bytes held.
        n.write_gen += 1;
        self.evicted.push(ino);
        tracing::debug!(ino, size, "evicted from the cache");
        self.persist(&[ino]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::local::db::LocalDb;
    use crate::local::state::{CacheDirs, State};
    use crate::local::tree::{Kind, Node, Tree, ROOT};
    use std::time::{Duration, SystemTime};

    #[test]
    fn after_a_restart_eviction_goes_by_when_cache_files_were_last_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CacheDirs::create(&dir.path().join("cache")).unwrap();
        let db = LocalDb::open(&dir.path().join("state.db")).unwrap();
        let file = |ino: u64, name: &str| Node { ino, size: 10, ..Node::new(Kind::File, ROOT, name, 0o644, 0) };
        // Inode 2 was used last, inode 3 long before it.
        let tree = Tree::from_nodes(vec![
            Node { ino: ROOT, ..Node::new(Kind::Dir, 0, "", 0o755, 0) },
            file(2, "new"),
            file(3, "old"),
        ]);
        let now = SystemTime::now();
        for (ino, age) in [(2, 10), (3, 3600)] {
            let f = std::fs::File::create(cache.file(ino)).unwrap();
            let t = now - Duration::from_secs(age);
            f.set_times(std::fs::FileTimes::new().set_accessed(t).set_modified(t)).unwrap();
        }
        let mut st = State::new(db, tree).unwrap();
        st.order_by_cache_file_age(&cache);
        let used = |ino| st.tree.get(ino).unwrap().last_used;
        assert!(used(3) < used(2), "the file used longest ago goes first: {} vs {}", used(3), used(2));
    }
}
