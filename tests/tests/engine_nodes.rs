//! Mounts run by the engine on stable ids and three trees, with plain file
//! calls: what one mount does the other shows, a
//! mount's own changes never come back as conflicts, a change made on two
//! machines at once keeps both, and a stopped mount sends the rest when it
//! starts again.
use ssync_tests::{snapshot, wait_for_tree, wait_until, Cluster, Mount, SYNC_TIMEOUT};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

fn two() -> Cluster {
    Cluster::new(2)
}

fn conflict_copies(m: &Mount) -> Vec<String> {
    snapshot(&m.path).into_keys().filter(|k| k.contains(".conflict-")).collect()
}

/// Waits until B shows what A shows, which must be `want`.
fn converge(a: &Mount, b: &Mount, want: &BTreeMap<String, Option<Vec<u8>>>) {
    wait_for_tree(&[a, b], want, SYNC_TIMEOUT);
}

#[test]
fn everyday_changes_reach_the_other_mount_both_ways() {
    let c = two();
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    fs::create_dir_all(a.p("src/lib")).unwrap();
    fs::write(a.p("src/lib/one.rs"), b"fn one() {}\n").unwrap();
    fs::write(a.p("src/main.rs"), b"fn main() {}\n").unwrap();
    let big = ssync_tests::pseudo_random(3 << 20, 7);
    fs::write(a.p("big.bin"), &big).unwrap();
    std::os::unix::fs::symlink("src/main.rs", a.p("link")).unwrap();
    let mut want = snapshot(&a.path);
    assert_eq!(want.len(), 6);
    converge(a, b, &want);

    // Edits, a chmod, a folder rename with what is inside, a delete.
    fs::write(a.p("src/main.rs"), b"fn main() { one() }\n").unwrap();
    fs::set_permissions(a.p("src/lib/one.rs"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::rename(a.p("src"), a.p("code")).unwrap();
    fs::remove_file(a.p("big.bin")).unwrap();
    want = snapshot(&a.path);
    converge(a, b, &want);
    let mode = fs::metadata(b.p("code/lib/one.rs")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the mode came too");

    // The other way, and a tree removed whole.
    fs::write(b.p("code/lib/two.rs"), b"fn two() {}\n").unwrap();
    fs::create_dir(b.p("empty")).unwrap();
    want = snapshot(&b.path);
    converge(a, b, &want);
    fs::remove_dir_all(a.p("code")).unwrap();
    want = snapshot(&a.path);
    assert_eq!(want.keys().collect::<Vec<_>>(), ["empty", "link"]);
    converge(a, b, &want);
    assert!(conflict_copies(a).is_empty() && conflict_copies(b).is_empty());
}

#[test]
fn a_mounts_own_quick_changes_never_become_conflict_copies() {
    let c = two();
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    fs::create_dir(a.p("w")).unwrap();
    // Rewrites, git-style lock-file renames, renames back and forth and
    // deletes, as fast as the mount takes them.
    for round in 0..40u32 {
        let name = format!("w/f{}", round % 5);
        fs::write(a.p(&format!("{name}.lock")), format!("v{round}\n")).unwrap();
        fs::rename(a.p(&format!("{name}.lock")), a.p(&name)).unwrap();
        if round % 7 == 3 {
            fs::rename(a.p("w"), a.p("w2")).unwrap();
            fs::rename(a.p("w2"), a.p("w")).unwrap();
        }
        if round % 11 == 5 {
            fs::remove_file(a.p(&name)).unwrap();
        }
    }
    let want = snapshot(&a.path);
    converge(a, b, &want);
    assert_eq!(conflict_copies(a), Vec::<String>::new());
    assert_eq!(conflict_copies(b), Vec::<String>::new());
}

#[test]
fn an_edit_on_both_mounts_keeps_both_and_a_restart_sends_the_rest() {
    let mut c = two();
    fs::write(c.mounts[0].p("doc.txt"), b"first\n").unwrap();
    let want = snapshot(&c.mounts[0].path);
    converge(&c.mounts[0], &c.mounts[1], &want);

    // Both edit the same version while the hub is away: both edits are kept,
    // one as a conflict copy.
    c.hub.stop();
    fs::write(c.mounts[0].p("doc.txt"), b"from a\n").unwrap();
    fs::write(c.mounts[1].p("doc.txt"), b"from b\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    c.hub.restart();
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    let settled = wait_until(SYNC_TIMEOUT, || {
        let (sa, sb) = (snapshot(&a.path), snapshot(&b.path));
        sa == sb && sa.len() == 2
    });
    let seen = snapshot(&b.path);
    assert!(settled, "both mounts show the file and one conflict copy: {seen:?} / {:?}", snapshot(&a.path));
    let contents: Vec<&[u8]> = seen.values().map(|v| v.as_deref().unwrap()).collect();
    assert!(contents.contains(&&b"from a\n"[..]) && contents.contains(&&b"from b\n"[..]), "{seen:?}");
    assert_eq!(conflict_copies(b).len(), 1);

    // A change made while the hub is away, by a mount stopped before it
    // could send it, goes when the mount starts again.
    // Its modification time goes with it.
    c.hub.stop();
    fs::write(c.mounts[0].p("offline.txt"), b"written offline\n").unwrap();
    let then = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    fs::File::options().write(true).open(c.mounts[0].p("offline.txt")).unwrap().set_modified(then).unwrap();
    let want = snapshot(&c.mounts[0].path);
    c.mounts[0].stop();
    c.hub.restart();
    c.mounts[0].start_again();
    converge(&c.mounts[0], &c.mounts[1], &want);
    let mtime = fs::metadata(c.mounts[1].p("offline.txt")).unwrap().modified().unwrap();
    assert_eq!(mtime, then, "the file's modification time came with it");
}
