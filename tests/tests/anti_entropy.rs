//! An idle mount compares folder digests with the hub's and heals what the
//! feed never reported, reconciling only the folder that differs.
use ssync_tests::{api_upload, hub_tree, wait_for_absence, wait_for_content, wait_until, Cluster, SYNC_TIMEOUT};
use std::fs;
use std::time::Duration;

/// The compare runs every 15 s on an idle mount.
const HEAL_TIMEOUT: Duration = Duration::from_secs(45);

#[test]
fn an_idle_mount_heals_a_difference_the_feed_never_reported() {
    let mut c = Cluster::new(1);
    let a = c.mounts[0].path.clone();
    fs::create_dir_all(a.join("a/b")).unwrap();
    fs::create_dir_all(a.join("a/other")).unwrap();
    for f in ["a/b/vanish.txt", "a/b/keep.txt", "a/other/x.txt"] {
        fs::write(a.join(f), f.as_bytes()).unwrap();
    }
    let on_hub = wait_until(SYNC_TIMEOUT, || hub_tree(&c.hub).is_some_and(|t| t.len() == 6));
    assert!(on_hub, "the hub never held the tree: {:?}", hub_tree(&c.hub));
    // The mount reads its own changes back from the feed before it goes: a
    // change made after them, seen on the mount, says it read them all.
    let after = api_upload(&c.hub.http(), &c.hub.url(), "after.txt", 0, b"after");
    assert!(after.status().is_success(), "the hub refused a commit: {}", after.text().unwrap_or_default());
    wait_for_content(&a.join("after.txt"), b"after", SYNC_TIMEOUT);
    c.mounts[0].stop();
    // While the mount is away, the hub takes a change whose row it then
    // loses with another: the hub's latest change lies past every row left,
    // and the mount must still reach it (digests are compared only at the
    // hub's cursor).
    let late = api_upload(&c.hub.http(), &c.hub.url(), "a/late.txt", 0, b"late");
    assert!(late.status().is_success(), "the hub refused a commit: {}", late.text().unwrap_or_default());
    // The hub loses entries behind every mount's back (a database restored
    // from a backup, say): no change, so nothing in the feed.
    c.hub.stop();
    {
        let db = rusqlite::Connection::open(c.hub.data.join("meta.db")).unwrap();
        let lost = db.execute("DELETE FROM entries WHERE path IN ('a/b/vanish.txt', 'a/late.txt')", []).unwrap();
        assert_eq!(lost, 2);
        // The restored database's digests are computed from its entries
        // when the hub starts (a hub without digests rebuilds them).
        db.execute("DELETE FROM dir_digests", []).unwrap();
    }
    c.hub.restart();
    c.mounts[0].start_again();
    wait_for_absence(&a.join("a/b/vanish.txt"), HEAL_TIMEOUT);
    assert_eq!(fs::read(a.join("a/b/keep.txt")).unwrap(), b"a/b/keep.txt");
    assert_eq!(fs::read(a.join("a/other/x.txt")).unwrap(), b"a/other/x.txt");
    assert!(!a.join("a/late.txt").exists(), "a change the hub lost reached the mount");
    let log = c.mounts[0].log();
    let healed: Vec<&str> = log.lines().filter(|l| l.contains("entries differ from the hub's")).collect();
    assert!(
        !healed.is_empty() && healed.iter().all(|l| l.contains("\"a/b\"")),
        "only folder a/b was reconciled: {healed:?}"
    );
}
