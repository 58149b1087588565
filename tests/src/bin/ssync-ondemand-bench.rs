//! ssync-ondemand-bench: files on demand. A hub, a full mount A that writes,
//! and mounts with `--cache-max` that read: B (a limit the test file fits
//! in) and C (64 MiB). Prints, as root with passthrough and with
//! `--no-passthrough`:
//! - time to first byte of an uncached 1 GiB file (open + 4 KiB read);
//! - its sequential read rate uncached, against the same file once cached
//!   (page cache dropped before each read) and a plain local file;
//! - the rate of a whole copy from the hub (a new mount without a limit
//!   downloading the tree), against which the uncached read is also put;
//! - bytes the hub sent for a 4 KiB read at offset 900 MiB of another
//!   uncached 1 GiB file (the hub's own counters);
//! - the cache's peak bytes on disk while C copies out, and copies in, twice
//!   its limit (sampled every 10 ms).
//!
//! - how long a new mount of a 10,000-file, 2 GiB tree takes to list it all.
//!
//! Run with `bench/ondemand.sh` (release build, as root: it drops the page
//! cache). Knobs (env): BIG_MB (1024), COPY_MB (128: twice C's limit),
//! TREE_FILES (10000), TREE_MB (2048).
use ssync_tests::bench::knob;
use ssync_tests::{hub_traffic, pseudo_random, wait_until, CacheSampler, Cluster, Mount};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

fn drop_page_cache() {
    nix_sync();
    if let Err(e) = fs::write("/proc/sys/vm/drop_caches", "3") {
        eprintln!("cannot drop the page cache ({e}); rates may come from memory");
    }
}

fn nix_sync() {
    let _ = std::process::Command::new("sync").status();
}

fn write_big(p: &Path, mb: u64, seed: u64) {
    let mut f = fs::File::create(p).unwrap();
    for i in 0..mb {
        f.write_all(&pseudo_random(MIB as usize, seed * 100_000 + i)).unwrap();
    }
}

/// Reads `p` to its end; MiB/s.
fn read_rate(p: &Path) -> f64 {
    let t = Instant::now();
    let mut f = fs::File::open(p).unwrap();
    let mut buf = vec![0u8; MIB as usize];
    let mut n = 0u64;
    loop {
        let got = f.read(&mut buf).unwrap();
        if got == 0 {
            break;
        }
        n += got as u64;
    }
    n as f64 / MIB as f64 / t.elapsed().as_secs_f64()
}

/// Runs `work`; the peak of `m`'s cache bytes on disk meanwhile.
fn peak_during(m: &Mount, work: impl FnOnce()) -> u64 {
    let sampler = CacheSampler::start(m);
    work();
    sampler.peak()
}

fn copy_tree(from: &Path, to: &Path) {
    let st = std::process::Command::new("cp").arg("-r").arg(from).arg(to).status().unwrap();
    assert!(st.success(), "cp -r {} {}", from.display(), to.display());
}

fn run(mode: &str, extra: &[&str]) {
    let big = knob("BIG_MB", 1024);
    let copy = knob("COPY_MB", 128);
    let b_limit = format!("{}M", big + 256);
    let mut b_flags = vec!["--cache-max", b_limit.as_str()];
    b_flags.extend_from_slice(extra);
    let mut c_flags = vec!["--cache-max", "64M"];
    c_flags.extend_from_slice(extra);
    let c = Cluster::with_mount_flags(&[&[], &b_flags, &c_flags]);
    let (a, b, cm) = (&c.mounts[0], &c.mounts[1], &c.mounts[2]);
    let plain = c.dir.path().join("plain");
    fs::create_dir_all(plain.join("in")).unwrap();
    write_big(&plain.join("big.bin"), big, 1);
    write_big(&a.p("big1.bin"), big, 2);
    write_big(&a.p("big2.bin"), big, 3);
    fs::create_dir_all(a.p("out")).unwrap();
    for i in 0..copy / 8 {
        write_big(&a.p(&format!("out/f{i}.bin")), 8, 10 + i);
        write_big(&plain.join(format!("in/g{i}.bin")), 8, 1000 + i);
    }
    let arrived = wait_until(Duration::from_secs(600), || {
        ["big1.bin", "big2.bin"]
            .iter()
            .all(|n| [b, cm].iter().all(|m| fs::metadata(m.p(n)).is_ok_and(|md| md.len() == big * MIB)))
            && (0..copy / 8).all(|i| fs::metadata(cm.p(&format!("out/f{i}.bin"))).is_ok_and(|m| m.len() == 8 * MIB))
    });
    assert!(arrived, "the files reached B and C's listings");

    drop_page_cache();
    let t = Instant::now();
    let f = fs::File::open(b.p("big1.bin")).unwrap();
    let mut first = [0u8; 4096];
    f.read_exact_at(&mut first, 0).unwrap();
    let ttfb = t.elapsed();
    drop(f);
    drop_page_cache();
    let uncached = read_rate(&b.p("big1.bin"));
    drop_page_cache();
    let cached = read_rate(&b.p("big1.bin"));
    drop_page_cache();
    let local = read_rate(&plain.join("big.bin"));

    let far = big * 900 / 1024; // 900 MiB into the default 1 GiB file
    let before = hub_traffic(&c.hub).1;
    let f = fs::File::open(b.p("big2.bin")).unwrap();
    let mut buf = [0u8; 4096];
    f.read_exact_at(&mut buf, far * MIB).unwrap();
    drop(f);
    std::thread::sleep(Duration::from_millis(300)); // any read-ahead would show
    let sent = hub_traffic(&c.hub).1 - before;

    // The rate of a whole copy from the hub, for comparison: a new mount
    // without a limit lists a file only once all of it is here.
    drop_page_cache();
    let t = Instant::now();
    let d = Mount::start_with(c.dir.path(), "full", &c.hub, extra);
    let copied = wait_until(Duration::from_secs(600), || {
        ["big1.bin", "big2.bin"].iter().all(|n| fs::metadata(d.p(n)).is_ok_and(|m| m.len() == big * MIB))
            && (0..copy / 8).all(|i| fs::metadata(d.p(&format!("out/f{i}.bin"))).is_ok_and(|m| m.len() == 8 * MIB))
    });
    assert!(copied, "a new full mount got the tree");
    let whole_copy = (2 * big + copy) as f64 / t.elapsed().as_secs_f64();
    drop(d);

    let out_dir = c.dir.path().join("copied-out");
    let peak_out = peak_during(cm, || copy_tree(&cm.p("out"), &out_dir));
    let peak_in = peak_during(cm, || copy_tree(&plain.join("in"), &cm.p("in")));

    println!("### {mode}\n");
    println!("| figure | value |\n| --- | --- |");
    println!("| time to first byte, uncached {big} MiB file | {:.1} ms |", ttfb.as_secs_f64() * 1000.0);
    println!("| sequential read, uncached | {uncached:.0} MiB/s |");
    println!("| sequential read, cached on the mount | {cached:.0} MiB/s |");
    println!("| sequential read, plain local file | {local:.0} MiB/s |");
    println!("| uncached / cached | {:.2} |", uncached / cached);
    println!("| whole copy from the hub (new mount without a limit, start included) | {whole_copy:.0} MiB/s |");
    println!("| uncached read / whole copy | {:.2} |", uncached / whole_copy);
    println!("| hub bytes sent for a 4 KiB read at {far} MiB | {} KiB |", sent / 1024);
    println!("| peak cache, copying {copy} MiB out of a 64 MiB cache | {:.1} MiB |", peak_out as f64 / MIB as f64);
    println!("| peak cache, copying {copy} MiB into a 64 MiB cache | {:.1} MiB |\n", peak_in as f64 / MIB as f64);
}

/// A new mount of a tree of `files` files, `mb` MiB in all: how long until
/// it lists every file with its size.
fn browse(files: u64, mb: u64) {
    let c = Cluster::with_mount_flags(&[&[]]);
    let a = &c.mounts[0];
    let per = (mb * MIB / files) as usize;
    for i in 0..files {
        let dir = a.p(&format!("d{:03}", i % 100));
        if i < 100 {
            fs::create_dir_all(&dir).unwrap();
        }
        fs::write(dir.join(format!("f{i:05}")), pseudo_random(per, 50_000 + i)).unwrap();
    }
    let all_on_hub = wait_until(Duration::from_secs(600), || {
        ssync_tests::hub_tree(&c.hub).is_some_and(|t| t.len() as u64 >= files + 100)
    });
    assert!(all_on_hub, "the hub has the tree");
    let t = Instant::now();
    let d = Mount::start_with(c.dir.path(), "fresh", &c.hub, &["--cache-max", "64M"]);
    let listed = wait_until(Duration::from_secs(120), || {
        (0..100u64).all(|k| fs::read_dir(d.p(&format!("d{k:03}"))).is_ok_and(|r| r.count() as u64 == files / 100))
    });
    assert!(listed, "the new mount lists the tree");
    let took = t.elapsed();
    let sizes =
        (0..files).all(|i| fs::metadata(d.p(&format!("d{:03}/f{i:05}", i % 100))).is_ok_and(|m| m.len() == per as u64));
    println!("### a new mount of {files} files, {mb} MiB, with --cache-max 64M\n");
    println!("| figure | value |\n| --- | --- |");
    println!("| start to every file listed (mount start included) | {:.2} s |", took.as_secs_f64());
    println!("| every size right | {sizes} |\n");
}

fn main() {
    if effective_uid() != 0 {
        eprintln!("run as root: the bench drops the page cache and mounts with passthrough");
        std::process::exit(2);
    }
    run("root, passthrough", &[]);
    run("--no-passthrough", &["--no-passthrough"]);
    browse(knob("TREE_FILES", 10_000), knob("TREE_MB", 2048));
}

/// The effective uid, from /proc (no libc call needed).
fn effective_uid() -> u32 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|u| u.parse().ok())
        .unwrap_or(u32::MAX)
}
