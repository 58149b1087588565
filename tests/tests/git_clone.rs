//! `git clone` into a mount, many times in a row, as a developer would: no
//! error (git's lock files are created with O_EXCL and renamed over their
//! targets, again and again), the upstream branch written to .git/config,
//! and on the other mount a repository `git fsck` finds whole.
//!
//! SSYNC_GIT_CLONES (default 20) and SSYNC_GIT_FILES (default 2000) size it.
use ssync_tests::{run_bounded, wait_until, Cluster};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn git(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir).args(args);
    cmd.env("GIT_AUTHOR_NAME", "t").env("GIT_AUTHOR_EMAIL", "t@example.com");
    cmd.env("GIT_COMMITTER_NAME", "t").env("GIT_COMMITTER_EMAIL", "t@example.com");
    run_bounded(&mut cmd, Duration::from_secs(300))
}

/// A repository of `files` small source files in folders of 50, on the local disk.
fn make_repo(dir: &Path, files: u64) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..files {
        let sub = dir.join(format!("src/m{:03}", i / 50));
        std::fs::create_dir_all(&sub).unwrap();
        let body = format!("// file {i}\npub fn f{i}() -> u64 {{ {i} }}\n").repeat(1 + (i % 7) as usize);
        std::fs::write(sub.join(format!("f{i}.rs")), body).unwrap();
    }
    for args in [&["init", "-q", "-b", "main"][..], &["add", "-A"], &["commit", "-q", "-m", "initial"]] {
        let (code, out) = git(dir, args);
        assert_eq!(code, Some(0), "git {args:?}: {out}");
    }
}

#[test]
fn git_clone_into_a_mount_works_every_time_and_syncs_whole() {
    let clones = env_u64("SSYNC_GIT_CLONES", 20);
    let files = env_u64("SSYNC_GIT_FILES", 2000);
    let c = Cluster::new(2);
    let src = c.dir.path().join("upstream");
    make_repo(&src, files);
    let url = format!("file://{}", src.display());
    let started = Instant::now();
    for i in 0..clones {
        let dest = c.mounts[0].p(&format!("clone{i}"));
        let mut cmd = Command::new("git");
        cmd.arg("clone").arg("-q").arg(&url).arg(&dest);
        let (code, out) = run_bounded(&mut cmd, Duration::from_secs(300));
        assert_eq!(code, Some(0), "clone {i} of {clones} failed: {out}");
        assert!(!out.contains("error") && !out.contains("fatal"), "clone {i}: {out}");
        let config = std::fs::read_to_string(dest.join(".git/config")).unwrap_or_default();
        assert!(
            config.contains("[branch \"main\"]") && config.contains("remote = origin"),
            "clone {i}: the upstream branch config is missing:\n{config}"
        );
    }
    eprintln!("git_clone: {clones} clones of {files} files into the mount in {:?}", started.elapsed());

    // The other mount gets every clone whole.
    let count = |dir: &Path| walk_files(&dir.join("src"));
    for i in 0..clones {
        let there = c.mounts[1].p(&format!("clone{i}"));
        let arrived = wait_until(Duration::from_secs(300), || count(&there) == files);
        assert!(arrived, "clone {i} did not reach the other mount: {} of {files} files", count(&there));
        let whole = wait_until(Duration::from_secs(120), || git(&there, &["fsck", "--no-progress"]).0 == Some(0));
        assert!(whole, "clone {i} on the other mount: {}", git(&there, &["fsck", "--no-progress"]).1);
        // The index holds A's stat data: it is refreshed (as `git status` would) before comparing.
        let clean = wait_until(Duration::from_secs(60), || {
            let _ = git(&there, &["update-index", "-q", "--refresh"]);
            git(&there, &["diff-index", "--quiet", "HEAD", "--"]).0 == Some(0)
        });
        if !clean {
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(format!("git -C '{}' diff-index --name-status HEAD -- >&2", there.display()));
            let (_, changed) = run_bounded(&mut cmd, Duration::from_secs(60));
            panic!(
                "clone {i} on the other mount differs from its HEAD:\n{}",
                changed.lines().take(20).collect::<Vec<_>>().join("\n")
            );
        }
    }
    eprintln!("git_clone: all clones whole on the other mount {:?} after the first began", started.elapsed());
}

fn walk_files(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => walk_files(&e.path()),
            Ok(t) if t.is_file() => 1,
            _ => 0,
        })
        .sum()
}
