//! Where a running mount tells the `ssync` command how it is doing: one JSON
//! file per mountpoint in a runtime folder, rewritten every half second
//! (temp file + rename) and removed when the mount stops.
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountStatus {
    pub mountpoint: PathBuf,
    pub server: String,
    /// The share mounted (None: a mount from before shares, of the default
    /// share), and whether the token may only read it.
    #[serde(default)]
    pub share: Option<String>,
    #[serde(default)]
    pub read_only: bool,
    pub cache_dir: PathBuf,
    pub device: String,
    pub pid: u32,
    pub online: bool,
    /// When `online` last changed (Unix ns).
    pub since_ns: i64,
    pub queued: usize,
    /// Queued changes sent per second, over the last few seconds.
    #[serde(default)]
    pub sent_per_sec: f64,
    /// While the mount brings its tree in line with the hub's (its first
    /// sync, or a reconcile with work to do): entries done and in all.
    #[serde(default)]
    pub syncing: Option<(u64, u64)>,
    pub last_error: Option<String>,
    pub recent_conflicts: Vec<String>,
    pub uploads: u64,
    pub downloads: u64,
    /// Set when syncing stopped (the hub is not the one this cache synced
    /// with, or it refused the token); `halt_reason` says which.
    pub halted: bool,
    #[serde(default)]
    pub halt_reason: Option<String>,
    /// The token file the mount was started with, for the `ssync` command.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The CA certificate the mount checks an https:// hub against.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    pub updated_ns: i64,
    /// What the cache holds (bytes), and its limit (None: a full mirror).
    #[serde(default)]
    pub cache: CacheStatus,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CacheStatus {
    pub limit: Option<u64>,
    pub cached: u64,
    pub pinned: u64,
    pub dirty: u64,
    /// Bytes of content fetched from the hub on demand, since the mount started.
    pub fetched: u64,
}

/// `$XDG_RUNTIME_DIR/ssync`, else `/run/ssync` for root, else `/tmp/ssync-UID`.
pub fn registry_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("ssync");
    }
    let uid = nix::unistd::getuid();
    if uid.is_root() {
        PathBuf::from("/run/ssync")
    } else {
        std::env::temp_dir().join(format!("ssync-{uid}"))
    }
}

pub fn status_path(mountpoint: &Path) -> PathBuf {
    let key = blake3::hash(mountpoint.as_os_str().as_encoded_bytes()).to_hex();
    registry_dir().join(format!("mount-{}.json", &key[..16]))
}

pub fn write(status: &MountStatus) -> std::io::Result<()> {
    let path = status_path(&status.mountpoint);
    let dir = path.parent().expect("status files live in a folder");
    std::fs::create_dir_all(dir)?;
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(tmp.as_file(), status)?;
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok(())
}

pub fn read(mountpoint: &Path) -> Option<MountStatus> {
    serde_json::from_slice(&std::fs::read(status_path(mountpoint)).ok()?).ok()
}

pub fn remove(mountpoint: &Path) {
    let _ = std::fs::remove_file(status_path(mountpoint));
}

/// Every status file in the registry.
pub fn list() -> Vec<MountStatus> {
    let Ok(rd) = std::fs::read_dir(registry_dir()) else { return vec![] };
    let mut out: Vec<MountStatus> = rd
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("mount-"))
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .collect();
    out.sort_by(|a, b| a.mountpoint.cmp(&b.mountpoint));
    out
}

pub fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
