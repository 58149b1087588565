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
    let url = format!("{}/v1/shares/default/changes?since=9223372036854775807&wait=0", hub.url());
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

/// Where a bench keeps its folders, caches and hub: a fresh ext4 with a
/// journal (what a user's disk has) in a loop image when run as root, else
/// a folder in /var/tmp. On a disk that has seen other runs' deletes,
/// creates are slow for minutes: ext4 without a journal (as this machine's
/// root disk is) checks every inode freed in the last minute, or five
/// while its bitmap is dirty, before it reuses one, and a plain folder's
/// create cost swung from 9 to 244 µs between runs here. `SSYNC_BENCH_DISK=host`
/// keeps the old place. Unmounted and removed on drop.
pub struct BenchDisk {
    dir: Option<tempfile::TempDir>,
    fs: Option<PathBuf>,
    /// The loop device under `fs`, detached on drop.
    dev: Option<PathBuf>,
}

impl BenchDisk {
    pub fn new(prefix: &str) -> BenchDisk {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir_in("/var/tmp").expect("temp dir");
        let wanted = std::env::var("SSYNC_BENCH_DISK").map_or(true, |v| v != "host");
        // SAFETY: geteuid has no preconditions and cannot fail.
        if !wanted || unsafe { libc::geteuid() } != 0 {
            return BenchDisk { dir: Some(dir), fs: None, dev: None };
        }
        let (image, fs) = (dir.path().join("disk.img"), dir.path().join("fs"));
        std::fs::create_dir_all(&fs).unwrap();
        // Sparse: it takes only what the bench writes.
        std::fs::File::create(&image).and_then(|f| f.set_len(knob("BENCH_DISK_GB", 32u64) << 30)).unwrap();
        // Direct I/O: the loop device writes to the disk as a disk would,
        // not into a second page cache (fsstress seed 1 took 22 s to reach
        // the other mount through a buffered loop, 11 through this one).
        let loop_dev = Command::new("losetup")
            .args(["--find", "--show", "--direct-io=on"])
            .arg(&image)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
        let Some(dev) = loop_dev else {
            eprintln!("no loop device for a scratch ext4: the bench runs in {}", dir.path().display());
            return BenchDisk { dir: Some(dir), fs: None, dev: None };
        };
        let ok = |c: &mut Command| c.status().is_ok_and(|s| s.success());
        let mut disk = BenchDisk { dir: Some(dir), fs: None, dev: Some(dev.clone()) };
        if ok(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&dev)) && ok(Command::new("mount").arg(&dev).arg(&fs)) {
            disk.fs = Some(fs);
        } else {
            eprintln!("cannot make a scratch ext4 on {}: the bench runs in a folder", dev.display());
        }
        disk
    }

    pub fn path(&self) -> &Path {
        self.fs.as_deref().unwrap_or_else(|| self.dir.as_ref().expect("kept until drop").path())
    }

    /// What the bench ran on, for its header.
    pub fn describe(&self) -> &'static str {
        match self.fs {
            Some(_) => "a fresh ext4 (with a journal) in a loop image (direct I/O)",
            None => "a folder in /var/tmp",
        }
    }

    /// Keeps the folder (logs included) instead of removing it; a scratch
    /// ext4 stays mounted.
    pub fn keep(mut self) -> PathBuf {
        let path = self.path().to_path_buf();
        let _ = (self.fs.take(), self.dev.take());
        let _ = self.dir.take().expect("kept until drop").keep();
        path
    }

    /// Whether creates after many deletes are slow for a while (see above).
    pub fn slow_after_deletes(&self) -> bool {
        self.fs.is_none()
    }
}

impl Drop for BenchDisk {
    fn drop(&mut self) {
        if let Some(fs) = self.fs.take() {
            let _ = Command::new("umount").arg(&fs).status();
        }
        if let Some(dev) = self.dev.take() {
            let _ = Command::new("losetup").arg("-d").arg(&dev).status();
        }
    }
}
