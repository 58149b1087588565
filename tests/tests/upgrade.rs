//! An upgrade from the previous release: a hub's data dir and a mount's
//! cache made by ed32695 (hub schema step 13, mounts on the path-keyed
//! engine), with changes the mount never sent, start on this code. Every
//! version on the hub survives, and every unsent change reaches the hub and
//! a new mount, with no conflict copy.
//!
//! The state is `tests/fixtures/upgrade-ed32695`, made by
//! `tests/fixtures/make-upgrade-fixture.sh` with ed32695's binaries.
use ssync_common::api::{RestoreRequest, VersionsResponse};
use ssync_tests::{tree, wait_for_tree, Hub, Mount, SYNC_TIMEOUT};
use std::path::{Path, PathBuf};

/// The 1 MiB file the fixture's script wrote: `seq 1 200000 | head -c 1048576`.
fn big_file() -> String {
    let mut s = String::new();
    let mut n = 1u64;
    while s.len() < 1 << 20 {
        s.push_str(&format!("{n}\n"));
        n += 1;
    }
    s.truncate(1 << 20);
    s
}

fn content_id(body: &str) -> String {
    ssync_common::chunks::list_of(body.as_bytes()).id().to_string()
}

fn copy_tree(from: &Path, to: &Path) {
    let out = std::process::Command::new("cp").arg("-a").arg(from).arg(to).output().expect("run cp");
    assert!(out.status.success(), "copying the fixture: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_hub_and_a_mount_of_the_previous_release_keep_every_version_and_unsent_change() {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/upgrade-ed32695");
    let dir = tempfile::tempdir().unwrap();
    for part in ["hub", "hub.token", "a.cache"] {
        copy_tree(&fixture.join(part), &dir.path().join(part));
    }
    // A checkout leaves the token file readable by all, which a mount refuses.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path().join("hub.token"), std::fs::Permissions::from_mode(0o600)).unwrap();
    // The address the fixture's hub had: the mount's cache belongs to it.
    let hub = Hub::start_on(&dir.path().join("hub"), "127.0.0.1:17811");
    let a = Mount::start(dir.path(), "a", &hub);
    let b = Mount::start(dir.path(), "b", &hub);

    // The unsent changes (an edit, a new file, a move, a delete, a new
    // folder) reach the hub and B, over what the old hub held.
    let big = big_file();
    let want = tree(&[
        ("big.bin", Some(&big)),
        ("d", None),
        ("d/hist.txt", Some("hist 4, never sent\n")),
        ("d/new.txt", Some("new while the hub was away\n")),
        ("d/sub", None),
        ("keep.txt", Some("keep\n")),
        ("moved.txt", Some("move me\n")),
        ("newdir", None),
    ]);
    wait_for_tree(&[&a, &b], &want, SYNC_TIMEOUT);

    // Every version the old hub kept is still there, the unsent one after them.
    let http = hub.http();
    let versions: VersionsResponse = http
        .get(format!("{}/v1/shares/default/versions?path=d/hist.txt", hub.url()))
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json())
        .expect("the hub lists d/hist.txt's versions");
    let held: Vec<String> =
        versions.versions.iter().filter_map(|v| v.entry.hash.map(|h| h.to_string())).rev().collect();
    let wanted: Vec<String> =
        ["hist 1\n", "hist 2\n", "hist 3\n", "hist 4, never sent\n"].iter().map(|b| content_id(b)).collect();
    assert_eq!(held, wanted, "d/hist.txt's versions, oldest first");

    // And their bytes: the first version, restored beside it, reaches B.
    let first = versions.versions.last().expect("a first version").entry.version;
    let restore = RestoreRequest {
        path: ssync_common::RelPath::parse("d/hist.txt").unwrap(),
        version: first,
        as_path: Some(ssync_common::RelPath::parse("d/hist-1.txt").unwrap()),
    };
    let answer =
        http.post(format!("{}/v1/shares/default/restore", hub.url())).json(&restore).send().expect("hub reachable");
    assert!(answer.status().is_success(), "restore refused: {}", answer.text().unwrap_or_default());
    ssync_tests::wait_for_content(&b.p("d/hist-1.txt"), b"hist 1\n", SYNC_TIMEOUT);

    let copies: Vec<String> = [&a, &b]
        .iter()
        .flat_map(|m| ssync_tests::listing::listing(&m.path).into_keys())
        .filter(|k| k.contains(".conflict-"))
        .collect();
    assert!(copies.is_empty(), "conflict copies after the upgrade: {copies:?}");
    assert!(a.log().contains("this cache's nodes took their ids"), "the old cache was adopted");
}
