//! ssync-transfer-bench: how many bytes cross the wire for edits of large
//! files, how fast a fresh large file travels, and whether a cut-off upload
//! resumes. A hub and two mounts on 127.0.0.1; bytes are the hub's own
//! counters (`GET /v1/stats`: bodies plus request and header lines, both
//! directions, every mount), read before the change and once B has it.
//!
//! Run with `bench/transfer.sh` (release build). Knobs (env): EDIT_MB (size
//! of the edited file, 256), BIG_MB (fresh file, 1024). With
//! SSYNC_BENCH_PHASES=1 SSYNC_TEST_LOG=info,ssync_fs=debug it also prints how
//! long A's upload and B's download of each file took.
use ssync_common::ContentHasher;
use ssync_tests::bench::knob;
use ssync_tests::{hub_traffic, peak_rss_kib, pseudo_random, wait_until, Cluster};
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

fn hash_file(p: &Path) -> Option<ssync_common::ContentHash> {
    let mut f = fs::File::open(p).ok()?;
    let mut h = ContentHasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            return Some(h.finish());
        }
        h.update(&buf[..n]);
    }
}

/// `mb` MiB of pseudo-random data, in 1 MiB blocks, and its hash.
fn random_blocks(mb: u64, seed: u64) -> (Vec<Vec<u8>>, ssync_common::ContentHash) {
    let mut h = ContentHasher::new();
    let blocks: Vec<Vec<u8>> = (0..mb).map(|i| pseudo_random(MIB as usize, seed * 100_000 + i + 1)).collect();
    blocks.iter().for_each(|b| h.update(b));
    (blocks, h.finish())
}

fn write_blocks(p: &Path, blocks: &[Vec<u8>]) {
    let mut f = fs::File::create(p).unwrap();
    blocks.iter().for_each(|b| f.write_all(b).unwrap());
}

/// Writes `mb` MiB of pseudo-random data to `p`; returns its hash.
fn write_random(p: &Path, mb: u64, seed: u64) -> ssync_common::ContentHash {
    let (blocks, hash) = random_blocks(mb, seed);
    write_blocks(p, &blocks);
    hash
}

/// Waits until `p` on B has the content hashing to `want`; returns how long it
/// took to appear (B installs a download with one rename, so the right size
/// and a new mtime mean it is all there; the hash is checked after the clock
/// stops). Opens are short: a file held open on B takes remote updates at its close.
fn wait_for(p: &Path, size: u64, want: ssync_common::ContentHash) -> Duration {
    let t = Instant::now();
    let stamp = |p: &Path| fs::metadata(p).ok().map(|m| (m.len(), m.modified().ok()));
    let mut checked = None;
    let mut took = Duration::ZERO;
    let ok = wait_until(Duration::from_secs(600), || {
        let now = stamp(p);
        if now.is_none() || now == checked || now.is_some_and(|(len, _)| len != size) {
            return false;
        }
        took = t.elapsed();
        checked = now;
        hash_file(p) == Some(want)
    });
    assert!(ok, "{} did not arrive", p.display());
    took
}

fn kib(n: u64) -> String {
    format!("{:.1} KiB", n as f64 / 1024.0)
}

fn main() {
    let edit_mb = knob("EDIT_MB", 256);
    let big_mb = knob("BIG_MB", 1024);
    let c = Cluster::new(2);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    println!("# ssync-transfer-bench\n\nhub and two mounts on 127.0.0.1; bytes from the hub's counters.\n");

    let size = edit_mb * MIB;
    let want = write_random(&a.p("edit.bin"), edit_mb, 1);
    wait_for(&b.p("edit.bin"), size, want);
    println!("## Edits of a synced {edit_mb} MiB file of random data\n");
    println!("| change | on the wire (in + out) | limit | time until B has it |\n| --- | --- | --- | --- |");
    let measure = |label: &str, limit: u64, change: &dyn Fn() -> (std::path::PathBuf, u64)| {
        let (r0, s0) = hub_traffic(&c.hub);
        let t = Instant::now();
        let (path_on_b, new_size) = change();
        let rel = path_on_b.strip_prefix(&b.path).unwrap().to_path_buf();
        let want = hash_file(&a.path.join(&rel)).unwrap();
        wait_for(&path_on_b, new_size, want);
        let took = t.elapsed();
        // Let the long-polls and acknowledgements of this change finish.
        std::thread::sleep(Duration::from_millis(300));
        let (r1, s1) = hub_traffic(&c.hub);
        let wire = (r1 - r0) + (s1 - s0);
        let verdict = if wire <= limit { "ok" } else { "OVER" };
        println!(
            "| {label} | {} (in {}, out {}) | {} {verdict} | {} ms |",
            kib(wire),
            kib(r1 - r0),
            kib(s1 - s0),
            kib(limit),
            took.as_millis()
        );
        if wire > limit {
            for (name, m) in [("A", a), ("B", b)] {
                let log = m.log();
                let lines: Vec<&str> = log
                    .lines()
                    .filter(|l| {
                        l.contains("WARN") || l.contains("ERROR") || l.contains("edit.bin") || l.contains("download")
                    })
                    .collect();
                eprintln!(
                    "--- mount {name}: {} warnings/errors, last ones:\n{}",
                    lines.len(),
                    lines[lines.len().saturating_sub(15)..].join("\n")
                );
            }
        }
    };
    measure("1 byte changed in the middle", 256 * 1024, &|| {
        let mut f = fs::OpenOptions::new().read(true).write(true).open(a.p("edit.bin")).unwrap();
        f.seek(SeekFrom::Start(size / 2)).unwrap();
        let mut one = [0u8; 1];
        f.read_exact(&mut one).unwrap();
        f.seek(SeekFrom::Start(size / 2)).unwrap();
        f.write_all(&[one[0] ^ 0xff]).unwrap();
        drop(f);
        (b.p("edit.bin"), size)
    });
    measure("copied to a new name (cp)", MIB, &|| {
        fs::copy(a.p("edit.bin"), a.p("copy.bin")).unwrap();
        (b.p("copy.bin"), size)
    });
    measure("64 bytes appended", 256 * 1024, &|| {
        let mut f = fs::OpenOptions::new().append(true).open(a.p("edit.bin")).unwrap();
        f.write_all(&[7u8; 64]).unwrap();
        drop(f);
        (b.p("edit.bin"), size + 64)
    });

    println!("\n## A fresh {big_mb} MiB file of random data, A to B\n");
    // The edits above leave dirty pages; write them back now, so neither the
    // baseline nor the transfer pays for an earlier phase.
    unsafe { libc::sync() };
    // Baseline, same disk, same run: a plain write of the same size with fdatasync.
    let plain = c.dir.path().join("plain.bin");
    // The data is made before the clocks start: they time writing it, not making it.
    let (blocks, want) = random_blocks(big_mb, 2);
    let t = Instant::now();
    write_blocks(&plain, &blocks);
    fs::File::open(&plain).unwrap().sync_data().unwrap();
    let disk = big_mb as f64 * MIB as f64 / 1e6 / t.elapsed().as_secs_f64();
    fs::remove_file(&plain).unwrap();
    unsafe { libc::sync() };
    // Hub and B must each make a durable copy (A's cache copy is written back
    // later): two copies share this one disk, where real machines have one each.
    println!("plain write + fdatasync on this disk: {disk:.0} MB/s; the hub and B each fsync a copy on it, so the disk\nalone caps end to end at about {:.0} MB/s here.\n", disk / 2.0);
    let t0 = Instant::now();
    write_blocks(&a.p("big.bin"), &blocks);
    let written = t0.elapsed();
    drop(blocks);
    let after_close = wait_for(&b.p("big.bin"), big_mb * MIB, want);
    let total = written + after_close;
    if std::env::var("SSYNC_BENCH_PHASES").is_ok() {
        // Where the time went: A's upload and B's download, from their debug logs.
        for (n, m) in [("A", a), ("B", b)] {
            let log = m.log();
            let phases = log.lines().filter(|l| l.contains("upload sent") || l.contains("download assembled"));
            phases.for_each(|l| eprintln!("{n}: {l}"));
        }
    }

    let rate = |d: Duration| big_mb as f64 * MIB as f64 / 1e6 / d.as_secs_f64();
    println!("| step | time | rate |\n| --- | --- | --- |");
    println!("| write on A (into its cache) | {} ms | {:.0} MB/s |", written.as_millis(), rate(written));
    println!("| close on A until B has it | {} ms | {:.0} MB/s |", after_close.as_millis(), rate(after_close));
    println!("| end to end: first write on A until B has it | {} ms | {:.0} MB/s |", total.as_millis(), rate(total));
    println!(
        "\nclose on A until B has it, against the plain disk write: {:.2} (against the two-copy cap: {:.2})",
        rate(after_close) / disk,
        rate(after_close) / (disk / 2.0)
    );
    println!("\n| process | peak RSS (VmHWM) |\n| --- | --- |");
    for (name, pid) in [("ssync-server (hub)", c.hub.pid()), ("ssync-mount A", a.pid()), ("ssync-mount B", b.pid())] {
        println!("| {name} | {:.1} MiB |", pid.and_then(peak_rss_kib).unwrap_or(0) as f64 / 1024.0);
    }
    drop(c);
    resume(big_mb);
}

/// A's mount is killed (-9) halfway through uploading a fresh file, then
/// started again on the same cache: it must send only what the hub lacks.
fn resume(big_mb: u64) {
    let mut c = Cluster::new(2);
    let size = big_mb * MIB;
    let (blocks, want) = random_blocks(big_mb, 3);
    // Counted from before the write: the upload starts at its close.
    let (r0, _) = hub_traffic(&c.hub);
    write_blocks(&c.mounts[0].p("resume.bin"), &blocks);
    drop(blocks);
    let halfway = wait_until(Duration::from_secs(300), || hub_traffic(&c.hub).0 - r0 >= size / 2);
    assert!(halfway, "the upload never got halfway");
    c.mounts[0].kill9();
    let (r1, _) = hub_traffic(&c.hub);
    c.mounts[0].start_again();
    wait_for(&c.mounts[1].p("resume.bin"), size, want);
    let (r2, _) = hub_traffic(&c.hub);
    println!("\n## Upload of a fresh {big_mb} MiB file, mount killed with -9 halfway, then restarted\n");
    println!("| phase | received by the hub |\n| --- | --- |");
    println!("| before the kill | {:.1} MiB |", (r1 - r0) as f64 / MIB as f64);
    println!("| after the restart, until B has the file | {:.1} MiB |", (r2 - r1) as f64 / MIB as f64);
    println!("| total / file size | {:.2} (1.00 = nothing sent twice) |", (r2 - r0) as f64 / size as f64);
}
