//! ssync-bench: measures a hub and two mounts on 127.0.0.1 against a plain
//! local folder measured in the same run, and prints a Markdown report.
//!
//! Run with `bench/run.sh` (release build). Knobs (env): SAMPLES (latency
//! samples per mode, 200), BIG_MB (end-to-end file size, 1024), LOCAL_MB
//! (sequential local I/O size, 256), FILES (small files, 2000).
use ssync_tests::bench::knob;
use ssync_tests::{peak_rss_kib, pseudo_random, wait_until, Cluster};
use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Writes on `a`, then polls `b` until it reads the same bytes: one sample.
fn latency(a: &Path, b: &Path, samples: usize, create: bool) -> Vec<Duration> {
    let mut out = Vec::with_capacity(samples);
    for i in 0..samples {
        let name = if create { format!("lat-new-{i}.txt") } else { "lat-modify.txt".to_string() };
        let body = format!("sample {i} {:?}", Instant::now());
        let t0 = Instant::now();
        fs::write(a.join(&name), &body).unwrap();
        let arrived = wait_until(Duration::from_secs(30), || {
            fs::read(b.join(&name)).map(|d| d == body.as_bytes()).unwrap_or(false)
        });
        assert!(arrived, "sample {i} did not arrive within 30 s");
        out.push(t0.elapsed());
    }
    out.sort();
    out
}

fn seq_write(dir: &Path, mb: usize) -> f64 {
    let chunk = pseudo_random(1 << 20, 7);
    let t = Instant::now();
    let mut f = fs::File::create(dir.join("seq.bin")).unwrap();
    for _ in 0..mb {
        f.write_all(&chunk).unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    mb as f64 / t.elapsed().as_secs_f64()
}

fn seq_read(dir: &Path, mb: usize) -> f64 {
    let mut buf = vec![0u8; 1 << 20];
    let t = Instant::now();
    let mut f = fs::File::open(dir.join("seq.bin")).unwrap();
    let mut total = 0;
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, mb << 20);
    mb as f64 / t.elapsed().as_secs_f64()
}

fn small_files(dir: &Path, n: usize) -> f64 {
    let t = Instant::now();
    for d in 0..(n / 100).max(1) {
        fs::create_dir_all(dir.join(format!("d{d}"))).unwrap();
    }
    for i in 0..n {
        fs::write(dir.join(format!("d{}/f{i}.txt", i / 100)), format!("file {i}")).unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn walk(dir: &Path) -> (usize, Duration) {
    let t = Instant::now();
    let mut count = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = fs::metadata(e.path()).unwrap();
            count += 1;
            if meta.is_dir() {
                stack.push(e.path());
            }
        }
    }
    (count, t.elapsed())
}

fn main() {
    let samples = knob("SAMPLES", 200);
    let big_mb = knob("BIG_MB", 1024);
    let local_mb = knob("LOCAL_MB", 256);
    let files = knob("FILES", 2000);
    let c = Cluster::new(2);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    let native = c.dir.path().join("native");
    fs::create_dir_all(&native).unwrap();
    println!(
        "# ssync-bench\n\nhub and two mounts on 127.0.0.1; baseline: a plain folder on the same disk ({}).\n",
        c.dir.path().display()
    );

    println!("## Sync latency: close on mount A until B reads the new content\n");
    println!("| mode | samples | p50 | p95 | max |\n| --- | --- | --- | --- | --- |");
    for (mode, create) in [("modify one file", false), ("create new files", true)] {
        let lat = latency(&a.path, &b.path, samples, create);
        println!(
            "| {mode} | {samples} | {} | {} | {} |",
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.95)),
            ms(*lat.last().unwrap())
        );
    }

    println!("\n## Local speed of a mount (cached) vs a plain folder\n");
    println!("| workload | plain folder | ssync mount | ratio |\n| --- | --- | --- | --- |");
    let (nw, sw) = (seq_write(&native, local_mb), seq_write(&a.path, local_mb));
    println!("| sequential write {local_mb} MiB + fsync | {nw:.0} MB/s | {sw:.0} MB/s | {:.2} |", sw / nw);
    let (nr, sr) = (seq_read(&native, local_mb), seq_read(&a.path, local_mb));
    println!("| sequential read {local_mb} MiB (warm) | {nr:.0} MB/s | {sr:.0} MB/s | {:.2} |", sr / nr);
    let (nf, sf) = (small_files(&native, files), small_files(&a.path, files));
    println!(
        "| create {files} small files in {} folders | {nf:.0} files/s | {sf:.0} files/s | {:.2} |",
        files / 100,
        sf / nf
    );
    let ((nc, nt), (sc, st)) = (walk(&native), walk(&a.path));
    let (nper, sper) = (nt.as_secs_f64() / nc as f64, st.as_secs_f64() / sc as f64);
    println!(
        "| list and stat every entry, warm ({nc} / {sc} entries) | {:.1} µs/entry | {:.1} µs/entry | {:.2} |",
        nper * 1e6,
        sper * 1e6,
        nper / sper
    );
    fs::remove_file(a.p("seq.bin")).unwrap();

    println!("\n## A {big_mb} MiB file: written on A until B has all of it\n");
    let chunk_count = big_mb;
    let t0 = Instant::now();
    let mut f = fs::File::create(a.p("big.bin")).unwrap();
    let mut hasher = blake3_hasher();
    for i in 0..chunk_count {
        let chunk = pseudo_random(1 << 20, i as u64 + 1);
        hasher.update(&chunk);
        f.write_all(&chunk).unwrap();
    }
    drop(f);
    let written = t0.elapsed();
    // A small file closed while the big one uploads must not wait for it.
    let small_closed = Instant::now();
    fs::write(a.p("small-during-big.txt"), vec![b's'; 4096]).unwrap();
    let small_in =
        wait_until(Duration::from_secs(600), || fs::read(b.p("small-during-big.txt")).is_ok_and(|d| d.len() == 4096));
    assert!(small_in, "the small file did not arrive");
    let small_took = small_closed.elapsed();
    let want = (big_mb as u64) << 20;
    let big_there_first = fs::metadata(b.p("big.bin")).is_ok_and(|m| m.len() == want);
    let arrived =
        wait_until(Duration::from_secs(600), || fs::metadata(b.p("big.bin")).map(|m| m.len() == want).unwrap_or(false));
    assert!(arrived, "the big file did not arrive");
    let total = t0.elapsed();
    let mut got = blake3_hasher();
    let mut rf = fs::File::open(b.p("big.bin")).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = rf.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.update(&buf[..n]);
    }
    assert_eq!(got.finish(), hasher.finish(), "B's copy differs");
    println!("| step | time | rate |\n| --- | --- | --- |");
    println!(
        "| write on A (to the local cache) | {} | {:.0} MB/s |",
        ms(written),
        big_mb as f64 / written.as_secs_f64()
    );
    println!(
        "| end to end, until B has it (byte-identical) | {} | {:.0} MB/s |",
        ms(total),
        big_mb as f64 / total.as_secs_f64()
    );
    println!(
        "| a 4 KiB file closed on A just after it, until B has it | {} | {} |",
        ms(small_took),
        if big_there_first { "after the big file" } else { "while the big file was still on its way" }
    );

    println!("\n## Peak memory (VmHWM) over the whole run\n");
    println!("| process | peak RSS |\n| --- | --- |");
    for (name, pid) in [("ssync-server (hub)", c.hub.pid()), ("ssync-mount A", a.pid()), ("ssync-mount B", b.pid())] {
        let kib = pid.and_then(peak_rss_kib).unwrap_or(0);
        println!("| {name} | {:.1} MiB |", kib as f64 / 1024.0);
    }
}

fn blake3_hasher() -> ssync_common::ContentHasher {
    ssync_common::ContentHasher::new()
}
