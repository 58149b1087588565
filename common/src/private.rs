//! Files on disk that only their owner may read: a mount's cache dir and a
//! hub's data dir hold the contents of every synced file, whatever its mode
//! in the tree, and the names of all of them. So both keep folders 0700 and
//! files 0600, whatever the umask, and an existing dir with wider modes (made
//! by an older version, or by hand) is tightened when it is opened.
//!
//! Three layers, each enough alone for what it covers:
//! - `dir` and `file_options` create with those modes explicitly;
//! - `restrict_umask` (called by the binaries) makes anything created some
//!   other way (SQLite's files, a temp file of a crate) private too;
//! - `tighten` walks a dir once at start and narrows what is wider.
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every folder in a private dir.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file in a private dir (no execute bit: contents are data here).
pub const FILE_MODE: u32 = 0o600;

/// Creates `path` and any missing parents as private folders; an existing
/// folder keeps its mode (see `tighten`).
pub fn dir(path: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(path)
}

/// Creates `root` private, or narrows an existing one that lets group or
/// others in (made by an older version, or by hand), saying so in the log:
/// `what` names it there ("the cache dir").
///
/// Only a dir whose root or direct entries are wider is walked: one made by
/// this version is private from its first file, so a start does not stat
/// every cached file (and with the root 0700, nothing below is reachable).
pub fn prepare(root: &Path, what: &str) -> std::io::Result<()> {
    dir(root)?;
    if !top_is_wider(root)? {
        return Ok(());
    }
    let done = tighten(root)?;
    if done.any() {
        tracing::warn!(
            dir = %root.display(),
            folders = done.dirs,
            files = done.files,
            "{what} let other users read it; narrowed it to folders 0700 and files 0600"
        );
    }
    Ok(())
}

/// Options that create a file 0600 (the umask can only narrow it).
pub fn file_options() -> std::fs::OpenOptions {
    let mut o = std::fs::OpenOptions::new();
    o.mode(FILE_MODE);
    o
}

/// Creates (or truncates) `path` as a private file, open for writing.
pub fn create_file(path: &Path) -> std::io::Result<std::fs::File> {
    file_options().write(true).create(true).truncate(true).open(path)
}

/// Makes `path` an empty private file if it does not exist yet (SQLite then
/// opens it and gives its `-wal` and `-shm` files the same mode).
pub fn precreate(path: &Path) -> std::io::Result<()> {
    match file_options().write(true).create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sets the process umask to 077, so whatever this process creates is
/// private unless it says otherwise. For the binaries' `main`: the umask
/// belongs to the whole process.
pub fn restrict_umask() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
}

/// Whether `root` or anything directly in it lets group or others in.
fn top_is_wider(root: &Path) -> std::io::Result<bool> {
    let wider = |m: &std::fs::Metadata| !m.file_type().is_symlink() && m.permissions().mode() & 0o077 != 0;
    if wider(&std::fs::symlink_metadata(root)?) {
        return Ok(true);
    }
    for entry in std::fs::read_dir(root)? {
        match entry?.metadata() {
            Ok(m) if wider(&m) => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// What `tighten` changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tightened {
    pub dirs: usize,
    pub files: usize,
}

impl Tightened {
    pub fn any(&self) -> bool {
        self.dirs + self.files > 0
    }
}

/// Narrows `root` and everything below it to 0700 folders and files without
/// group or other bits. Symlinks are not followed (their own mode means
/// nothing on Linux). A file that vanishes meanwhile is skipped.
pub fn tighten(root: &Path) -> std::io::Result<Tightened> {
    let mut done = Tightened::default();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        narrow(&dir, true, &mut done)?;
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let ty = match entry.file_type() {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if ty.is_dir() {
                stack.push(entry.path());
            } else if !ty.is_symlink() {
                narrow(&entry.path(), false, &mut done)?;
            }
        }
    }
    Ok(done)
}

fn narrow(path: &Path, is_dir: bool, done: &mut Tightened) -> std::io::Result<()> {
    let mode = match std::fs::symlink_metadata(path) {
        Ok(m) => m.permissions().mode() & 0o7777,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let want = if is_dir { (mode & 0o700) | DIR_MODE } else { mode & 0o700 };
    if want != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(want))?;
        match is_dir {
            true => done.dirs += 1,
            false => done.files += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn created_dirs_and_files_are_private_whatever_the_umask() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b");
        dir(&d).unwrap();
        assert_eq!(mode(&t.path().join("a")), 0o700);
        assert_eq!(mode(&d), 0o700);
        create_file(&d.join("f")).unwrap();
        assert_eq!(mode(&d.join("f")) & 0o077, 0);
        precreate(&d.join("db")).unwrap();
        precreate(&d.join("db")).unwrap();
        assert_eq!(mode(&d.join("db")) & 0o077, 0);
    }

    #[test]
    fn tighten_narrows_an_old_dir_and_counts_what_it_changed() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("cache");
        std::fs::create_dir_all(root.join("files")).unwrap();
        std::fs::write(root.join("files/1"), b"secret").unwrap();
        std::fs::write(root.join("state.db"), b"names").unwrap();
        for (p, m) in [("", 0o755), ("files", 0o755), ("files/1", 0o644), ("state.db", 0o664)] {
            std::fs::set_permissions(root.join(p), std::fs::Permissions::from_mode(m)).unwrap();
        }
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        assert!(top_is_wider(&root).unwrap());
        let done = tighten(&root).unwrap();
        assert_eq!(done, Tightened { dirs: 2, files: 2 });
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("files/1")), 0o600);
        assert_eq!(mode(&root.join("state.db")), 0o600);
        assert!(!top_is_wider(&root).unwrap());
        assert_eq!(tighten(&root).unwrap(), Tightened::default(), "a second pass changes nothing");
    }
}
