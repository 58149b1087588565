//! The rules of the versioned tree: every mutation checks the client's base
//! version, takes the next sequence numbers, and writes its rows in the caller's
//! transaction. Nothing here does I/O beyond SQL, so it is tested on an
//! in-memory database.
use crate::db::entries;
use rusqlite::Connection;
use ssync_common::api::{Entry, EntryKind};
use ssync_common::{ContentHash, RelPath};

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("'{path}' changed on the hub since version {base}")]
    Conflict { path: RelPath, base: u64, current: Option<Entry> },
    #[error("{message}")]
    Blocked { message: String, current: Option<Entry> },
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
}

type TreeResult = Result<Vec<Entry>, TreeError>;

fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

fn live(e: Option<Entry>) -> Option<Entry> {
    e.filter(|e| !e.deleted)
}

/// A live entry must be at exactly `base`; an absent or deleted one at 0.
fn check_base(path: &RelPath, current: &Option<Entry>, base: u64) -> Result<(), TreeError> {
    let expected = current.as_ref().filter(|e| !e.deleted).map_or(0, |e| e.version);
    if expected == base {
        Ok(())
    } else {
        Err(TreeError::Conflict { path: path.clone(), base, current: current.clone() })
    }
}

fn blocked(message: String, current: Option<Entry>) -> TreeError {
    TreeError::Blocked { message, current }
}

/// Creates any missing ancestor folders (mkdir -p), so a write inside a folder
/// another client just deleted brings the folder back instead of failing.
fn ensure_parents(conn: &Connection, path: &RelPath, out: &mut Vec<Entry>) -> Result<(), TreeError> {
    for anc in path.ancestors() {
        match live(entries::get(conn, &anc)?) {
            Some(e) if e.kind == EntryKind::Dir => {}
            Some(e) => return Err(blocked(format!("'{anc}' is a file, not a folder"), Some(e))),
            None => {
                let e = Entry {
                    path: anc,
                    kind: EntryKind::Dir,
                    version: entries::next_seq(conn)?,
                    deleted: false,
                    hash: None,
                    size: 0,
                    mode: 0o755,
                    mtime_ns: now_ns(),
                };
                entries::put(conn, &e)?;
                out.push(e);
            }
        }
    }
    Ok(())
}

pub struct FileCommit {
    pub path: RelPath,
    pub base: u64,
    pub hash: ContentHash,
    pub size: u64,
    pub mode: u32,
    pub mtime_ns: i64,
}

pub fn commit_file(conn: &Connection, c: FileCommit) -> TreeResult {
    let current = entries::get(conn, &c.path)?;
    if let Some(e) = live(current.clone()).filter(|e| e.kind == EntryKind::Dir) {
        return Err(blocked(format!("'{}' is a folder", c.path), Some(e)));
    }
    check_base(&c.path, &current, c.base)?;
    let mut out = Vec::new();
    ensure_parents(conn, &c.path, &mut out)?;
    let e = Entry {
        path: c.path,
        kind: EntryKind::File,
        version: entries::next_seq(conn)?,
        deleted: false,
        hash: Some(c.hash),
        size: c.size,
        mode: c.mode & 0o7777,
        mtime_ns: c.mtime_ns,
    };
    entries::put(conn, &e)?;
    out.push(e);
    Ok(out)
}

pub fn mkdir(conn: &Connection, path: &RelPath, base: u64, mode: u32, mtime_ns: i64) -> TreeResult {
    let current = entries::get(conn, path)?;
    match live(current.clone()) {
        // Already there: mkdir is idempotent, so a retried request succeeds.
        Some(e) if e.kind == EntryKind::Dir => return Ok(vec![e]),
        Some(e) => return Err(blocked(format!("'{path}' is a file"), Some(e))),
        None => check_base(path, &current, base)?,
    }
    let mut out = Vec::new();
    ensure_parents(conn, path, &mut out)?;
    let e = Entry {
        path: path.clone(),
        kind: EntryKind::Dir,
        version: entries::next_seq(conn)?,
        deleted: false,
        hash: None,
        size: 0,
        mode: mode & 0o7777,
        mtime_ns,
    };
    entries::put(conn, &e)?;
    out.push(e);
    Ok(out)
}

fn tombstone(conn: &Connection, e: &Entry) -> Result<Entry, TreeError> {
    let t = Entry { version: entries::next_seq(conn)?, deleted: true, hash: None, size: 0, ..e.clone() };
    entries::put(conn, &t)?;
    Ok(t)
}

pub fn delete(conn: &Connection, path: &RelPath, base: u64) -> TreeResult {
    let current = entries::get(conn, path)?;
    let Some(e) = live(current.clone()) else {
        // Already gone: the end state the client asked for.
        return Ok(vec![]);
    };
    check_base(path, &current, base)?;
    if e.kind == EntryKind::Dir && entries::has_live_children(conn, path)? {
        return Err(blocked(format!("folder '{path}' is not empty on the hub"), Some(e)));
    }
    Ok(vec![tombstone(conn, &e)?])
}

pub fn rename(conn: &Connection, from: &RelPath, to: &RelPath, base: u64, to_base: u64) -> TreeResult {
    if from == to {
        return Ok(vec![]);
    }
    if to.is_within(from) {
        return Err(blocked(format!("cannot move '{from}' into itself ('{to}')"), None));
    }
    let current = entries::get(conn, from)?;
    let Some(src) = live(current.clone()) else {
        return Err(TreeError::Conflict { path: from.clone(), base, current });
    };
    check_base(from, &current, base)?;
    let target = entries::get(conn, to)?;
    if let Some(t) = live(target.clone()) {
        check_base(to, &target, to_base)?;
        if t.kind != src.kind {
            return Err(blocked(format!("'{to}' exists and is not of the same kind as '{from}'"), Some(t)));
        }
        if t.kind == EntryKind::Dir && entries::has_live_children(conn, to)? {
            return Err(blocked(format!("folder '{to}' is not empty"), Some(t)));
        }
    }
    let mut out = Vec::new();
    ensure_parents(conn, to, &mut out)?;
    let descendants = if src.kind == EntryKind::Dir { entries::live_descendants(conn, from)? } else { vec![] };
    // New rows first, parents before children, then tombstones children first:
    // a feed reader applying changes in order never sees an orphan.
    for e in std::iter::once(&src).chain(&descendants) {
        let moved = Entry {
            path: e.path.rebase(from, to).expect("descendant lies within the moved folder"),
            version: entries::next_seq(conn)?,
            ..e.clone()
        };
        entries::put(conn, &moved)?;
        out.push(moved);
    }
    for e in descendants.iter().rev().chain(std::iter::once(&src)) {
        out.push(tombstone(conn, e)?);
    }
    Ok(out)
}

pub fn set_attr(conn: &Connection, path: &RelPath, base: u64, mode: Option<u32>, mtime_ns: Option<i64>) -> TreeResult {
    let current = entries::get(conn, path)?;
    let Some(e) = live(current.clone()) else {
        return Err(TreeError::Conflict { path: path.clone(), base, current });
    };
    check_base(path, &current, base)?;
    let e = Entry {
        version: entries::next_seq(conn)?,
        mode: mode.map_or(e.mode, |m| m & 0o7777),
        mtime_ns: mtime_ns.unwrap_or(e.mtime_ns),
        ..e
    };
    entries::put(conn, &e)?;
    Ok(vec![e])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RelPath {
        RelPath::parse(s).unwrap()
    }

    fn conn() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrate_for_tests(&mut c);
        c
    }

    fn file(c: &Connection, path: &str, base: u64, data: &[u8]) -> TreeResult {
        commit_file(
            c,
            FileCommit {
                path: p(path),
                base,
                hash: ContentHash::of(data),
                size: data.len() as u64,
                mode: 0o644,
                mtime_ns: 1,
            },
        )
    }

    #[test]
    fn versions_follow_one_sequence_and_parents_are_created() {
        let c = conn();
        let out = file(&c, "a/b/f.txt", 0, b"x").unwrap();
        let got: Vec<_> = out.iter().map(|e| (e.path.to_string(), e.version)).collect();
        assert_eq!(got, vec![("a".into(), 1), ("a/b".into(), 2), ("a/b/f.txt".into(), 3)]);
        let changed = entries::changed_since(&c, 1, 100).unwrap();
        assert_eq!(changed.len(), 2);
        assert_eq!(entries::last_seq(&c).unwrap(), 3);
    }

    #[test]
    fn stale_base_is_a_conflict_and_changes_nothing() {
        let c = conn();
        let v1 = file(&c, "f", 0, b"one").unwrap()[0].version;
        file(&c, "f", v1, b"two").unwrap();
        let err = file(&c, "f", v1, b"three").unwrap_err();
        match err {
            TreeError::Conflict { current: Some(cur), .. } => assert_eq!(cur.hash, Some(ContentHash::of(b"two"))),
            other => panic!("expected conflict, got {other:?}"),
        }
        assert!(matches!(file(&c, "f", 0, b"new").unwrap_err(), TreeError::Conflict { .. }));
        assert_eq!(entries::last_seq(&c).unwrap(), 2);
    }

    #[test]
    fn delete_leaves_tombstone_and_refuses_non_empty_folder() {
        let c = conn();
        let out = file(&c, "d/f", 0, b"x").unwrap();
        let (d, f) = (&out[0], &out[1]);
        assert!(matches!(delete(&c, &p("d"), d.version).unwrap_err(), TreeError::Blocked { .. }));
        let t = delete(&c, &p("f").clone(), 0).unwrap();
        assert!(t.is_empty(), "deleting a missing path is a no-op");
        let t = delete(&c, &p("d/f"), f.version).unwrap();
        assert!(t[0].deleted);
        delete(&c, &p("d"), d.version).unwrap();
        assert!(entries::all_live(&c).unwrap().is_empty());
        // A new file may take the place of a tombstone with base 0.
        file(&c, "d/f", 0, b"again").unwrap();
    }

    #[test]
    fn folder_rename_moves_subtree_in_feed_safe_order() {
        let c = conn();
        file(&c, "d/x/1", 0, b"1").unwrap();
        file(&c, "d/2", 0, b"2").unwrap();
        let d = entries::get(&c, &p("d")).unwrap().unwrap();
        let out = rename(&c, &p("d"), &p("e"), d.version, 0).unwrap();
        let order: Vec<_> = out.iter().map(|e| format!("{}{}", if e.deleted { "-" } else { "+" }, e.path)).collect();
        assert_eq!(order, vec!["+e", "+e/2", "+e/x", "+e/x/1", "-d/x/1", "-d/x", "-d/2", "-d"]);
        let live: Vec<_> = entries::all_live(&c).unwrap().into_iter().map(|e| e.path.to_string()).collect();
        assert_eq!(live, vec!["e", "e/2", "e/x", "e/x/1"]);
        assert!(matches!(rename(&c, &p("e"), &p("e/x/in"), 0, 0), Err(TreeError::Blocked { .. })));
    }

    #[test]
    fn rename_over_existing_file_needs_its_version() {
        let c = conn();
        let a = file(&c, "a", 0, b"new").unwrap()[0].clone();
        let b = file(&c, "b", 0, b"old").unwrap()[0].clone();
        assert!(matches!(rename(&c, &p("a"), &p("b"), a.version, 0), Err(TreeError::Conflict { .. })));
        rename(&c, &p("a"), &p("b"), a.version, b.version).unwrap();
        let now = entries::get(&c, &p("b")).unwrap().unwrap();
        assert_eq!(now.hash, Some(ContentHash::of(b"new")));
        assert!(entries::get(&c, &p("a")).unwrap().unwrap().deleted);
    }

    #[test]
    fn kinds_cannot_be_mixed() {
        let c = conn();
        file(&c, "f", 0, b"x").unwrap();
        assert!(matches!(mkdir(&c, &p("f"), 0, 0o755, 0), Err(TreeError::Blocked { .. })));
        assert!(matches!(file(&c, "f/under", 0, b"y"), Err(TreeError::Blocked { .. })));
        let d = mkdir(&c, &p("d"), 0, 0o755, 0).unwrap();
        assert_eq!(mkdir(&c, &p("d"), 0, 0o700, 0).unwrap(), d, "mkdir is idempotent");
        assert!(matches!(file(&c, "d", 0, b"z"), Err(TreeError::Blocked { .. })));
    }

    #[test]
    fn set_attr_bumps_version_and_keeps_content() {
        let c = conn();
        let f = file(&c, "f", 0, b"x").unwrap()[0].clone();
        let g = set_attr(&c, &p("f"), f.version, Some(0o100755), None).unwrap()[0].clone();
        assert_eq!(g.mode, 0o755);
        assert_eq!(g.hash, f.hash);
        assert!(g.version > f.version);
    }
}
