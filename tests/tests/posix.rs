//! The mount as a local filesystem: owners, link counts, times, special
//! files, long names and the byte-range calls, each checked with plain
//! syscalls, and where it matters what a second mount sees.
use ssync_tests::{hub_tree, run_bounded, wait_for_content, wait_until, Cluster, SYNC_TIMEOUT};
use std::ffi::CString;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn c_path(p: &Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).unwrap()
}

/// Runs `script` with `sh -c` as `uid`:`uid`; returns whether it succeeded.
fn sh_as(uid: u32, script: &str) -> bool {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]).uid(uid).gid(uid);
    let (code, out) = run_bounded(&mut cmd, Duration::from_secs(20));
    if code != Some(0) {
        eprintln!("as uid {uid}: `{script}` -> {code:?}: {out}");
    }
    code == Some(0)
}

#[test]
fn owners_are_kept_and_the_kernel_enforces_them() {
    let c = Cluster::with_mount_flags(&[&["--allow-other"], &[]]);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    fs::create_dir(a.p("shared")).unwrap();
    fs::set_permissions(a.p("shared"), fs::Permissions::from_mode(0o777)).unwrap();
    let f = a.p("shared/f");
    assert!(sh_as(1001, &format!("echo mine > {}", f.display())), "uid 1001 creates a file in a 0777 folder");
    let meta = fs::metadata(&f).unwrap();
    assert_eq!((meta.uid(), meta.gid(), meta.mode() & 0o777), (1001, 1001, 0o644));
    assert!(!sh_as(1002, &format!("echo theirs >> {}", f.display())), "another user cannot write a 0644 file");
    assert!(!sh_as(1001, &format!("chown 1002 {}", f.display())), "a user cannot give a file away");
    assert!(sh_as(1001, &format!("chmod 600 {}", f.display())), "the owner may chmod");
    assert!(!sh_as(1002, &format!("cat {}", f.display())), "0600 keeps others out");

    // Root may chown; the kernel clears set-user-ID on chown of a file.
    fs::set_permissions(&f, fs::Permissions::from_mode(0o4755)).unwrap();
    std::os::unix::fs::chown(&f, Some(1003), Some(1004)).unwrap();
    let meta = fs::metadata(&f).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1003, 1004));
    assert_eq!(meta.mode() & 0o7777, 0o755, "chown cleared set-user-ID");

    // A set-group-ID folder hands its group to what is made in it.
    fs::create_dir(a.p("team")).unwrap();
    std::os::unix::fs::chown(a.p("team"), Some(0), Some(1005)).unwrap();
    fs::set_permissions(a.p("team"), fs::Permissions::from_mode(0o2777)).unwrap();
    assert!(sh_as(1001, &format!("mkdir {}", a.p("team/sub").display())));
    let sub = fs::metadata(a.p("team/sub")).unwrap();
    assert_eq!((sub.uid(), sub.gid()), (1001, 1005));
    assert_ne!(sub.mode() & libc::S_ISGID, 0, "a folder made in a set-group-ID folder inherits the bit");

    // Without owner sync, files from the hub belong to the other mount's user.
    wait_for_content(&b.p("shared/f"), b"mine\n", SYNC_TIMEOUT);
    let theirs = fs::metadata(b.p("shared/f")).unwrap();
    assert_eq!((theirs.uid(), theirs.gid()), (0, 0));
}

#[test]
fn owners_survive_a_restart() {
    let mut c = Cluster::with_mount_flags(&[&["--allow-other"]]);
    let a = &mut c.mounts[0];
    fs::write(a.p("f"), b"x").unwrap();
    std::os::unix::fs::chown(a.p("f"), Some(1001), Some(1002)).unwrap();
    let t = filetime(a.p("f").as_path(), 1_000_000_000, 1_100_000_000);
    a.restart();
    let meta = fs::metadata(a.p("f")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1001, 1002));
    assert_eq!((meta.atime(), meta.mtime()), t, "atime and mtime as utimensat set them");
}

/// Sets atime and mtime (whole seconds); returns them as `stat` shows them.
fn filetime(path: &Path, atime: i64, mtime: i64) -> (i64, i64) {
    let times = [libc::timespec { tv_sec: atime, tv_nsec: 0 }, libc::timespec { tv_sec: mtime, tv_nsec: 0 }];
    // SAFETY: a valid path and two timespecs.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c_path(path).as_ptr(), times.as_ptr(), 0) };
    assert_eq!(rc, 0, "utimensat: {}", std::io::Error::last_os_error());
    (atime, mtime)
}

#[test]
fn times_and_link_counts_behave_as_on_a_local_disk() {
    let c = Cluster::new(1);
    let a = &c.mounts[0];
    fs::create_dir(a.p("d")).unwrap();
    assert_eq!(fs::metadata(a.p("d")).unwrap().nlink(), 2);
    fs::create_dir(a.p("d/x")).unwrap();
    fs::create_dir(a.p("d/y")).unwrap();
    fs::write(a.p("d/file"), b"f").unwrap();
    assert_eq!(fs::metadata(a.p("d")).unwrap().nlink(), 4, "2 plus its subfolders");
    fs::rename(a.p("d/y"), a.p("y")).unwrap();
    assert_eq!(fs::metadata(a.p("d")).unwrap().nlink(), 3);
    fs::remove_dir(a.p("d/x")).unwrap();
    assert_eq!(fs::metadata(a.p("d")).unwrap().nlink(), 2);

    // An open file that was unlinked has no names left.
    let f = fs::File::create(a.p("d/open")).unwrap();
    fs::remove_file(a.p("d/open")).unwrap();
    assert_eq!(f.metadata().unwrap().nlink(), 0);

    // atime is kept as set; ctime moves on a metadata change; a folder's
    // mtime moves when its entries change.
    filetime(&a.p("d/file"), 1_000_000_000, 1_200_000_000);
    let before = fs::metadata(a.p("d/file")).unwrap();
    assert_eq!((before.atime(), before.mtime()), (1_000_000_000, 1_200_000_000));
    let dir_before = fs::metadata(a.p("d")).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    fs::set_permissions(a.p("d/file"), fs::Permissions::from_mode(0o600)).unwrap();
    let after = fs::metadata(a.p("d/file")).unwrap();
    assert!(after.ctime_nsec() != before.ctime_nsec() || after.ctime() != before.ctime(), "chmod changes ctime");
    assert_eq!(after.mtime(), 1_200_000_000, "chmod leaves mtime");
    fs::write(a.p("d/new"), b"n").unwrap();
    let dir_after = fs::metadata(a.p("d")).unwrap();
    assert!(dir_after.mtime_nsec() != dir_before.mtime_nsec() || dir_after.mtime() != dir_before.mtime());
}

#[test]
fn fifos_and_sockets_work_locally_and_are_not_sent() {
    let c = Cluster::new(2);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    let fifo = a.p("pipe");
    // SAFETY: a valid path.
    assert_eq!(unsafe { libc::mkfifo(c_path(&fifo).as_ptr(), 0o644) }, 0);
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::write(fifo, b"through the pipe"))
    };
    let got = fs::read(&fifo).unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(got, b"through the pipe");

    let sock = a.p("sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let client = std::thread::spawn({
        let sock = sock.clone();
        move || {
            use std::io::Write;
            std::os::unix::net::UnixStream::connect(sock).and_then(|mut s| s.write_all(b"hi"))
        }
    });
    let (mut conn, _) = listener.accept().unwrap();
    let mut buf = String::new();
    std::io::Read::read_to_string(&mut conn, &mut buf).unwrap();
    client.join().unwrap().unwrap();
    assert_eq!(buf, "hi");

    // A regular file made after them arrives; they do not.
    fs::write(a.p("marker"), b"m").unwrap();
    wait_for_content(&b.p("marker"), b"m", SYNC_TIMEOUT);
    assert!(fs::symlink_metadata(b.p("pipe")).is_err() && fs::symlink_metadata(b.p("sock")).is_err());
    let hub = hub_tree(&c.hub).expect("the hub's tree");
    assert!(hub.contains_key("marker") && !hub.contains_key("pipe") && !hub.contains_key("sock"), "{hub:?}");
    // Renamed and removed, they stay local too; the folder still compares equal.
    fs::rename(&fifo, a.p("pipe2")).unwrap();
    fs::remove_file(&sock).unwrap();
    fs::remove_file(a.p("pipe2")).unwrap();
    fs::write(a.p("marker"), b"m2").unwrap();
    wait_for_content(&b.p("marker"), b"m2", SYNC_TIMEOUT);
    assert!(!a.log().contains("reconcile found local entries out of step"), "{}", a.log());
}

#[test]
fn names_over_255_bytes_are_enametoolong_on_every_call() {
    let c = Cluster::new(1);
    let a = &c.mounts[0];
    let long = a.p(&"n".repeat(256));
    let errno = |r: std::io::Result<()>| r.unwrap_err().raw_os_error();
    assert_eq!(errno(fs::symlink_metadata(&long).map(drop)), Some(libc::ENAMETOOLONG));
    assert_eq!(errno(fs::write(&long, b"x")), Some(libc::ENAMETOOLONG));
    assert_eq!(errno(fs::create_dir(&long)), Some(libc::ENAMETOOLONG));
    assert_eq!(errno(fs::remove_file(&long)), Some(libc::ENAMETOOLONG));
    fs::write(a.p("short"), b"x").unwrap();
    assert_eq!(errno(fs::rename(a.p("short"), &long)), Some(libc::ENAMETOOLONG));
    fs::write(a.p(&"n".repeat(255)), b"x").unwrap();

    // A path is at most 4,096 bytes from the mount's root: every machine must hold it.
    let mut deep = a.p("");
    let mut from_root = 0;
    loop {
        let name = "d".repeat(200);
        let next = deep.join(&name);
        from_root += name.len() + usize::from(from_root > 0);
        if from_root > 4096 {
            assert_eq!(errno(fs::create_dir(&next)), Some(libc::ENAMETOOLONG), "{from_root} bytes from the root");
            break;
        }
        fs::create_dir(&next).unwrap();
        deep = next;
    }
}

#[test]
fn fallocate_hole_punching_copy_file_range_and_seek_data() {
    let c = Cluster::with_mount_flags(&[&["--no-passthrough"], &[]]);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    let f = fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(a.p("f")).unwrap();
    let fd = f.as_raw_fd();
    // SAFETY: plain syscalls on an open descriptor.
    unsafe {
        assert_eq!(libc::fallocate(fd, 0, 0, 64 * 1024), 0, "{}", std::io::Error::last_os_error());
        assert_eq!(libc::pwrite(fd, b"abcdefgh".as_ptr().cast(), 8, 0), 8);
        assert_eq!(libc::fallocate(fd, libc::FALLOC_FL_KEEP_SIZE, 0, 1 << 20), 0);
        assert_eq!(libc::fallocate(fd, libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE, 2, 2), 0);
        assert_eq!(libc::lseek(fd, 0, libc::SEEK_DATA), 0);
        let hole = libc::lseek(fd, 0, libc::SEEK_HOLE);
        assert!(hole > 0 && hole <= 64 * 1024, "SEEK_HOLE at {hole}");
    }
    assert_eq!(f.metadata().unwrap().len(), 64 * 1024, "KEEP_SIZE kept the size");
    drop(f);
    let mut want = vec![0u8; 64 * 1024];
    want[..8].copy_from_slice(b"ab\0\0efgh");
    assert_eq!(fs::read(a.p("f")).unwrap(), want);
    wait_for_content(&b.p("f"), &want, SYNC_TIMEOUT);

    let src = fs::File::open(a.p("f")).unwrap();
    let dst = fs::File::create(a.p("copy")).unwrap();
    let (mut off_in, mut off_out) = (0i64, 0i64);
    // SAFETY: two open descriptors and local offsets.
    let n = unsafe { libc::copy_file_range(src.as_raw_fd(), &mut off_in, dst.as_raw_fd(), &mut off_out, 8, 0) };
    assert_eq!(n, 8, "{}", std::io::Error::last_os_error());
    drop(dst);
    wait_for_content(&b.p("copy"), b"ab\0\0efgh", SYNC_TIMEOUT);

    // fsync of a folder succeeds (and makes the mount's records durable).
    fs::File::open(a.p("")).unwrap().sync_all().unwrap();
    assert!(wait_until(SYNC_TIMEOUT, || fs::read(b.p("copy")).is_ok_and(|d| d.len() == 8)));
}

/// Runs `modes` (mode, offset, length) of fallocate on `path`, which holds
/// 16 KiB of distinct blocks first; returns each call's outcome (0 or the
/// errno) and the file's bytes after them.
fn run_fallocates(path: &Path, modes: &[(i32, i64, i64)]) -> (Vec<i32>, Vec<u8>) {
    let data: Vec<u8> = (0..16 * 1024).map(|i| (i / 4096) as u8 + b'a').collect();
    fs::write(path, &data).unwrap();
    let f = fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let outcomes = modes
        .iter()
        // SAFETY: plain syscalls on an open descriptor.
        .map(|&(mode, off, len)| match unsafe { libc::fallocate(f.as_raw_fd(), mode, off, len) } {
            0 => 0,
            _ => std::io::Error::last_os_error().raw_os_error().unwrap_or(-1),
        })
        .collect();
    drop(f);
    (outcomes, fs::read(path).unwrap())
}

/// Zeroing a range does on the mount what it does on the filesystem that
/// holds the cache, and the result reaches the other mount. Collapsing and
/// inserting a range never reach a FUSE daemon: the kernel answers
/// EOPNOTSUPP for every FUSE filesystem (SEMANTICS.md), and nothing changes.
#[test]
fn zeroing_a_range_does_what_the_local_disk_does() {
    let c = Cluster::with_mount_flags(&[&["--no-passthrough"], &[], &[]]);
    let zeroing = [
        (libc::FALLOC_FL_ZERO_RANGE, 4096, 4096),
        (libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE, 15 * 1024, 8192),
        (libc::FALLOC_FL_ZERO_RANGE, 20 * 1024, 4096),
        (libc::FALLOC_FL_UNSHARE_RANGE, 0, 4096),
    ];
    let plain = c.mounts[0].cache.parent().unwrap().join("plain-file");
    let (want_outcomes, want) = run_fallocates(&plain, &zeroing);
    assert_eq!(want_outcomes[..3], [0, 0, 0], "the cache's filesystem zeroes ranges (ext4 does)");
    let moving = [(libc::FALLOC_FL_COLLAPSE_RANGE, 0, 4096), (libc::FALLOC_FL_INSERT_RANGE, 4096, 8192)];
    for (a, name) in [(&c.mounts[0], "no-pt"), (&c.mounts[1], "pt")] {
        let (outcomes, got) = run_fallocates(&a.p(name), &zeroing);
        assert_eq!(outcomes, want_outcomes, "{name}: each call as on the local disk");
        assert_eq!(got, want, "{name}: the bytes as on the local disk");
        wait_for_content(&c.mounts[2].p(name), &want, SYNC_TIMEOUT);
        let (outcomes, got) = run_fallocates(&a.p(&format!("{name}-moved")), &moving);
        assert_eq!(outcomes, [libc::EOPNOTSUPP; 2], "{name}: the kernel's answer for FUSE");
        assert_eq!(got.len(), 16 * 1024, "{name}: nothing moved");
    }
    let logs = format!("{}{}", c.mounts[0].log(), c.mounts[1].log());
    assert!(!logs.contains("WARN"), "unsupported calls are not warnings:\n{logs}");
}

#[test]
fn hard_links_are_one_file_here_and_two_files_elsewhere() {
    let c = Cluster::new(2);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    fs::create_dir(a.p("d")).unwrap();
    fs::write(a.p("one"), b"first").unwrap();
    fs::hard_link(a.p("one"), a.p("d/two")).unwrap();
    let (m1, m2) = (fs::metadata(a.p("one")).unwrap(), fs::metadata(a.p("d/two")).unwrap());
    assert_eq!((m1.ino(), m1.nlink()), (m2.ino(), 2), "one inode, two names");
    fs::write(a.p("d/two"), b"written through the second name").unwrap();
    assert_eq!(fs::read(a.p("one")).unwrap(), b"written through the second name");
    wait_for_content(&b.p("one"), b"written through the second name", SYNC_TIMEOUT);
    wait_for_content(&b.p("d/two"), b"written through the second name", SYNC_TIMEOUT);
    assert_ne!(fs::metadata(b.p("one")).unwrap().ino(), fs::metadata(b.p("d/two")).unwrap().ino());
    assert_eq!(fs::metadata(b.p("one")).unwrap().nlink(), 1, "two ordinary files on the other mount");

    // A change on the other mount touches one name: on A that name becomes
    // a file of its own, and the other keeps what it had.
    fs::write(b.p("d/two"), b"changed on b").unwrap();
    wait_for_content(&a.p("d/two"), b"changed on b", SYNC_TIMEOUT);
    assert_eq!(fs::read(a.p("one")).unwrap(), b"written through the second name");
    assert!(wait_until(SYNC_TIMEOUT, || fs::metadata(a.p("one")).is_ok_and(|m| m.nlink() == 1)));
    assert_ne!(fs::metadata(a.p("one")).unwrap().ino(), fs::metadata(a.p("d/two")).unwrap().ino());

    // Unlinking one name leaves the other, here and there.
    fs::hard_link(a.p("one"), a.p("three")).unwrap();
    fs::remove_file(a.p("one")).unwrap();
    assert_eq!(fs::metadata(a.p("three")).unwrap().nlink(), 1);
    wait_for_content(&b.p("three"), b"written through the second name", SYNC_TIMEOUT);
    ssync_tests::wait_for_absence(&b.p("one"), SYNC_TIMEOUT);

    // Folders cannot be hard-linked, as on a local disk.
    let err = fs::hard_link(a.p("d"), a.p("d2")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
}

#[test]
fn with_sync_owners_the_owner_travels_and_without_it_files_belong_to_the_mount_user() {
    let c = Cluster::with_mount_flags(&[&["--allow-other"], &["--allow-other", "--sync-owners"], &[]]);
    let (a, b, plain) = (&c.mounts[0], &c.mounts[1], &c.mounts[2]);
    fs::create_dir(a.p("shared")).unwrap();
    fs::set_permissions(a.p("shared"), fs::Permissions::from_mode(0o777)).unwrap();
    assert!(sh_as(1001, &format!("echo from-1001 > {}", a.p("shared/f").display())));
    wait_for_content(&b.p("shared/f"), b"from-1001\n", SYNC_TIMEOUT);
    wait_for_content(&plain.p("shared/f"), b"from-1001\n", SYNC_TIMEOUT);
    let owner = |p: &Path| fs::metadata(p).map(|m| (m.uid(), m.gid())).unwrap();
    assert_eq!(owner(&b.p("shared/f")), (1001, 1001), "--sync-owners: the creator's ids");
    assert_eq!(owner(&plain.p("shared/f")), (0, 0), "without it: the mount's user");
    let hub = c.hub.http().get(format!("{}/v1/shares/default/entry?path=shared/f", c.hub.url())).send().unwrap();
    let entry: serde_json::Value = hub.json().unwrap();
    assert_eq!((entry["owner"]["uid"].as_u64(), entry["owner"]["gid"].as_u64()), (Some(1001), Some(1001)), "{entry}");

    // A chown travels too; an edit from a mount that does not sync owners keeps it.
    std::os::unix::fs::chown(a.p("shared/f"), Some(1003), Some(1004)).unwrap();
    assert!(wait_until(SYNC_TIMEOUT, || owner(&b.p("shared/f")) == (1003, 1004)), "{:?}", owner(&b.p("shared/f")));
    fs::write(plain.p("shared/f"), b"edited without owners\n").unwrap();
    wait_for_content(&b.p("shared/f"), b"edited without owners\n", SYNC_TIMEOUT);
    assert_eq!(owner(&b.p("shared/f")), (1003, 1004));
    assert_eq!(owner(&a.p("shared/f")), (1003, 1004), "the mount that set it keeps it");
}

#[test]
fn set_id_bits_drop_when_others_write_truncate_or_chown() {
    let c = Cluster::with_mount_flags(&[&["--allow-other"]]);
    let a = &c.mounts[0];
    let f = a.p("tool");
    fs::write(&f, b"#!/bin/sh\n").unwrap();
    let mode = |m: u32| fs::set_permissions(&f, fs::Permissions::from_mode(m)).unwrap();
    let now = || fs::metadata(&f).unwrap().mode() & 0o7777;
    mode(0o4777);
    assert!(sh_as(1001, &format!("echo x >> {}", f.display())));
    assert_eq!(now(), 0o777, "a write by someone else drops set-user-ID");
    mode(0o2777);
    assert!(sh_as(1001, &format!(": > {}", f.display())));
    assert_eq!(now(), 0o777, "so does a truncate (set-group-ID with group execute)");
    mode(0o2767);
    assert!(sh_as(1001, &format!("echo x >> {}", f.display())));
    assert_eq!(now(), 0o767, "set-group-ID goes when the writer is not in the file's group");
    std::os::unix::fs::chown(&f, None, Some(1001)).unwrap();
    mode(0o2767);
    assert!(sh_as(1001, &format!("echo x >> {}", f.display())));
    assert_eq!(now(), 0o2767, "and stays for one in it, without group execute");
    mode(0o6777);
    fs::write(&f, b"root keeps them\n").unwrap();
    assert_eq!(now(), 0o6777, "root's writes keep them (CAP_FSETID)");

    // The documented difference: a bit set while a writer already has the
    // file open through passthrough survives that writer's writes.
    mode(0o666);
    let (ready, go) = (c.dir.path().join("ready"), c.dir.path().join("go"));
    for fifo in [&ready, &go] {
        assert_eq!(unsafe { libc::mkfifo(c_path(fifo).as_ptr(), 0o666) }, 0);
        fs::set_permissions(fifo, fs::Permissions::from_mode(0o666)).unwrap();
    }
    let mut writer = Command::new("sh");
    writer
        .args(["-c", r#"exec 3>>"$1"; echo > "$2"; read go < "$3"; echo late >&3"#, "sh"])
        .args([&f, &ready, &go])
        .uid(1001)
        .gid(1001);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(run_bounded(&mut writer, Duration::from_secs(20))));
    // FIFO opens block until the other side opens: bounded, in a thread.
    let within = |what: &str, job: Box<dyn FnOnce() + Send>| {
        let (done, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            job();
            let _ = done.send(());
        });
        wait.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("{what} within 20 s"));
    };
    within("the writer opens the file", Box::new(move || drop(fs::read(&ready).unwrap())));
    mode(0o4666);
    within("the writer is told to write", Box::new(move || fs::write(&go, b"\n").unwrap()));
    let (code, err) = rx.recv_timeout(Duration::from_secs(30)).expect("the writer ends");
    assert_eq!(code, Some(0), "{err}");
    assert!(fs::read_to_string(&f).unwrap().ends_with("late\n"));
    assert_eq!(now(), 0o4666, "SEMANTICS.md: kept (ext4 would drop it)");
}

/// A folder read in several calls while names come and go lists each name
/// that stayed exactly once, as on a local disk; a listing the kernel keeps
/// between opens shows what another mount added.
#[test]
fn a_folder_read_while_it_changes_lists_each_name_that_stayed_once() {
    let c = Cluster::new(2);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    let dir = a.p("big");
    fs::create_dir(&dir).unwrap();
    // Enough names that one read of the folder takes several calls.
    let names: Vec<String> = (0..3000).map(|i| format!("name-{i:05}")).collect();
    for n in &names {
        fs::write(dir.join(n), b"").unwrap();
    }
    let mut seen: Vec<String> = Vec::new();
    let mut listing = fs::read_dir(&dir).unwrap();
    for e in listing.by_ref().take(10) {
        seen.push(e.unwrap().file_name().into_string().unwrap());
    }
    // Names before and after the reader's place go, and new ones come.
    let gone: Vec<&String> = names.iter().step_by(7).collect();
    for n in &gone {
        fs::remove_file(dir.join(n)).unwrap();
    }
    for i in 0..200 {
        fs::write(dir.join(format!("added-{i}")), b"").unwrap();
    }
    seen.extend(listing.map(|e| e.unwrap().file_name().into_string().unwrap()));
    for n in names.iter().filter(|n| !gone.contains(n)) {
        let times = seen.iter().filter(|s| *s == n).count();
        assert_eq!(times, 1, "{n} stayed and was listed {times} times");
    }

    // B lists the folder (the kernel keeps the listing), then A adds a name.
    let on_b = b.p("big");
    let all_there =
        wait_until(SYNC_TIMEOUT, || fs::read_dir(&on_b).map(|d| d.count()).unwrap_or(0) == 3000 - 429 + 200);
    assert!(all_there, "B never listed the folder as A has it");
    fs::write(dir.join("late"), b"").unwrap();
    let shown = wait_until(SYNC_TIMEOUT, || fs::read_dir(&on_b).unwrap().any(|e| e.unwrap().file_name() == "late"));
    assert!(shown, "B's listing never showed a name A added after B listed the folder");
}
