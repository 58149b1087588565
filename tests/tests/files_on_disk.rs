//! What another local user can read of ssync's files on disk: nothing. A
//! mount's cache dir holds the bytes and names of every synced file and a
//! hub's data dir the same, whatever their modes in the tree, so both keep
//! folders 0700 and files 0600, and tighten an old dir with wider modes.
//!
//! The test makes a second local user and looks at everything under a hub's
//! data dir and three mounts' cache dirs after files of mode 0600 and 0644
//! went through every path that writes content: create (mount A), live apply
//! of small files and chunked download of large ones (mount B), and on-demand
//! fetch (mount C, with --cache-max).
use ssync_tests::{pseudo_random, wait_for_content, wait_until, Hub, Mount};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const PROBE_USER: &str = "ssync-probe";

/// The uid of a second local user, made if this machine lacks it.
fn probe_uid() -> u32 {
    let find = || nix::unistd::User::from_name(PROBE_USER).ok().flatten().map(|u| u.uid.as_raw());
    if let Some(uid) = find() {
        return uid;
    }
    let out = Command::new("useradd")
        .args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PROBE_USER])
        .output()
        .expect("run useradd (this test runs as root)");
    assert!(out.status.success() || find().is_some(), "useradd failed: {}", String::from_utf8_lossy(&out.stderr));
    find().expect("the probe user exists now")
}

/// Every path below `root` (itself included), symlinks not followed.
fn every_path(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                stack.push(e.path());
            }
        }
        out.push(p);
    }
    out
}

/// The paths below `roots` that the user `uid` can open, read or list: what
/// it reports when it tries each as itself.
fn readable_by(uid: u32, roots: &[&Path]) -> Vec<String> {
    let paths: Vec<PathBuf> = roots.iter().flat_map(|r| every_path(r)).collect();
    let script = r#"for p in "$@"; do
        if [ -d "$p" ]; then ls "$p" >/dev/null 2>&1 && echo "lists $p"
        elif [ -r "$p" ] || cat "$p" >/dev/null 2>&1; then echo "reads $p"; fi
    done"#;
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script, "sh"]).args(&paths).uid(uid).gid(uid);
    let out = cmd.output().expect("run a shell as the probe user");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

fn exposed_modes(roots: &[&Path]) -> Vec<String> {
    roots
        .iter()
        .flat_map(|r| every_path(r))
        .filter_map(|p| {
            let meta = std::fs::symlink_metadata(&p).ok()?;
            let mode = meta.permissions().mode() & 0o7777;
            (!meta.file_type().is_symlink() && mode & 0o077 != 0).then(|| format!("{:o} {}", mode, p.display()))
        })
        .collect()
}

fn write_with_mode(path: &Path, data: &[u8], mode: u32) {
    std::fs::write(path, data).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn another_local_user_reads_nothing_of_caches_or_the_hub() {
    let uid = probe_uid();
    let dir = tempfile::tempdir().unwrap();
    // As a home folder often is: others may pass through. Only ssync's own
    // modes stand between the probe user and the files.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut hub = Hub::start(dir.path());
    let a = Mount::start(dir.path(), "a", &hub);
    let mut b = Mount::start(dir.path(), "b", &hub);
    let c = Mount::start_with(dir.path(), "c", &hub, &["--cache-max", "64M"]);

    // Small files travel inline and are applied live; large ones (over 1 MiB)
    // are downloaded in chunks by B and fetched on demand by C.
    let small = b"a secret of a few bytes".to_vec();
    let large = pseudo_random(3 << 20, 7);
    for (name, data, mode) in [
        ("private-small", &small, 0o600),
        ("public-small", &small, 0o644),
        ("private-large", &large, 0o600),
        ("public-large", &large, 0o644),
    ] {
        write_with_mode(&a.p(name), data, mode);
    }
    // A file still open for writing on A has its content in A's cache only.
    let open = std::fs::File::create(a.p("being-written")).unwrap();
    std::io::Write::write_all(&mut &open, b"half").unwrap();
    for m in [&b, &c] {
        wait_for_content(&m.p("private-small"), &small, Duration::from_secs(20));
        wait_for_content(&m.p("public-large"), &large, Duration::from_secs(30));
        wait_for_content(&m.p("private-large"), &large, Duration::from_secs(30));
    }

    let owned = [hub.data.clone(), a.cache.clone(), b.cache.clone(), c.cache.clone()];
    let roots: Vec<&Path> = owned.iter().map(PathBuf::as_path).collect();
    let held: Vec<PathBuf> = roots.iter().flat_map(|r| every_path(r)).collect();
    let names: Vec<String> = held.iter().filter_map(|p| Some(p.file_name()?.to_str()?.to_string())).collect();
    for want in ["meta.db", "state.db", "state.db-wal", "files", "partial"] {
        assert!(names.iter().any(|n| n == want), "no {want} among what the dirs hold: {held:?}");
    }
    assert!(names.iter().any(|n| n.ends_with(".pack")), "the large files are in packs: {held:?}");
    assert_eq!(exposed_modes(&roots), Vec::<String>::new(), "modes wider than 0700/0600");
    assert_eq!(readable_by(uid, &roots), Vec::<String>::new(), "what the other user can read");
    drop(open);

    // An old cache dir and data dir (made before this rule, or opened up by
    // hand) are tightened when they are opened again, with a line in the log.
    b.stop();
    hub.stop();
    for root in [&b.cache, &hub.data] {
        let ok = Command::new("chmod").args(["-R", "go+rX"]).arg(root).status().unwrap().success();
        assert!(ok, "chmod -R go+rX {}", root.display());
    }
    assert!(!readable_by(uid, &[&b.cache, &hub.data]).is_empty(), "the probe reads a widened dir");
    hub.restart();
    b.start_again();
    assert!(wait_until(Duration::from_secs(10), || hub.log().contains("narrowed it to folders 0700")), "{}", hub.log());
    assert!(b.log().contains("the cache dir let other users read it; narrowed it"), "{}", b.log());
    std::fs::write(a.p("after"), b"after the restart").unwrap();
    wait_for_content(&b.p("after"), b"after the restart", Duration::from_secs(20));
    assert_eq!(exposed_modes(&roots), Vec::<String>::new(), "modes wider than 0700/0600 after the restart");
    assert_eq!(readable_by(uid, &roots), Vec::<String>::new(), "what the other user can read after the restart");
}
