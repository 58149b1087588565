//! Tree digests for cheap anti-entropy. A folder's digest is the XOR of one
//! hash per live entry, `entry_digest(path, version)`: the hub updates it in
//! place on every change (XOR out the old state, XOR in the new), and a mount
//! computes the same over the versions it holds. Equal digests mean equal
//! trees, so an idle mount compares one digest instead of downloading every
//! entry, and descends only into folders whose digests differ.
use crate::ContentHash;

/// The digest of nothing (an empty folder).
pub const EMPTY: ContentHash = ContentHash::from_bytes([0; 32]);

/// One live entry's share of its folders' digests.
pub fn entry_digest(path: &str, version: u64) -> ContentHash {
    let mut h = blake3::Hasher::new();
    h.update(path.as_bytes());
    h.update(&[0]);
    h.update(&version.to_le_bytes());
    ContentHash::from_bytes(*h.finalize().as_bytes())
}

pub fn xor(a: &ContentHash, b: &ContentHash) -> ContentHash {
    let mut out = *a.as_bytes();
    out.iter_mut().zip(b.as_bytes()).for_each(|(o, x)| *o ^= x);
    ContentHash::from_bytes(out)
}

/// The folder `path` lies directly in ("" for the root).
pub fn folder_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

/// Every folder `path` lies below, the root ("") first.
pub fn folders_above(path: &str) -> impl Iterator<Item = &str> {
    std::iter::once("").chain(path.match_indices('/').map(move |(i, _)| &path[..i]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xor_of_a_set_does_not_depend_on_order_and_undoes_itself() {
        let (a, b) = (entry_digest("a", 1), entry_digest("a/b", 2));
        assert_eq!(xor(&xor(&EMPTY, &a), &b), xor(&xor(&EMPTY, &b), &a));
        assert_eq!(xor(&xor(&a, &b), &b), a);
        assert_ne!(entry_digest("a", 1), entry_digest("a", 2), "a new version changes the digest");
    }

    #[test]
    fn folders_of_a_path() {
        assert_eq!(folder_of("a/b/c"), "a/b");
        assert_eq!(folder_of("top"), "");
        assert_eq!(folders_above("a/b/c").collect::<Vec<_>>(), vec!["", "a", "a/b"]);
        assert_eq!(folders_above("top").collect::<Vec<_>>(), vec![""]);
    }
}
