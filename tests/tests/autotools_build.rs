//! A real C build inside the mount: xfstests' `lib/` and `ltp/` (autoconf,
//! configure, libtool) from ../shared/tools/xfstests-ltp, built on mount A
//! of a hub with a second mount B, then removed with `rm -rf`. Compilers
//! and libtool write, rename over and remove temporary files by the
//! hundred; none of it may come back as a conflict copy, and nothing of
//! the tree may stay on the hub or on B after the `rm -rf`.
//!
//! Runs in both modes: passthrough (as root) and `--no-passthrough`. Needs
//! the source (XFSTESTS_SRC, else ../shared/tools/xfstests-ltp beside the
//! repository) and autoconf, libtool, make and a C compiler (`.ci/run`
//! installs them); skipped with a note otherwise.
use ssync_tests::listing::{differences, listing};
use ssync_tests::{hub_tree, run_bounded, wait_until, Cluster, Mount};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Configure and build; a few minutes at most even on a slow machine.
const BUILD_TIMEOUT: Duration = Duration::from_secs(900);
/// How long B and the hub may take to show the build, and then its removal.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);

fn source() -> Option<PathBuf> {
    let src = std::env::var_os("XFSTESTS_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools/xfstests-ltp"));
    if !src.join("configure.ac").exists() {
        eprintln!("skipped: no xfstests source at {} (set XFSTESTS_SRC)", src.display());
        return None;
    }
    for tool in ["autoconf", "libtoolize", "make", "cc"] {
        let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output();
        if !found.is_ok_and(|o| o.status.success()) {
            eprintln!("skipped: {tool} is not installed (../shared/tools/xfstests-ltp/build.sh installs it)");
            return None;
        }
    }
    Some(src)
}

fn conflict_copies(m: &Mount) -> Vec<String> {
    listing(&m.path).into_keys().filter(|k| k.contains(".conflict-")).collect()
}

fn build_then_remove(flags: &[&str]) {
    let Some(src) = source() else { return };
    let c = Cluster::with_mount_flags(&[flags, flags]);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    let proj = a.p("proj");

    let (code, err) = run_bounded(Command::new("cp").arg("-r").arg(&src).arg(&proj), Duration::from_secs(60));
    assert_eq!(code, Some(0), "copying the source into the mount: {err}");
    let started = Instant::now();
    let mut build = Command::new("sh");
    build.arg("-c").arg("make configure && ./configure && make -C lib && make -C ltp").current_dir(&proj);
    let (code, err) = run_bounded(&mut build, BUILD_TIMEOUT);
    let tail: Vec<&str> = err.lines().rev().take(30).collect();
    assert_eq!(code, Some(0), "the build failed inside the mount; its last errors:\n{}", tail.join("\n"));
    eprintln!("configure and make took {:.1} s", started.elapsed().as_secs_f64());
    assert!(a.p("proj/ltp/fsstress").exists(), "the build made ltp/fsstress");

    // B comes to show the whole build, the binaries included.
    let want = listing(&proj);
    let same = wait_until(SETTLE_TIMEOUT, || listing(&b.p("proj")) == want);
    assert!(
        same,
        "B did not come to show what A shows; first differences:\n{}",
        differences(&want, &listing(&b.p("proj")), 20).join("\n")
    );
    for m in [a, b] {
        assert_eq!(conflict_copies(m), Vec::<String>::new(), "conflict copies of the build's own files");
    }

    let removed = Instant::now();
    std::fs::remove_dir_all(&proj).expect("rm -rf of the build");
    let on_hub = || hub_tree(&c.hub).map(|t| t.into_keys().filter(|p| p.starts_with("proj")).collect::<Vec<_>>());
    let gone = wait_until(SETTLE_TIMEOUT, || !b.p("proj").exists() && on_hub().is_some_and(|left| left.is_empty()));
    assert!(gone, "the removed build stays: on B {}, on the hub {:?}", b.p("proj").exists(), on_hub());
    eprintln!("rm -rf reached the hub and B in {:.1} s", removed.elapsed().as_secs_f64());
    for m in [a, b] {
        assert_eq!(conflict_copies(m), Vec::<String>::new(), "conflict copies after the removal");
    }
}

#[test]
fn a_libtool_build_then_rm_rf_leaves_nothing_behind() {
    build_then_remove(&[]);
}

#[test]
fn a_libtool_build_then_rm_rf_leaves_nothing_behind_without_passthrough() {
    build_then_remove(&["--no-passthrough"]);
}
