//! Which bytes of a file's content this cache holds. A mount with a cache
//! limit keeps large files as sparse cache files of their full size, filled
//! in as they are read (`on_demand.rs`) and emptied again by eviction
//! (`cache_limit.rs`); the rest of the tree always holds whole contents.
//!
//! Fetched bytes are readable as soon as they are written (the page cache
//! has them) but are recorded as held in the database only once synced: a
//! crash of the machine must never leave a range recorded as held that
//! reads back as a hole. So the ranges written and not yet synced are kept
//! apart (`unsynced`), and the database form leaves them out.
use rangemap::RangeSet;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Residency {
    /// None: the cache file holds the whole content (every node without a
    /// cache limit). Else only these byte ranges; the rest is a hole.
    part: Option<Box<RangeSet<u64>>>,
    /// Held ranges written since the last sync of the cache file.
    unsynced: Option<Box<Unsynced>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Unsynced {
    ranges: RangeSet<u64>,
    /// Unique to this set: a sync that began before the residency was
    /// replaced (eviction, a new version) must not clear a newer set.
    id: u64,
}

/// Ranges written and not yet synced, as a sync of the cache file finds
/// them before it begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsyncedRanges {
    id: u64,
    pub ranges: Vec<Range<u64>>,
}

impl Residency {
    /// The whole content is local.
    pub fn full() -> Residency {
        Residency::default()
    }

    /// Nothing is local yet.
    pub fn none() -> Residency {
        Residency { part: Some(Box::default()), unsynced: None }
    }

    pub fn is_full(&self) -> bool {
        self.part.is_none()
    }

    /// Bytes held of a file `size` long.
    pub fn bytes(&self, size: u64) -> u64 {
        match &self.part {
            None => size,
            Some(set) => set.iter().map(|r| r.end.min(size).saturating_sub(r.start)).sum(),
        }
    }

    /// The parts of `want` not held (clipped to nothing past `size`).
    pub fn missing(&self, want: Range<u64>, size: u64) -> Vec<Range<u64>> {
        let want = want.start..want.end.min(size);
        match &self.part {
            _ if want.is_empty() => vec![],
            None => vec![],
            Some(set) => set.gaps(&want).collect(),
        }
    }

    /// Records `got` as held and on disk; the whole file held becomes full.
    pub fn add(&mut self, got: Range<u64>, size: u64) {
        let Some(set) = &mut self.part else { return };
        if !got.is_empty() {
            set.insert(got);
        }
        if set.gaps(&(0..size)).next().is_none() {
            self.part = None;
        }
    }

    /// Records that `gone` is no longer held (its bytes were punched out).
    /// A sync begun before cannot mark anything synced afterwards.
    pub fn forget(&mut self, gone: Range<u64>, size: u64) {
        if gone.is_empty() {
            return;
        }
        let set = self.part.get_or_insert_with(|| Box::new(whole(size)));
        set.remove(gone.clone());
        if let Some(mut left) = self.unsynced.take() {
            left.ranges.remove(gone);
            if !left.ranges.is_empty() {
                left.id = next_unsynced_id();
                self.unsynced = Some(left);
            }
        }
    }

    /// The held ranges within `within`.
    pub fn held_in(&self, within: Range<u64>, size: u64) -> Vec<Range<u64>> {
        let within = within.start..within.end.min(size);
        if within.is_empty() {
            return vec![];
        }
        match &self.part {
            None => vec![within],
            Some(set) => set.overlapping(&within).map(|r| r.start.max(within.start)..r.end.min(within.end)).collect(),
        }
    }

    /// Records `got` as held (readable) but not yet synced to disk.
    pub fn add_unsynced(&mut self, got: Range<u64>, size: u64) {
        if got.is_empty() || self.is_full() {
            return;
        }
        let set =
            self.unsynced.get_or_insert_with(|| Box::new(Unsynced { ranges: RangeSet::new(), id: next_unsynced_id() }));
        set.ranges.insert(got.clone());
        self.add(got, size);
    }

    pub fn has_unsynced(&self) -> bool {
        self.unsynced.is_some()
    }

    /// The ranges written and not yet synced, if any.
    pub fn unsynced(&self) -> Option<UnsyncedRanges> {
        let set = self.unsynced.as_ref()?;
        Some(UnsyncedRanges { id: set.id, ranges: set.ranges.iter().cloned().collect() })
    }

    /// Records that `done` (taken from `unsynced` before a sync of the
    /// cache file began) is on disk now.
    pub fn synced(&mut self, done: &UnsyncedRanges) {
        let Some(set) = self.unsynced.as_mut().filter(|s| s.id == done.id) else { return };
        done.ranges.iter().for_each(|r| set.ranges.remove(r.clone()));
        if set.ranges.is_empty() {
            self.unsynced = None;
        }
    }

    /// The database form: what is held and synced. `None` for the whole
    /// content, else (start, end) pairs as little-endian u64s.
    pub fn encode(&self, size: u64) -> Option<Vec<u8>> {
        let durable = match (&self.part, &self.unsynced) {
            (None, None) => return None,
            (Some(set), None) => (**set).clone(),
            (part, Some(unsynced)) => {
                let mut set = part.as_deref().cloned().unwrap_or_else(|| whole(size));
                unsynced.ranges.iter().for_each(|r| set.remove(r.clone()));
                set
            }
        };
        Some(durable.iter().flat_map(|r| [r.start.to_le_bytes(), r.end.to_le_bytes()]).flatten().collect())
    }

    pub fn decode(bytes: Option<&[u8]>) -> Result<Residency, String> {
        let Some(bytes) = bytes else { return Ok(Residency::full()) };
        if bytes.len() % 16 != 0 {
            return Err(format!("{} bytes of ranges, not a multiple of 16", bytes.len()));
        }
        let mut set = RangeSet::new();
        for pair in bytes.chunks_exact(16) {
            let start = u64::from_le_bytes(pair[..8].try_into().expect("8 bytes"));
            let end = u64::from_le_bytes(pair[8..].try_into().expect("8 bytes"));
            if start < end {
                set.insert(start..end);
            }
        }
        Ok(Residency { part: Some(Box::new(set)), unsynced: None })
    }
}

/// Every byte of a file `size` long.
fn whole(size: u64) -> RangeSet<u64> {
    let mut set = RangeSet::new();
    if size > 0 {
        set.insert(0..size);
    }
    set
}

fn next_unsynced_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_fill_in_until_the_file_is_whole() {
        let mut r = Residency::none();
        assert_eq!(r.missing(0..100, 100), vec![0..100]);
        r.add(10..20, 100);
        r.add(20..30, 100);
        assert_eq!(r.bytes(100), 20);
        assert_eq!(r.missing(0..100, 100), vec![0..10, 30..100]);
        assert_eq!(r.missing(15..25, 100), vec![]);
        assert_eq!(r.missing(90..200, 100), vec![90..100], "nothing past the end is missing");
        assert_eq!(r.missing(150..200, 100), vec![]);
        r.add(0..10, 100);
        r.add(30..100, 100);
        assert!(r.is_full());
        assert_eq!(r.bytes(100), 100);
        let mut empty = Residency::none();
        empty.add(0..0, 0);
        assert!(empty.is_full(), "an empty file is whole");
    }

    #[test]
    fn the_database_form_round_trips() {
        assert_eq!(Residency::full().encode(100), None);
        assert_eq!(Residency::decode(None).unwrap(), Residency::full());
        let mut r = Residency::none();
        r.add(5..9, 100);
        r.add(50..60, 100);
        let back = Residency::decode(r.encode(100).as_deref()).unwrap();
        assert_eq!(back, r);
        assert_eq!(Residency::decode(Some(&[])).unwrap(), Residency::none());
        assert!(Residency::decode(Some(&[1, 2, 3])).is_err());
    }

    #[test]
    fn bytes_not_yet_synced_are_readable_but_not_recorded() {
        let mut r = Residency::none();
        r.add(0..10, 100);
        r.add_unsynced(10..60, 100);
        assert_eq!(r.missing(0..100, 100), vec![60..100], "written bytes are readable at once");
        let on_disk = Residency::decode(r.encode(100).as_deref()).unwrap();
        assert_eq!(on_disk.missing(0..100, 100), vec![10..100], "the database holds only what is synced");
        let before_sync = r.unsynced().unwrap();
        r.add_unsynced(60..100, 100);
        assert!(r.is_full(), "the whole content is readable");
        let on_disk = Residency::decode(r.encode(100).as_deref()).unwrap();
        assert_eq!(on_disk.missing(0..100, 100), vec![10..100]);
        r.synced(&before_sync);
        let on_disk = Residency::decode(r.encode(100).as_deref()).unwrap();
        assert_eq!(on_disk.missing(0..100, 100), vec![60..100], "bytes written during the sync stay unrecorded");
        r.synced(&r.unsynced().unwrap());
        assert_eq!(r.encode(100), None, "all synced: the whole content");
        assert!(r.unsynced().is_none());
    }

    #[test]
    fn a_sync_begun_before_an_eviction_does_not_clear_what_came_after() {
        let mut r = Residency::none();
        r.add_unsynced(0..50, 100);
        let old = r.unsynced().unwrap();
        r = Residency::none(); // evicted while the sync ran
        r.add_unsynced(0..50, 100);
        r.synced(&old);
        assert_eq!(r.unsynced().unwrap().ranges, vec![0..50]);
    }

    #[test]
    fn forgotten_ranges_are_missing_again() {
        let mut r = Residency::full();
        r.forget(0..40, 100);
        assert_eq!(r.missing(0..100, 100), vec![0..40]);
        assert_eq!(r.held_in(0..60, 100), vec![40..60]);
        let mut r = Residency::none();
        r.add_unsynced(0..80, 100);
        let before = r.unsynced().unwrap();
        r.forget(0..30, 100);
        assert_eq!(r.held_in(0..100, 100), vec![30..80]);
        r.add_unsynced(0..30, 100); // fetched again, not synced yet
        r.synced(&before);
        let on_disk = Residency::decode(r.encode(100).as_deref()).unwrap();
        assert_eq!(on_disk.held_in(0..100, 100), vec![], "a sync begun before the punch records nothing");
    }
}
