//! Extended attributes: every namespace is kept on the mount that sets it;
//! `user.` ones travel to the other mounts, with files and folders, and
//! survive restarts and content edits elsewhere. Driven with `setfattr`,
//! `getfattr` and `cp -a`, as users do, and with the syscalls for errnos.
use ssync_tests::{run_bounded, wait_for_content, wait_until, Cluster, SYNC_TIMEOUT};
use std::ffi::CString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn c_str(s: &[u8]) -> CString {
    CString::new(s).unwrap()
}

/// Runs `program` with `args`; returns what it printed (it must succeed).
fn run(program: &str, args: &[&str]) -> String {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "out=$1; shift; \"$@\" > \"$out\"", "sh", out.path().to_str().unwrap(), program]).args(args);
    let (code, err) = run_bounded(&mut cmd, Duration::from_secs(20));
    assert_eq!(code, Some(0), "{program} {args:?}: {err}");
    fs::read_to_string(out.path()).unwrap()
}

fn setfattr(path: &Path, name: &str, value: &str) {
    run("setfattr", &["-n", name, "-v", value, path.to_str().unwrap()]);
}

/// One attribute's value as the syscall returns it; Err: the errno.
fn get(path: &Path, name: &str, size: usize) -> Result<Vec<u8>, i32> {
    let (p, n) = (c_str(path.as_os_str().as_encoded_bytes()), c_str(name.as_bytes()));
    let mut buf = vec![0u8; size];
    // SAFETY: NUL-terminated path and name; the buffer is `size` bytes long.
    let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), size) };
    if r < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap());
    }
    buf.truncate(r as usize);
    Ok(buf)
}

fn set(path: &Path, name: &str, value: &[u8], flags: i32) -> Result<(), i32> {
    let (p, n) = (c_str(path.as_os_str().as_encoded_bytes()), c_str(name.as_bytes()));
    // SAFETY: NUL-terminated path and name; `value` outlives the call.
    let r = unsafe { libc::setxattr(p.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), flags) };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap())
    } else {
        Ok(())
    }
}

fn remove(path: &Path, name: &str) -> Result<(), i32> {
    let (p, n) = (c_str(path.as_os_str().as_encoded_bytes()), c_str(name.as_bytes()));
    // SAFETY: NUL-terminated path and name.
    let r = unsafe { libc::removexattr(p.as_ptr(), n.as_ptr()) };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap())
    } else {
        Ok(())
    }
}

fn wait_for_xattr(path: &Path, name: &str, want: Option<&[u8]>) {
    let seen = || get(path, name, 65536).ok();
    let ok = wait_until(SYNC_TIMEOUT, || seen().as_deref() == want);
    let show = |v: Option<&[u8]>| v.map(|v| String::from_utf8_lossy(&v[..v.len().min(64)]).into_owned());
    assert!(ok, "{} {name}: {:?}, expected {:?}", path.display(), show(seen().as_deref()), show(want));
}

#[test]
fn user_attributes_travel_and_the_others_stay_on_the_mount() {
    let mut c = Cluster::with_mount_flags(&[&["--allow-other"], &[]]);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    fs::write(a.p("f"), b"content").unwrap();
    fs::create_dir(a.p("d")).unwrap();
    setfattr(&a.p("f"), "user.x", "1");
    setfattr(&a.p("d"), "user.color", "blue");
    set(&a.p("f"), "trusted.here", b"only on a", 0).unwrap();
    // A POSIX ACL (user 1001 may read) is stored here, not enforced, not sent.
    let entry =
        |tag: u16, perm: u16, id: u32| [&tag.to_le_bytes()[..], &perm.to_le_bytes(), &id.to_le_bytes()].concat();
    let acl = [
        &2u32.to_le_bytes()[..],
        &entry(1, 6, u32::MAX),
        &entry(2, 4, 1001),
        &entry(4, 4, u32::MAX),
        &entry(0x10, 4, u32::MAX),
        &entry(0x20, 0, u32::MAX),
    ]
    .concat();
    fs::set_permissions(a.p("f"), fs::Permissions::from_mode(0o600)).unwrap();
    set(&a.p("f"), "system.posix_acl_access", &acl, 0).unwrap();
    assert_eq!(get(&a.p("f"), "system.posix_acl_access", 256), Ok(acl.clone()));
    let mut cat = Command::new("cat");
    cat.arg(a.p("f")).uid(1001).gid(1001);
    assert_ne!(
        run_bounded(&mut cat, Duration::from_secs(20)).0,
        Some(0),
        "the mode decides, not the ACL (on ext4, user 1001 could read)"
    );
    fs::set_permissions(a.p("f"), fs::Permissions::from_mode(0o644)).unwrap();
    let listed = run("getfattr", &["--absolute-names", "-d", "-m", "-", a.p("f").to_str().unwrap()]);
    assert!(listed.contains("user.x=\"1\"") && listed.contains("trusted.here"), "{listed}");

    wait_for_content(&b.p("f"), b"content", SYNC_TIMEOUT);
    wait_for_xattr(&b.p("f"), "user.x", Some(b"1"));
    wait_for_xattr(&b.p("d"), "user.color", Some(b"blue"));
    let on_b = run("getfattr", &["--absolute-names", "-d", "-m", "-", b.p("f").to_str().unwrap()]);
    assert!(on_b.contains("user.x=\"1\"") && !on_b.contains("trusted"), "only user. attributes travel: {on_b}");
    // Not sent: B has none, and says ACLs are not applied here (EOPNOTSUPP,
    // which `ls -l` takes to stop asking every file; SEMANTICS.md).
    assert_eq!(get(&b.p("f"), "system.posix_acl_access", 256), Err(libc::EOPNOTSUPP), "ACLs stay on a");

    // A content edit on B keeps them; a change and a removal on A arrive.
    fs::write(b.p("f"), b"edited on b").unwrap();
    wait_for_content(&a.p("f"), b"edited on b", SYNC_TIMEOUT);
    assert_eq!(get(&a.p("f"), "user.x", 16), Ok(b"1".to_vec()));
    assert_eq!(get(&a.p("f"), "trusted.here", 64), Ok(b"only on a".to_vec()), "kept through a remote edit");
    setfattr(&a.p("f"), "user.x", "2");
    set(&a.p("f"), "user.bin", &[0, 1, 255], 0).unwrap();
    remove(&a.p("d"), "user.color").unwrap();
    wait_for_xattr(&b.p("f"), "user.x", Some(b"2"));
    wait_for_xattr(&b.p("f"), "user.bin", Some(&[0, 1, 255]));
    wait_for_xattr(&b.p("d"), "user.color", None);

    // They survive a restart of either mount.
    c.mounts[0].restart();
    c.mounts[1].restart();
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    assert_eq!(get(&a.p("f"), "trusted.here", 64), Ok(b"only on a".to_vec()));
    assert_eq!(get(&a.p("f"), "system.posix_acl_access", 256), Ok(acl));
    assert_eq!(get(&b.p("f"), "user.bin", 16), Ok(vec![0, 1, 255]));
}

#[test]
fn cp_a_keeps_them_and_the_calls_answer_as_on_a_local_disk() {
    let c = Cluster::new(2);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    let src = c.dir.path().join("plain");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("doc"), b"doc").unwrap();
    setfattr(&src.join("doc"), "user.origin", "https://example.org/doc");
    run("cp", &["-a", src.to_str().unwrap(), a.p("copy").to_str().unwrap()]);
    assert_eq!(get(&a.p("copy/doc"), "user.origin", 64), Ok(b"https://example.org/doc".to_vec()));
    wait_for_xattr(&b.p("copy/doc"), "user.origin", Some(b"https://example.org/doc"));

    let f = a.p("copy/doc");
    assert_eq!(get(&f, "user.origin", 0), Ok(vec![]), "size 0 asks for the length");
    assert_eq!(get(&f, "user.origin", 4), Err(libc::ERANGE), "a buffer too small");
    assert_eq!(get(&f, "user.none", 16), Err(libc::ENODATA));
    // Labels and ACLs a file does not have: not applied here (EOPNOTSUPP), so
    // `ls -l` stops asking each file; one that is set reads back.
    // (`cp -a` gave the copy an ACL; a file made here has none.)
    let fresh = a.p("copy/fresh");
    fs::write(&fresh, b"").unwrap();
    assert_eq!(get(&fresh, "security.selinux", 255), Err(libc::EOPNOTSUPP));
    assert_eq!(get(&fresh, "system.posix_acl_access", 0), Err(libc::EOPNOTSUPP));
    set(&fresh, "security.label", b"kept here", 0).unwrap();
    assert_eq!(get(&fresh, "security.label", 64), Ok(b"kept here".to_vec()));
    assert!(run("ls", &["-l", fresh.to_str().unwrap()]).starts_with("-rw"), "ls -l still lists it");
    assert_eq!(set(&f, "user.origin", b"x", libc::XATTR_CREATE), Err(libc::EEXIST));
    assert_eq!(set(&f, "user.new", b"x", libc::XATTR_REPLACE), Err(libc::ENODATA));
    assert_eq!(remove(&f, "user.none"), Err(libc::ENODATA));
    let big = vec![7u8; 40_000];
    set(&f, "user.big1", &big, 0).unwrap();
    assert_eq!(set(&f, "user.big2", &big, 0), Err(libc::ENOSPC), "64 KiB per file, names and values");
    assert_eq!(get(&f, "user.big1", 65536).map(|v| v.len()), Ok(40_000));
    wait_for_xattr(&b.p("copy/doc"), "user.big1", Some(&big));
    // A hard link is the same inode: its attributes are the file's.
    fs::hard_link(&f, a.p("copy/link")).unwrap();
    setfattr(&a.p("copy/link"), "user.via", "link");
    assert_eq!(get(&f, "user.via", 16), Ok(b"link".to_vec()));
    wait_for_xattr(&b.p("copy/doc"), "user.via", Some(b"link"));
    wait_for_xattr(&b.p("copy/link"), "user.via", Some(b"link"));
}
