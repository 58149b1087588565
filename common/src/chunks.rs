//! Files as lists of content-defined chunks.
//!
//! A file is cut with FastCDC (2020, normalization level 1) into chunks of
//! 16 KiB to 256 KiB, 64 KiB on average; each chunk is named by the BLAKE3
//! hash of its bytes. The file's id (`Entry::hash`) is the BLAKE3 hash of its
//! chunk list, so equal bytes give equal ids and either side can check a list
//! against an id without reading a byte of content.
//!
//! Why these sizes: a one-byte edit re-sends the chunk holding it (and at
//! times its neighbour), so the average bounds what an edit costs on the wire
//! (about 2 x 64 KiB up and down for one byte in the middle); the list costs
//! 36 bytes per chunk, 0.05 % of the data. Smaller chunks cost the hub one
//! more file and fsync per chunk; larger ones make small edits dearer.
use crate::ContentHash;
use std::io::Read;

pub const MIN_CHUNK: u32 = 16 * 1024;
pub const AVG_CHUNK: u32 = 64 * 1024;
pub const MAX_CHUNK: u32 = 256 * 1024;
/// Bytes one chunk takes in an encoded list: its hash, then its length (u32 LE).
pub const LIST_ENTRY: usize = 36;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ChunkRef {
    pub hash: ContentHash,
    pub len: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ListError {
    #[error("a chunk list is a multiple of {LIST_ENTRY} bytes; got {0}")]
    BadLength(usize),
    #[error("a chunk list names an empty chunk")]
    EmptyChunk,
    #[error("the delta does not fit the list it names: {0}")]
    BadDelta(String),
}

/// The ordered chunks of one file's content.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct ChunkList(pub Vec<ChunkRef>);

/// How a list differs from a base list: keep `prefix` chunks from its start and
/// `suffix` from its end, with `middle` between them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListDelta {
    pub prefix: u32,
    pub suffix: u32,
    pub middle: ChunkList,
}

impl ChunkList {
    /// The file id: BLAKE3 of the encoded list.
    pub fn id(&self) -> ContentHash {
        ContentHash::of(&self.to_bytes())
    }

    pub fn size(&self) -> u64 {
        self.0.iter().map(|c| c.len as u64).sum()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() * LIST_ENTRY);
        for c in &self.0 {
            out.extend_from_slice(c.hash.as_bytes());
            out.extend_from_slice(&c.len.to_le_bytes());
        }
        out
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, ListError> {
        if b.len() % LIST_ENTRY != 0 {
            return Err(ListError::BadLength(b.len()));
        }
        let list: Vec<ChunkRef> = b
            .chunks_exact(LIST_ENTRY)
            .map(|e| ChunkRef {
                hash: ContentHash::from_bytes(e[..32].try_into().expect("32 bytes")),
                len: u32::from_le_bytes(e[32..].try_into().expect("4 bytes")),
            })
            .collect();
        if list.iter().any(|c| c.len == 0) {
            return Err(ListError::EmptyChunk);
        }
        Ok(ChunkList(list))
    }

    /// Each chunk with its offset in the file.
    /// The chunks that hold some byte of `[from, to)`, and the offset of the
    /// first of them (the file's size when none does).
    pub fn slice(&self, from: u64, to: u64) -> (u64, ChunkList) {
        let mut start = None;
        let mut out = Vec::new();
        for (off, c) in self.with_offsets().take_while(|_| from < to) {
            if off + c.len as u64 > from && off < to {
                start.get_or_insert(off);
                out.push(c);
            }
        }
        (start.unwrap_or_else(|| self.size()), ChunkList(out))
    }

    pub fn with_offsets(&self) -> impl Iterator<Item = (u64, ChunkRef)> + '_ {
        self.0.iter().scan(0u64, |off, c| {
            let at = *off;
            *off += c.len as u64;
            Some((at, *c))
        })
    }

    /// The common start and end with `base`; what lies between is new.
    pub fn delta_from(&self, base: &ChunkList) -> ListDelta {
        let prefix = self.0.iter().zip(&base.0).take_while(|(a, b)| a == b).count();
        let max_suffix = self.0.len().min(base.0.len()) - prefix;
        let suffix = self.0.iter().rev().zip(base.0.iter().rev()).take(max_suffix).take_while(|(a, b)| a == b).count();
        ListDelta {
            prefix: prefix as u32,
            suffix: suffix as u32,
            middle: ChunkList(self.0[prefix..self.0.len() - suffix].to_vec()),
        }
    }

    /// Rebuilds a list from `base` and a delta made by `delta_from`.
    pub fn apply_delta(base: &ChunkList, d: &ListDelta) -> Result<ChunkList, ListError> {
        let (p, s) = (d.prefix as usize, d.suffix as usize);
        if p.checked_add(s).is_none_or(|n| n > base.0.len()) {
            return Err(ListError::BadDelta(format!("keeps {p}+{s} chunks of a list of {}", base.0.len())));
        }
        let mut out = Vec::with_capacity(p + d.middle.0.len() + s);
        out.extend_from_slice(&base.0[..p]);
        out.extend_from_slice(&d.middle.0);
        out.extend_from_slice(&base.0[base.0.len() - s..]);
        Ok(ChunkList(out))
    }
}

/// Cuts a byte stream into chunks, yielding each with its bytes.
pub struct Chunker<R: Read> {
    inner: fastcdc::v2020::StreamCDC<R>,
}

impl<R: Read> Chunker<R> {
    pub fn new(source: R) -> Self {
        Chunker { inner: fastcdc::v2020::StreamCDC::new(source, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK) }
    }
}

impl<R: Read> Iterator for Chunker<R> {
    type Item = std::io::Result<(ChunkRef, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.inner.next()?;
        Some(match next {
            Ok(c) => Ok((ChunkRef { hash: ContentHash::of(&c.data), len: c.length as u32 }, c.data)),
            Err(fastcdc::v2020::Error::IoError(e)) => Err(e),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        })
    }
}

/// The chunk list of in-memory bytes (the same cut points as `Chunker`).
pub fn list_of(data: &[u8]) -> ChunkList {
    let cdc = fastcdc::v2020::FastCDC::new(data, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK);
    ChunkList(
        cdc.map(|c| ChunkRef { hash: ContentHash::of(&data[c.offset..c.offset + c.length]), len: c.length as u32 })
            .collect(),
    )
}

/// The file id of in-memory bytes (what `Entry::hash` holds for them).
pub fn file_id(data: &[u8]) -> ContentHash {
    list_of(data).id()
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_slice_holds_the_chunks_that_cover_a_range() {
        let c = |n: u8, len: u32| ChunkRef { hash: ContentHash::of(&[n]), len };
        let list = ChunkList(vec![c(1, 10), c(2, 10), c(3, 10)]);
        assert_eq!(list.slice(0, 1), (0, ChunkList(vec![c(1, 10)])));
        assert_eq!(list.slice(9, 11), (0, ChunkList(vec![c(1, 10), c(2, 10)])));
        assert_eq!(list.slice(10, 20), (10, ChunkList(vec![c(2, 10)])));
        assert_eq!(list.slice(25, 1000), (20, ChunkList(vec![c(3, 10)])));
        assert_eq!(list.slice(30, 40), (30, ChunkList(vec![])));
        assert_eq!(list.slice(5, 5), (30, ChunkList(vec![])), "an empty range needs nothing");
    }

    use super::*;

    fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
        let mut out = vec![0u8; n];
        blake3::Hasher::new().update(&seed.to_le_bytes()).finalize_xof().fill(&mut out);
        out
    }

    #[test]
    fn chunks_cover_the_file_within_bounds() {
        let data = pseudo_random(3 << 20, 7);
        let list = list_of(&data);
        assert_eq!(list.size(), data.len() as u64);
        assert!(list.0[..list.len() - 1].iter().all(|c| (MIN_CHUNK..=MAX_CHUNK).contains(&c.len)));
        assert!(list.len() > 20 && list.len() < 200, "{} chunks for 3 MiB", list.len());
        for (off, c) in list.with_offsets() {
            assert_eq!(ContentHash::of(&data[off as usize..(off + c.len as u64) as usize]), c.hash);
        }
    }

    #[test]
    fn an_edit_in_the_middle_changes_few_chunks() {
        let data = pseudo_random(8 << 20, 9);
        let mut edited = data.clone();
        edited[4 << 20] ^= 1;
        let (a, b) = (list_of(&data), list_of(&edited));
        let d = b.delta_from(&a);
        assert!(d.middle.len() <= 2, "{} chunks changed", d.middle.len());
        assert_eq!(ChunkList::apply_delta(&a, &d).unwrap(), b);
        assert_ne!(a.id(), b.id());
        assert_eq!(file_id(&data), a.id());
    }

    #[test]
    fn deltas_round_trip_for_appends_and_prefixes() {
        let data = pseudo_random(2 << 20, 3);
        let mut appended = data.clone();
        appended.extend_from_slice(b"tail");
        let mut prefixed = b"head".to_vec();
        prefixed.extend_from_slice(&data);
        let base = list_of(&data);
        for new in [list_of(&appended), list_of(&prefixed), ChunkList::default(), base.clone()] {
            let d = new.delta_from(&base);
            assert_eq!(ChunkList::apply_delta(&base, &d).unwrap(), new);
        }
        let bad = ListDelta { prefix: base.len() as u32, suffix: 1, middle: ChunkList::default() };
        assert!(ChunkList::apply_delta(&base, &bad).is_err());
    }

    #[test]
    fn streaming_and_in_memory_chunking_agree() {
        let data = pseudo_random(2 << 20, 21);
        let streamed: Vec<ChunkRef> = Chunker::new(&data[..]).map(|c| c.unwrap().0).collect();
        assert_eq!(ChunkList(streamed), list_of(&data));
    }

    #[test]
    fn encoded_lists_round_trip_and_reject_garbage() {
        let list = list_of(&pseudo_random(1 << 20, 5));
        assert_eq!(ChunkList::from_bytes(&list.to_bytes()).unwrap(), list);
        assert_eq!(ChunkList::from_bytes(&[0; 35]), Err(ListError::BadLength(35)));
        assert_eq!(ChunkList::from_bytes(&[0; 36]), Err(ListError::EmptyChunk));
        assert_eq!(list_of(b""), ChunkList::default());
    }
}
