//! Shares (docs/shares.md), as far as they are built: a hub's tree is the
//! share `default`, and `ssync-server share list` shows what each share
//! holds, also while the hub runs.
use ssync_tests::{bin, hub_tree, wait_until, Hub, Mount};
use std::process::Command;
use std::time::Duration;

/// The `share list` row of `name`, split on whitespace.
fn share_row(hub: &Hub, name: &str) -> Vec<String> {
    let out = Command::new(bin("e2e-server")).args(["share", "list", "--data"]).arg(&hub.data).output().unwrap();
    assert!(out.status.success(), "share list: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let row = text.lines().find(|l| l.split_whitespace().next() == Some(name));
    row.unwrap_or_else(|| panic!("no share '{name}' in:\n{text}")).split_whitespace().map(String::from).collect()
}

#[test]
fn the_hubs_tree_is_the_default_share_and_share_list_shows_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let m = Mount::start(dir.path(), "m", &hub);
    std::fs::create_dir(m.path.join("d")).unwrap();
    std::fs::write(m.path.join("d/a"), b"12345").unwrap();
    std::fs::write(m.path.join("b"), b"123").unwrap();
    let arrived = wait_until(Duration::from_secs(20), || hub_tree(&hub).is_some_and(|t| t.len() == 3));
    assert!(arrived, "the hub never held the 3 entries: {:?}", hub_tree(&hub));
    // share, entries, bytes, latest change, retention.
    let row = share_row(&hub, "default");
    assert_eq!(row[1..3], ["3", "8"], "{row:?}");
    assert!(row[3].parse::<u64>().is_ok_and(|v| v >= 3), "{row:?}");
    assert_eq!(row[4..], ["the", "hub's"], "{row:?}");
}
