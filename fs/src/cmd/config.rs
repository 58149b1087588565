//! `MountConfig`: everything a mount needs to start, with defaults.
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct MountConfig {
    pub mountpoint: PathBuf,
    /// Base URL of the hub, e.g. `http://127.0.0.1:7878`.
    pub server: String,
    /// The share to mount (`--share`; None: the token's only one, or the
    /// one the cache holds). Once the mount has chosen: the one it serves.
    pub share: Option<String>,
    /// The token may only read the share: the mount is read-only.
    pub read_only: bool,
    pub cache_dir: PathBuf,
    /// Names this machine in conflict copies.
    pub device_name: String,
    /// How long a stopping mount waits for queued changes to reach the hub.
    pub drain_timeout: Duration,
    pub allow_other: bool,
    /// Entries from the hub keep the owner and group they have there.
    pub sync_owners: bool,
    /// Threads for FUSE requests that may block (`workers.rs`).
    pub fuse_workers: usize,
    /// Let the kernel read and write cache files directly (needs root and Linux 6.9+).
    pub passthrough: bool,
    /// The hub's access token, and the file it came from (None: the environment).
    pub token: crate::remote::token::Token,
    pub token_file: Option<PathBuf>,
    /// The CA (PEM file) an https:// hub is checked against (None: the system's roots).
    pub ca_cert: Option<PathBuf>,
    /// `--cache-max`: the most bytes of contents kept on disk (None: a full
    /// mirror); with it, large files are fetched when read (see cache_limit.rs).
    pub cache_max: Option<u64>,
}

impl MountConfig {
    pub fn new(
        mountpoint: PathBuf,
        server: String,
        share: Option<String>,
        token: crate::remote::token::Token,
    ) -> MountConfig {
        let cache_dir = default_cache_dir(&server, share.as_deref(), &mountpoint);
        MountConfig {
            mountpoint,
            server,
            share,
            read_only: false,
            cache_dir,
            device_name: default_device_name(),
            drain_timeout: Duration::from_secs(10),
            allow_other: false,
            sync_owners: false,
            fuse_workers: 4,
            passthrough: true,
            token,
            token_file: None,
            ca_cert: None,
            cache_max: None,
        }
    }
}

/// `$XDG_CACHE_HOME/ssync/<mount name>-<hash of hub, share and mountpoint>`:
/// one cache per hub, share and mountpoint, so two mounts never share state
/// by accident. (Without `--share`, the key is the one mounts made before
/// shares used.)
pub fn default_cache_dir(server: &str, share: Option<&str>, mountpoint: &Path) -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    let key = match share {
        None => blake3::hash(format!("{server}\n{}", mountpoint.display()).as_bytes()).to_hex(),
        Some(share) => blake3::hash(format!("{server}\n{share}\n{}", mountpoint.display()).as_bytes()).to_hex(),
    };
    let name = mountpoint.file_name().map_or("root".into(), |n| n.to_string_lossy().into_owned());
    base.join("ssync").join(format!("{name}-{}", &key[..12]))
}

pub fn default_device_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .map(|h| h.split('.').next().unwrap_or("").to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "device".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dir_differs_per_hub_share_and_mountpoint() {
        let a = default_cache_dir("http://h:1", None, Path::new("/mnt/a"));
        let b = default_cache_dir("http://h:2", None, Path::new("/mnt/a"));
        let c = default_cache_dir("http://h:1", None, Path::new("/mnt/b"));
        let d = default_cache_dir("http://h:1", Some("photos"), Path::new("/mnt/a"));
        let e = default_cache_dir("http://h:1", Some("taxes"), Path::new("/mnt/a"));
        assert!(a != b && a != c && a != d && d != e);
        assert!(a.to_string_lossy().contains("/ssync/a-"));
    }
}
