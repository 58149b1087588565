//! renameat2's flags on the mount: RENAME_EXCHANGE swaps two entries here
//! and on every other mount, RENAME_NOREPLACE refuses to replace.
use ssync_tests::{tree, wait_for_hub_tree, wait_for_tree, Cluster, Mount, SYNC_TIMEOUT};
use std::ffi::CString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn c_path(p: &Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).unwrap()
}

fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> std::io::Result<()> {
    let (from, to) = (c_path(from), c_path(to));
    // SAFETY: both paths are NUL-terminated C strings that outlive the call.
    let r = unsafe { libc::renameat2(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), flags) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn exchange(m: &Mount, a: &str, b: &str) {
    renameat2(&m.p(a), &m.p(b), libc::RENAME_EXCHANGE).unwrap_or_else(|e| panic!("exchange {a} and {b}: {e}"));
}

#[test]
fn exchange_swaps_files_and_folders_here_and_on_the_other_mount() {
    let c = Cluster::new(2);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    fs::create_dir_all(a.p("x/deep")).unwrap();
    fs::write(a.p("x/deep/1"), b"one").unwrap();
    fs::write(a.p("x/both"), b"x's").unwrap();
    fs::create_dir(a.p("y")).unwrap();
    fs::write(a.p("y/both"), b"y's").unwrap();
    fs::write(a.p("f"), b"file f").unwrap();
    fs::write(a.p("g"), b"file g").unwrap();
    let start = tree(&[
        ("f", Some("file f")),
        ("g", Some("file g")),
        ("x", None),
        ("x/both", Some("x's")),
        ("x/deep", None),
        ("x/deep/1", Some("one")),
        ("y", None),
        ("y/both", Some("y's")),
    ]);
    wait_for_tree(&[a, b], &start, SYNC_TIMEOUT);

    // Two files: the inodes trade names.
    let (fi, gi) = (fs::metadata(a.p("f")).unwrap().ino(), fs::metadata(a.p("g")).unwrap().ino());
    exchange(a, "f", "g");
    assert_eq!(fs::read(a.p("f")).unwrap(), b"file g");
    assert_eq!((fs::metadata(a.p("f")).unwrap().ino(), fs::metadata(a.p("g")).unwrap().ino()), (gi, fi));
    // Two folders, with a name both hold.
    exchange(a, "x", "y");
    // A folder and a file.
    exchange(a, "y", "g");
    let swapped = tree(&[
        ("f", Some("file g")),
        ("g", None),
        ("g/both", Some("x's")),
        ("g/deep", None),
        ("g/deep/1", Some("one")),
        ("x", None),
        ("x/both", Some("y's")),
        ("y", Some("file f")),
    ]);
    wait_for_tree(&[a], &swapped, SYNC_TIMEOUT);
    wait_for_hub_tree(&c.hub, &swapped, SYNC_TIMEOUT);
    wait_for_tree(&[a, b], &swapped, SYNC_TIMEOUT);
    assert!(!c.mounts.iter().any(|m| m.log().contains("refused")), "no swap was refused");

    // A file the hub has not heard of yet swapped with one it has.
    fs::write(a.p("new"), b"brand new").unwrap();
    exchange(a, "new", "f");
    let mut expected = swapped.clone();
    expected.insert("f".into(), Some(b"brand new".to_vec()));
    expected.insert("new".into(), Some(b"file g".to_vec()));
    wait_for_tree(&[a, b], &expected, SYNC_TIMEOUT);
    wait_for_hub_tree(&c.hub, &expected, SYNC_TIMEOUT);

    // Either side missing, or one inside the other, is refused as on a local disk.
    let err = renameat2(&a.p("f"), &a.p("absent"), libc::RENAME_EXCHANGE).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    assert!(renameat2(&a.p("g"), &a.p("g/deep"), libc::RENAME_EXCHANGE).is_err());
    assert_eq!(fs::read(a.p("g/deep/1")).unwrap(), b"one", "a refused swap changes nothing");
}

#[test]
fn noreplace_refuses_an_existing_name_and_moves_to_a_free_one() {
    let c = Cluster::new(1);
    let a = &c.mounts[0];
    fs::write(a.p("a"), b"a").unwrap();
    fs::write(a.p("b"), b"b").unwrap();
    let err = renameat2(&a.p("a"), &a.p("b"), libc::RENAME_NOREPLACE).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
    assert_eq!(fs::read(a.p("b")).unwrap(), b"b");
    renameat2(&a.p("a"), &a.p("c"), libc::RENAME_NOREPLACE).unwrap();
    assert_eq!(fs::read(a.p("c")).unwrap(), b"a");
    assert!(!a.p("a").exists());
}
