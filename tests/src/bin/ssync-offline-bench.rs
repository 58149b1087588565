//! ssync-offline-bench: the hub goes away for DOWN_SECS (30) while two mounts
//! keep writing (new files, edits of their own files, and edits of one shared
//! file, which must end in conflict copies). Prints how long after the hub's
//! return every mount and the hub hold the identical tree.
use ssync_tests::{as_hashes, hub_tree, snapshot_raw, wait_until, Cluster};
use std::fs;
use std::time::{Duration, Instant};

fn main() {
    let down: u64 = std::env::var("DOWN_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let mut c = Cluster::new(2);
    fs::write(c.mounts[0].p("shared.txt"), "before the outage").unwrap();
    assert!(wait_until(Duration::from_secs(30), || fs::read(c.mounts[1].p("shared.txt")).is_ok()));
    c.hub.stop();
    let start = Instant::now();
    let mut ops = 0u64;
    let mut i = 0u64;
    while start.elapsed() < Duration::from_secs(down) {
        for (m, mount) in c.mounts.iter().enumerate() {
            fs::write(mount.p(&format!("m{m}-new-{i}.txt")), format!("new file {i} from mount {m}")).unwrap();
            fs::write(mount.p(&format!("m{m}-own.txt")), format!("edit {i} of mount {m}'s own file")).unwrap();
            if i % 20 == 0 {
                fs::write(mount.p("shared.txt"), format!("edit {i} of the shared file by mount {m}")).unwrap();
            }
            ops += 2 + u64::from(i % 20 == 0);
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    c.hub.restart();
    let back = Instant::now();
    let converged = wait_until(Duration::from_secs(120), || {
        let a = snapshot_raw(&c.mounts[0].path);
        snapshot_raw(&c.mounts[1].path) == a && hub_tree(&c.hub) == Some(as_hashes(&a))
    });
    let took = back.elapsed();
    let tree = snapshot_raw(&c.mounts[0].path);
    let conflicts = tree.keys().filter(|k| k.contains(".conflict-")).count();
    println!("# ssync-offline-bench\n");
    println!("| measure | value |\n| --- | --- |");
    println!("| hub down | {down} s |");
    println!("| changes made offline (two mounts) | {ops} |");
    println!("| entries after sync | {} ({conflicts} conflict copies of shared.txt) |", tree.len());
    if converged {
        println!("| converged after the hub's return | {:.2} s |", took.as_secs_f64());
    } else {
        println!("| converged after the hub's return | NOT within 120 s |");
        std::process::exit(1);
    }
}
