//! BLAKE3 content hashes: the name of every stored object.
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContentHash([u8; 32]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("content hash must be 64 lowercase hex digits")]
pub struct BadHash;

impl ContentHash {
    pub fn of(data: &[u8]) -> Self {
        ContentHash(*blake3::hash(data).as_bytes())
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    pub const fn from_bytes(b: [u8; 32]) -> Self {
        ContentHash(b)
    }
}

impl FromStr for ContentHash {
    type Err = BadHash;
    fn from_str(s: &str) -> Result<Self, BadHash> {
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(BadHash);
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| BadHash)?;
        Ok(ContentHash(out))
    }
}

impl TryFrom<String> for ContentHash {
    type Error = BadHash;
    fn try_from(s: String) -> Result<Self, BadHash> {
        s.parse()
    }
}

impl From<ContentHash> for String {
    fn from(h: ContentHash) -> String {
        h.to_hex()
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", &self.to_hex()[..12])
    }
}

/// Streaming hasher: feed it the bytes as they pass, read the hash at the end.
#[derive(Default, Clone)]
pub struct ContentHasher {
    inner: blake3::Hasher,
    len: u64,
}

impl ContentHasher {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
        self.len += data.len() as u64;
    }
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn finish(&self) -> ContentHash {
        ContentHash(*self.inner.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_equals_one_shot_and_hex_round_trips() {
        let data = b"hello ssync, hello world";
        let mut h = ContentHasher::new();
        h.update(&data[..5]);
        h.update(&data[5..]);
        assert_eq!(h.finish(), ContentHash::of(data));
        assert_eq!(h.len(), data.len() as u64);
        let hex = h.finish().to_hex();
        assert_eq!(hex.parse::<ContentHash>().unwrap(), h.finish());
    }

    #[test]
    fn rejects_malformed_hex() {
        assert_eq!("abc".parse::<ContentHash>(), Err(BadHash));
        assert_eq!("../".repeat(22)[..64].parse::<ContentHash>(), Err(BadHash));
        assert_eq!("A".repeat(64).parse::<ContentHash>(), Err(BadHash));
    }
}
