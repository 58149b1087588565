//! The chunk stream format of `POST /v1/chunks` (upload) and
//! `POST /v1/chunks/fetch` (download): frames back to back, each
//! `hash[32] | raw_len u32 LE | wire_len u32 LE | encoding u8 | payload`.
//! Encoding 0 is raw bytes, 1 is zstd; a chunk is compressed only when that
//! makes it smaller. The receiver checks every chunk's hash after decoding.
use crate::chunks::MAX_CHUNK;
use crate::ContentHash;
use bytes::{Buf, Bytes, BytesMut};

pub const HEADER: usize = 41;
const RAW: u8 = 0;
const ZSTD: u8 = 1;
/// Compressing pays only if it saves at least 1/16 of a chunk.
const MIN_SAVING: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("chunk frame of {0} bytes is larger than the {MAX_CHUNK}-byte limit")]
    TooLarge(u64),
    #[error("chunk frame has unknown encoding {0}")]
    BadEncoding(u8),
    #[error("chunk {0} does not decompress: {1}")]
    BadZstd(ContentHash, String),
    #[error("chunk {named} arrived with different bytes (hash {actual})")]
    HashMismatch { named: ContentHash, actual: ContentHash },
    #[error("the chunk stream ends inside a frame")]
    Truncated,
}

/// Appends one frame for `data` (named `hash`) to `out`, compressed if asked and worth it.
pub fn encode(out: &mut Vec<u8>, hash: &ContentHash, data: &[u8], try_zstd: bool) {
    let compressed = if try_zstd && worth_compressing(data) {
        compress(data).filter(|c| c.len() + data.len() / MIN_SAVING < data.len())
    } else {
        None
    };
    let (enc, payload) = match &compressed {
        Some(c) => (ZSTD, c.as_slice()),
        None => (RAW, data),
    };
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.push(enc);
    out.extend_from_slice(payload);
}

/// Compresses a 4 KiB sample first, so random data costs almost nothing.
fn worth_compressing(data: &[u8]) -> bool {
    let sample = &data[..data.len().min(4096)];
    sample.len() >= 64 && compress(sample).is_some_and(|c| c.len() + sample.len() / MIN_SAVING < sample.len())
}

thread_local! {
    // A zstd context costs an allocation and a memset to make; one per thread
    // is reused for every chunk instead of one per call.
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        std::cell::RefCell::new(zstd::bulk::Compressor::new(1).ok());
}

thread_local! {
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        std::cell::RefCell::new(zstd::bulk::Decompressor::new().ok());
}

fn decompress(payload: &[u8], raw_len: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with(|d| match d.borrow_mut().as_mut() {
        Some(d) => d.decompress(payload, raw_len),
        None => zstd::bulk::decompress(payload, raw_len),
    })
}

fn compress(data: &[u8]) -> Option<Vec<u8>> {
    COMPRESSOR.with(|c| match c.borrow_mut().as_mut() {
        Some(c) => c.compress(data).ok(),
        None => zstd::bulk::compress(data, 1).ok(),
    })
}

/// A decoded, verified chunk.
#[derive(Debug)]
pub struct Chunk {
    pub hash: ContentHash,
    pub data: Bytes,
}

/// Incremental decoder: push what the network delivers, take whole chunks out.
#[derive(Default)]
pub struct FrameReader {
    buf: BytesMut,
}

impl FrameReader {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole chunk, decoded and checked; `None` until one has arrived.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, FrameError> {
        if self.buf.len() < HEADER {
            return Ok(None);
        }
        let h = &self.buf[..HEADER];
        let hash = ContentHash::from_bytes(h[..32].try_into().expect("32 bytes"));
        let raw_len = u32::from_le_bytes(h[32..36].try_into().expect("4 bytes"));
        let wire_len = u32::from_le_bytes(h[36..40].try_into().expect("4 bytes"));
        let enc = h[40];
        if raw_len > MAX_CHUNK || wire_len > MAX_CHUNK {
            return Err(FrameError::TooLarge(raw_len.max(wire_len) as u64));
        }
        if self.buf.len() < HEADER + wire_len as usize {
            return Ok(None);
        }
        self.buf.advance(HEADER);
        let payload = self.buf.split_to(wire_len as usize).freeze();
        let data = match enc {
            RAW => payload,
            ZSTD => decompress(&payload, raw_len as usize)
                .map(Bytes::from)
                .map_err(|e| FrameError::BadZstd(hash, e.to_string()))?,
            other => return Err(FrameError::BadEncoding(other)),
        };
        let actual = ContentHash::of(&data);
        if actual != hash || data.len() != raw_len as usize {
            return Err(FrameError::HashMismatch { named: hash, actual });
        }
        Ok(Some(Chunk { hash, data }))
    }

    /// Call at the end of the stream: leftover bytes mean it was cut off.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_raw_and_compressed() {
        let text = b"abc".repeat(20_000);
        let noise: Vec<u8> = (0..50_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let mut wire = Vec::new();
        for d in [&text[..], &noise[..], b"x"] {
            encode(&mut wire, &ContentHash::of(d), d, true);
        }
        assert!(wire.len() < text.len() / 4 + noise.len() + 200, "repetitive text is compressed");
        let mut r = FrameReader::default();
        let mut got = Vec::new();
        for piece in wire.chunks(1000) {
            r.push(piece);
            while let Some(c) = r.next_chunk().unwrap() {
                got.push(c.data.to_vec());
            }
        }
        r.finish().unwrap();
        assert_eq!(got, vec![text.clone(), noise, b"x".to_vec()]);
    }

    #[test]
    fn a_wrong_hash_or_a_cut_stream_is_refused() {
        let mut wire = Vec::new();
        encode(&mut wire, &ContentHash::of(b"other"), b"data", false);
        let mut r = FrameReader::default();
        r.push(&wire);
        assert!(matches!(r.next_chunk(), Err(FrameError::HashMismatch { .. })));
        let mut wire = Vec::new();
        encode(&mut wire, &ContentHash::of(b"data"), b"data", false);
        let mut r = FrameReader::default();
        r.push(&wire[..wire.len() - 1]);
        assert!(r.next_chunk().unwrap().is_none());
        assert_eq!(r.finish(), Err(FrameError::Truncated));
        let mut huge = wire.clone();
        huge[32..36].copy_from_slice(&(MAX_CHUNK + 1).to_le_bytes());
        let mut r = FrameReader::default();
        r.push(&huge);
        assert!(matches!(r.next_chunk(), Err(FrameError::TooLarge(_))));
    }
}
