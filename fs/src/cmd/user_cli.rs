//! The `ssync` command: how mounts are doing, the versions of a path, and
//! restores. It finds the hub from the mount a path lies in (the mount's
//! source in /proc/self/mountinfo is `ssync:URL`), so users type no URLs.
use crate::cmd::status_file::{self, MountStatus};
use crate::cmd::units::size;
use crate::remote::client::Remote;
use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use ssync_common::api::{RestoreRequest, RestoreTreeRequest, VersionInfo};
use ssync_common::RelPath;
use std::path::{Component, Path, PathBuf};

/// Status, history and restores for ssync mounts.
#[derive(Debug, Parser)]
#[command(
    name = "ssync",
    version,
    after_help = "Examples:\n  ssync status\n  ssync pin /mnt/shared/projects        # keep it on this machine\n  ssync ls /mnt/shared/videos\n  ssync versions /mnt/shared/report.odt\n  ssync restore /mnt/shared/report.odt            # the version before the current one\n  ssync restore /mnt/shared/report.odt --version 41 --as /mnt/shared/report-old.odt\n  ssync restore /mnt/shared/photos --at 2h          # the folder as it was two hours ago"
)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Show each running mount (or the one given): connected or not and since
    /// when, changes waiting to be sent, the last error, recent conflict copies.
    Status { mountpoint: Option<PathBuf> },
    /// Keep a file, or a folder and everything that will ever be in it, on
    /// this machine: fetched now, never evicted (with --cache-max).
    Pin { path: PathBuf },
    /// Undo `ssync pin`: the contents may be evicted again when room is needed.
    Unpin { path: PathBuf },
    /// List a folder (or one file) with what of each file is on this machine:
    /// full, partial or none, and whether it is pinned.
    Ls { path: PathBuf },
    /// List the versions the hub keeps of a path inside a mount (deleted ones too).
    Versions { path: PathBuf },
    /// Bring back an earlier version of a file, or a whole folder as it was at a time.
    Restore {
        /// A file or folder inside a mount (it may be deleted).
        path: PathBuf,
        /// The version to bring back (see `ssync versions`) [default: the one before the current].
        #[arg(long, conflicts_with = "at")]
        version: Option<u64>,
        /// Restore to this path (inside the same mount) instead of the original.
        #[arg(long = "as", value_name = "NEWPATH", conflicts_with = "at")]
        as_path: Option<PathBuf>,
        /// Bring the folder back to how it was then: RFC 3339 (2026-11-22T10:00:00Z) or an age (10m, 2h, 3days).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
}

pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Status { mountpoint } => status(mountpoint.as_deref()),
        Cmd::Pin { path } => crate::cmd::pin_cli::pin(&path, true),
        Cmd::Unpin { path } => crate::cmd::pin_cli::pin(&path, false),
        Cmd::Ls { path } => crate::cmd::pin_cli::ls(&path),
        Cmd::Versions { path } => versions(&path),
        Cmd::Restore { path, version, as_path, at } => restore(&path, version, as_path.as_deref(), at.as_deref()),
    }
}

/// A path inside a mount: the mount, its hub, and the path relative to it.
struct Located {
    mountpoint: PathBuf,
    server: String,
    rel: Option<RelPath>,
}

/// `/a/b/../c` -> `/a/c` without touching the filesystem (the path may be deleted).
fn absolute_lexical(path: &Path) -> anyhow::Result<PathBuf> {
    let abs = std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// ssync mounts on this machine: (mountpoint, hub URL).
fn ssync_mounts() -> Vec<(PathBuf, String)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            let (fstype, source) = (f.get(sep + 1)?, unescape(f.get(sep + 2)?));
            let url = source.strip_prefix("ssync:")?;
            let mountpoint = PathBuf::from(unescape(f.get(4)?));
            fstype.starts_with("fuse").then(|| (mountpoint, url.to_string()))
        })
        .collect()
}

fn locate(path: &Path) -> anyhow::Result<Located> {
    let abs = absolute_lexical(path)?;
    let mounts = ssync_mounts();
    let Some((mountpoint, server)) =
        mounts.iter().filter(|(mp, _)| abs.starts_with(mp)).max_by_key(|(mp, _)| mp.as_os_str().len()).cloned()
    else {
        let known: Vec<String> = mounts.iter().map(|(m, _)| m.display().to_string()).collect();
        bail!(
            "{} is not inside an ssync mount. Give a path inside one ({}).",
            abs.display(),
            if known.is_empty() { "none is mounted; start one with ssync-mount".into() } else { known.join(", ") }
        );
    };
    let rest = abs.strip_prefix(&mountpoint).expect("chosen because it is a prefix");
    let rel = match rest.to_str() {
        Some("") => None,
        Some(s) => Some(RelPath::parse(s).with_context(|| format!("{} is not a path ssync can store", abs.display()))?),
        None => bail!("{} is not valid UTF-8, which ssync paths must be", abs.display()),
    };
    Ok(Located { mountpoint, server, rel })
}

/// A client for the hub `loc` is mounted from, with the token that mount
/// uses (its token file, else `SSYNC_TOKEN` or the default file).
fn remote_for(loc: &Located) -> anyhow::Result<Remote> {
    let status = status_file::read(&loc.mountpoint);
    let token_file = status.as_ref().and_then(|s| s.token_file.clone());
    let token = crate::remote::token::load(token_file.as_deref())?;
    let ca = status.as_ref().and_then(|s| s.ca_cert.clone());
    let share = status.as_ref().and_then(|s| s.share.clone());
    let device = status.map_or_else(crate::cmd::config::default_device_name, |s| s.device);
    let remote = Remote::new(&loc.server, &device, &token, ca.as_deref())?;
    Ok(match share {
        Some(share) => remote.for_share(&share),
        None => remote,
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")
}

fn when(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn ago(ns: i64) -> String {
    let secs = ((crate::local::clock::now_ns() - ns) / 1_000_000_000).max(0) as u64;
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

fn print_status(s: &MountStatus) {
    println!("{}  <- {}  (device {}, pid {})", s.mountpoint.display(), s.server, s.device, s.pid);
    let share = s.share.as_deref().unwrap_or(ssync_common::share::DEFAULT_SHARE);
    let access = match s.read_only {
        true => "read-only: the token may not change it, so the mount is read-only",
        false => "read-write",
    };
    println!("  share {share} ({access})");
    if !status_file::process_alive(s.pid) {
        println!("  not running (this status is from a mount that stopped without cleaning up)");
        return;
    }
    let state = if s.halted {
        let why = s.halt_reason.as_deref().unwrap_or("the hub is not the one this cache synced with");
        format!("STOPPED SYNCING: {why} (see the mount's log)")
    } else if let Some((done, total)) = s.syncing {
        format!("syncing {done} of {total} entries with the hub")
    } else if s.online {
        format!("connected since {} ({} ago)", when(s.since_ns), ago(s.since_ns))
    } else if s.since_ns == 0 {
        "connecting to the hub (not reached yet); changes are queued".to_string()
    } else {
        format!(
            "OFFLINE since {} ({} ago); changes are queued and sent when the hub is back",
            when(s.since_ns),
            ago(s.since_ns)
        )
    };
    println!("  {state}");
    if s.sent_per_sec > 0.0 {
        println!("  changes queued: {} (sending {:.0}/s)", s.queued, s.sent_per_sec);
    } else {
        println!("  changes queued: {}", s.queued);
    }
    println!("  sent: {} uploads; received: {} downloads", s.uploads, s.downloads);
    let c = &s.cache;
    let limit = c.limit.map_or_else(|| "no limit: a full copy".to_string(), |l| format!("limit {}", size(l)));
    println!(
        "  cache: {} of content ({limit}); pinned {}, unsent {}; fetched on demand {}",
        size(c.cached),
        size(c.pinned),
        size(c.dirty),
        size(c.fetched)
    );
    println!("  last error: {}", s.last_error.as_deref().unwrap_or("none"));
    if s.recent_conflicts.is_empty() {
        println!("  recent conflict copies: none");
    } else {
        println!("  recent conflict copies: {}", s.recent_conflicts.join(", "));
    }
}

fn status(mountpoint: Option<&Path>) -> anyhow::Result<()> {
    match mountpoint {
        Some(mp) => {
            let loc = locate(mp)?;
            let s = status_file::read(&loc.mountpoint).with_context(|| {
                format!(
                    "{} is mounted but its mount has published no status yet; is it still starting?",
                    loc.mountpoint.display()
                )
            })?;
            print_status(&s);
        }
        None => {
            let all = status_file::list();
            if all.is_empty() {
                println!("no ssync mounts are running (start one with: ssync-mount MOUNTPOINT --server HOST:PORT)");
            }
            all.iter().for_each(print_status);
        }
    }
    Ok(())
}

fn need_rel(loc: &Located, path: &Path) -> anyhow::Result<RelPath> {
    loc.rel.clone().with_context(|| format!("{} is the mount itself; give a file or folder inside it", path.display()))
}

fn fetch_versions(rt: &tokio::runtime::Runtime, remote: &Remote, rel: &RelPath) -> anyhow::Result<Vec<VersionInfo>> {
    Ok(rt
        .block_on(remote.versions(rel))
        .with_context(|| format!("asking the hub at {} for the versions of '{rel}'", remote.base_url()))?
        .versions)
}

fn versions(path: &Path) -> anyhow::Result<()> {
    let loc = locate(path)?;
    let rel = need_rel(&loc, path)?;
    let rt = runtime()?;
    let list = fetch_versions(&rt, &remote_for(&loc)?, &rel)?;
    println!("{:>8}  {:<23}  {:>10}  {:<16}  ", "VERSION", "WHEN", "SIZE", "DEVICE");
    for (i, v) in list.iter().enumerate() {
        let e = &v.entry;
        let what = match (e.deleted, &e.moved_to, e.kind) {
            (true, Some(to), _) => format!("moved to {to}"),
            (true, None, _) => "deleted".into(),
            (false, _, ssync_common::api::EntryKind::Dir) => "folder".into(),
            (false, _, ssync_common::api::EntryKind::Symlink) => "symlink".into(),
            _ => size(e.size),
        };
        // A file keeps its history through renames (its own, and its
        // folders': those make no version of it): say under which name.
        let mark = match (i, e.path == rel) {
            (0, true) => "current".to_string(),
            (0, false) => format!("current, as {}", e.path),
            (_, true) => String::new(),
            (_, false) => format!("as {}", e.path),
        };
        println!(
            "{:>8}  {:<23}  {:>10}  {:<16}  {mark}",
            e.version,
            when(v.at_ns),
            what,
            e.device.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

/// The version `ssync restore PATH` brings back by default: for a deleted
/// path its last content, otherwise the newest content before the current.
fn default_version(list: &[VersionInfo]) -> Option<u64> {
    let current = list.first()?;
    list.iter()
        .skip(usize::from(!current.entry.deleted))
        .find(|v| !v.entry.deleted && (current.entry.deleted || v.entry.hash != current.entry.hash))
        .map(|v| v.entry.version)
}

/// RFC 3339, or an age such as `10m` or `2h` (meaning that long ago).
pub fn parse_time(s: &str) -> anyhow::Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return t.timestamp_nanos_opt().context("time out of range");
    }
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(crate::local::clock::now_ns() - d.as_nanos() as i64);
    }
    bail!("cannot read the time '{s}': give RFC 3339 (2026-11-22T10:00:00Z) or an age (30s, 10m, 2h, 3days)")
}

fn restore(path: &Path, version: Option<u64>, as_path: Option<&Path>, at: Option<&str>) -> anyhow::Result<()> {
    let loc = locate(path)?;
    let rel = need_rel(&loc, path)?;
    let remote = remote_for(&loc)?;
    let rt = runtime()?;
    if let Some(at) = at {
        let at_ns = parse_time(at)?;
        let resp = rt
            .block_on(remote.restore_tree(&RestoreTreeRequest { path: rel.clone(), at_ns }))
            .with_context(|| format!("restoring '{rel}' as it was at {}", when(at_ns)))?;
        println!(
            "restored {} as it was at {} ({} changes); every mount shows it in a moment",
            path.display(),
            when(at_ns),
            resp.entries.len()
        );
        return Ok(());
    }
    let version = match version {
        Some(v) => v,
        None => default_version(&fetch_versions(&rt, &remote, &rel)?).with_context(|| {
            format!("'{rel}' has no earlier version to go back to (see: ssync versions {})", path.display())
        })?,
    };
    let as_rel = match as_path {
        Some(p) => {
            let other = locate(p)?;
            if other.mountpoint != loc.mountpoint {
                bail!("--as {} is not in the same mount as {}", p.display(), path.display());
            }
            Some(need_rel(&other, p)?)
        }
        None => None,
    };
    let req = RestoreRequest { path: rel.clone(), version, as_path: as_rel.clone() };
    rt.block_on(remote.restore(&req)).with_context(|| format!("restoring version {version} of '{rel}'"))?;
    let target = as_path.unwrap_or(path);
    println!(
        "restored version {version} of {} to {}; every mount shows it in a moment",
        path.display(),
        target.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssync_common::api::{Entry, EntryKind};
    use ssync_common::ContentHash;

    fn v(version: u64, deleted: bool, body: &str) -> VersionInfo {
        VersionInfo {
            entry: Entry {
                path: RelPath::parse("f").unwrap(),
                kind: EntryKind::File,
                version,
                deleted,
                hash: (!deleted).then(|| ContentHash::of(body.as_bytes())),
                size: body.len() as u64,
                mode: 0o644,
                mtime_ns: 0,
                device: None,
                moved_to: None,
                origin: None,
                owner: None,
                xattrs: None,
                node: None,
                parent: None,
            },
            at_ns: version as i64,
        }
    }

    #[test]
    fn default_version_is_the_previous_content() {
        assert_eq!(default_version(&[v(5, false, "c"), v(4, false, "c"), v(3, false, "b"), v(1, false, "a")]), Some(3));
        assert_eq!(
            default_version(&[v(6, true, ""), v(5, false, "c"), v(4, false, "b")]),
            Some(5),
            "deleted: its last content"
        );
        assert_eq!(default_version(&[v(1, false, "a")]), None);
    }

    #[test]
    fn times_parse_in_both_forms() {
        assert_eq!(parse_time("1970-01-01T00:00:01Z").unwrap(), 1_000_000_000);
        assert_eq!(parse_time("1970-01-01T01:00:01+01:00").unwrap(), 1_000_000_000);
        let two_h_ago = parse_time("2h").unwrap();
        let expected = crate::local::clock::now_ns() - 7_200_000_000_000;
        assert!((two_h_ago - expected).abs() < 5_000_000_000);
        assert!(parse_time("yesterday-ish").is_err());
    }

    #[test]
    fn mountinfo_fields_are_unescaped_and_paths_normalised() {
        assert_eq!(unescape("/mnt/my\\040share"), "/mnt/my share");
        assert_eq!(absolute_lexical(Path::new("/a/b/../c/./d")).unwrap(), PathBuf::from("/a/c/d"));
    }
}
