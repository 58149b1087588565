//! Which bytes of a file's content this cache holds. A mount with a cache
//! limit keeps large files as sparse cache files of their full size, filled
//! in as they are read (`on_demand.rs`) and emptied again by eviction
//! (`cache_limit.rs`); the rest of the tree always holds whole contents.
use rangemap::RangeSet;
use std::ops::Range;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Residency {
    /// The cache file holds the whole content (every node without a cache limit).
    #[default]
    Full,
    /// Only these byte ranges are filled in; the rest of the file is a hole.
    Part(Box<RangeSet<u64>>),
}

impl Residency {
    /// Nothing is local yet.
    pub fn none() -> Residency {
        Residency::Part(Box::default())
    }

    pub fn is_full(&self) -> bool {
        matches!(self, Residency::Full)
    }

    /// Bytes held of a file `size` long.
    pub fn bytes(&self, size: u64) -> u64 {
        match self {
            Residency::Full => size,
            Residency::Part(set) => set.iter().map(|r| r.end.min(size).saturating_sub(r.start)).sum(),
        }
    }

    /// The parts of `want` not held (clipped to nothing past `size`).
    pub fn missing(&self, want: Range<u64>, size: u64) -> Vec<Range<u64>> {
        let want = want.start..want.end.min(size);
        match self {
            _ if want.is_empty() => vec![],
            Residency::Full => vec![],
            Residency::Part(set) => set.gaps(&want).collect(),
        }
    }

    /// Records `got` as held; the whole file held becomes `Full`.
    pub fn add(&mut self, got: Range<u64>, size: u64) {
        let Residency::Part(set) = self else { return };
        if !got.is_empty() {
            set.insert(got);
        }
        if set.gaps(&(0..size)).next().is_none() {
            *self = Residency::Full;
        }
    }

    /// The database form: `None` for `Full`, else (start, end) pairs as
    /// little-endian u64s.
    pub fn encode(&self) -> Option<Vec<u8>> {
        let Residency::Part(set) = self else { return None };
        Some(set.iter().flat_map(|r| [r.start.to_le_bytes(), r.end.to_le_bytes()]).flatten().collect())
    }

    pub fn decode(bytes: Option<&[u8]>) -> Result<Residency, String> {
        let Some(bytes) = bytes else { return Ok(Residency::Full) };
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
        Ok(Residency::Part(Box::new(set)))
    }
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
        assert_eq!(Residency::Full.encode(), None);
        assert_eq!(Residency::decode(None).unwrap(), Residency::Full);
        let mut r = Residency::none();
        r.add(5..9, 100);
        r.add(50..60, 100);
        let back = Residency::decode(r.encode().as_deref()).unwrap();
        assert_eq!(back, r);
        assert_eq!(Residency::decode(Some(&[])).unwrap(), Residency::none());
        assert!(Residency::decode(Some(&[1, 2, 3])).is_err());
    }
}
