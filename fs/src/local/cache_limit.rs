//! The cache limit (`--cache-max`): what the cache files may hold on disk.
//!
//! Every byte that lands in the cache (a fetched chunk, a download from the
//! feed, a write that grows a file) asks `State::make_room` first, under the
//! state lock, so the limit holds at every moment, not after a timer's sweep.
//! Room is made by evicting the least recently used contents that are clean,
//! closed (or only read through the daemon), sent and unpinned: their
//! cache files become holes of the same size, their metadata stays, and the
//! next read fetches them again. When nothing is left to evict, the caller
//! waits for uploads (writes) or gets ENOSPC. The eviction itself is
//! `eviction.rs`.

/// Evicting stops this far below the limit, so that a stream of small
/// reservations near the limit does not scan the tree for each.
pub(crate) const SLACK_DIVISOR: u64 = 16;

#[derive(Debug, Clone, Copy)]
pub struct CacheLimit {
    pub max: u64,
    /// Bytes held, at least: the last count plus what was reserved since
    /// (counted again once it would pass the limit).
    pub(crate) est: u64,
}

impl CacheLimit {
    pub fn new(max: u64) -> CacheLimit {
        CacheLimit { max, est: u64::MAX / 2 }
    }
}

/// What the cache holds, in bytes, for `ssync status` and statfs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheFigures {
    pub cached: u64,
    pub pinned: u64,
    pub dirty: u64,
    /// Held by files that cannot be evicted now (dirty, queued, open, pinned).
    pub kept: u64,
}

/// Makes holes of `ranges` of `file` (its size stays): evicted bytes.
pub(crate) fn punch_holes(file: &std::fs::File, ranges: &[std::ops::Range<u64>]) -> std::io::Result<()> {
    use nix::fcntl::{fallocate, FallocateFlags};
    let mode = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
    for r in ranges.iter().filter(|r| !r.is_empty()) {
        fallocate(file, mode, r.start as i64, (r.end - r.start) as i64).map_err(std::io::Error::from)?;
    }
    Ok(())
}

/// With a cache limit, files up to this size are still fetched as soon as
/// they change (cheap, and what `ls`-then-open workloads want at once).
pub const EAGER_MAX: u64 = 1 << 20;
