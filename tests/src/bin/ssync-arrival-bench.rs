//! ssync-arrival-bench: how long after the last close on mount A another
//! mount B holds all of FILES small files, split into the two halves of the
//! way: until the hub has them all (A's side: identify, batch, send) and
//! then until B shows them all (B's side: read the feed, plan, fetch,
//! create). As a root user gets it (FUSE passthrough) and with
//! `--no-passthrough`. Prints Markdown.
//!
//! Each rep writes a fresh folder of FILES files of 4 KiB in DIRS folders on
//! A (not timed), and the time runs from the last close. The hub's feed is
//! followed (long-polls) for the files below the folder; B's folder is
//! listed every 50 ms (a listing takes B's cores too).
//!
//! Run with `bench/arrival.sh` (release build). Knobs (env): FILES (5000),
//! DIRS (50), REPS (3); SSYNC_BENCH_KEEP=1 keeps the logs (with
//! SSYNC_TEST_LOG=info,ssync_fs::sync=debug they say where time goes).
use ssync_tests::bench::{hub_cursor, knob, median, BenchDisk};
use ssync_tests::{wait_until, Hub, Mount};
use std::path::Path;
use std::time::{Duration, Instant};

/// Files (not folders) below `dir`, recursively.
fn count_files(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum()
}

/// Follows the hub's feed from `cursor`: live files below `dir` it showed,
/// and the cursor to go on from (one long-poll of up to 50 ms).
fn follow_feed(hub: &Hub, dir: &str, cursor: &mut u64, live: &mut std::collections::HashSet<String>) {
    let url = format!("{}/v1/shares/default/changes?since={cursor}&wait=50", hub.url());
    let Ok(r) = hub.http().get(url).send() else { return };
    let Ok(v) = r.json::<serde_json::Value>() else { return };
    for e in v["entries"].as_array().cloned().unwrap_or_default() {
        let path = e["path"].as_str().unwrap_or_default();
        if e["kind"] != "file" || !path.starts_with(&format!("{dir}/")) {
            continue;
        }
        match e["deleted"] == true {
            true => drop(live.remove(path)),
            false => drop(live.insert(path.to_string())),
        }
    }
    *cursor = v["cursor"].as_u64().unwrap_or(*cursor);
}

fn write_files(root: &Path, files: usize, dirs: usize) {
    for d in 0..dirs {
        std::fs::create_dir_all(root.join(format!("d{d}"))).unwrap();
    }
    let block = vec![b'x'; 4096];
    for i in 0..files {
        let mut data = block.clone();
        data[..8].copy_from_slice(&(i as u64).to_le_bytes());
        std::fs::write(root.join(format!("d{}/f{i}", i % dirs)), &data).unwrap();
    }
}

struct Figures {
    on_hub: Duration,
    on_b: Duration,
    disk: &'static str,
}

fn measure(files: usize, dirs: usize, reps: usize, mount_args: &[&str]) -> Figures {
    let dir = BenchDisk::new("ssync-arrival-");
    let hub = Hub::start_with(&dir.path().join("hub"), "127.0.0.1:0", &[]);
    let a = Mount::start_with(dir.path(), "a", &hub, mount_args);
    let b = Mount::start_with(dir.path(), "b", &hub, mount_args);
    let (mut on_hub, mut on_b) = (Vec::new(), Vec::new());
    for rep in 0..reps {
        let name = format!("rep-{rep}");
        let mut cursor = hub_cursor(&hub);
        write_files(&a.p(&name), files, dirs);
        let closed = Instant::now();
        let mut live = std::collections::HashSet::new();
        let hub_has = wait_until(Duration::from_secs(600), || {
            follow_feed(&hub, &name, &mut cursor, &mut live);
            live.len() == files
        });
        assert!(hub_has, "the hub never held all {files} files");
        on_hub.push(closed.elapsed());
        // Listing B's folder takes B's cores too: every 50 ms, not more.
        let b_has = wait_until(Duration::from_secs(600), || {
            std::thread::sleep(Duration::from_millis(40));
            count_files(&b.p(&name)) == files
        });
        assert!(b_has, "B never held all {files} files");
        on_b.push(closed.elapsed());
        // The next rep starts on a quiet machine.
        std::thread::sleep(Duration::from_secs(2));
    }
    drop((a, b, hub));
    let disk = dir.describe();
    if std::env::var_os("SSYNC_BENCH_KEEP").is_some() {
        eprintln!("logs kept in {}", dir.keep().display());
    }
    Figures { on_hub: median(on_hub), on_b: median(on_b), disk }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn main() {
    let files = knob("FILES", 5000).max(1);
    let dirs = knob("DIRS", 50).max(1);
    let reps = knob("REPS", 3).max(1);
    println!("# {files} small files closed on mount A, until mount B holds them all\n");
    println!("{files} files of 4 KiB in {dirs} folders, written on A; medians of {reps} reps, from the last close.\n");
    println!("| mode | the hub has all | B holds all | B's part |");
    println!("| --- | --- | --- | --- |");
    let mut disk = "";
    for (mode, args) in [("root, passthrough", &[][..]), ("--no-passthrough", &["--no-passthrough"][..])] {
        let f = measure(files, dirs, reps, args);
        println!("| {mode} | {} | **{}** | {} |", secs(f.on_hub), secs(f.on_b), secs(f.on_b - f.on_hub));
        disk = f.disk;
    }
    println!("\nEach mode on a disk of its own: {disk} (see `BenchDisk`).");
}
