//! What the benches in `src/bin` share: knobs from the environment, medians,
//! the hub's latest change, small files made the same way on every folder
//! measured, and bindfs (a bare FUSE passthrough: the floor for any FUSE
//! filesystem) as a baseline.
use crate::Hub;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The knob `name` from the environment, else `default`.
pub fn knob<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The hub's latest change (an empty page's cursor: a full first page's
/// cursor would be its last row).
pub fn hub_cursor(hub: &Hub) -> u64 {
    let url = format!("{}/v1/changes?since=9223372036854775807&wait=0", hub.url());
    let page: serde_json::Value = hub.http().get(url).send().unwrap().json().unwrap();
    page["cursor"].as_u64().expect("a page has a cursor")
}

/// Makes `files` files of 4 KiB in `dirs` folders below `root`; how long it took.
pub fn create_small_files(root: &Path, files: usize, dirs: usize) -> Duration {
    let body = vec![b'x'; 4096];
    let t = Instant::now();
    for d in 0..dirs {
        std::fs::create_dir_all(root.join(format!("d{d}"))).unwrap();
    }
    for i in 0..files {
        std::fs::write(root.join(format!("d{}/f{i}", i % dirs)), &body).unwrap();
    }
    t.elapsed()
}

/// bindfs over a plain folder, unmounted on drop.
pub struct Bindfs {
    pub path: PathBuf,
}

impl Bindfs {
    pub fn mount(under: &Path) -> Bindfs {
        let (src, path) = (under.join("bind-src"), under.join("bind"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&path).unwrap();
        let st = Command::new("bindfs").arg(&src).arg(&path).status();
        assert!(st.is_ok_and(|s| s.success()), "bindfs is needed for the FUSE baseline: apt-get install bindfs");
        Bindfs { path }
    }
}

impl Drop for Bindfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
