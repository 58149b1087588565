//! ssync-idle-bench: what an idle mount costs the network on a large tree.
//! Builds a tree of ENTRIES entries on a hub (folders of 100: the folder and
//! 99 small files), lets a mount take it in, then counts the bytes the hub
//! sends and receives (its `/v1/stats`) while the mount sits idle for
//! MINUTES minutes: the change feed's long-polls and the digest compares of
//! anti-entropy. For scale it also prints the size of the whole tree's
//! listing, which anti-entropy downloaded every 15 s before folder digests.
//!
//! Run with `bench/idle.sh` (release build). Knobs (env): ENTRIES (100000),
//! MINUTES (1).
use ssync_tests::bench::knob;
use ssync_tests::{batch_commit, hub_traffic, wait_until, Hub, Mount};
use std::time::{Duration, Instant};

/// Entries below `dir` on a mount (folders and files), walking it.
fn count_entries(dir: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten().map(|e| 1 + if e.file_type().is_ok_and(|t| t.is_dir()) { count_entries(&e.path()) } else { 0 }).sum()
}

fn main() {
    let entries = knob("ENTRIES", 100_000).max(100);
    let minutes = knob("MINUTES", 1).max(1);
    let dir = tempfile::Builder::new().prefix("ssync-idle-").tempdir_in("/var/tmp").expect("temp dir");
    let hub = Hub::start_with(&dir.path().join("hub"), "127.0.0.1:0", &[]);
    let http = hub.http();
    let url = hub.url();
    let folders = entries / 100;
    let t = Instant::now();
    let mut changes = Vec::new();
    let send = |changes: &mut Vec<serde_json::Value>| {
        let body = serde_json::json!({ "changes": std::mem::take(changes) });
        let v: serde_json::Value =
            http.post(format!("{url}/v1/shares/default/batch")).json(&body).send().unwrap().json().unwrap();
        assert!(v["refused"].is_null(), "a change was refused: {v}");
    };
    for d in 0..folders {
        changes
            .push(serde_json::json!({"op": "mkdir", "path": format!("d{d}"), "base": 0, "mode": 493, "mtime_ns": 1}));
        for f in 0..99 {
            changes.push(batch_commit(&format!("d{d}/f{f}"), format!("{d}/{f}").as_bytes()));
            if changes.len() == 250 {
                send(&mut changes);
            }
        }
    }
    if !changes.is_empty() {
        send(&mut changes);
    }
    let total = folders * 100;
    println!("# An idle mount's network cost\n");
    println!(
        "Tree: {total} entries ({folders} folders of 99 small files), made on the hub in {:.1} s.\n",
        t.elapsed().as_secs_f64()
    );
    let listing = http.get(format!("{url}/v1/shares/default/tree")).send().unwrap().bytes().unwrap().len();

    let t = Instant::now();
    let m = Mount::start(dir.path(), "idle", &hub);
    let ok = wait_until(Duration::from_secs(1800), || count_entries(&m.path) == total);
    assert!(ok, "the mount never held all {total} entries");
    println!("A new mount held all of it after {:.1} s.\n", t.elapsed().as_secs_f64());
    // Let the first compare after the initial sync pass, then count.
    std::thread::sleep(Duration::from_secs(20));
    let (r0, s0) = hub_traffic(&hub);
    std::thread::sleep(Duration::from_secs(60 * minutes));
    let (r1, s1) = hub_traffic(&hub);
    let per_min = (r1 - r0 + s1 - s0) as f64 / minutes as f64 / 1024.0;
    println!("| while idle | hub bytes in + out per minute |\n| --- | --- |");
    println!("| {minutes} min, one mount, {total} entries | **{per_min:.1} KiB/min** |");
    println!(
        "\nFor scale: the whole tree's listing is {:.0} KiB; fetched every 15 s, as anti-entropy did before folder digests, that is {:.0} KiB/min.",
        listing as f64 / 1024.0,
        listing as f64 * 4.0 / 1024.0
    );
    drop(m);
}
