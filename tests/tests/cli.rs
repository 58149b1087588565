//! Starting `ssync-mount` wrong fails fast, non-zero, with a message that says what to do.
use ssync_tests::{bin, run_bounded, Cluster, Hub};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

/// These mounts fail before they would use their token.
fn mount_cmd(mountpoint: &std::path::Path, server: &str, cache: &std::path::Path) -> Command {
    let mut c = Command::new(bin("e2e-mount"));
    c.arg(mountpoint).args(["--server", server, "--cache-dir"]).arg(cache).env("SSYNC_TOKEN", "unused");
    c
}

#[test]
fn a_missing_or_exposed_token_is_refused_before_mounting() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let mp = dir.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    let mut cmd = mount_cmd(&mp, &hub.addr, &dir.path().join("c"));
    cmd.env_remove("SSYNC_TOKEN").env("XDG_CONFIG_HOME", dir.path().join("empty-config"));
    let (code, err) = run_bounded(&mut cmd, LIMIT);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no access token") && err.contains("--token-file"), "{err}");

    let exposed = dir.path().join("token");
    std::fs::copy(&hub.token_file, &exposed).unwrap();
    std::fs::set_permissions(&exposed, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = mount_cmd(&mp, &hub.addr, &dir.path().join("c"));
    cmd.env_remove("SSYNC_TOKEN").arg("--token-file").arg(&exposed);
    let (code, err) = run_bounded(&mut cmd, LIMIT);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!ssync_tests::is_mounted(&mp));
}

#[test]
fn missing_or_non_folder_mountpoint() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let missing = dir.path().join("nope");
    let (code, err) = run_bounded(&mut mount_cmd(&missing, &hub.addr, &dir.path().join("c1")), LIMIT);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("does not exist") && err.contains("mkdir -p"), "{err}");

    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let (code, err) = run_bounded(&mut mount_cmd(&file, &hub.addr, &dir.path().join("c2")), LIMIT);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not a folder"), "{err}");
}

#[test]
fn unreachable_hub_without_a_cache() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mp = dir.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    let (code, err) = run_bounded(&mut mount_cmd(&mp, &format!("127.0.0.1:{port}"), &dir.path().join("c")), LIMIT);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot reach the hub") && err.contains("Start ssync-server"), "{err}");
    assert!(!ssync_tests::is_mounted(&mp));
}

#[test]
fn mountpoint_already_in_use() {
    let c = Cluster::new(1);
    let (code, err) =
        run_bounded(&mut mount_cmd(&c.mounts[0].path, &c.hub.addr, &c.dir.path().join("other-cache")), LIMIT);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("already a mountpoint"), "{err}");
    // The running mount is untouched.
    std::fs::write(c.mounts[0].p("still-works.txt"), b"yes").unwrap();
    assert_eq!(std::fs::read(c.mounts[0].p("still-works.txt")).unwrap(), b"yes");
}

#[test]
fn bad_server_address() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run_bounded(&mut mount_cmd(dir.path(), "ftp://x", &dir.path().join("c")), LIMIT);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("HOST:PORT"), "{err}");
}
