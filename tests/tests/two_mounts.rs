//! What one mount does, the other shows: every operation a user makes with
//! plain file calls, checked on a second mount of the same hub.
use ssync_tests::{hub_tree, pseudo_random, wait_for_absence, wait_for_content, wait_until, Cluster, SYNC_TIMEOUT};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;

#[test]
fn create_edit_append_truncate() {
    let c = Cluster::new(2);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    fs::write(a.p("notes.txt"), b"first version\n").unwrap();
    wait_for_content(&b.p("notes.txt"), b"first version\n", SYNC_TIMEOUT);

    fs::write(a.p("notes.txt"), b"second\n").unwrap();
    wait_for_content(&b.p("notes.txt"), b"second\n", SYNC_TIMEOUT);

    let mut f = fs::OpenOptions::new().append(true).open(a.p("notes.txt")).unwrap();
    f.write_all(b"appended\n").unwrap();
    drop(f);
    wait_for_content(&b.p("notes.txt"), b"second\nappended\n", SYNC_TIMEOUT);

    fs::OpenOptions::new().write(true).open(a.p("notes.txt")).unwrap().set_len(3).unwrap();
    wait_for_content(&b.p("notes.txt"), b"sec", SYNC_TIMEOUT);

    // truncate(2) by path, no open handle
    let path = std::ffi::CString::new(a.p("notes.txt").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: valid path string
    assert_eq!(unsafe { libc::truncate(path.as_ptr(), 1) }, 0);
    wait_for_content(&b.p("notes.txt"), b"s", SYNC_TIMEOUT);

    // An empty file counts too.
    fs::File::create(a.p("empty")).unwrap();
    wait_for_content(&b.p("empty"), b"", SYNC_TIMEOUT);

    // And the other direction.
    fs::write(b.p("from-b.txt"), b"hello from b").unwrap();
    wait_for_content(&a.p("from-b.txt"), b"hello from b", SYNC_TIMEOUT);
}

#[test]
fn nested_and_empty_folders() {
    let c = Cluster::new(2);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    fs::create_dir_all(a.p("x/y/z")).unwrap();
    fs::create_dir(a.p("empty")).unwrap();
    fs::write(a.p("x/y/z/deep.txt"), b"deep").unwrap();
    fs::write(a.p("x/top.txt"), b"top").unwrap();
    wait_for_content(&b.p("x/y/z/deep.txt"), b"deep", SYNC_TIMEOUT);
    wait_for_content(&b.p("x/top.txt"), b"top", SYNC_TIMEOUT);
    assert!(wait_until(SYNC_TIMEOUT, || b.p("empty").is_dir()), "empty folder did not arrive");
    let mut names: Vec<_> =
        fs::read_dir(b.p("x")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, vec!["top.txt", "y"]);

    fs::remove_file(a.p("x/y/z/deep.txt")).unwrap();
    fs::remove_dir(a.p("x/y/z")).unwrap();
    fs::remove_dir(a.p("empty")).unwrap();
    wait_for_absence(&b.p("x/y/z"), SYNC_TIMEOUT);
    wait_for_absence(&b.p("empty"), SYNC_TIMEOUT);
    assert!(b.p("x/y").is_dir() && b.p("x/top.txt").is_file());
}

#[test]
fn renames_of_files_and_folders() {
    let c = Cluster::new(2);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    fs::create_dir_all(a.p("proj/src")).unwrap();
    fs::write(a.p("proj/src/main.rs"), b"fn main() {}").unwrap();
    fs::write(a.p("proj/README"), b"readme").unwrap();
    fs::write(a.p("old-name.txt"), b"rename me").unwrap();
    wait_for_content(&b.p("proj/src/main.rs"), b"fn main() {}", SYNC_TIMEOUT);
    wait_for_content(&b.p("old-name.txt"), b"rename me", SYNC_TIMEOUT);

    fs::rename(a.p("old-name.txt"), a.p("proj/new-name.txt")).unwrap();
    wait_for_content(&b.p("proj/new-name.txt"), b"rename me", SYNC_TIMEOUT);
    wait_for_absence(&b.p("old-name.txt"), SYNC_TIMEOUT);

    fs::rename(a.p("proj"), a.p("project")).unwrap();
    wait_for_content(&b.p("project/src/main.rs"), b"fn main() {}", SYNC_TIMEOUT);
    wait_for_content(&b.p("project/README"), b"readme", SYNC_TIMEOUT);
    wait_for_content(&b.p("project/new-name.txt"), b"rename me", SYNC_TIMEOUT);
    wait_for_absence(&b.p("proj"), SYNC_TIMEOUT);

    // Still editable after the move, on both sides.
    fs::write(b.p("project/src/main.rs"), b"fn main() { println!(); }").unwrap();
    wait_for_content(&a.p("project/src/main.rs"), b"fn main() { println!(); }", SYNC_TIMEOUT);
}

#[test]
fn atomic_save_replaces_existing_file() {
    let c = Cluster::new(2);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    fs::write(a.p("doc.txt"), b"draft 1").unwrap();
    wait_for_content(&b.p("doc.txt"), b"draft 1", SYNC_TIMEOUT);
    // What editors do: write a temp file, then rename it over the original.
    for i in 2..=4 {
        let body = format!("draft {i}");
        fs::write(a.p(".doc.txt.swp"), &body).unwrap();
        fs::rename(a.p(".doc.txt.swp"), a.p("doc.txt")).unwrap();
        wait_for_content(&b.p("doc.txt"), body.as_bytes(), SYNC_TIMEOUT);
    }
    wait_for_absence(&b.p(".doc.txt.swp"), SYNC_TIMEOUT);
    let leftovers: Vec<_> = fs::read_dir(b.p("")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, vec!["doc.txt"], "no conflict copies or temp files on the other side");
}

#[test]
fn chmod_unlink_and_rmdir() {
    let c = Cluster::new(2);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    fs::write(a.p("run.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    wait_for_content(&b.p("run.sh"), b"#!/bin/sh\necho hi\n", SYNC_TIMEOUT);
    fs::set_permissions(a.p("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    let exec = || fs::metadata(b.p("run.sh")).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
    assert!(wait_until(SYNC_TIMEOUT, || exec() == 0o755), "mode is {:o}", exec());

    fs::create_dir(a.p("gone")).unwrap();
    fs::write(a.p("gone/f"), b"x").unwrap();
    wait_for_content(&b.p("gone/f"), b"x", SYNC_TIMEOUT);
    fs::remove_file(a.p("gone/f")).unwrap();
    fs::remove_dir(a.p("gone")).unwrap();
    fs::remove_file(a.p("run.sh")).unwrap();
    wait_for_absence(&b.p("gone"), SYNC_TIMEOUT);
    wait_for_absence(&b.p("run.sh"), SYNC_TIMEOUT);
}

/// Symlinks sync as data: the target, byte for byte, wherever it points
/// (relative, absolute, dangling, out of the tree). The hub keeps it as the
/// entry's content and never resolves it; each machine's kernel follows it as
/// usual. Renames, replacements and deletes sync as for files.
#[test]
fn symlinks_sync_as_data() {
    use std::os::unix::fs::symlink;
    use std::path::Path;
    let mut c = Cluster::new(2);
    let a = &c.mounts[0];
    fs::write(a.p("target.txt"), b"data").unwrap();
    fs::create_dir(a.p("dir")).unwrap();
    let links = [
        ("rel", "target.txt"),
        ("dir/up", "../target.txt"),
        ("abs", "/etc/passwd"),
        ("dangling", "no/such/file"),
        ("escape", "../../../../../../../etc/shadow"),
    ];
    for (name, target) in links {
        symlink(target, a.p(name)).unwrap();
        assert_eq!(fs::read_link(a.p(name)).unwrap(), Path::new(target), "{name} where it was made");
    }
    let b = &c.mounts[1];
    for (name, target) in links {
        let arrived = || fs::read_link(b.p(name)).ok().is_some_and(|t| t == Path::new(target));
        assert!(wait_until(SYNC_TIMEOUT, arrived), "{name} on b: {:?}", fs::read_link(b.p(name)));
        assert!(fs::symlink_metadata(b.p(name)).unwrap().file_type().is_symlink(), "{name}");
    }
    assert_eq!(fs::read(b.p("rel")).unwrap(), b"data", "the kernel follows it");
    assert_eq!(fs::read(b.p("dir/up")).unwrap(), b"data");

    let url = c.hub.url();
    let entry: serde_json::Value =
        c.hub.http().get(format!("{url}/v1/shares/default/entry?path=abs")).send().unwrap().json().unwrap();
    assert_eq!((entry["kind"].as_str(), entry["size"].as_u64()), (Some("symlink"), Some(11)), "{entry}");
    let id = entry["hash"].as_str().unwrap();
    let content = c.hub.http().get(format!("{url}/v1/shares/default/content/{id}")).send().unwrap().bytes().unwrap();
    assert_eq!(&content[..], b"/etc/passwd", "the hub keeps the target as content");
    let mut dirs = vec![c.hub.data.clone()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = fs::symlink_metadata(e.path()).unwrap().file_type();
            assert!(!t.is_symlink(), "the hub made a symlink on its disk: {:?}", e.path());
            if t.is_dir() {
                dirs.push(e.path());
            }
        }
    }

    fs::rename(a.p("rel"), a.p("rel2")).unwrap();
    symlink("target.txt", a.p("tmp")).unwrap();
    fs::rename(a.p("tmp"), a.p("dangling")).unwrap();
    fs::write(a.p("plain"), b"now a file").unwrap();
    fs::rename(a.p("plain"), a.p("abs")).unwrap();
    fs::remove_file(a.p("escape")).unwrap();
    wait_for_absence(&b.p("escape"), SYNC_TIMEOUT);
    wait_for_absence(&b.p("rel"), SYNC_TIMEOUT);
    wait_for_content(&b.p("abs"), b"now a file", SYNC_TIMEOUT);
    assert!(fs::symlink_metadata(b.p("abs")).unwrap().file_type().is_file(), "a file replaced the symlink");
    let retargeted = || fs::read_link(b.p("dangling")).ok().is_some_and(|t| t == Path::new("target.txt"));
    assert!(wait_until(SYNC_TIMEOUT, retargeted), "dangling on b: {:?}", fs::read_link(b.p("dangling")));
    assert_eq!(fs::read_link(b.p("rel2")).unwrap(), Path::new("target.txt"));

    // The local database keeps them across a restart.
    c.mounts[1].restart();
    let b = &c.mounts[1];
    assert_eq!(fs::read_link(b.p("rel2")).unwrap(), Path::new("target.txt"));
    assert_eq!(fs::read_link(b.p("dir/up")).unwrap(), Path::new("../target.txt"));
    assert!(!hub_tree(&c.hub).expect("the hub answers").contains_key("hard"));
}

#[test]
fn multi_megabyte_binary_is_byte_identical() {
    let c = Cluster::new(3);
    let data = pseudo_random(12 * 1024 * 1024 + 123, 42);
    fs::write(c.mounts[0].p("blob.bin"), &data).unwrap();
    for m in &c.mounts[1..] {
        wait_for_content(&m.p("blob.bin"), &data, SYNC_TIMEOUT);
    }
    // Overwrite part of it in place on another mount.
    let mut f = fs::OpenOptions::new().write(true).open(c.mounts[2].p("blob.bin")).unwrap();
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(5_000_000)).unwrap();
    f.write_all(b"PATCHED").unwrap();
    drop(f);
    let mut want = data.clone();
    want[5_000_000..5_000_007].copy_from_slice(b"PATCHED");
    wait_for_content(&c.mounts[0].p("blob.bin"), &want, SYNC_TIMEOUT);
}
