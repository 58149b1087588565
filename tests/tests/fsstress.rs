//! xfstests' fsstress on one mount of a hub with a second mount, both run
//! by the engine on stable ids (`--engine nodes`): afterwards the second
//! mount shows exactly what the first does (names, kinds, modes, contents,
//! symlink targets; FIFOs, sockets and device nodes stay on the mount that
//! made them), no conflict copy exists (only one mount wrote), and an
//! `rm -rf` of the tree reaches the second mount.
//!
//! Runs when FSSTRESS names a built fsstress (`.ci/run` builds it from
//! ../shared/tools/xfstests-ltp).
use ssync_tests::listing::{differences, listing};
use ssync_tests::{run_bounded, wait_until, Cluster};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

#[test]
fn fsstress_on_one_mount_leaves_the_other_equal_without_conflict_copies() {
    let Some(fsstress) = std::env::var_os("FSSTRESS").map(PathBuf::from) else {
        eprintln!("skipped: set FSSTRESS to a built fsstress (see .ci/run)");
        return;
    };
    assert!(fsstress.exists(), "FSSTRESS={} does not exist", fsstress.display());
    let c = Cluster::new(2);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    let mut run = Command::new(&fsstress);
    run.arg("-d").arg(a.p("fss")).args(["-n", "10000", "-p", "4", "-s", "1", "-S", "c"]);
    let (code, err) = run_bounded(&mut run, Duration::from_secs(300));
    assert_eq!(code, Some(0), "fsstress ran to its end: {err}");

    let want = listing(&a.path);
    assert!(want.len() > 1000, "fsstress left a tree to compare ({} entries)", want.len());
    let same = wait_until(Duration::from_secs(180), || listing(&b.path) == want);
    let seen = listing(&b.path);
    assert!(
        same,
        "B did not come to show what A shows; first differences:\n{}",
        differences(&want, &seen, 20).join("\n")
    );
    let copies: Vec<&String> = want.keys().filter(|k| k.contains(".conflict-")).collect();
    assert!(copies.is_empty(), "conflict copies of the mount's own changes: {copies:?}");

    std::fs::remove_dir_all(a.p("fss")).unwrap();
    let gone = wait_until(Duration::from_secs(120), || !b.p("fss").exists());
    assert!(gone, "rm -rf reached B: {:?}", listing(&b.path).len());
}
