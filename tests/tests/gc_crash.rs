//! kill -9 of the hub while it prunes history and deletes unreferenced
//! contents: afterwards every content the hub names is still there, intact.
use ssync_common::chunks::file_id;
use ssync_tests::{as_hashes, hub_tree, snapshot_raw, wait_until, Cluster};
use std::fs;
use std::time::{Duration, Instant};

#[test]
fn killing_the_hub_during_gc_leaves_no_dangling_content() {
    let mut c = Cluster::with_hub_flags(1, &["--gc-interval", "1", "--gc-grace", "0", "--keep-versions", "1"]);
    let start = Instant::now();
    let mut next_kill = start + Duration::from_millis(900);
    let mut i = 0u64;
    while start.elapsed() < Duration::from_secs(5) {
        // Every rewrite leaves the previous content unreferenced once pruned.
        fs::write(c.mounts[0].p(&format!("f{}", i % 5)), format!("version {i} {}", "x".repeat((i % 7) as usize * 100)))
            .unwrap();
        i += 1;
        if Instant::now() >= next_kill {
            c.hub.kill9();
            c.hub.restart();
            next_kill = Instant::now() + Duration::from_millis(700 + (i * 37) % 800);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let url = c.hub.url();
    let synced =
        wait_until(Duration::from_secs(45), || hub_tree(&c.hub) == Some(as_hashes(&snapshot_raw(&c.mounts[0].path))));
    assert!(synced, "mount and hub did not converge: {:?}", hub_tree(&c.hub));
    let collected = wait_until(Duration::from_secs(15), || c.hub.log().contains("unreferenced contents deleted"));
    assert!(collected, "GC never deleted anything, so the test exercised nothing");

    // Every content the hub names downloads, with the right hash.
    let http = c.hub.http();
    for (path, hash) in hub_tree(&c.hub).unwrap() {
        let Some(hash) = hash else { continue };
        let body = http.get(format!("{url}/v1/shares/default/content/{hash}")).send().unwrap();
        assert_eq!(body.status().as_u16(), 200, "content of {path} is gone");
        assert_eq!(file_id(&body.bytes().unwrap()).to_hex(), hash, "content of {path} is damaged");
    }
    let db = c.hub.data.join("meta.db");
    c.mounts[0].stop();
    c.hub.stop();
    let conn = rusqlite::Connection::open(db).unwrap();
    assert_eq!(conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)).unwrap(), "ok");
}
