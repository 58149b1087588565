//! ssync-rename-bench: how fast a folder rename on one mount reaches another,
//! and what it costs the hub's feed, for a folder of FILES files against a
//! single file's rename measured in the same run (the cost of one change
//! going through: the floor). As a root user gets it (FUSE passthrough) and
//! with `--no-passthrough`. Prints Markdown.
//!
//! The files are made on the hub (one batch request per 250), both mounts
//! take them in, then mount A renames the folder (and the file) REPS times,
//! back and forth; each time is from the `rename(2)` on A until B shows the
//! new name and not the old one (polled every millisecond).
//!
//! Run with `bench/rename.sh` (release build). Knobs (env): FILES (10000), REPS (5);
//! SSYNC_BENCH_KEEP=1 keeps each run's folder (the processes' logs; with
//! SSYNC_TEST_LOG=info,ssync_fs::sync=debug they say where time goes).
use ssync_tests::bench::{hub_cursor, knob, median};
use ssync_tests::{batch_commit, wait_until, Hub, Mount};
use std::path::Path;
use std::time::{Duration, Instant};

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|rd| rd.count()).unwrap_or(0)
}

/// Renames `from` to `to` on A; the time until B has `to` and not `from`,
/// and how far the hub's feed moved.
fn rename_once(hub: &Hub, a: &Mount, b: &Mount, from: &str, to: &str) -> (Duration, u64) {
    let before = hub_cursor(hub);
    let t = Instant::now();
    std::fs::rename(a.p(from), a.p(to)).expect("rename on A");
    let arrived = wait_until(Duration::from_secs(60), || b.p(to).exists() && !b.p(from).exists());
    let took = t.elapsed();
    assert!(arrived, "B never showed {from} renamed to {to}");
    // The hub has it before B does; nothing else writes.
    (took, hub_cursor(hub) - before)
}

struct Figures {
    folder: Duration,
    folder_rows: u64,
    file: Duration,
    file_rows: u64,
}

fn measure(files: usize, reps: usize, mount_args: &[&str]) -> Figures {
    let dir = tempfile::Builder::new().prefix("ssync-rename-").tempdir_in("/var/tmp").expect("temp dir");
    let hub = Hub::start_with(&dir.path().join("hub"), "127.0.0.1:0", &[]);
    let (http, url) = (hub.http(), hub.url());
    let mut changes =
        vec![serde_json::json!({"op": "mkdir", "path": "folder-0", "base": 0, "mode": 493, "mtime_ns": 1})];
    for i in 0..files {
        changes.push(batch_commit(&format!("folder-0/f{i}"), format!("file {i}\n").as_bytes()));
        if changes.len() == 250 || i + 1 == files {
            let body = serde_json::json!({ "changes": std::mem::take(&mut changes) });
            let v: serde_json::Value =
                http.post(format!("{url}/v1/shares/default/batch")).json(&body).send().unwrap().json().unwrap();
            assert!(v["refused"].is_null(), "a change was refused: {v}");
        }
    }
    let body = serde_json::json!({ "changes": [batch_commit("file-0", b"one file\n")] });
    http.post(format!("{url}/v1/shares/default/batch")).json(&body).send().unwrap();
    let a = Mount::start_with(dir.path(), "a", &hub, mount_args);
    let b = Mount::start_with(dir.path(), "b", &hub, mount_args);
    for m in [&a, &b] {
        let all =
            wait_until(Duration::from_secs(600), || count_files(&m.p("folder-0")) == files && m.p("file-0").exists());
        assert!(all, "a mount never held all {files} files");
    }
    // Let both settle (first digest compare) before timing.
    std::thread::sleep(Duration::from_secs(2));
    let (mut folder, mut file) = (Vec::new(), Vec::new());
    let (mut folder_rows, mut file_rows) = (0, 0);
    for r in 0..reps {
        let (took, rows) = rename_once(&hub, &a, &b, &format!("folder-{r}"), &format!("folder-{}", r + 1));
        folder.push(took);
        folder_rows = folder_rows.max(rows);
        let (took, rows) = rename_once(&hub, &a, &b, &format!("file-{r}"), &format!("file-{}", r + 1));
        file.push(took);
        file_rows = file_rows.max(rows);
    }
    assert_eq!(count_files(&b.p(&format!("folder-{reps}"))), files, "B holds every file under the new name");
    drop((a, b, hub));
    if std::env::var_os("SSYNC_BENCH_KEEP").is_some() {
        eprintln!("logs kept in {}", dir.keep().display());
    }
    Figures { folder: median(folder), folder_rows, file: median(file), file_rows }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let files = knob("FILES", 10_000).max(1);
    let reps = knob("REPS", 5).max(1);
    println!("# A folder rename on mount A, until mount B shows it\n");
    println!("Folder of {files} files; medians of {reps} renames each; the feed rows are the hub's cursor moves.\n");
    println!("| mode | folder of {files} files | feed rows | one file (same run) | feed rows | folder / file |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (mode, args) in [("root, passthrough", &[][..]), ("--no-passthrough", &["--no-passthrough"][..])] {
        let f = measure(files, reps, args);
        println!(
            "| {mode} | **{}** | {} | {} | {} | {:.2} |",
            ms(f.folder),
            f.folder_rows,
            ms(f.file),
            f.file_rows,
            f.folder.as_secs_f64() / f.file.as_secs_f64()
        );
    }
}
