//! pjdfstest, the POSIX conformance suite, on a fresh mount. Every failing
//! test must be on the list in SEMANTICS.md ("Known pjdfstest failures"),
//! which says why each one differs from a local disk.
//!
//! Runs when PJDFSTEST_DIR names a built pjdfstest (`.ci/run` builds it from
//! ../shared/tools/pjdfstest); it needs root and `prove` (perl).
use ssync_tests::{run_bounded, Cluster};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Failed test numbers by test file ("chmod/03.t").
type Failures = BTreeMap<String, BTreeSet<u32>>;

#[test]
fn pjdfstest_fails_only_where_semantics_md_says() {
    let Some(dir) = std::env::var_os("PJDFSTEST_DIR").map(PathBuf::from) else {
        eprintln!("skipped: set PJDFSTEST_DIR to a built pjdfstest (see .ci/run)");
        return;
    };
    assert!(dir.join("pjdfstest").exists(), "PJDFSTEST_DIR={} holds no built pjdfstest", dir.display());
    let documented = documented_failures(&std::fs::read_to_string(repo_root().join("SEMANTICS.md")).unwrap());
    assert!(!documented.is_empty(), "SEMANTICS.md lists its known pjdfstest failures");

    let c = Cluster::with_mount_flags(&[&["--allow-other"]]);
    let scratch = c.mounts[0].p("pjdfstest");
    std::fs::create_dir(&scratch).unwrap();
    // prove reports on stdout; run_bounded keeps stderr only.
    let report = c.dir.path().join("prove.out");
    let mut prove = Command::new("sh");
    prove.arg("-c").arg(r#"prove -r "$1" > "$2" 2>&1"#).arg("sh").arg(dir.join("tests")).arg(&report);
    prove.current_dir(&scratch);
    let (_, err) = run_bounded(&mut prove, Duration::from_secs(30 * 60));
    let out = std::fs::read_to_string(&report).unwrap_or_default() + &err;
    let failed = failures(&out);
    assert!(out.contains("Files=238"), "prove ran every file:\n{out}");

    let unexpected = missing_from(&failed, &documented);
    let total: usize = failed.values().map(BTreeSet::len).sum();
    eprintln!("pjdfstest: {total} failed tests in {} files", failed.len());
    let fixed = missing_from(&documented, &failed);
    if !fixed.is_empty() {
        eprintln!("documented as failing but passed (update SEMANTICS.md): {fixed:?}");
    }
    assert!(unexpected.is_empty(), "pjdfstest failures not in SEMANTICS.md: {unexpected:?}\n{out}");
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the repo").to_path_buf()
}

/// Reads prove's "Test Summary Report": a file line, then "Failed tests:"
/// with numbers and ranges that may wrap onto further lines.
fn failures(out: &str) -> Failures {
    let mut all = Failures::new();
    let Some(report) = out.split("Test Summary Report").nth(1) else { return all };
    let mut file: Option<String> = None;
    let mut in_list = false;
    for line in report.lines() {
        let t = line.trim();
        if let Some(rest) = t.split_once("/tests/").map(|(_, r)| r).filter(|_| t.contains("(Wstat")) {
            file = rest.split_whitespace().next().map(str::to_string);
            in_list = false;
        } else if let Some(list) = t.strip_prefix("Failed tests:") {
            in_list = true;
            add_numbers(&mut all, file.as_deref(), list);
        } else if in_list && t.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            add_numbers(&mut all, file.as_deref(), t);
        } else {
            in_list = false;
        }
    }
    all
}

fn add_numbers(all: &mut Failures, file: Option<&str>, list: &str) {
    let Some(file) = file else { return };
    all.entry(file.to_string()).or_default().extend(numbers(list));
}

/// "1-4, 6, 9-10" as numbers.
fn numbers(list: &str) -> Vec<u32> {
    list.split(',')
        .filter_map(|part| {
            let part = part.trim();
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            Some(a.trim().parse::<u32>().ok()?..=b.trim().parse::<u32>().ok()?)
        })
        .flatten()
        .collect()
}

/// The list in SEMANTICS.md: lines "- `chmod/03.t` 1-4: why" under the
/// heading "Known pjdfstest failures".
fn documented_failures(md: &str) -> Failures {
    let mut all = Failures::new();
    let Some(section) = md.split("## Known pjdfstest failures").nth(1) else { return all };
    for line in section.lines().take_while(|l| !l.starts_with("## ")) {
        let Some(rest) = line.trim().strip_prefix("- `") else { continue };
        let Some((file, rest)) = rest.split_once('`') else { continue };
        let list = rest.split(':').next().unwrap_or("");
        all.entry(file.to_string()).or_default().extend(numbers(list));
    }
    all
}

#[test]
fn prove_reports_and_the_documented_list_are_read_right() {
    let out = "x\nTest Summary Report\n-------------------\n\
        /p/tests/link/00.t           (Wstat: 0 Tests: 202 Failed: 5)\n  Failed tests:  4-6, 18\n                30\n\
        /p/tests/rename/02.t (Wstat: 256 (exited 1) Tests: 6 Failed: 3)\n  Failed tests:  2-3, 5\n  Non-zero exit status: 1\n\
        Files=238, Tests=8798\n";
    let got = failures(out);
    assert_eq!(got["link/00.t"], BTreeSet::from([4, 5, 6, 18, 30]));
    assert_eq!(got["rename/02.t"], BTreeSet::from([2, 3, 5]));
    let md = "# x\n## Known pjdfstest failures\n\n- `chmod/03.t` 1-4: deep paths\n- `chown/03.t` 1-4, 6-9: same\n## Next\n- `a/00.t` 1: not this\n";
    let doc = documented_failures(md);
    assert_eq!(doc.len(), 2);
    assert_eq!(doc["chown/03.t"], BTreeSet::from([1, 2, 3, 4, 6, 7, 8, 9]));
}

/// The tests (as "FILE N") that `a` lists and `b` does not.
fn missing_from(a: &Failures, b: &Failures) -> Vec<String> {
    a.iter()
        .flat_map(|(file, tests)| {
            let other = b.get(file);
            tests.iter().filter(move |t| other.is_none_or(|o| !o.contains(t))).map(move |t| format!("{file} {t}"))
        })
        .collect()
}
