//! Four threads work at once on one mount, on a small shared set of names:
//! create, write, append, truncate, rename, rename over, exchange, git-style lock files
//! (O_EXCL create, then rename over), hard link, symlink, mkdir, rmdir,
//! unlink, chmod. No other mount writes, so:
//! - no change is ever refused and no conflict copy appears (a mount never
//!   conflicts with itself);
//! - once quiet, the writing mount, the hub and a second mount hold the same
//!   tree;
//! - that tree is what the threads last did to each name (the latest local
//!   state of every path reached the hub: the queue's rule);
//! - an operation on a live entry never fails (a local disk never answers
//!   ENOENT for a file that is there), and reading one back gives what was
//!   last written to it.
//!
//! Runs in both modes: passthrough (as root) and `--no-passthrough`.
//!
//! Each operation holds the locks of the names it touches, so a reference
//! model can follow it exactly while different names change concurrently.
//! SSYNC_SOLO_SECS (default 8; run 120+ for the long mode) and
//! SSYNC_SOLO_SEED select the run.
use ssync_tests::{as_hashes, hub_tree, snapshot_raw as snapshot, wait_until, Cluster, Rng};
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DIRS: &[&str] = &["", "d0", "d1", "d0/e"];
const NAMES: &[&str] = &["a", "b", "c.txt", "config", "config.lock", "a.lock"];

#[derive(Debug, Clone, PartialEq)]
enum Node {
    File(Vec<u8>),
    Link(Vec<u8>),
}

/// A random name among `DIRS` x `NAMES`.
fn random_path(rng: &mut Rng) -> String {
    let (d, n) = (rng.pick(DIRS), rng.pick(NAMES));
    if d.is_empty() {
        n.to_string()
    } else {
        format!("{d}/{n}")
    }
}

/// The model of the files and symlinks, one lock per name, and the errors
/// the mount gave for live entries.
struct World {
    model: Mutex<BTreeMap<String, Node>>,
    locks: HashMap<String, Mutex<()>>,
    errors: Mutex<Vec<String>>,
}

impl World {
    fn new() -> World {
        let mut locks = HashMap::new();
        for d in DIRS {
            locks.insert(d.to_string(), Mutex::new(()));
            for n in NAMES {
                let p = if d.is_empty() { n.to_string() } else { format!("{d}/{n}") };
                locks.insert(p, Mutex::new(()));
            }
        }
        World { model: Mutex::new(BTreeMap::new()), locks, errors: Mutex::new(Vec::new()) }
    }

    /// Records `what` failing on `p` when the model holds `p` as a file:
    /// it was there, so the call had to work.
    fn on_live<T>(&self, m: &BTreeMap<String, Node>, p: &str, what: &str, r: &std::io::Result<T>) {
        if let (Some(Node::File(_)), Err(e)) = (m.get(p), r) {
            self.errors.lock().unwrap().push(format!("{what} {p}: {e}"));
        }
    }

    /// Runs `f` holding the locks of `paths` (taken in sorted order).
    fn with<R>(&self, paths: &[&str], f: impl FnOnce(&mut BTreeMap<String, Node>) -> R) -> R {
        let mut sorted: Vec<&str> = paths.to_vec();
        sorted.sort();
        sorted.dedup();
        let _guards: Vec<_> = sorted.iter().map(|p| self.locks[*p].lock().unwrap()).collect();
        // The model's own lock is held only for the update, not the syscall.
        let mut snapshot = self.model.lock().unwrap().clone();
        let r = f(&mut snapshot);
        let mut model = self.model.lock().unwrap();
        for p in &sorted {
            match snapshot.get(*p) {
                Some(n) => model.insert(p.to_string(), n.clone()),
                None => model.remove(*p),
            };
        }
        r
    }
}

fn no_follow() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.custom_flags(libc::O_NOFOLLOW);
    o
}

fn file_of(m: &BTreeMap<String, Node>, p: &str) -> Option<Vec<u8>> {
    match m.get(p) {
        Some(Node::File(b)) => Some(b.clone()),
        _ => None,
    }
}

/// The model's content of `p`, which the kernel just showed to be a file.
fn known_file(m: &BTreeMap<String, Node>, p: &str, root: &Path) -> Vec<u8> {
    file_of(m, p).unwrap_or_else(|| {
        let there = fs::read(root.join(p));
        panic!("{p} is a file on the mount ({there:?}) but the model has {:?}", m.get(p))
    })
}

fn c_path(p: &Path) -> std::ffi::CString {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("paths here hold no NUL")
}

/// One random action by thread `t`; the model follows what the kernel answered.
fn act(rng: &mut Rng, w: &World, root: &Path, tag: &str) {
    let p = random_path(rng);
    let at = |rel: &str| root.join(rel);
    match rng.below(18) {
        0..=3 => w.with(&[&p], |m| {
            let body = format!("{tag} {:x}\n", rng.next_u64()).into_bytes();
            let ok =
                no_follow().write(true).create(true).truncate(true).open(at(&p)).and_then(|mut f| f.write_all(&body));
            w.on_live(m, &p, "rewrite", &ok);
            if ok.is_ok() {
                m.insert(p.clone(), Node::File(body));
            }
        }),
        4 => w.with(&[&p], |m| {
            let extra = format!("+{tag}\n").into_bytes();
            let ok = no_follow().append(true).open(at(&p)).and_then(|mut f| f.write_all(&extra));
            w.on_live(m, &p, "append", &ok);
            if ok.is_ok() {
                let mut b = known_file(m, &p, root);
                b.extend_from_slice(&extra);
                m.insert(p.clone(), Node::File(b));
            }
        }),
        5 => w.with(&[&p], |m| {
            let len = rng.below(12) as usize;
            let ok = no_follow().write(true).open(at(&p)).and_then(|f| f.set_len(len as u64));
            w.on_live(m, &p, "truncate", &ok);
            if ok.is_ok() {
                let mut b = known_file(m, &p, root);
                b.resize(len, 0);
                m.insert(p.clone(), Node::File(b));
            }
        }),
        // rename, or rename over an existing name
        6 | 7 => {
            let q = random_path(rng);
            w.with(&[&p, &q], |m| {
                if fs::rename(at(&p), at(&q)).is_ok() && p != q {
                    let moved = m.remove(&p).expect("renamed a name the model knows");
                    m.insert(q.clone(), moved);
                }
            })
        }
        // git's lock file: O_EXCL create NAME.lock, write, rename it over NAME
        8 | 9 => {
            let lock = format!("{p}.lock");
            if !w.locks.contains_key(&lock) {
                return;
            }
            w.with(&[&p, &lock], |m| {
                let body = format!("{tag} locked {:x}\n", rng.next_u64()).into_bytes();
                let made =
                    no_follow().write(true).create_new(true).open(at(&lock)).and_then(|mut f| f.write_all(&body));
                if made.is_err() {
                    return;
                }
                if fs::rename(at(&lock), at(&p)).is_ok() {
                    m.insert(p.clone(), Node::File(body));
                } else {
                    m.insert(lock.clone(), Node::File(body));
                }
            })
        }
        10 => w.with(&[&p], |m| {
            let ok = fs::remove_file(at(&p));
            w.on_live(m, &p, "unlink", &ok);
            if ok.is_ok() {
                m.remove(&p);
            }
        }),
        11 => w.with(&[&p], |m| {
            let target = format!("t-{}", rng.below(4));
            if std::os::unix::fs::symlink(&target, at(&p)).is_ok() {
                m.insert(p.clone(), Node::Link(target.into_bytes()));
            }
        }),
        12 => w.with(&[&p], |m| {
            if matches!(m.get(&p), Some(Node::File(_))) {
                let mode = if rng.below(2) == 0 { 0o600 } else { 0o644 };
                w.on_live(m, &p, "chmod", &fs::set_permissions(at(&p), fs::Permissions::from_mode(mode)));
            }
        }),
        13 => {
            // A hard link is one inode under two names; the model has no
            // aliases, so the new name goes again once checked.
            let q = random_path(rng);
            w.with(&[&p, &q], |_| {
                if fs::hard_link(at(&p), at(&q)).is_ok() {
                    use std::os::unix::fs::MetadataExt;
                    let (a, b) = (fs::symlink_metadata(at(&p)).unwrap(), fs::symlink_metadata(at(&q)).unwrap());
                    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "{p} and its new name {q}");
                    fs::remove_file(at(&q)).expect("remove the link just made");
                }
            })
        }
        // renameat2 RENAME_EXCHANGE (`mv --exchange`): two names trade places
        15 => {
            let q = random_path(rng);
            w.with(&[&p, &q], |m| {
                let (from, to) = (c_path(&at(&p)), c_path(&at(&q)));
                // SAFETY: both are NUL-terminated paths that outlive the call.
                let r = unsafe {
                    libc::renameat2(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), libc::RENAME_EXCHANGE)
                };
                if r == 0 && p != q {
                    let (a, b) =
                        (m.remove(&p).expect("swapped a name the model knows"), m.remove(&q).expect("and another"));
                    m.insert(p.clone(), b);
                    m.insert(q.clone(), a);
                }
            })
        }
        // Read back what the model says is there.
        16 => w.with(&[&p], |m| {
            let seen = match m.get(&p) {
                Some(Node::File(b)) => fs::read(at(&p)).map(|got| (got, b)),
                Some(Node::Link(t)) => fs::read_link(at(&p)).map(|got| (got.into_os_string().into_encoded_bytes(), t)),
                None => return,
            };
            let mut errors = w.errors.lock().unwrap();
            match seen {
                Ok((got, want)) if got == *want => {}
                Ok((got, want)) => errors.push(format!(
                    "read {p}: {:?}, last written {:?}",
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(want)
                )),
                Err(e) => errors.push(format!("read {p}: {e}")),
            }
        }),
        14 => {
            let d = DIRS[1 + rng.below(DIRS.len() as u64 - 1) as usize];
            w.with(&[d], |_| {
                let _ = fs::create_dir(at(d));
            })
        }
        _ => {
            let d = DIRS[1 + rng.below(DIRS.len() as u64 - 1) as usize];
            w.with(&[d], |_| {
                let _ = fs::remove_dir(at(d));
            })
        }
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn concurrent_programs_on_one_mount_make_no_conflicts_and_converge() {
    churn(&[]);
}

#[test]
fn concurrent_programs_on_one_mount_make_no_conflicts_and_converge_without_passthrough() {
    churn(&["--no-passthrough"]);
}

fn churn(flags: &[&str]) {
    let secs = env_u64("SSYNC_SOLO_SECS", 8);
    let seed = env_u64("SSYNC_SOLO_SEED", 20261203).max(1);
    eprintln!("one_mount_concurrency {flags:?}: seed={seed} secs={secs}");
    let c = Cluster::with_mount_flags(&[flags, flags]);
    let world = Arc::new(World::new());
    let root = c.mounts[0].path.clone();
    let start = Instant::now();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let (world, root) = (world.clone(), root.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(seed.wrapping_mul(31).wrapping_add(t + 1));
                let mut ops = 0u64;
                while start.elapsed() < Duration::from_secs(secs) {
                    act(&mut rng, &world, &root, &format!("t{t}-op{ops}"));
                    ops += 1;
                }
                ops
            })
        })
        .collect();
    let ops: u64 = threads.into_iter().map(|h| h.join().expect("a worker thread panicked")).sum();
    let worked = start.elapsed();
    eprintln!("one_mount_concurrency {flags:?}: {ops} ops by 4 threads in {worked:?}");
    let errors = world.errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "seed {seed}: {} errors on live entries, e.g. {:?}",
        errors.len(),
        errors.iter().take(10).collect::<Vec<_>>()
    );

    // The writing mount shows exactly what the threads did.
    let model = world.model.lock().unwrap().clone();
    let local: BTreeMap<String, Vec<u8>> = snapshot(&root).into_iter().filter_map(|(k, v)| Some((k, v?))).collect();
    let want: BTreeMap<String, Vec<u8>> = model
        .iter()
        .map(|(k, n)| {
            (
                k.clone(),
                match n {
                    Node::File(b) | Node::Link(b) => b.clone(),
                },
            )
        })
        .collect();
    assert_eq!(local, want, "the mount does not show what its programs did");

    // Once quiet: the hub and the second mount hold the same tree.
    let a = snapshot(&root);
    let converged = wait_until(Duration::from_secs(60), || {
        snapshot(&c.mounts[1].path) == a && hub_tree(&c.hub) == Some(as_hashes(&a))
    });
    let drained = start.elapsed() - worked;
    assert!(
        converged,
        "seed {seed}: did not converge within 60 s\nA: {:?}\nB: {:?}\nhub: {:?}",
        as_hashes(&a),
        as_hashes(&snapshot(&c.mounts[1].path)),
        hub_tree(&c.hub)
    );
    eprintln!(
        "one_mount_concurrency {flags:?}: hub and second mount equal the writer {drained:?} after the work ended"
    );
    for (path, node) in &model {
        let is_link = fs::symlink_metadata(c.mounts[1].p(path)).is_ok_and(|m| m.file_type().is_symlink());
        assert_eq!(is_link, matches!(node, Node::Link(_)), "{path}: symlink on one side only");
    }

    // No conflict copy anywhere, and no refusal in the writer's log.
    let copies: Vec<String> =
        hub_tree(&c.hub).unwrap_or_default().into_keys().filter(|p| p.contains(".conflict-")).collect();
    assert!(copies.is_empty(), "seed {seed}: conflict copies of the mount's own changes: {copies:?}");
    let log = c.mounts[0].log();
    let refusals: Vec<&str> = log.lines().filter(|l| l.contains("the hub refused a change")).collect();
    assert!(
        refusals.is_empty(),
        "seed {seed}: {} of the mount's own changes were refused, e.g. {:?}",
        refusals.len(),
        refusals.iter().take(5).collect::<Vec<_>>()
    );
}
