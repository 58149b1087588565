//! Version history and restores through the `ssync` command, as a user runs it.
use ssync_tests::{
    bin, run_bounded, snapshot, wait_for_absence, wait_for_content, wait_for_tree, wait_until, Cluster, Hub,
    SYNC_TIMEOUT,
};
use std::fs;
use std::process::Command;
use std::time::{Duration, SystemTime};

const LIMIT: Duration = Duration::from_secs(30);

/// The hub's versions of `path`, newest first: (size, deleted) of each
/// (none while the hub cannot be reached).
fn versions_on_hub(hub: &Hub, path: &str) -> Vec<(u64, bool)> {
    hub.http()
        .get(format!("{}/v1/shares/default/versions?path={path}", hub.url()))
        .send()
        .and_then(|r| r.json::<serde_json::Value>())
        .ok()
        .and_then(|v| {
            v["versions"].as_array().map(|vs| {
                vs.iter().map(|v| (v["entry"]["size"].as_u64().unwrap_or(0), v["entry"]["deleted"] == true)).collect()
            })
        })
        .unwrap_or_default()
}

/// The sizes of the hub's versions of `path`, newest first.
fn version_sizes(hub: &Hub, path: &str) -> Vec<u64> {
    versions_on_hub(hub, path).into_iter().map(|(size, _)| size).collect()
}

/// Runs `ssync ARGS`; returns (exit code, stdout + stderr).
fn ssync(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let out = Command::new(bin("e2e-ssync")).args(args).output().expect("run e2e-ssync");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

fn ok(args: &[&std::ffi::OsStr]) -> String {
    let (code, text) = ssync(args);
    assert_eq!(code, Some(0), "ssync {args:?} failed:\n{text}");
    text
}

fn s(x: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(x)
}

#[test]
fn versions_and_restore_of_a_file() {
    let c = Cluster::new(2);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    for body in ["one", "two", "three"] {
        fs::write(a.p("f.txt"), body).unwrap();
        wait_for_content(&b.p("f.txt"), body.as_bytes(), SYNC_TIMEOUT);
    }
    let list = ok(&[s("versions"), a.p("f.txt").as_os_str()]);
    let rows: Vec<&str> = list.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{list}");
    assert!(rows[0].contains("current") && rows[0].contains(" a "), "newest first, made by device a:\n{list}");

    // Default: the version before the current one.
    ok(&[s("restore"), a.p("f.txt").as_os_str()]);
    wait_for_content(&b.p("f.txt"), b"two", SYNC_TIMEOUT);
    wait_for_content(&a.p("f.txt"), b"two", SYNC_TIMEOUT);

    // A chosen version, to another name.
    let first: String = rows[2].split_whitespace().next().unwrap().to_string();
    let (code, err) =
        ssync(&[s("restore"), a.p("f.txt").as_os_str(), s("--version"), s(&first), s("--as"), b.p("x").as_os_str()]);
    assert_eq!(code, Some(1), "--as in another mount must be refused: {err}");
    ok(&[s("restore"), b.p("f.txt").as_os_str(), s("--version"), s(&first), s("--as"), b.p("f-first.txt").as_os_str()]);
    wait_for_content(&a.p("f-first.txt"), b"one", SYNC_TIMEOUT);

    // A deleted file comes back with its last content.
    fs::remove_file(b.p("f.txt")).unwrap();
    wait_for_absence(&a.p("f.txt"), SYNC_TIMEOUT);
    assert!(ok(&[s("versions"), a.p("f.txt").as_os_str()]).lines().nth(1).unwrap().contains("deleted"));
    ok(&[s("restore"), a.p("f.txt").as_os_str()]);
    wait_for_content(&b.p("f.txt"), b"two", SYNC_TIMEOUT);
}

#[test]
fn rm_rf_of_a_folder_is_undone_with_restore_at() {
    let c = Cluster::new(2);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    fs::create_dir_all(a.p("work/src/deep")).unwrap();
    fs::create_dir_all(a.p("work/empty")).unwrap();
    fs::write(a.p("work/README"), "readme").unwrap();
    fs::write(a.p("work/src/main.rs"), "fn main() {}").unwrap();
    fs::write(a.p("work/src/deep/data.bin"), ssync_tests::pseudo_random(300_000, 9)).unwrap();
    fs::write(a.p("outside.txt"), "not in the folder").unwrap();
    wait_for_content(&b.p("work/src/deep/data.bin"), &ssync_tests::pseudo_random(300_000, 9), SYNC_TIMEOUT);
    assert!(wait_until(SYNC_TIMEOUT, || b.p("work/empty").is_dir() && b.p("outside.txt").exists()));
    let before = snapshot(&a.path);
    std::thread::sleep(Duration::from_millis(50));
    let at = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
    std::thread::sleep(Duration::from_millis(50));

    // The mistake, made on the other machine, and a later edit outside the folder.
    fs::remove_dir_all(b.p("work")).unwrap();
    fs::write(b.p("outside.txt"), "edited later").unwrap();
    wait_for_absence(&a.p("work"), SYNC_TIMEOUT);

    ok(&[s("restore"), a.p("work").as_os_str(), s("--at"), s(&at)]);
    let mut want = before;
    want.insert("outside.txt".into(), Some(b"edited later".to_vec()));
    wait_for_tree(&[a, b], &want, SYNC_TIMEOUT);
}

#[test]
fn status_reports_connection_and_queue() {
    let mut c = Cluster::new(1);
    let mp = c.mounts[0].path.clone();
    let online = wait_until(SYNC_TIMEOUT, || ssync(&[s("status"), mp.as_os_str()]).1.contains("connected since"));
    assert!(online, "{}", ssync(&[s("status"), mp.as_os_str()]).1);
    let all = ok(&[s("status")]);
    assert!(all.contains(&mp.display().to_string()), "{all}");

    c.hub.stop();
    fs::write(c.mounts[0].p("queued.txt"), "waits for the hub").unwrap();
    let offline = wait_until(SYNC_TIMEOUT, || {
        let t = ssync(&[s("status"), mp.as_os_str()]).1;
        t.contains("OFFLINE") && t.contains("changes queued: 1")
    });
    assert!(offline, "{}", ssync(&[s("status"), mp.as_os_str()]).1);
    c.hub.restart();
    let back = wait_until(SYNC_TIMEOUT, || {
        let t = ssync(&[s("status"), mp.as_os_str()]).1;
        t.contains("connected since") && t.contains("changes queued: 0")
    });
    assert!(back, "{}", ssync(&[s("status"), mp.as_os_str()]).1);
}

#[test]
fn paths_outside_a_mount_get_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = run_bounded(Command::new(bin("e2e-ssync")).arg("versions").arg(dir.path()), LIMIT);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("is not inside an ssync mount"), "{text}");
}

/// The queue sends each path's latest state: closes made while the hub is
/// away collapse into the last one, and a file made and deleted before it
/// could be sent sends nothing at all.
#[test]
fn closes_made_offline_collapse_into_the_last_one() {
    let mut c = Cluster::new(1);
    c.hub.stop();
    let a = &c.mounts[0];
    for body in ["v1", "v22", "v333"] {
        fs::write(a.p("f.txt"), body).unwrap();
    }
    fs::write(a.p("gone.txt"), "closed then deleted").unwrap();
    fs::remove_file(a.p("gone.txt")).unwrap();
    c.hub.restart();
    let sizes = |path: &str| versions_on_hub(&c.hub, path);
    let last = wait_until(SYNC_TIMEOUT, || sizes("f.txt") == vec![(4, false)]);
    assert!(last, "history of f.txt: {:?}", sizes("f.txt"));
    fs::write(a.p("after.txt"), "a later change, sent after the others").unwrap();
    assert!(wait_until(SYNC_TIMEOUT, || sizes("after.txt") == vec![(37, false)]));
    assert_eq!(sizes("gone.txt"), vec![], "made and deleted before it was sent: nothing reaches the hub");
}

#[test]
fn shell_redirects_make_one_version_per_write() {
    // `echo x > f` dup2s the new descriptor and closes the first one before
    // writing: that early close must not send the truncated, empty file.
    let c = Cluster::new(1);
    let f = c.mounts[0].p("notes.txt");
    for body in ["draft 1", "draft 22", "final"] {
        let status = Command::new("sh").arg("-c").arg(format!("echo '{body}' > '{}'", f.display())).status().unwrap();
        assert!(status.success());
    }
    let sizes = || version_sizes(&c.hub, "notes.txt");
    assert!(wait_until(SYNC_TIMEOUT, || sizes().first() == Some(&6)), "history: {:?}", sizes());
    // Writes may collapse into later ones (the queue sends the latest state),
    // but no version is the empty file of the early close.
    let h = sizes();
    assert!(h.iter().all(|s| [6, 9, 8].contains(s)) && h.len() <= 3, "history: {h:?}");
}

/// A descriptor closed while another one of the same open file still
/// writes (a `dup`, or a copy a child process inherited) is not the file's
/// close: the half-written state before it never reaches the hub.
#[test]
fn an_early_close_of_a_shared_descriptor_sends_nothing() {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    for flags in [&[][..], &["--no-passthrough"][..]] {
        let c = Cluster::with_mount_flags(&[flags]);
        let mut f = fs::File::create(c.mounts[0].p("log.txt")).unwrap();
        f.write_all(b"first half|").unwrap();
        // SAFETY: a copy of a descriptor this test owns, closed at once.
        let copy = unsafe { libc::dup(f.as_raw_fd()) };
        assert!(copy >= 0, "dup: {}", std::io::Error::last_os_error());
        // SAFETY: `copy` is ours and used nowhere else.
        assert_eq!(unsafe { libc::close(copy) }, 0);
        // Time for the mount to send whatever it would take as closed.
        std::thread::sleep(Duration::from_secs(2));
        f.write_all(b"second half").unwrap();
        drop(f);
        let sizes = || version_sizes(&c.hub, "log.txt");
        assert!(wait_until(SYNC_TIMEOUT, || sizes().first() == Some(&22)), "{flags:?}: history {:?}", sizes());
        assert_eq!(sizes(), vec![22], "{flags:?}: only the state of the last close is a version");
    }
}

/// A file keeps its history through renames, its folder's included: `ssync
/// versions` of its new name lists what it was under its earlier names, and
/// any of those versions can be restored through the new name.
#[test]
fn history_follows_a_file_through_renames() {
    let c = Cluster::new(2);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    fs::create_dir(a.p("d")).unwrap();
    for body in ["one", "two"] {
        fs::write(a.p("d/f.txt"), body).unwrap();
        wait_for_content(&b.p("d/f.txt"), body.as_bytes(), SYNC_TIMEOUT);
    }
    fs::rename(a.p("d"), a.p("e")).unwrap();
    wait_for_content(&b.p("e/f.txt"), b"two", SYNC_TIMEOUT);
    fs::rename(a.p("e/f.txt"), a.p("e/g.txt")).unwrap();
    wait_for_content(&b.p("e/g.txt"), b"two", SYNC_TIMEOUT);
    fs::write(a.p("e/g.txt"), "three").unwrap();
    wait_for_content(&b.p("e/g.txt"), b"three", SYNC_TIMEOUT);

    let list = ok(&[s("versions"), b.p("e/g.txt").as_os_str()]);
    let rows: Vec<&str> = list.lines().skip(1).collect();
    assert!(rows[0].contains("current"), "{list}");
    let named =
        |name: &str| rows.iter().filter(|r| r.contains(&format!("as {name}")) && !r.contains("moved to")).count();
    assert_eq!(named("d/f.txt"), 2, "both versions written as d/f.txt are listed:\n{list}");
    // The folder's rename was one change, to the folder: it made no version
    // of the file (the path-keyed hub made one, as e/f.txt).
    assert_eq!(named("e/f.txt"), 0, "the folder's rename made no version of the file:\n{list}");
    let first = rows.iter().rev().find(|r| r.contains("as d/f.txt")).unwrap();
    let first = first.split_whitespace().next().unwrap().to_string();
    ok(&[s("restore"), b.p("e/g.txt").as_os_str(), s("--version"), s(&first)]);
    wait_for_content(&a.p("e/g.txt"), b"one", SYNC_TIMEOUT);
}

/// The hub's latest change number: the cursor of an empty page of its feed.
fn hub_cursor(c: &Cluster) -> u64 {
    let page: serde_json::Value = c
        .hub
        .http()
        .get(format!("{}/v1/shares/default/changes?since=9223372036854775807&wait=0", c.hub.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    page["cursor"].as_u64().expect("a page has a cursor")
}

#[test]
fn a_folder_rename_is_one_change_and_its_files_keep_their_history() {
    let c = Cluster::new(2);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    fs::create_dir_all(a.p("big/sub")).unwrap();
    for i in 0..300 {
        fs::write(a.p(&format!("big/sub/f{i}")), format!("file {i}\n")).unwrap();
    }
    for body in ["first\n", "second\n"] {
        fs::write(a.p("big/notes.txt"), body).unwrap();
        wait_for_content(&b.p("big/notes.txt"), body.as_bytes(), SYNC_TIMEOUT);
    }
    let want = snapshot(&a.path);
    wait_for_tree(&[a, b], &want, SYNC_TIMEOUT);
    let before = hub_cursor(&c);

    fs::rename(a.p("big"), a.p("renamed")).unwrap();
    wait_for_content(&b.p("renamed/sub/f299"), b"file 299\n", SYNC_TIMEOUT);
    wait_for_absence(&b.p("big"), SYNC_TIMEOUT);
    let want = snapshot(&a.path);
    wait_for_tree(&[a, b], &want, SYNC_TIMEOUT);
    let changes: serde_json::Value = c
        .hub
        .http()
        .get(format!("{}/v1/shares/default/changes?since={before}&wait=0", c.hub.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let rows: Vec<String> =
        changes["entries"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap().to_string()).collect();
    assert_eq!(rows, ["renamed"], "one change, to the folder");
    assert_eq!(hub_cursor(&c), before + 1);

    // The file's history follows it: both states of notes.txt, under its old name.
    let list = ok(&[s("versions"), b.p("renamed/notes.txt").as_os_str()]);
    let rows: Vec<&str> = list.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert!(rows.iter().all(|r| r.contains("big/notes.txt")), "its earlier name is shown:\n{list}");
    let first: String = rows[1].split_whitespace().next().unwrap().to_string();
    ok(&[s("restore"), b.p("renamed/notes.txt").as_os_str(), s("--version"), s(&first)]);
    wait_for_content(&a.p("renamed/notes.txt"), b"first\n", SYNC_TIMEOUT);
}
