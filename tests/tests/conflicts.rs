//! Concurrent changes on two mounts, each pair ending in one exact, documented
//! state (fs/src/resolve.rs has the table). The order is made deterministic:
//! with the hub down both mounts queue their change; B stops; the hub comes
//! back and takes A's change; then B starts and its change arrives second.
use ssync_tests::{tree, wait_for_content, wait_for_hub_tree, wait_for_tree, wait_until, Cluster, SYNC_TIMEOUT};
use std::fs;

/// Runs `a_change` on mount A and `b_change` on mount B as concurrent edits
/// of the same synced state, with A's reaching the hub first.
fn race(
    c: &mut Cluster,
    a_change: impl FnOnce(&std::path::Path),
    b_change: impl FnOnce(&std::path::Path),
    a_landed: impl Fn(&serde_json::Value) -> bool,
) {
    c.hub.stop();
    a_change(&c.mounts[0].path);
    b_change(&c.mounts[1].path);
    assert_eq!(c.mounts[1].stop(), Some(0));
    c.hub.restart();
    let (url, http) = (c.hub.url(), c.hub.http());
    let landed = wait_until(SYNC_TIMEOUT, || {
        http.get(format!("{url}/v1/shares/default/tree"))
            .send()
            .and_then(|r| r.json::<serde_json::Value>())
            .map(|t| a_landed(&t))
            .unwrap_or(false)
    });
    assert!(landed, "A's change did not reach the hub; A's log:\n{}", c.mounts[0].log());
    c.mounts[1].start_again();
}

fn hub_has(t: &serde_json::Value, path: &str, size: u64) -> bool {
    t["entries"].as_array().is_some_and(|es| es.iter().any(|e| e["path"] == path && e["size"] == size))
}

fn hub_lacks(t: &serde_json::Value, path: &str) -> bool {
    t["entries"].as_array().is_some_and(|es| !es.iter().any(|e| e["path"] == path))
}

fn synced(c: &Cluster, path: &str, body: &str) {
    fs::write(c.mounts[0].p(path), body).unwrap();
    wait_for_content(&c.mounts[1].p(path), body.as_bytes(), SYNC_TIMEOUT);
}

fn mounts(c: &Cluster) -> Vec<&ssync_tests::Mount> {
    c.mounts.iter().collect()
}

#[test]
fn edit_vs_edit_keeps_both_as_conflict_copy() {
    let mut c = Cluster::new(2);
    synced(&c, "f.txt", "base");
    race(
        &mut c,
        |a| fs::write(a.join("f.txt"), "from a").unwrap(),
        |b| fs::write(b.join("f.txt"), "from b!").unwrap(),
        |t| hub_has(t, "f.txt", 6),
    );
    wait_for_tree(
        &mounts(&c),
        &tree(&[("f.txt", Some("from a")), ("f.conflict-b-T.txt", Some("from b!"))]),
        SYNC_TIMEOUT,
    );
}

#[test]
fn create_vs_create_same_path() {
    let mut c = Cluster::new(2);
    race(
        &mut c,
        |a| fs::write(a.join("new.md"), "A").unwrap(),
        |b| fs::write(b.join("new.md"), "BB").unwrap(),
        |t| hub_has(t, "new.md", 1),
    );
    let want = tree(&[("new.md", Some("A")), ("new.conflict-b-T.md", Some("BB"))]);
    wait_for_tree(&mounts(&c), &want, SYNC_TIMEOUT);
    wait_for_hub_tree(&c.hub, &want, SYNC_TIMEOUT);
}

#[test]
fn identical_writes_make_no_conflict_copy() {
    let mut c = Cluster::new(2);
    synced(&c, "same.txt", "old");
    race(
        &mut c,
        |a| fs::write(a.join("same.txt"), "equal").unwrap(),
        |b| fs::write(b.join("same.txt"), "equal").unwrap(),
        |t| hub_has(t, "same.txt", 5),
    );
    let want = tree(&[("same.txt", Some("equal"))]);
    wait_for_tree(&mounts(&c), &want, SYNC_TIMEOUT);
    wait_for_hub_tree(&c.hub, &want, SYNC_TIMEOUT);
}

#[test]
fn edit_vs_delete_the_edit_wins_whoever_is_first() {
    // The delete reaches the hub first: the edit brings the file back.
    let mut c = Cluster::new(2);
    synced(&c, "f.txt", "base");
    race(
        &mut c,
        |a| fs::remove_file(a.join("f.txt")).unwrap(),
        |b| fs::write(b.join("f.txt"), "edited").unwrap(),
        |t| hub_lacks(t, "f.txt"),
    );
    let want = tree(&[("f.txt", Some("edited"))]);
    wait_for_tree(&mounts(&c), &want, SYNC_TIMEOUT);
    wait_for_hub_tree(&c.hub, &want, SYNC_TIMEOUT);
    drop(c);
    // The edit reaches the hub first: the delete is dropped.
    let mut c = Cluster::new(2);
    synced(&c, "f.txt", "base");
    race(
        &mut c,
        |a| fs::write(a.join("f.txt"), "edited").unwrap(),
        |b| fs::remove_file(b.join("f.txt")).unwrap(),
        |t| hub_has(t, "f.txt", 6),
    );
    let want = tree(&[("f.txt", Some("edited"))]);
    wait_for_tree(&mounts(&c), &want, SYNC_TIMEOUT);
    wait_for_hub_tree(&c.hub, &want, SYNC_TIMEOUT);
}

#[test]
fn delete_vs_delete() {
    let mut c = Cluster::new(2);
    synced(&c, "f.txt", "base");
    synced(&c, "keep.txt", "k");
    race(
        &mut c,
        |a| fs::remove_file(a.join("f.txt")).unwrap(),
        |b| fs::remove_file(b.join("f.txt")).unwrap(),
        |t| hub_lacks(t, "f.txt"),
    );
    let want = tree(&[("keep.txt", Some("k"))]);
    wait_for_tree(&mounts(&c), &want, SYNC_TIMEOUT);
    wait_for_hub_tree(&c.hub, &want, SYNC_TIMEOUT);
}

#[test]
fn rename_vs_edit_the_edit_follows_the_file() {
    // The rename reaches the hub first.
    let mut c = Cluster::new(2);
    synced(&c, "f.txt", "base");
    race(
        &mut c,
        |a| fs::rename(a.join("f.txt"), a.join("g.txt")).unwrap(),
        |b| fs::write(b.join("f.txt"), "edited").unwrap(),
        |t| hub_lacks(t, "f.txt"),
    );
    let want = tree(&[("g.txt", Some("edited"))]);
    wait_for_tree(&mounts(&c), &want, SYNC_TIMEOUT);
    wait_for_hub_tree(&c.hub, &want, SYNC_TIMEOUT);
    drop(c);
    // The edit reaches the hub first.
    let mut c = Cluster::new(2);
    synced(&c, "f.txt", "base");
    race(
        &mut c,
        |a| fs::write(a.join("f.txt"), "edited").unwrap(),
        |b| fs::rename(b.join("f.txt"), b.join("g.txt")).unwrap(),
        |t| hub_has(t, "f.txt", 6),
    );
    let want = tree(&[("g.txt", Some("edited"))]);
    wait_for_tree(&mounts(&c), &want, SYNC_TIMEOUT);
    wait_for_hub_tree(&c.hub, &want, SYNC_TIMEOUT);
}

#[test]
fn rename_vs_rename_the_first_name_wins() {
    let mut c = Cluster::new(2);
    synced(&c, "f.txt", "base");
    race(
        &mut c,
        |a| fs::rename(a.join("f.txt"), a.join("by-a.txt")).unwrap(),
        |b| fs::rename(b.join("f.txt"), b.join("by-b.txt")).unwrap(),
        |t| hub_lacks(t, "f.txt"),
    );
    let want = tree(&[("by-a.txt", Some("base"))]);
    wait_for_tree(&mounts(&c), &want, SYNC_TIMEOUT);
    wait_for_hub_tree(&c.hub, &want, SYNC_TIMEOUT);
}

#[test]
fn folder_deleted_while_a_file_is_written_inside() {
    let mut c = Cluster::new(2);
    fs::create_dir_all(c.mounts[0].p("d/sub")).unwrap();
    synced(&c, "d/sub/old.txt", "old");
    race(
        &mut c,
        |a| fs::remove_dir_all(a.join("d")).unwrap(),
        |b| fs::write(b.join("d/sub/new.txt"), "new").unwrap(),
        |t| hub_lacks(t, "d"),
    );
    let want = tree(&[("d", None), ("d/sub", None), ("d/sub/new.txt", Some("new"))]);
    wait_for_tree(&mounts(&c), &want, SYNC_TIMEOUT);
    wait_for_hub_tree(&c.hub, &want, SYNC_TIMEOUT);
    drop(c);
    // The write reaches the hub first: the folder cannot be deleted, and comes back.
    let mut c = Cluster::new(2);
    fs::create_dir_all(c.mounts[0].p("d/sub")).unwrap();
    synced(&c, "d/sub/old.txt", "old");
    race(
        &mut c,
        |a| fs::write(a.join("d/sub/new.txt"), "new").unwrap(),
        |b| fs::remove_dir_all(b.join("d")).unwrap(),
        |t| hub_has(t, "d/sub/new.txt", 3),
    );
    let want = tree(&[("d", None), ("d/sub", None), ("d/sub/new.txt", Some("new"))]);
    wait_for_tree(&mounts(&c), &want, SYNC_TIMEOUT);
    wait_for_hub_tree(&c.hub, &want, SYNC_TIMEOUT);
}

#[test]
fn file_and_folder_with_the_same_name() {
    let mut c = Cluster::new(2);
    race(
        &mut c,
        |a| fs::write(a.join("thing"), "a file").unwrap(),
        |b| {
            fs::create_dir(b.join("thing")).unwrap();
            fs::write(b.join("thing/inside.txt"), "in").unwrap();
        },
        |t| hub_has(t, "thing", 6),
    );
    wait_for_tree(
        &mounts(&c),
        &tree(&[
            ("thing", Some("a file")),
            ("thing.conflict-b-T", None),
            ("thing.conflict-b-T/inside.txt", Some("in")),
        ]),
        SYNC_TIMEOUT,
    );
}

/// The symlinks in `dir`, by normalized name, with their targets.
fn links(dir: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    let Ok(rd) = fs::read_dir(dir) else { return Default::default() };
    rd.flatten()
        .filter_map(|e| {
            let target = fs::read_link(e.path()).ok()?;
            let name = ssync_tests::normalize_conflict_names(&e.file_name().to_string_lossy());
            Some((name, target.to_string_lossy().into_owned()))
        })
        .collect()
}

#[test]
fn symlink_vs_symlink_keeps_both_as_symlinks() {
    let mut c = Cluster::new(2);
    race(
        &mut c,
        |a| std::os::unix::fs::symlink("a-target", a.join("l")).unwrap(),
        |b| std::os::unix::fs::symlink("bb-target", b.join("l")).unwrap(),
        |t| hub_has(t, "l", 8),
    );
    let want: std::collections::BTreeMap<String, String> =
        [("l", "a-target"), ("l.conflict-b-T", "bb-target")].map(|(n, t)| (n.to_string(), t.to_string())).into();
    for m in mounts(&c) {
        let same = wait_until(SYNC_TIMEOUT, || links(&m.path) == want);
        assert!(same, "{}: {:?}, want {want:?}", m.path.display(), links(&m.path));
    }
}

#[test]
fn exchange_vs_edit_keeps_the_swap_and_the_edit_follows_its_file() {
    // The engine on stable ids: a swap moves two files, an edit changes one
    // file's content; they touch different attributes of that file, so both
    // hold and nothing is a conflict. (The path-keyed engine refused the
    // swap and kept conflict copies of both names.)
    let mut c = Cluster::new(2);
    synced(&c, "x", "x");
    synced(&c, "y", "y");
    race(
        &mut c,
        |a| fs::write(a.join("x"), "edited").unwrap(),
        |b| {
            let (x, y) = (c_path(&b.join("x")), c_path(&b.join("y")));
            // SAFETY: both are NUL-terminated paths that outlive the call.
            let r = unsafe {
                libc::renameat2(libc::AT_FDCWD, x.as_ptr(), libc::AT_FDCWD, y.as_ptr(), libc::RENAME_EXCHANGE)
            };
            assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
        },
        |t| hub_has(t, "x", 6),
    );
    // The file first named x is now y, with A's edit; the other is x.
    let want = tree(&[("x", Some("y")), ("y", Some("edited"))]);
    wait_for_tree(&mounts(&c), &want, SYNC_TIMEOUT);
    wait_for_hub_tree(&c.hub, &want, SYNC_TIMEOUT);
}

fn c_path(p: &std::path::Path) -> std::ffi::CString {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("test paths hold no NUL")
}
