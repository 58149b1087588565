//! The end-to-end harness: a real `ssync-server` process on 127.0.0.1 and real
//! `ssync-mount` processes with real FUSE mounts in a temp dir.
//!
//! Every wait is bounded. `Drop` stops what was started and unmounts, aborting
//! the FUSE connection first if a daemon hangs, so a failing test never leaves
//! a mount or a process behind.
pub mod bench;
pub mod listing;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// This package's binaries sit beside the integration-test executables' `deps/`
/// folder (Cargo builds them before running integration tests).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(|d| if d.ends_with("deps") { d.parent() } else { Some(d) }).expect("target dir");
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing; run the tests with cargo test", path.display());
    path
}

/// Every operation of a hub's API document (fetched without a token):
/// (method, path as documented, with `{share}` and `{id}`, whether it is
/// open to all).
pub fn documented_endpoints(url: &str) -> Vec<(String, String, bool)> {
    let resp = reqwest::blocking::get(format!("{url}/v1/openapi.json")).expect("hub reachable");
    assert_eq!(resp.status().as_u16(), 200, "the API document needs no token");
    let doc: serde_json::Value = resp.json().expect("the API document is JSON");
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            let open = op["security"] == serde_json::json!([{}]);
            out.push((method.to_uppercase(), path.clone(), open));
        }
    }
    out
}

/// Polls `probe` every 10 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut probe: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if probe() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits (bounded) until `path` holds exactly `want`.
pub fn wait_for_content(path: &Path, want: &[u8], timeout: Duration) {
    let ok = wait_until(timeout, || std::fs::read(path).map(|d| d == want).unwrap_or(false));
    if !ok {
        let got = std::fs::read(path)
            .map(|d| format!("{} bytes: {:?}", d.len(), String::from_utf8_lossy(&d[..d.len().min(80)])));
        panic!("{} did not get the expected {} bytes within {timeout:?}; it has {got:?}", path.display(), want.len());
    }
}

pub fn wait_for_absence(path: &Path, timeout: Duration) {
    assert!(wait_until(timeout, || !path.exists()), "{} still exists after {timeout:?}", path.display());
}

pub const SYNC_TIMEOUT: Duration = Duration::from_secs(15);

/// The README's bound: a close (or any change) older than this survives a
/// kill -9 of the mount; fsync makes one durable at once.
pub const CRASH_WINDOW: Duration = Duration::from_millis(250);

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on the pid of a child we own and have not reaped yet.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

fn wait_child(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Ends a child: SIGTERM, then SIGKILL if it does not exit within `grace`.
fn stop_child(child: &mut Child, grace: Duration) -> Option<std::process::ExitStatus> {
    if let Ok(Some(st)) = child.try_wait() {
        return Some(st);
    }
    signal(child, libc::SIGTERM);
    if let Some(st) = wait_child(child, grace) {
        return Some(st);
    }
    let _ = child.kill();
    wait_child(child, Duration::from_secs(5))
}

/// Runs a command to completion within `timeout` (killed after it): exit code and stderr.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> (Option<i32>, String) {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let status = wait_child(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    (status.and_then(|s| s.code()), reader.join().unwrap_or_default())
}

pub struct Hub {
    child: Option<Child>,
    /// The token tests and mounts use, and a private file holding it.
    pub token: String,
    pub token_file: PathBuf,
    pub data: PathBuf,
    pub addr: String,
    /// "http", or "https" for a hub started with --tls-cert.
    pub scheme: String,
    /// The CA mounts check an https hub against (set by TLS tests).
    pub ca_cert: Option<PathBuf>,
    log: PathBuf,
    /// Extra command-line flags, kept across restarts.
    args: Vec<String>,
}

impl Hub {
    /// Starts a hub with its data in `dir/hub` on a free port.
    pub fn start(dir: &Path) -> Hub {
        Self::start_on(&dir.join("hub"), "127.0.0.1:0")
    }

    pub fn start_on(data: &Path, listen: &str) -> Hub {
        Self::start_with(data, listen, &[])
    }

    /// Starts a hub with extra flags (for example `--gc-interval 1`).
    pub fn start_with(data: &Path, listen: &str, extra: &[&str]) -> Hub {
        let log = data.with_extension("log");
        let (token, token_file) = harness_token(data);
        let logf = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("hub log file");
        let mut child = Command::new(bin("e2e-server"))
            .args(["--listen", listen, "--data"])
            .arg(data)
            .args(extra)
            .env("RUST_LOG", std::env::var("SSYNC_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .stdout(Stdio::piped())
            .stderr(logf)
            .spawn()
            .expect("start e2e-server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) if l.contains("listening on http") => l,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("hub did not start: {other:?}; log: {}", std::fs::read_to_string(&log).unwrap_or_default())
            }
        };
        let url = line.split("listening on ").nth(1).and_then(|r| r.split_whitespace().next()).expect("address");
        let (scheme, addr) = url.split_once("://").expect("a URL");
        Hub {
            scheme: scheme.to_string(),
            addr: addr.to_string(),
            ca_cert: None,
            child: Some(child),
            token,
            token_file,
            data: data.to_path_buf(),
            log,
            args: extra.iter().map(|a| a.to_string()).collect(),
        }
    }

    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// An HTTP client that sends this hub's token with every request.
    pub fn http(&self) -> reqwest::blocking::Client {
        authed_client(&self.token)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Same data dir and port, new process.
    pub fn restart(&mut self) {
        self.stop();
        let extra: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut again = Hub::start_with(&self.data, &self.addr, &extra);
        again.ca_cert = self.ca_cert.take();
        *self = again;
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(10));
        }
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = wait_child(&mut c, Duration::from_secs(5));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = wait_child(&mut c, Duration::from_secs(5));
        }
    }
}

pub struct Mount {
    child: Option<Child>,
    pub path: PathBuf,
    pub cache: PathBuf,
    server: String,
    ca_cert: Option<PathBuf>,
    token_file: PathBuf,
    log: PathBuf,
    name: String,
    /// Extra `ssync-mount` flags (such as `--no-passthrough`).
    args: Vec<String>,
}

impl Mount {
    /// Mounts the hub at `dir/NAME` with its cache in `dir/NAME.cache`.
    pub fn start(dir: &Path, name: &str, hub: &Hub) -> Mount {
        Self::start_with(dir, name, hub, &[])
    }

    /// Like `start_with`, with a token of its own (written to `dir/NAME.token`).
    pub fn start_as(dir: &Path, name: &str, hub: &Hub, token: &str, args: &[&str]) -> Mount {
        let token_file = dir.join(format!("{name}.token"));
        std::fs::write(&token_file, token).expect("write the mount's token file");
        std::fs::set_permissions(&token_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
        Self::start_token_file(dir, name, hub, token_file, args)
    }

    /// Like `start`, with extra `ssync-mount` flags.
    pub fn start_with(dir: &Path, name: &str, hub: &Hub, args: &[&str]) -> Mount {
        Self::start_token_file(dir, name, hub, hub.token_file.clone(), args)
    }

    fn start_token_file(dir: &Path, name: &str, hub: &Hub, token_file: PathBuf, args: &[&str]) -> Mount {
        let path = dir.join(name);
        std::fs::create_dir_all(&path).expect("create mountpoint");
        let mut m = Mount {
            child: None,
            cache: dir.join(format!("{name}.cache")),
            log: dir.join(format!("{name}.log")),
            path,
            server: hub.url(),
            ca_cert: hub.ca_cert.clone(),
            token_file,
            name: name.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let logf = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("mount log file");
        let mut cmd = Command::new(bin("e2e-mount"));
        cmd.arg(&self.path)
            .args(["--server", &self.server, "--device-name", &self.name, "--cache-dir"])
            .arg(&self.cache)
            .arg("--token-file")
            .arg(&self.token_file);
        if let Some(ca) = &self.ca_cert {
            cmd.arg("--ca-cert").arg(ca);
        }
        cmd.args(&self.args);
        let child = cmd
            .env("RUST_LOG", std::env::var("SSYNC_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .expect("start e2e-mount");
        self.child = Some(child);
        let path = self.path.clone();
        let up = wait_until(Duration::from_secs(20), || {
            is_mounted(&path) || self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
        });
        if !up || !is_mounted(&self.path) {
            panic!("mount {} did not come up; log:\n{}", self.path.display(), self.log());
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGTERM: the mount sends its queue (bounded) and unmounts. Returns its exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let code =
            self.child.take().and_then(|mut c| stop_child(&mut c, Duration::from_secs(30))).and_then(|s| s.code());
        force_unmount(&self.path);
        code
    }

    /// kill -9, then clear the stale mount as a user would (umount -l).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = wait_child(&mut c, Duration::from_secs(5));
        }
        force_unmount(&self.path);
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Replaces the extra `ssync-mount` flags, for the next start.
    pub fn set_args(&mut self, args: &[&str]) {
        self.args = args.iter().map(|a| a.to_string()).collect();
    }

    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "mount is still running");
        self.spawn();
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(5));
        }
        force_unmount(&self.path);
    }
}

/// The mount's entry in /proc/self/mountinfo: (minor device number, is fuse).
fn mount_entry(path: &Path) -> Option<u32> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = path.to_string_lossy();
    info.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.len() > 4 && f[4] == want).then(|| f[2].split(':').nth(1).and_then(|m| m.parse().ok())).flatten()
    })
}

pub fn is_mounted(path: &Path) -> bool {
    mount_entry(path).is_some()
}

/// Unmounts `path` even when its daemon is gone or hung: abort the FUSE
/// connection (so nothing waits on it), then detach the mount.
pub fn force_unmount(path: &Path) {
    let Some(minor) = mount_entry(path) else { return };
    let conns = Path::new("/sys/fs/fuse/connections");
    if std::fs::read_dir(conns).map(|mut d| d.next().is_none()).unwrap_or(true) {
        let _ = Command::new("mount").args(["-t", "fusectl", "none", "/sys/fs/fuse/connections"]).status();
    }
    let _ = std::fs::write(conns.join(minor.to_string()).join("abort"), "1");
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path has no NUL");
    // SAFETY: umount2 with a valid NUL-terminated path.
    unsafe {
        libc::umount2(c.as_ptr(), libc::MNT_DETACH);
    }
}

/// A temp dir with a hub and `n` mounts named a, b, c...
pub struct Cluster {
    pub mounts: Vec<Mount>,
    pub hub: Hub,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    pub fn new(n: usize) -> Cluster {
        Self::with_hub_flags(n, &[])
    }

    /// A cluster whose hub runs with extra flags.
    pub fn with_hub_flags(n: usize, flags: &[&str]) -> Cluster {
        Self::build(flags, &vec![&[][..]; n])
    }

    /// One mount per entry of `flags`, each started with those `ssync-mount`
    /// flags. The cluster's folder is open to every user (0755), so other
    /// uids can reach a mount started with `--allow-other`.
    pub fn with_mount_flags(flags: &[&[&str]]) -> Cluster {
        Self::build(&[], flags)
    }

    /// A hub with `hub_flags` and one mount per entry of `mount_flags`.
    pub fn with_flags(hub_flags: &[&str], mount_flags: &[&[&str]]) -> Cluster {
        Self::build(hub_flags, mount_flags)
    }

    fn build(hub_flags: &[&str], mount_flags: &[&[&str]]) -> Cluster {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new().prefix("ssync-e2e-").tempdir().expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod the test folder");
        let hub = Hub::start_with(&dir.path().join("hub"), "127.0.0.1:0", hub_flags);
        let mounts = mount_flags
            .iter()
            .enumerate()
            .map(|(i, f)| Mount::start_with(dir.path(), &((b'a' + i as u8) as char).to_string(), &hub, f))
            .collect();
        Cluster { mounts, hub, dir }
    }
}

impl Cluster {
    /// With SSYNC_KEEP_LOGS=DIR, a failing test (every test, with
    /// SSYNC_KEEP_ALL_LOGS=1) leaves every process's log in
    /// DIR/<test name>/ for study (the cluster's own folder goes with it).
    fn keep_logs(&self) {
        let Some(dir) = std::env::var_os("SSYNC_KEEP_LOGS").map(PathBuf::from) else { return };
        let test = std::thread::current().name().unwrap_or("test").replace("::", "-");
        let dir = dir.join(test);
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join("hub.log"), self.hub.log());
        for (i, m) in self.mounts.iter().enumerate() {
            let _ = std::fs::write(dir.join(format!("m{i}.log")), m.log());
        }
        eprintln!("logs kept in {}", dir.display());
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("SSYNC_KEEP_ALL_LOGS").is_some() {
            self.keep_logs();
        }
        // Mounts first (they may drain to the hub), then the hub, then the dir.
        self.mounts.clear();
    }
}

/// Peak resident memory (VmHWM) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// Deterministic pseudo-random bytes (xorshift), so tests need no rand crate.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.max(1);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Every entry below `dir`: relative path -> file bytes (`None` for folders; a
/// symlink's target, unfollowed, as on the hub).
/// Conflict-copy timestamps are replaced by `T` so trees can be compared exactly.
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, Option<Vec<u8>>> {
    snapshot_raw(dir).into_iter().map(|(k, v)| (normalize_conflict_names(&k), v)).collect()
}

/// Like `snapshot`, names as they are.
pub fn snapshot_raw(dir: &Path) -> std::collections::BTreeMap<String, Option<Vec<u8>>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap_or(&p).to_string_lossy().into_owned();
            let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
            if meta.file_type().is_symlink() {
                if let Ok(target) = std::fs::read_link(&p) {
                    out.insert(rel, Some(std::os::unix::ffi::OsStringExt::into_vec(target.into_os_string())));
                }
            } else if meta.is_dir() {
                out.insert(rel, None);
                stack.push(p);
            } else if let Ok(data) = std::fs::read(&p) {
                out.insert(rel, Some(data));
            }
        }
    }
    out
}

/// `x.conflict-DEV-20261122-100509.txt` -> `x.conflict-DEV-T.txt`.
pub fn normalize_conflict_names(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(i) = rest.find(".conflict-") {
        let (head, tail) = rest.split_at(i + ".conflict-".len());
        out.push_str(head);
        // DEVICE-YYYYMMDD-HHMMSS: keep the device, fold the stamp.
        let parts: Vec<&str> = tail.splitn(3, '-').collect();
        if parts.len() == 3
            && parts[1].len() == 8
            && parts[2].len() >= 6
            && parts[1].bytes().all(|b| b.is_ascii_digit())
        {
            out.push_str(parts[0]);
            out.push_str("-T");
            rest = &parts[2][6..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// Builds an expected tree from (path, content) pairs; `None` content = folder.
pub fn tree(items: &[(&str, Option<&str>)]) -> std::collections::BTreeMap<String, Option<Vec<u8>>> {
    items.iter().map(|(p, c)| (p.to_string(), c.map(|c| c.as_bytes().to_vec()))).collect()
}

/// Waits until every mount shows exactly `want`; panics with the trees it saw.
pub fn wait_for_tree(mounts: &[&Mount], want: &std::collections::BTreeMap<String, Option<Vec<u8>>>, timeout: Duration) {
    let ok = wait_until(timeout, || mounts.iter().all(|m| &snapshot(&m.path) == want));
    if !ok {
        let seen: Vec<String> = mounts
            .iter()
            .map(|m| {
                let t: Vec<String> = snapshot(&m.path)
                    .into_iter()
                    .map(|(k, v)| {
                        format!("{k}={}", v.map_or("<dir>".into(), |b| String::from_utf8_lossy(&b).into_owned()))
                    })
                    .collect();
                format!("{}: {t:?}", m.path.display())
            })
            .collect();
        let want: Vec<String> = want
            .iter()
            .map(|(k, v)| {
                format!("{k}={}", v.as_ref().map_or("<dir>".into(), |b| String::from_utf8_lossy(b).into_owned()))
            })
            .collect();
        panic!("mounts did not converge on {want:?} within {timeout:?}:\n{}", seen.join("\n"));
    }
}

/// The hub's live tree: path -> content hash hex (`None` for folders).
pub fn hub_tree(hub: &Hub) -> Option<std::collections::BTreeMap<String, Option<String>>> {
    let t: serde_json::Value =
        hub.http().get(format!("{}/v1/shares/default/tree", hub.url())).send().ok()?.json().ok()?;
    Some(
        t["entries"]
            .as_array()?
            .iter()
            .map(|e| (e["path"].as_str().unwrap_or("").to_string(), e["hash"].as_str().map(String::from)))
            .collect(),
    )
}

/// A mount snapshot in the hub's terms: path -> content hash hex (`None` for folders).
pub fn as_hashes(
    snap: &std::collections::BTreeMap<String, Option<Vec<u8>>>,
) -> std::collections::BTreeMap<String, Option<String>> {
    snap.iter().map(|(p, c)| (p.clone(), c.as_ref().map(|b| ssync_common::chunks::file_id(b).to_hex()))).collect()
}

/// Waits until the hub's live tree is exactly `want` (names normalised as in
/// `snapshot`, contents compared by hash).
pub fn wait_for_hub_tree(hub: &Hub, want: &std::collections::BTreeMap<String, Option<Vec<u8>>>, timeout: Duration) {
    let want = as_hashes(want);
    let normalised = || {
        hub_tree(hub).map(|t| {
            t.into_iter().map(|(k, v)| (normalize_conflict_names(&k), v)).collect::<std::collections::BTreeMap<_, _>>()
        })
    };
    let ok = wait_until(timeout, || normalised().as_ref() == Some(&want));
    assert!(ok, "the hub's tree is {:?}, expected {want:?}", normalised());
}

/// Uploads `body` as `path` through the hub's chunk API, as a mount would:
/// send the chunks, then commit the whole list. Returns the commit's response.
pub fn api_upload(
    http: &reqwest::blocking::Client,
    url: &str,
    path: &str,
    base: u64,
    body: &[u8],
) -> reqwest::blocking::Response {
    use ssync_common::api::WireList;
    let list = ssync_common::chunks::list_of(body);
    let mut frames = Vec::new();
    for (off, c) in list.with_offsets() {
        let data = &body[off as usize..off as usize + c.len as usize];
        ssync_common::frames::encode(&mut frames, &c.hash, data, false);
    }
    let sent = http.post(format!("{url}/v1/shares/default/chunks")).body(frames).send().expect("hub reachable");
    assert_eq!(sent.status().as_u16(), 200, "chunks refused: {}", sent.text().unwrap_or_default());
    let commit = serde_json::json!({
        "path": path, "base": base, "id": list.id(), "size": list.size(), "mode": 420, "mtime_ns": 1,
        "list": WireList::whole(&list),
    });
    http.post(format!("{url}/v1/shares/default/commit")).json(&commit).send().expect("hub reachable")
}

/// A `POST /v1/shares/default/batch` change that creates the small file `path`, its bytes inline.
pub fn batch_commit(path: &str, data: &[u8]) -> serde_json::Value {
    let list = ssync_common::chunks::list_of(data);
    let mut frames = Vec::new();
    for (off, c) in list.with_offsets() {
        ssync_common::frames::encode(&mut frames, &c.hash, &data[off as usize..off as usize + c.len as usize], false);
    }
    serde_json::json!({"op": "commit", "path": path, "base": 0, "id": list.id(), "size": list.size(), "mode": 420,
        "mtime_ns": 1, "list": ssync_common::api::WireList::whole(&list), "inline": ssync_common::api::inline_encode(&frames)})
}

/// The hub's traffic counters: (bytes received, bytes sent).
/// Requests the hub has served since it started (`/v1/stats`), this one included.
pub fn hub_requests(hub: &Hub) -> u64 {
    let s: ssync_common::api::Stats =
        hub.http().get(format!("{}/v1/stats", hub.url())).send().and_then(|r| r.json()).expect("hub answers /v1/stats");
    s.requests
}

pub fn hub_traffic(hub: &Hub) -> (u64, u64) {
    let s: ssync_common::api::Stats =
        hub.http().get(format!("{}/v1/stats", hub.url())).send().and_then(|r| r.json()).expect("hub answers /v1/stats");
    (s.bytes_received, s.bytes_sent)
}

/// A client sending `token` as `Authorization: Bearer`.
pub fn authed_client(token: &str) -> reqwest::blocking::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {token}").parse().expect("a token is a valid header value");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::blocking::Client::builder().default_headers(headers).build().expect("HTTP client")
}

/// The test token of the hub in `data` (made with `token add` before its first
/// start, kept across restarts), and the 0600 file holding it.
fn harness_token(data: &Path) -> (String, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let file = data.with_extension("token");
    // A wiped data dir lost its tokens: a new one goes in the same file.
    if data.join("meta.db").exists() {
        if let Ok(t) = std::fs::read_to_string(&file) {
            return (t.trim().to_string(), file);
        }
    }
    let mut cmd = Command::new(bin("e2e-server"));
    cmd.args(["token", "add", "harness", "--data"]).arg(data);
    let out = cmd.output().expect("run ssync-server token add");
    assert!(out.status.success(), "token add failed: {}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).expect("token is text").trim().to_string();
    std::fs::write(&file, &token).expect("write token file");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod token file");
    (token, file)
}

/// Chunks the hub holds in pack files, from its own database, and the pack
/// files there are: (chunks, pack files).
pub fn hub_packed_chunks(data_dir: &Path) -> (u64, usize) {
    let db =
        rusqlite::Connection::open_with_flags(data_dir.join("meta.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("the hub's database opens");
    let chunks: i64 =
        db.query_row("SELECT count(*) FROM pack_chunks", [], |r| r.get(0)).expect("pack_chunks is readable");
    let packs = std::fs::read_dir(data_dir.join("packs")).map(|d| d.count()).unwrap_or(0);
    (chunks as u64, packs)
}

/// A small seeded xorshift generator: randomized tests replay from their seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

impl Mount {
    /// Bytes on disk (allocated blocks) under the mount's content folders.
    pub fn cache_bytes(&self) -> u64 {
        cache_bytes_under(&self.cache)
    }
}

fn cache_bytes_under(cache: &Path) -> u64 {
    let blocks_under = |dir: PathBuf| -> u64 {
        let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
        use std::os::unix::fs::MetadataExt;
        rd.flatten().filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.blocks() * 512).sum()
    };
    ["files", "partial", "tmp"].iter().map(|d| blocks_under(cache.join(d))).sum()
}

/// Samples a mount's cache bytes on disk every 10 ms until dropped; `peak`
/// is the most seen.
pub struct CacheSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    peak: std::sync::Arc<std::sync::atomic::AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CacheSampler {
    pub fn start(m: &Mount) -> CacheSampler {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let (stop, peak) = (std::sync::Arc::new(AtomicBool::new(false)), std::sync::Arc::new(AtomicU64::new(0)));
        let (s, p, cache) = (stop.clone(), peak.clone(), m.cache.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(cache_bytes_under(&cache), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        CacheSampler { stop, peak, thread: Some(thread) }
    }

    pub fn peak(&self) -> u64 {
        self.peak.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for CacheSampler {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_names_are_normalised() {
        assert_eq!(normalize_conflict_names("d/f.conflict-b-20261122-100509.txt"), "d/f.conflict-b-T.txt");
        assert_eq!(normalize_conflict_names("n.conflict-b-20261122-100509"), "n.conflict-b-T");
        assert_eq!(normalize_conflict_names("plain.txt"), "plain.txt");
    }
}
