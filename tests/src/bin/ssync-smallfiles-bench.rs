//! ssync-smallfiles-bench: small-file work on a mount against a plain local
//! folder and bindfs (a bare FUSE passthrough over a plain folder: the floor
//! for any FUSE filesystem) measured in the same run, as a root user gets it
//! (FUSE passthrough) and as every other user does (`--no-passthrough`).
//! Prints Markdown.
//!
//! Each workload runs in REPS alternating rounds (plain folder, bindfs, mount),
//! each after a `sync` and after the second mount has taken in the step
//! before (it shares the cores and the disk); the table gives the medians and
//! the ratios of the medians (1.0 = as fast as the local disk, or as bindfs;
//! above 1.0 = faster). `ls -lR` runs twice and the second, warm, is
//! measured. Creates and
//! `tar x` run before any `rm -rf` (see the printed note on ext4). Also: how long after the last
//! close a second mount holds all the files, and the hub's rate for
//! metadata changes sent straight to it.
//!
//! Run with `bench/smallfiles.sh` (release build). Knobs (env): FILES (5000),
//! DIRS (50), REPS (3), HUB_OPS (4000), MODES ("pt nopt"); SSYNC_BENCH_KEEP=1
//! keeps the logs (with SSYNC_TEST_LOG=info,ssync_fs::sync=debug they say
//! where time goes).
use ssync_tests::bench::{create_small_files, knob, median, BenchDisk, Bindfs};
use ssync_tests::{api_upload, batch_commit, wait_until, Hub, Mount};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn sync_disks() {
    let _ = Command::new("sync").status();
}

fn run(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let st = cmd.status().expect("run a command");
    assert!(st.success(), "{cmd:?} failed");
    t.elapsed()
}

fn count_files(dir: &Path) -> usize {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(t) if t.is_file() && e.metadata().is_ok_and(|m| m.len() == 4096) => 1,
            _ => 0,
        })
        .sum()
}

struct Row {
    name: &'static str,
    plain: Vec<Duration>,
    bind: Vec<Duration>,
    mount: Vec<Duration>,
}

impl Row {
    fn print(&self, mode: &str, files: usize) {
        let (p, b, m) = (median(self.plain.clone()), median(self.bind.clone()), median(self.mount.clone()));
        let per_file = |d: Duration| d.as_secs_f64() * 1e6 / files as f64;
        println!(
            "| {mode} | {} | {:.0} µs/file | {:.0} µs/file | {:.0} µs/file | **{:.2}** | **{:.2}** |",
            self.name,
            per_file(p),
            per_file(b),
            per_file(m),
            p.as_secs_f64() / m.as_secs_f64(),
            b.as_secs_f64() / m.as_secs_f64()
        );
    }
}

fn main() {
    let files = knob("FILES", 5000);
    let dirs = knob("DIRS", 50);
    let reps = knob("REPS", 3).max(1);
    let hub_ops = knob("HUB_OPS", 4000);
    let dir = BenchDisk::new("ssync-smallfiles-");
    let hub = Hub::start_with(&dir.path().join("hub"), "127.0.0.1:0", &[]);
    let observer = Mount::start(dir.path(), "observer", &hub);
    let bindfs = Bindfs::mount(dir.path());
    let plain = dir.path().join("plain");
    fs::create_dir_all(&plain).unwrap();
    // The tree `tar x` unpacks, made on the local disk.
    let src = dir.path().join("tar-src");
    create_small_files(&src, files, dirs);
    let archive = dir.path().join("tree.tar");
    run(Command::new("tar").arg("cf").arg(&archive).arg("-C").arg(&src).arg("."));

    println!("# Small files: mount vs a plain folder and bindfs on the same disk\n");
    println!("{files} files of 4 KiB in {dirs} folders; median of {reps} alternating pairs, `sync` before each, and the second mount caught up.\n");
    println!("All on {}. In each mode every create and `tar x` is measured before anything is deleted; on a disk without a journal the next mode starts a minute after the last `rm -rf` (see `BenchDisk`).\n", dir.describe());
    println!("Ratios are speed: the baseline's time over the mount's (1.0 = as fast, above = faster).\n");
    println!("| mode | workload | plain folder | bindfs | ssync mount | vs plain | vs bindfs |\n| --- | --- | --- | --- | --- | --- | --- |");
    // Each step starts on a quiet machine: the other mount has taken in the
    // step before (it shares these 2 cores and the disk).
    let settled = |dir: &str, want: usize| {
        let there = observer.path.join(dir);
        // Listing the other mount takes its cores too (a listing every 10 ms
        // of 5,000 files held back the sync it waits for): every 50 ms, as
        // the arrival bench does.
        let ok = wait_until(Duration::from_secs(600), || {
            std::thread::sleep(Duration::from_millis(40));
            count_files(&there) == want
        });
        assert!(ok, "the other mount never held {want} files in {dir}");
    };
    let mut arrivals = Vec::new();
    let modes = [("root (passthrough)", "pt", &[][..]), ("--no-passthrough", "nopt", &["--no-passthrough"][..])];
    let wanted = std::env::var("MODES").unwrap_or_else(|_| "pt nopt".into());
    let modes = modes.into_iter().filter(|(_, key, _)| wanted.split_whitespace().any(|w| w == *key));
    for (i, (mode, name, flags)) in modes.enumerate() {
        if i > 0 && dir.slow_after_deletes() {
            std::thread::sleep(Duration::from_secs(65));
        }
        let m = Mount::start_with(dir.path(), name, &hub, flags);
        // A new mount first brings down what the hub holds (the modes before
        // left 15,000 files): the steps start once it has.
        let held = count_files(&observer.path);
        let caught_up = wait_until(Duration::from_secs(600), || {
            std::thread::sleep(Duration::from_millis(40));
            count_files(&m.path) == held
        });
        assert!(caught_up, "mount {name} never held the {held} files the hub holds");
        // One workload in `reps` alternating pairs. `step(root, dir)` does it
        // below `root` and names the folder (below `root`) where the other
        // mount must then hold the number of files it returns.
        let mut pairs = |label: &'static str, step: &dyn Fn(&Path, &str) -> (Duration, String, usize)| {
            let mut row = Row { name: label, plain: vec![], bind: vec![], mount: vec![] };
            for rep in 0..reps {
                let dir = format!("{name}-{rep}");
                sync_disks();
                row.plain.push(step(&plain, &dir).0);
                sync_disks();
                row.bind.push(step(&bindfs.path, &dir).0);
                sync_disks();
                let (took, there, want) = step(&m.path, &dir);
                let closed = Instant::now();
                settled(&there, want);
                if label == "create" && rep == 0 {
                    arrivals.push((mode, closed.elapsed()));
                }
                row.mount.push(took);
            }
            row.print(mode, files);
        };
        pairs("create", &|root, dir| {
            let there = format!("create-{dir}");
            (create_small_files(&root.join(&there), files, dirs), there, files)
        });
        pairs("tar x", &|root, dir| {
            let there = format!("tar-{dir}");
            fs::create_dir_all(root.join(&there)).unwrap();
            (run(Command::new("tar").arg("xf").arg(&archive).arg("-C").arg(root.join(&there))), there, files)
        });
        pairs("ls -lR (warm)", &|root, dir| {
            let there = format!("tar-{dir}");
            let ls = || run(Command::new("sh").arg("-c").arg("ls -lR \"$0\" > /dev/null").arg(root.join(&there)));
            ls();
            (ls(), there, files)
        });
        pairs("rm -rf", &|root, dir| {
            let there = format!("tar-{dir}");
            (run(Command::new("rm").arg("-rf").arg(root.join(&there))), there, 0)
        });
    }
    println!("\n## Close on one mount until another holds all {files} files\n");
    println!("| mode | after the last close |\n| --- | --- |");
    for (mode, d) in arrivals {
        println!("| {mode} | {:.2} s |", d.as_secs_f64());
    }

    // The hub alone: metadata changes sent as fast as one client can.
    let http = hub.http();
    let url = hub.url();
    let t = Instant::now();
    // The version the answer gives `path` (a rename also answers with the
    // tombstone it left behind).
    let version_of = |r: reqwest::blocking::Response, path: &str| -> u64 {
        assert!(r.status().is_success(), "{path}: {}", r.text().unwrap_or_default());
        let v: serde_json::Value = r.json().expect("JSON answer");
        let es = v["entries"].as_array().cloned().unwrap_or_default();
        es.iter().find(|e| e["path"] == path && e["deleted"] != true).and_then(|e| e["version"].as_u64()).unwrap_or(0)
    };
    let post = |what: &str, path: &str, body: serde_json::Value| {
        version_of(
            http.post(format!("{url}/v1/shares/default/{what}")).json(&body).send().expect("hub reachable"),
            path,
        )
    };
    let per_kind = hub_ops / 4;
    let mut changes = 0;
    for i in 0..per_kind {
        let (d, f, g) = (format!("hub-bench/d{i}"), format!("hub-bench/d{i}/f"), format!("hub-bench/d{i}/g"));
        post("mkdir", &d, serde_json::json!({"path": d, "base": 0, "mode": 493, "mtime_ns": 1}));
        let fv = version_of(api_upload(&http, &url, &f, 0, format!("small {i}").as_bytes()), &f);
        let rv = post("rename", &g, serde_json::json!({"from": f, "to": g, "base": fv, "to_base": 0}));
        post("delete", &g, serde_json::json!({"path": g, "base": rv}));
        changes += 4;
    }
    let secs = t.elapsed().as_secs_f64();
    println!("\n## The hub's rate for metadata changes (one client, one change per request)\n");
    println!(
        "{changes} changes (mkdir, small create, rename, delete) in {secs:.2} s: **{:.0} changes/s**",
        changes as f64 / secs
    );

    // The same kinds of change in batches (`POST /v1/shares/default/batch`), as a mount sends
    // them: mkdirs and small creates in one batch, then renames, then deletes.
    let t = Instant::now();
    let mut changes = 0;
    let per_batch = 250;
    let batch = |items: Vec<serde_json::Value>| {
        let r = http.post(format!("{url}/v1/shares/default/batch")).json(&serde_json::json!({"changes": items})).send();
        let v: serde_json::Value = r.expect("hub reachable").json().expect("JSON answer");
        assert!(v["refused"].is_null(), "a batch change was refused: {v}");
        v["done"].as_array().cloned().unwrap_or_default()
    };
    let version_in = |done: &serde_json::Value, path: &str| -> u64 {
        let es = done["entries"].as_array().cloned().unwrap_or_default();
        es.iter().find(|e| e["path"] == path && e["deleted"] != true).and_then(|e| e["version"].as_u64()).unwrap_or(0)
    };
    for b in 0..(per_kind / (per_batch / 2)).max(1) {
        let names: Vec<(String, String, String)> = (0..per_batch / 2)
            .map(|i| (format!("hub-batch/b{b}-{i}"), format!("hub-batch/b{b}-{i}/f"), format!("hub-batch/b{b}-{i}/g")))
            .collect();
        let mut made = Vec::new();
        for (d, f, _) in &names {
            made.push(serde_json::json!({"op": "mkdir", "path": d, "base": 0, "mode": 493, "mtime_ns": 1}));
            made.push(batch_commit(f, format!("small {f}").as_bytes()));
        }
        let done = batch(made);
        let renames = names
            .iter()
            .enumerate()
            .map(|(i, (_, f, g))| serde_json::json!({"op": "rename", "from": f, "to": g, "base": version_in(&done[2 * i + 1], f), "to_base": 0}))
            .collect();
        let done = batch(renames);
        let deletes = names
            .iter()
            .enumerate()
            .map(|(i, (_, _, g))| serde_json::json!({"op": "delete", "path": g, "base": version_in(&done[i], g)}))
            .collect();
        batch(deletes);
        changes += 4 * names.len();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "\nThe same in batches of {per_batch} (`POST /v1/shares/default/batch`, as mounts send them): {changes} changes in {secs:.2} s: **{:.0} changes/s**",
        changes as f64 / secs
    );
    if std::env::var_os("SSYNC_BENCH_KEEP").is_some() {
        eprintln!("logs kept in {}", dir.keep().display());
    }
}
