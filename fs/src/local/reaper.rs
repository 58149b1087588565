//! Removing cache files no node needs any more, off the FUSE thread.
//!
//! Deleting a file costs the local filesystem more than creating one (ext4
//! frees its blocks and, without a journal, scans recently freed inodes on
//! the next allocations). `rm -rf` on the mount waited for that once per
//! file; now an unlink drops the node and hands its cache file to the reaper
//! thread. Inode numbers are never reused, so a file waiting here is never
//! confused with a new one. A crash can leave some behind: `sweep` removes
//! them at the next start.
use std::path::{Path, PathBuf};

#[derive(Clone)]
pub struct Reaper {
    tx: crossbeam_channel::Sender<PathBuf>,
}

impl Reaper {
    /// Starts the reaper thread; it ends when every `Reaper` is dropped.
    pub fn spawn() -> std::io::Result<Reaper> {
        let (tx, rx) = crossbeam_channel::unbounded::<PathBuf>();
        std::thread::Builder::new().name("ssync-reaper".into()).spawn(move || {
            for path in rx {
                remove(&path);
            }
        })?;
        Ok(Reaper { tx })
    }

    /// Removes `path` soon. If the thread is gone (the mount is stopping),
    /// removes it now.
    pub fn remove(&self, path: PathBuf) {
        if let Err(e) = self.tx.send(path) {
            remove(&e.0);
        }
    }
}

fn remove(path: &Path) {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            // Only space is at stake; the next start's sweep tries again.
            tracing::warn!(path = %path.display(), "cannot remove an unused cache file: {e}");
        }
        _ => {}
    }
}

/// Removes the files in `files_dir` (named by inode number) that `needed`
/// does not claim: left by a crash before the reaper got to them. Returns
/// how many it removed.
pub fn sweep(files_dir: &Path, needed: impl Fn(u64) -> bool) -> std::io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(files_dir)? {
        let entry = entry?;
        let ino = entry.file_name().to_str().and_then(|n| n.parse::<u64>().ok());
        if ino.is_none_or(|ino| !needed(ino)) {
            remove(&entry.path());
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_keeps_what_is_needed_and_removes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["1", "2", "3", "junk"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let removed = sweep(dir.path(), |ino| ino == 2).unwrap();
        assert_eq!(removed, 3);
        let left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(left, vec!["2".to_string()]);
    }

    #[test]
    fn the_reaper_removes_what_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("7");
        std::fs::write(&path, b"x").unwrap();
        let reaper = Reaper::spawn().unwrap();
        reaper.remove(path.clone());
        reaper.remove(dir.path().join("never-there"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while path.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!path.exists(), "the reaper removed the file within 10 s");
    }
}
