//! Files on demand: a mount with `--cache-max 64M` over a 512 MiB tree lists
//! it all at once, reads every file correctly, never holds more than the
//! limit plus one read-ahead window on disk, keeps pinned files local, and
//! offline serves what it holds and fails the rest with EIO, at once.
use ssync_tests::{bin, pseudo_random, run_bounded, wait_until, CacheSampler, Cluster};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
const LIMIT: u64 = 64 * MIB;
/// What may be on disk beyond the limit: one read-ahead window in flight.
const SLACK: u64 = 16 * MIB;

/// `ssync` run with `args`; its output (it must succeed).
fn ssync(args: &[&str]) -> String {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "out=$1; shift; \"$@\" > \"$out\"", "sh", out.path().to_str().unwrap()])
        .arg(bin("e2e-ssync"))
        .args(args);
    let (code, err) = run_bounded(&mut cmd, Duration::from_secs(20));
    assert_eq!(code, Some(0), "ssync {args:?}: {err}");
    std::fs::read_to_string(out.path()).unwrap()
}

/// What the mount says it holds of `path` (user.ssync.local).
fn local(path: &Path) -> String {
    String::from_utf8(xattr::get(path, "user.ssync.local").unwrap().unwrap()).unwrap()
}

#[test]
fn a_64m_cache_serves_a_512m_tree() {
    let mut c = Cluster::with_mount_flags(&[&[], &["--cache-max", "64M"]]);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    // 41 files of 12 MiB, 4 of 4 MiB in a pinned folder and 120 small
    // ones: 516 MiB in all.
    let mut want: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..41 {
        want.insert(format!("big/f{i:02}.bin"), pseudo_random(12 * MIB as usize, i));
    }
    for i in 0..4 {
        want.insert(format!("keep/k{i}.bin"), pseudo_random(4 * MIB as usize, 100 + i));
    }
    for i in 0..120 {
        want.insert(format!("small/s{i:03}.txt"), pseudo_random(64 * 1024 + i as usize, 200 + i));
    }
    let total: u64 = want.values().map(|v| v.len() as u64).sum();
    assert!(total >= 500 * MIB, "the tree is {total} bytes");
    std::fs::create_dir_all(b.p("keep")).unwrap();
    ssync(&["pin", b.p("keep").to_str().unwrap()]);
    for (p, data) in &want {
        std::fs::create_dir_all(a.p(p).parent().unwrap()).unwrap();
        std::fs::write(a.p(p), data).unwrap();
    }
    let sampler = CacheSampler::start(b);
    // Everything is listed, with its size, long before 512 MiB could arrive.
    let listed = wait_until(Duration::from_secs(120), || {
        want.iter().all(|(p, d)| std::fs::metadata(b.p(p)).is_ok_and(|m| m.len() == d.len() as u64))
    });
    assert!(listed, "B lists the whole tree");
    assert!(ssync(&["ls", b.p("big").to_str().unwrap()]).contains("none"), "big files are not fetched");
    // Pinned files arrive without being read, and stay.
    let pinned_in = wait_until(Duration::from_secs(60), || {
        (0..4).all(|i| local(&b.p(&format!("keep/k{i}.bin"))).starts_with("full"))
    });
    assert!(pinned_in, "pinned files are fetched at once: {}", ssync(&["ls", b.p("keep").to_str().unwrap()]));
    for (p, data) in &want {
        let got = std::fs::read(b.p(p)).unwrap_or_else(|e| panic!("read {p} on B: {e}"));
        assert!(got == *data, "{p} reads back as written");
    }
    let peak = sampler.peak();
    drop(sampler);
    assert!(peak <= LIMIT + SLACK, "the cache held {} MiB; the limit is 64 MiB", peak / MIB);
    for i in 0..4 {
        assert!(local(&b.p(&format!("keep/k{i}.bin"))).starts_with("full"), "pinned files were kept");
    }
    // Writing twice the limit into the mount: writes wait for uploads to
    // make room, and the limit holds.
    let sampler = CacheSampler::start(b);
    std::fs::create_dir_all(b.p("in")).unwrap();
    for i in 0..16 {
        std::fs::write(b.p(&format!("in/w{i:02}.bin")), pseudo_random(8 * MIB as usize, 500 + i)).unwrap();
    }
    let peak_in = sampler.peak();
    drop(sampler);
    assert!(peak_in <= LIMIT + SLACK, "writing 128 MiB, the cache held {} MiB", peak_in / MIB);
    assert!(std::fs::read(b.p("in/w03.bin")).unwrap() == pseudo_random(8 * MIB as usize, 503));
    let status = ssync(&["status", b.path.to_str().unwrap()]);
    assert!(status.contains("limit 64.0 MiB") && status.contains("pinned 16.0 MiB"), "{status}");

    // Offline: what is here is served, what is not fails with EIO, at once.
    let uncached = want.keys().find(|p| p.starts_with("big/") && local(&b.p(p)).starts_with("none")).cloned();
    let uncached = uncached.expect("a 64 MiB cache cannot hold every big file");
    c.hub.stop();
    let b = &c.mounts[1];
    assert!(std::fs::read(b.p("keep/k3.bin")).unwrap() == want["keep/k3.bin"], "a pinned file reads offline");
    let t = Instant::now();
    let e = std::fs::read(b.p(&uncached)).expect_err("an uncached file is not read with the hub down");
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    assert!(t.elapsed() < Duration::from_secs(10), "the read failed after {:?}", t.elapsed());
    // Now the mount knows the hub is gone: the next open fails at once.
    let t = Instant::now();
    let e = std::fs::File::open(b.p(&uncached)).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO));
    assert!(t.elapsed() < Duration::from_secs(1), "open took {:?}", t.elapsed());
    assert!(b.log().contains(&uncached), "the log names the file");
}

#[test]
fn pins_are_inherited_and_undone() {
    let c = Cluster::with_mount_flags(&[&[], &["--cache-max", "32M"]]);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    std::fs::create_dir_all(a.p("docs/deep")).unwrap();
    std::fs::write(a.p("docs/one.bin"), pseudo_random(4 * MIB as usize, 1)).unwrap();
    std::fs::write(a.p("other.bin"), pseudo_random(4 * MIB as usize, 2)).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || std::fs::metadata(b.p("other.bin")).is_ok_and(|m| m.len() == 4 * MIB))
    );
    assert!(wait_until(Duration::from_secs(30), || b.p("docs/one.bin").exists()));
    assert!(local(&b.p("other.bin")).starts_with("none 0"), "{}", local(&b.p("other.bin")));
    // An empty file is whole at once, and takes appends on B.
    std::fs::write(a.p("empty"), b"").unwrap();
    assert!(wait_until(Duration::from_secs(30), || b.p("empty").exists()));
    assert_eq!(local(&b.p("empty")), "full 0 0 unpinned");
    std::fs::OpenOptions::new().append(true).open(b.p("empty")).unwrap().write_all(b"appended on B").unwrap();
    assert!(wait_until(Duration::from_secs(30), || std::fs::read(a.p("empty")).unwrap() == b"appended on B"));
    let out = ssync(&["pin", b.p("docs").to_str().unwrap()]);
    assert!(out.contains("pinned"), "{out}");
    assert!(wait_until(Duration::from_secs(30), || local(&b.p("docs/one.bin"))
        == format!("full {} {} pinned", 4 * MIB, 4 * MIB)));
    // A file new under the pinned folder, made on A, arrives whole on B.
    std::fs::write(a.p("docs/deep/new.bin"), pseudo_random(3 * MIB as usize, 3)).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || b.p("docs/deep/new.bin").exists()
            && local(&b.p("docs/deep/new.bin")).starts_with("full")),
        "a new file inherits its folder's pin"
    );
    // Unpinning one file under a pinned folder is refused with a reason.
    let mut cmd = Command::new(bin("e2e-ssync"));
    cmd.args(["unpin", b.p("docs/one.bin").to_str().unwrap()]);
    let (code, err) = run_bounded(&mut cmd, Duration::from_secs(20));
    assert_ne!(code, Some(0));
    assert!(err.contains("pinned through a folder above it"), "{err}");
    let out = ssync(&["unpin", b.p("docs").to_str().unwrap()]);
    assert!(out.contains("unpinned"), "{out}");
    assert!(local(&b.p("docs/one.bin")).ends_with("unpinned"));
    let ls = ssync(&["ls", b.p("docs").to_str().unwrap()]);
    assert!(ls.contains("one.bin") && ls.contains("full") && ls.contains("deep/"), "{ls}");
    // Filling the cache with other reads now evicts the unpinned file.
    for i in 0..12 {
        std::fs::write(a.p(&format!("fill{i}.bin")), pseudo_random(4 * MIB as usize, 10 + i)).unwrap();
    }
    assert!(wait_until(Duration::from_secs(60), || (0..12).all(|i| b.p(&format!("fill{i}.bin")).exists())));
    for i in 0..12 {
        let p = b.p(&format!("fill{i}.bin"));
        assert!(wait_until(Duration::from_secs(30), || std::fs::metadata(&p).is_ok_and(|m| m.len() == 4 * MIB)));
        assert_eq!(std::fs::read(&p).unwrap(), pseudo_random(4 * MIB as usize, 10 + i));
    }
    assert!(local(&b.p("docs/one.bin")).starts_with("none"), "{}", local(&b.p("docs/one.bin")));
    assert!(b.cache_bytes() <= 32 * MIB + SLACK, "{} MiB", b.cache_bytes() / MIB);
    // Pinning more than the limit is refused, with what to do.
    let mut cmd = Command::new(bin("e2e-ssync"));
    cmd.args(["pin", b.path.to_str().unwrap()]);
    let (code, err) = run_bounded(&mut cmd, Duration::from_secs(20));
    assert_ne!(code, Some(0), "pinning 59 MiB under a 32 MiB limit");
    assert!(err.contains("more than this mount's cache limit"), "{err}");
    assert!(local(&b.p("other.bin")).ends_with("unpinned"), "nothing was pinned");
}

#[test]
fn a_file_rewritten_while_it_is_fetched_keeps_only_the_new_bytes() {
    let c = Cluster::with_mount_flags(&[&[], &["--cache-max", "64M"]]);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    const SIZE: usize = 24 * MIB as usize;
    for i in 0..6u64 {
        let name = format!("f{i}.bin");
        std::fs::write(a.p(&name), pseudo_random(SIZE, 100 + i)).unwrap();
        assert!(
            wait_until(Duration::from_secs(30), || std::fs::metadata(b.p(&name)).is_ok_and(|m| m.len() == SIZE as u64))
        );
        assert!(local(&b.p(&name)).starts_with("none"), "{}", local(&b.p(&name)));
        // A first read starts read-ahead in the background; the rewrite
        // (O_TRUNC, then new bytes) comes while it is still fetching.
        let mut first = [0u8; 4096];
        use std::io::Read;
        std::fs::File::open(b.p(&name)).unwrap().read_exact(&mut first).unwrap();
        let new = pseudo_random(SIZE, 200 + i);
        std::fs::write(b.p(&name), &new).unwrap();
        std::thread::sleep(Duration::from_millis(300)); // let any old fetch finish
        assert!(std::fs::read(b.p(&name)).unwrap() == new, "{name} on B holds bytes of the old version");
        assert!(
            wait_until(Duration::from_secs(30), || std::fs::read(a.p(&name)).is_ok_and(|got| got == new)),
            "{name} did not arrive on A as written on B"
        );
    }
}

#[test]
fn bytes_read_stay_local_across_a_restart() {
    let mut c = Cluster::with_mount_flags(&[&[], &["--cache-max", "64M"]]);
    const SIZE: usize = 20 * MIB as usize;
    let data = pseudo_random(SIZE, 77);
    std::fs::write(c.mounts[0].p("kept.bin"), &data).unwrap();
    let b = &mut c.mounts[1];
    let listed = wait_until(Duration::from_secs(30), || {
        std::fs::metadata(b.p("kept.bin")).is_ok_and(|m| m.len() == SIZE as u64)
    });
    assert!(listed, "B lists the file");
    assert!(local(&b.p("kept.bin")).starts_with("none"), "{}", local(&b.p("kept.bin")));
    assert!(std::fs::read(b.p("kept.bin")).unwrap() == data, "the file reads back as written");
    assert!(local(&b.p("kept.bin")).starts_with("full"), "{}", local(&b.p("kept.bin")));
    b.restart();
    // Offline, only what the cache recorded as held can be read.
    c.hub.stop();
    let b = &c.mounts[1];
    assert!(local(&b.p("kept.bin")).starts_with("full"), "after a restart: {}", local(&b.p("kept.bin")));
    assert!(std::fs::read(b.p("kept.bin")).unwrap() == data, "the file reads offline after a restart");
}

#[test]
fn a_file_bigger_than_the_cache_streams_through_it() {
    let c = Cluster::with_mount_flags(&[&[], &["--cache-max", "64M"]]);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    const SIZE: usize = 160 * MIB as usize;
    let data = pseudo_random(SIZE, 91);
    std::fs::write(a.p("film.bin"), &data).unwrap();
    let listed = wait_until(Duration::from_secs(60), || {
        std::fs::metadata(b.p("film.bin")).is_ok_and(|m| m.len() == SIZE as u64)
    });
    assert!(listed, "B lists the file");
    let sampler = CacheSampler::start(b);
    let got = std::fs::read(b.p("film.bin")).expect("a file bigger than the cache can be read");
    let peak = sampler.peak();
    drop(sampler);
    assert!(got == data, "it reads back as written");
    assert!(peak <= LIMIT + SLACK, "the cache held {} MiB; the limit is 64 MiB", peak / MIB);
    assert!(local(&b.p("film.bin")).starts_with("partial"), "{}", local(&b.p("film.bin")));
    // Its end is still here; its start was evicted and comes back when read.
    let mut head = vec![0u8; 4096];
    use std::os::unix::fs::FileExt;
    std::fs::File::open(b.p("film.bin")).unwrap().read_exact_at(&mut head, 0).unwrap();
    assert!(head == data[..4096], "the start reads right again");
}
