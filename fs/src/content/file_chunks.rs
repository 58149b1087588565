//! The chunk list of a file on disk, cut exactly as `ssync_common::chunks`
//! cuts a stream, but without reading or hashing the file's holes.
//!
//! Programs write sparse files (fsstress, databases, VM images, `truncate`
//! to grow). Read as a stream, a hole is zeros to read, cut and hash; a
//! mount identifying 3.6 GB of such files spent most of its time there.
//! FastCDC's cut point depends only on the bytes from the chunk's start to
//! at most `MAX_CHUNK` after it, so a chunk that starts at least
//! `MAX_CHUNK` before the end of a hole is always the same: the cut of
//! `MAX_CHUNK` zeros, with the same hash. Those are taken without reading;
//! everything else is read (holes near data read as zeros) and cut as the
//! stream would be.
use ssync_common::chunks::{AVG_CHUNK, MAX_CHUNK, MIN_CHUNK};
use ssync_common::{ChunkList, ChunkRef, ContentHash};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::OnceLock;

/// Bytes read at once (a multiple of the largest chunk).
const WINDOW: usize = 16 * MAX_CHUNK as usize;

/// The chunk a run of at least `MAX_CHUNK` zeros starts with. A download
/// leaves it a hole instead of writing it (`chunk_download`).
pub(crate) fn zero_chunk() -> ChunkRef {
    static ZERO: OnceLock<ChunkRef> = OnceLock::new();
    *ZERO.get_or_init(|| {
        let zeros = vec![0u8; MAX_CHUNK as usize];
        let cdc = fastcdc::v2020::FastCDC::new(&zeros, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK);
        let (_, len) = cdc.cut(0, zeros.len());
        ChunkRef { hash: ContentHash::of(&zeros[..len]), len: len as u32 }
    })
}

/// Where the hole that `at` lies in ends, if `at` is in a hole (Linux
/// SEEK_DATA: the next data at or after `at`; none means a hole to the end).
fn hole_end(f: &File, at: u64, size: u64) -> Option<u64> {
    // SAFETY: lseek on a file descriptor this `File` owns; it moves only
    // the descriptor's offset, which the positioned reads here never use.
    let next = unsafe { libc::lseek(f.as_raw_fd(), at as libc::off_t, libc::SEEK_DATA) };
    if next < 0 {
        // ENXIO: no data after `at`. Any other error: read it all instead.
        return (std::io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO)).then_some(size);
    }
    (next as u64 > at).then_some(next as u64)
}

/// The chunk list of `path` as `ssync_common::chunks::Chunker` gives it.
pub fn list_of_file(path: &Path) -> std::io::Result<ChunkList> {
    let f = File::open(path)?;
    let size = f.metadata()?.len();
    let max = MAX_CHUNK as u64;
    let mut list = Vec::new();
    let mut at = 0u64;
    let mut buf: Vec<u8> = Vec::new();
    // `buf` holds the file's bytes from `buf_at`.
    let mut buf_at = 0u64;
    while at < size {
        if let Some(end) = hole_end(&f, at, size).filter(|end| end - at >= max) {
            let zero = zero_chunk();
            while end - at >= max {
                list.push(zero);
                at += zero.len as u64;
            }
            buf.clear();
            continue;
        }
        // The window the stream would cut from: up to MAX_CHUNK bytes, or
        // all that is left.
        let need = max.min(size - at);
        if at < buf_at || at + need > buf_at + buf.len() as u64 {
            let len = (WINDOW as u64).min(size - at) as usize;
            buf.resize(len, 0);
            f.read_exact_at(&mut buf, at)?;
            buf_at = at;
        }
        let start = (at - buf_at) as usize;
        let cdc = fastcdc::v2020::FastCDC::new(&buf, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK);
        // Cut every chunk whose window lies in the buffer, then read on.
        let mut from = start;
        loop {
            let left = buf.len() - from;
            let in_file = size - (buf_at + from as u64);
            if left == 0 || (left as u64) < max.min(in_file) {
                break;
            }
            let (_, cut) = cdc.cut(from, left);
            let len = cut - from;
            list.push(ChunkRef { hash: ContentHash::of(&buf[from..cut]), len: len as u32 });
            from = cut;
            // A hole ahead may be skipped: look again from the top.
            if len as u64 == max && buf[from.saturating_sub(1)] == 0 {
                break;
            }
        }
        at = buf_at + from as u64;
    }
    Ok(ChunkList(list))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ssync_common::chunks::Chunker;

    fn streamed(path: &Path) -> ChunkList {
        ChunkList(Chunker::new(File::open(path).unwrap()).map(|c| c.unwrap().0).collect())
    }

    /// `len` bytes no chunk store holds yet, from `seed` (tests of other
    /// parts use it too).
    pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// Bytes written at an offset.
    type Part = (u64, Vec<u8>);

    /// Writes `parts` into a sparse file of `size` bytes.
    fn sparse(dir: &Path, name: &str, size: u64, parts: &[Part]) -> std::path::PathBuf {
        let path = dir.join(name);
        let f = File::create(&path).unwrap();
        f.set_len(size).unwrap();
        for (off, data) in parts {
            f.write_all_at(data, *off).unwrap();
        }
        path
    }

    #[test]
    fn cuts_as_the_stream_does_with_and_without_holes() {
        let dir = tempfile::tempdir().unwrap();
        let mb = 1u64 << 20;
        let cases: Vec<(u64, Vec<Part>)> = vec![
            (0, vec![]),
            (100, vec![(0, noise(100, 1))]),
            (3 * mb, vec![(0, noise(3 * mb as usize, 2))]),
            // Holes only, of sizes around the largest chunk.
            (16 * mb, vec![]),
            (MAX_CHUNK as u64 - 1, vec![]),
            (MAX_CHUNK as u64 * 3 + 12345, vec![]),
            // Data, a hole, data, a hole to the end.
            (20 * mb, vec![(0, noise(70_000, 3)), (5 * mb + 4097, noise(300_000, 4))]),
            // Data in the last bytes after a long hole.
            (9 * mb + 17, vec![(9 * mb - 1000, noise(1017, 5))]),
            // Zeros written as data (not a hole) beside noise.
            (4 * mb, vec![(mb, vec![0; 2 * mb as usize]), (3 * mb + 5, noise(1000, 6))]),
        ];
        for (i, (size, parts)) in cases.iter().enumerate() {
            let path = sparse(dir.path(), &format!("f{i}"), *size, parts);
            assert_eq!(list_of_file(&path).unwrap(), streamed(&path), "case {i}: size {size}");
        }
        // Random layouts.
        for seed in 0..40u64 {
            let mut x = seed * 7919 + 1;
            let mut next = |n: u64| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (x >> 33) % n
            };
            let size = next(12 * mb) + 1;
            let parts: Vec<Part> =
                (0..next(6)).map(|k| (next(size), noise(next(600_000) as usize + 1, seed * 31 + k))).collect();
            let path = sparse(dir.path(), &format!("r{seed}"), size, &parts);
            assert_eq!(list_of_file(&path).unwrap(), streamed(&path), "seed {seed}");
        }
    }
}
