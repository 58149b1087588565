//! Swapping two entries (renameat2 RENAME_EXCHANGE) in one transaction, so no
//! reader of the feed ever sees either path missing or a temporary name.
use super::{blocked, check_base, check_moved_limits, live, Dev, TreeError, TreeResult};
use crate::db::entries;
use crate::db::Scoped;
use ssync_common::api::{Entry, EntryKind};
use ssync_common::{PathLimits, RelPath};

/// Puts `a` (at version `a_base`) where `b` (at `b_base`) is, and `b` where
/// `a` is, with what is below them. Both must exist; either may be a folder.
///
/// Two changes, one to each node; what is below a folder keeps its rows,
/// and its paths follow.
pub fn exchange(
    conn: &Scoped,
    dev: Dev,
    a: &RelPath,
    b: &RelPath,
    a_base: u64,
    b_base: u64,
    limits: PathLimits,
) -> TreeResult {
    if a == b {
        return Ok(vec![]);
    }
    if a.is_within(b) || b.is_within(a) {
        return Err(blocked(format!("cannot swap '{a}' with '{b}': one is inside the other"), None));
    }
    let mut sides = Vec::with_capacity(2);
    for (path, base) in [(a, a_base), (b, b_base)] {
        let current = entries::get(conn, path)?;
        let Some(e) = live(current.clone()) else {
            return Err(TreeError::Conflict { path: path.clone(), base, current: current.map(Box::new) });
        };
        check_base(path, &current, base)?;
        sides.push(e);
    }
    let eb = sides.pop().expect("two sides");
    let ea = sides.pop().expect("two sides");
    // Every new path is checked before anything is written.
    check_moved_limits(conn, ea.kind, a, b, limits)?;
    check_moved_limits(conn, eb.kind, b, a, limits)?;
    let swapped = |e: &Entry, to: &RelPath, version| Entry {
        path: to.clone(),
        version,
        device: dev.device.clone(),
        origin: dev.origin.clone(),
        moved_to: None,
        ..e.clone()
    };
    let (va, vb) = (entries::next_seq(conn)?, entries::next_seq(conn)?);
    let out = entries::put_swapped(conn, &swapped(&ea, b, va), &swapped(&eb, a, vb))?;
    // Two changes, one to each node: what is below a folder keeps its rows.
    match (ea.kind == EntryKind::Dir, eb.kind == EntryKind::Dir) {
        (true, true) => entries::swap_below(conn, a, b)?,
        (true, false) => drop(entries::move_below(conn, a, b)?),
        (false, true) => drop(entries::move_below(conn, b, a)?),
        (false, false) => {}
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{conn, file, p};
    use super::*;
    use crate::db::ShareId;
    use crate::tree::{mkdir, Author, Carried};
    use ssync_common::ContentHash;

    fn live_paths(c: &Scoped) -> Vec<String> {
        entries::all_live(c).unwrap().into_iter().map(|e| e.path.to_string()).collect()
    }

    fn hash_at(c: &Scoped, path: &str) -> Option<ContentHash> {
        entries::get(c, &p(path)).unwrap().filter(|e| !e.deleted).and_then(|e| e.hash)
    }

    #[test]
    fn two_files_trade_contents_and_a_stale_base_changes_nothing() {
        let db = conn();
        let c = Scoped::new(&db, ShareId::DEFAULT);
        let a = file(&c, "a", 0, b"A").unwrap()[0].clone();
        let b = file(&c, "d/b", 0, b"B").unwrap().last().unwrap().clone();
        let dev = Author::default();
        let stale = exchange(&c, &dev, &p("a"), &p("d/b"), a.version, b.version - 1, PathLimits::default());
        assert!(matches!(stale, Err(TreeError::Conflict { .. })), "{stale:?}");
        assert_eq!(hash_at(&c, "a"), Some(ContentHash::of(b"A")));
        let out = exchange(&c, &dev, &p("a"), &p("d/b"), a.version, b.version, PathLimits::default()).unwrap();
        assert_eq!(out.len(), 2, "two new rows, no tombstones: {out:?}");
        assert!(out.iter().all(|e| !e.deleted && e.version > b.version));
        assert_eq!(hash_at(&c, "a"), Some(ContentHash::of(b"B")));
        assert_eq!(hash_at(&c, "d/b"), Some(ContentHash::of(b"A")));
        let missing = exchange(&c, &dev, &p("a"), &p("nope"), out[0].version, 0, PathLimits::default());
        assert!(matches!(missing, Err(TreeError::Conflict { .. })), "{missing:?}");
    }

    #[test]
    fn a_folder_and_a_file_swap_with_what_is_below() {
        let db = conn();
        let c = Scoped::new(&db, ShareId::DEFAULT);
        file(&c, "x/1", 0, b"1").unwrap();
        file(&c, "x/both", 0, b"x").unwrap();
        mkdir(&c, &Author::default(), &p("y"), 0, 0o755, 1, Carried::default()).unwrap();
        file(&c, "y/both", 0, b"y").unwrap();
        file(&c, "y/2", 0, b"2").unwrap();
        let x = entries::get(&c, &p("x")).unwrap().unwrap();
        let y = entries::get(&c, &p("y")).unwrap().unwrap();
        let one = entries::get(&c, &p("x/1")).unwrap().unwrap();
        let out =
            exchange(&c, &Author::default(), &p("x"), &p("y"), x.version, y.version, PathLimits::default()).unwrap();
        let order: Vec<_> =
            out.iter().map(|e| format!("{}{} {:?}", if e.deleted { "-" } else { "+" }, e.path, e.node)).collect();
        assert_eq!(
            order,
            [format!("+y {:?}", x.node), format!("+x {:?}", y.node)],
            "one change to each node, nothing below"
        );
        assert_eq!(live_paths(&c), vec!["x", "x/2", "x/both", "y", "y/1", "y/both"]);
        assert_eq!(hash_at(&c, "x/both"), Some(ContentHash::of(b"y")));
        assert_eq!(hash_at(&c, "y/1"), Some(ContentHash::of(b"1")));
        let moved = entries::get(&c, &p("y/1")).unwrap().unwrap();
        assert_eq!((moved.node, moved.version, moved.parent), (one.node, one.version, x.node), "its row, now below y");
        assert_eq!(entries::get(&c, &p("x/1")).unwrap(), None, "no tombstone: the node lives on");
        let digests = |c: &Scoped| crate::db::digests::get(c, "").unwrap();
        let kept = digests(&c);
        crate::db::digests::rebuild(&c).unwrap();
        assert_eq!(digests(&c), kept, "the digests followed the swap");

        let f = file(&c, "f", 0, b"f").unwrap()[0].clone();
        let x = entries::get(&c, &p("x")).unwrap().unwrap();
        exchange(&c, &Author::default(), &p("f"), &p("x"), f.version, x.version, PathLimits::default()).unwrap();
        assert_eq!(entries::get(&c, &p("f")).unwrap().unwrap().kind, EntryKind::Dir);
        assert_eq!(entries::get(&c, &p("x")).unwrap().unwrap().kind, EntryKind::File);
        assert!(live_paths(&c).contains(&"f/both".to_string()) && !live_paths(&c).iter().any(|l| l.starts_with("x/")));
        let into = exchange(&c, &Author::default(), &p("f"), &p("f/both"), 0, 0, PathLimits::default());
        assert!(matches!(into, Err(TreeError::Blocked { .. })), "{into:?}");
    }
}
