//! Where a mount (and the `ssync` command) finds the hub's access token:
//! `--token-file FILE`, else the `SSYNC_TOKEN` environment variable, else
//! `$XDG_CONFIG_HOME/ssync/token` (`~/.config/ssync/token`). Never from the
//! command line, where `ps` would show it to every user.
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "no access token: pass --token-file FILE, set SSYNC_TOKEN, or put it in {0} (chmod 600). \
         A hub prints its admin token when it first starts; 'ssync-server token add NAME' makes more"
    )]
    Missing(PathBuf),
    #[error("the token file {0} can be read by group or others: run 'chmod 600 {0}'")]
    Exposed(PathBuf),
    #[error("the token file {0} is not a regular file; put the token in a file (chmod 600)")]
    NotAFile(PathBuf),
    #[error(
        "the token file {path} belongs to user {owner}, not to this user ({me}): another user could change \
         it; copy it to a file of your own and chmod 600 it"
    )]
    NotOwned { path: PathBuf, owner: u32, me: u32 },
    #[error("cannot read the token file {0}: {1}")]
    Unreadable(PathBuf, std::io::Error),
    #[error("the token file {0} is empty")]
    Empty(PathBuf),
}

/// A token; its Debug form does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

/// `$XDG_CONFIG_HOME/ssync/token`, else `~/.config/ssync/token`.
pub fn default_file() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("ssync")
        .join("token")
}

/// The token from `file`, else `SSYNC_TOKEN`, else the default file.
pub fn load(file: Option<&Path>) -> Result<Token, TokenError> {
    if let Some(f) = file {
        return read_file(f);
    }
    if let Some(t) = std::env::var("SSYNC_TOKEN").ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()) {
        return Ok(Token(t));
    }
    let default = default_file();
    match default.exists() {
        true => read_file(&default),
        false => Err(TokenError::Missing(default)),
    }
}

fn read_file(path: &Path) -> Result<Token, TokenError> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    // Non-blocking, so a FIFO (or a device) named here cannot hang the start:
    // what was opened is checked before a byte is read.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| TokenError::Unreadable(path.into(), e))?;
    let meta = file.metadata().map_err(|e| TokenError::Unreadable(path.into(), e))?;
    if !meta.is_file() {
        return Err(TokenError::NotAFile(path.into()));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(TokenError::NotOwned { path: path.into(), owner: meta.uid(), me });
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(TokenError::Exposed(path.into()));
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(|e| TokenError::Unreadable(path.into(), e))?;
    match text.trim() {
        "" => Err(TokenError::Empty(path.into())),
        t => Ok(Token(t.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_file_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "ssync_abc\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load(Some(&f)).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(load(Some(&f)).unwrap().as_str(), "ssync_abc");
        assert_eq!(format!("{:?}", load(Some(&f)).unwrap()), "Token(…)", "Debug never shows it");
        std::fs::write(&f, "\n").unwrap();
        assert!(matches!(load(Some(&f)), Err(TokenError::Empty(_))));
    }

    #[test]
    fn a_fifo_or_a_folder_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // With nothing writing to it, a blocking open would wait for ever.
        assert!(matches!(load(Some(&fifo)), Err(TokenError::NotAFile(_))));
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(matches!(load(Some(&sub)), Err(TokenError::NotAFile(_))));
    }

    #[test]
    fn a_token_file_of_another_user_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            return; // only root can make a file another user owns
        }
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "ssync_abc\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&f, Some(65534), None).unwrap();
        let err = load(Some(&f)).unwrap_err();
        assert!(matches!(err, TokenError::NotOwned { owner: 65534, .. }), "{err}");
        assert!(err.to_string().contains("copy it to a file of your own"), "{err}");
    }
}
