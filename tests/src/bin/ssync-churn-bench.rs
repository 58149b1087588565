//! ssync-churn-bench: the cost of creating small files on a mount, fresh and
//! after a long churn of the kind programs make (rewrites, appends,
//! truncates, git-style lock files renamed over their targets, renames over
//! other files, unlinks, mkdir/rmdir, chmod, symlinks; 4 threads on 60
//! names), against a plain folder and bindfs (a bare FUSE passthrough over
//! a plain folder) measured at the same moments. As a root user gets it
//! (FUSE passthrough) and with `--no-passthrough`. Prints Markdown.
//!
//! Each create measure is FILES files of 4 KiB in DIRS folders, in REPS
//! alternating rounds (plain, bindfs, mount), medians. Each measure starts
//! once the mount has sent everything before it (see `creates`). Each mode
//! gets a fresh disk (`BenchDisk`): on a disk without a journal, the
//! measure after the churn also waits 65 s, since ext4
//! then checks every inode freed in the last minute when it allocates one,
//! so creates just after many unlinks are slow on any folder of that disk
//! (the plain folder and bindfs are not churned).
//!
//! Run with `bench/churn.sh` (release build). Knobs (env): FILES (5000),
//! DIRS (50), REPS (3), CHURN_OPS (200000), MODES ("root nopt").
use ssync_tests::bench::{create_small_files, hub_cursor, knob, median, BenchDisk, Bindfs};
use ssync_tests::{wait_until, Hub, Mount, Rng};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const DIRS: &[&str] = &["", "d0", "d1", "d0/e"];
const NAMES: &[&str] =
    &["a", "b", "c.txt", "config", "config.lock", "a.lock", "f1", "f2", "f3", "g", "h", "i", "j", "k", "l"];

/// One random operation of the churn below `root` (failures are part of
/// the mix: a name may be gone, or a folder not empty).
fn churn_op(rng: &mut Rng, root: &Path, tag: u64) {
    let pick = |rng: &mut Rng| {
        let (d, n) = (rng.pick(DIRS), rng.pick(NAMES));
        root.join(d).join(n)
    };
    let p = pick(rng);
    let body = format!("{tag:x}\n").repeat(1 + rng.below(64) as usize);
    let _ = match rng.below(12) {
        0..=2 => fs::write(&p, &body),
        3 => fs::OpenOptions::new().append(true).open(&p).and_then(|mut f| f.write_all(body.as_bytes())),
        4 => fs::OpenOptions::new().write(true).open(&p).and_then(|f| f.set_len(rng.below(256))),
        5 => {
            // A lock file written, then renamed over what it replaces.
            let lock = p.with_extension("lock");
            fs::write(&lock, &body).and_then(|()| fs::rename(&lock, &p))
        }
        6 => fs::rename(&p, pick(rng)),
        7 => fs::remove_file(&p),
        8 => fs::create_dir(&p).or_else(|_| fs::remove_dir(&p)),
        9 => fs::set_permissions(&p, fs::Permissions::from_mode(0o600 | (rng.below(2) as u32) << 6)),
        10 => std::os::unix::fs::symlink(rng.pick(NAMES), &p),
        _ => fs::read(&p).map(drop),
    };
}

/// `ops` churn operations by 4 threads below `root`.
fn churn(root: &Path, ops: usize) -> Duration {
    for d in DIRS {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    let t = Instant::now();
    let threads: Vec<_> = (0..4u64)
        .map(|i| {
            let root = root.to_path_buf();
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (i + 1));
                for n in 0..ops / 4 {
                    churn_op(&mut rng, &root, n as u64);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|h| h.join().expect("a churn thread panicked"));
    t.elapsed()
}

/// Per-file create cost: medians of `reps` alternating rounds.
struct Creates {
    plain: Duration,
    bind: Duration,
    mount: Duration,
}

/// Each measure starts once the mount sent the last one (`quiet`): a
/// baseline measured while the mount's sync thread worked beside it was
/// measured on another machine, as far as FUSE goes. On this 2-vCPU VM a
/// FUSE round trip to a daemon on a halted vCPU costs a wake-up of the
/// vCPU, and a busy neighbour spares it: bindfs took 47-88 µs a file while
/// the mount was sending, and 280-380 µs on a quiet machine.
#[allow(clippy::too_many_arguments)]
fn creates(
    tag: &str,
    plain: &Path,
    bind: &Path,
    mount: &Path,
    files: usize,
    dirs: usize,
    reps: usize,
    quiet: &dyn Fn(),
) -> Creates {
    let (mut p, mut b, mut m) = (vec![], vec![], vec![]);
    let settle = || {
        let _ = Command::new("sync").status();
        quiet();
    };
    for rep in 0..reps {
        let name = format!("{tag}-{rep}");
        settle();
        p.push(create_small_files(&plain.join(&name), files, dirs));
        settle();
        b.push(create_small_files(&bind.join(&name), files, dirs));
        settle();
        m.push(create_small_files(&mount.join(&name), files, dirs));
    }
    let per_file = |v: Vec<Duration>| median(v) / files as u32;
    Creates { plain: per_file(p), bind: per_file(b), mount: per_file(m) }
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let files = knob("FILES", 5000).max(1);
    let dirs = knob("DIRS", 50).max(1);
    let reps = knob("REPS", 3).max(1);
    let ops = knob("CHURN_OPS", 200_000).max(4);
    println!("# Creating small files, on a fresh mount and after {ops} churn operations\n");
    println!("{files} files of 4 KiB in {dirs} folders per measure, medians of {reps} alternating rounds; per-file cost (lower is better). Each mode runs on a disk of its own (named below the table); each measure starts once the mount sent all before it (the hub's feed still for 2 s), so none runs beside the mount's sending of the last.\n");
    println!("| mode | when | plain folder | bindfs | ssync mount | mount / bindfs | churn took |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let wanted = std::env::var("MODES").unwrap_or_else(|_| "root nopt".into());
    let modes = [("root", "root, passthrough", &[][..]), ("nopt", "--no-passthrough", &["--no-passthrough"][..])];
    let modes = modes.into_iter().filter(|(key, _, _)| wanted.split_whitespace().any(|w| w == *key));
    let mut disk = "";
    for (i, (_, mode, args)) in modes.enumerate() {
        let dir = BenchDisk::new("ssync-churn-");
        disk = dir.describe();
        if i > 0 && dir.slow_after_deletes() {
            // The last mode's folders were just deleted (see `BenchDisk`).
            std::thread::sleep(Duration::from_secs(65));
        }
        let hub = Hub::start_with(&dir.path().join("hub"), "127.0.0.1:0", &[]);
        let m = Mount::start_with(dir.path(), "m", &hub, args);
        let bindfs = Bindfs::mount(dir.path());
        let plain = dir.path().join("plain");
        fs::create_dir_all(&plain).unwrap();
        let quiet = || {
            // The mount sent it all: the hub's feed stands still for 2 s.
            let mut last = (hub_cursor(&hub), Instant::now());
            let settled = wait_until(Duration::from_secs(600), || {
                let now = hub_cursor(&hub);
                if now != last.0 {
                    last = (now, Instant::now());
                }
                last.1.elapsed() > Duration::from_secs(2)
            });
            assert!(settled, "the mount never stopped sending");
        };
        let fresh = creates("fresh", &plain, &bindfs.path, &m.path, files, dirs, reps, &quiet);
        quiet();
        let took = churn(&m.path.join("churn"), ops);
        quiet();
        if dir.slow_after_deletes() {
            std::thread::sleep(Duration::from_secs(65));
        }
        let after = creates("after", &plain, &bindfs.path, &m.path, files, dirs, reps, &quiet);
        for (when, c, took) in
            [("fresh", fresh, String::new()), ("after the churn", after, format!("{:.1} s", took.as_secs_f64()))]
        {
            println!(
                "| {mode} | {when} | {} | {} | **{}** | {:.2} | {took} |",
                us(c.plain),
                us(c.bind),
                us(c.mount),
                c.mount.as_secs_f64() / c.bind.as_secs_f64()
            );
        }
        drop((m, bindfs, hub));
        if std::env::var_os("SSYNC_BENCH_KEEP").is_some() {
            eprintln!("logs kept in {}", dir.keep().display());
        }
    }
    println!("\nDisk: {disk}.");
}
