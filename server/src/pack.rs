//! One pack file being written: chunks back to back in a temp file, made
//! durable and given a fresh name under `packs/` by `install`. Blocking code;
//! callers run it on the blocking pool.
use ssync_common::ContentHash;
use std::io::Write;
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// (hash, offset, length) of each chunk in a pack.
pub type PackIndex = Vec<(ContentHash, u64, u32)>;

pub struct PackWriter {
    file: NamedTempFile,
    index: PackIndex,
    len: u64,
}

pub fn pack_path(packs: &Path, pack: u64) -> PathBuf {
    packs.join(format!("{pack:016x}.pack"))
}

/// The id in a pack file's name, if it is one.
pub fn pack_id(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".pack")?;
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok()).flatten()
}

impl PackWriter {
    pub fn create(tmp: &Path) -> std::io::Result<Self> {
        Ok(PackWriter { file: tempfile::Builder::new().suffix(".pack").tempfile_in(tmp)?, index: Vec::new(), len: 0 })
    }

    pub fn add(&mut self, hash: ContentHash, data: &[u8]) -> std::io::Result<()> {
        self.file.write_all(data)?;
        // The disk starts on this chunk while the next arrive; `install`'s
        // fsync then waits for little.
        ssync_common::writeback::start(self.file.as_file(), self.len, data.len() as u64)?;
        self.index.push((hash, self.len, data.len() as u32));
        self.len += data.len() as u64;
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Syncs the pack, links it into `packs` under a new random id (never
    /// replacing a pack) and syncs that folder, so the pack is durable before
    /// anything records it. Returns the id and where each chunk is.
    pub fn install(self, packs: &Path) -> std::io::Result<(u64, PackIndex)> {
        self.file.as_file().sync_data()?;
        let mut temp = self.file.into_temp_path();
        let id = loop {
            let id = fastrand::u64(..);
            match temp.persist_noclobber(pack_path(packs, id)) {
                Ok(()) => break id,
                Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => temp = e.path,
                Err(e) => return Err(e.error),
            }
        };
        std::fs::File::open(packs)?.sync_all()?;
        Ok((id, self.index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn chunks_read_back_at_their_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, packs) = (dir.path().join("tmp"), dir.path().join("packs"));
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::create_dir_all(&packs).unwrap();
        let mut w = PackWriter::create(&tmp).unwrap();
        for data in [&b"first"[..], b"second chunk"] {
            w.add(ContentHash::of(data), data).unwrap();
        }
        let (id, index) = w.install(&packs).unwrap();
        let f = std::fs::File::open(pack_path(&packs, id)).unwrap();
        for (hash, off, len) in index {
            let mut buf = vec![0; len as usize];
            f.read_exact_at(&mut buf, off).unwrap();
            assert_eq!(ContentHash::of(&buf), hash);
        }
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "the temp file became the pack");
        assert_eq!(pack_id(&format!("{id:016x}.pack")), Some(id));
        assert_eq!(pack_id("0123.pack"), None);
    }
}
