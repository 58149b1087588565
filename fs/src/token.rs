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
    let meta = std::fs::metadata(path).map_err(|e| TokenError::Unreadable(path.into(), e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(TokenError::Exposed(path.into()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| TokenError::Unreadable(path.into(), e))?;
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
}
