//! Sends a run of queued ops as one batch request (`POST /v1/batch`): one
//! round trip and one fsync on the hub for up to `MAX_ITEMS` changes, which
//! is what lets a mount keep up with `tar x` or `git clone`.
//!
//! A batch is the head of the queue and the ops right behind it, as long as
//! each is small (no chunk transfer: folders, deletes, renames, attributes,
//! files up to `FILE_MAX`, whose bytes travel inline) and independent of the
//! ops before it in the batch: its base versions must not be ones an earlier
//! op of the batch is about to change (the same inode, a path an earlier op
//! changes, or a path above or below an earlier rename or delete). The hub applies the changes in order
//! and stops at the first it refuses; that one is resolved like any refusal,
//! and the ops after it stay queued.
use crate::chunk_upload::read_small_file;
use crate::client::{ApiError, Remote};
use crate::handles::FileStamp;
use crate::queue::{Op, OpKind};
use crate::state::Shared;
use crate::upload::{finish, remember_chunks, request_for, Failed, Request};
use ssync_common::api::{BatchRequest, Change, WireList};
use ssync_common::{ChunkList, RelPath};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Most ops one batch holds.
pub const MAX_ITEMS: usize = 256;
/// Files up to this size go in batches (a chunk or so: a delta would save nothing).
const FILE_MAX: u64 = 64 * 1024;

/// Whether `req` can travel in a batch.
pub fn takes(req: &Request) -> bool {
    match req {
        Request::Upload { file, .. } => std::fs::metadata(file).is_ok_and(|m| m.len() <= FILE_MAX),
        Request::Mkdir(_) | Request::Delete(_) | Request::Rename(_) | Request::Exchange(_) | Request::SetAttr(_) => {
            true
        }
    }
}

/// One op of a batch, with what it sends.
struct Item {
    op: Op,
    change: Change,
    /// For an upload: the list sent and the write generation it read.
    list: Option<ChunkList>,
    gen: u64,
}

/// What earlier ops of a batch touch, for the independence rule.
#[derive(Default)]
struct Footprint {
    inos: HashSet<u64>,
    /// Every path an earlier op changes on the hub.
    paths: HashSet<RelPath>,
    /// Paths an earlier rename or delete moves or removes, with what is below them.
    moved: Vec<RelPath>,
}

impl Footprint {
    fn related(a: &RelPath, b: &RelPath) -> bool {
        a == b || a.is_within(b) || b.is_within(a)
    }

    fn admits(&self, op: &Op) -> bool {
        let paths = std::iter::once(&op.path).chain(&op.path2);
        !self.inos.contains(&op.ino)
            && (op.ino2 == 0 || !self.inos.contains(&op.ino2))
            && paths.clone().all(|p| !self.paths.contains(p) && !self.moved.iter().any(|m| Self::related(p, m)))
    }

    fn add(&mut self, op: &Op) {
        self.inos.extend([op.ino, op.ino2].into_iter().filter(|i| *i != 0));
        self.paths.extend(std::iter::once(op.path.clone()).chain(op.path2.clone()));
        if matches!(op.kind, OpKind::Rename | OpKind::Exchange | OpKind::Delete) {
            self.moved.extend(std::iter::once(op.path.clone()).chain(op.path2.clone()));
        }
    }
}

/// Sends `first` (the head of the queue, begun) and the ops that may go
/// with it; records what the hub took. An error names the op it is about.
/// `waiting`: ops queued before `first` that wait for the large upload on
/// the lane; the batch takes nothing that depends on them.
pub async fn send(shared: &Shared, remote: &Remote, first: Op, req: Request, waiting: &[Op]) -> Result<(), Failed> {
    let first_id = first.id;
    let mut jobs = vec![(first, req)];
    {
        let mut st = shared.state.lock();
        let mut footprint = Footprint::default();
        footprint.add(&jobs[0].0);
        let behind: Vec<Op> = st.pending.ops().skip_while(|o| o.id <= first_id).take(MAX_ITEMS - 1).cloned().collect();
        for op in behind {
            let blocked = st.pending.is_in_flight(op.id) || waiting.iter().any(|w| op.depends_on(w));
            if blocked || !footprint.admits(&op) {
                break;
            }
            match request_for(&st, shared, &op) {
                Some(r) if takes(&r) => {
                    footprint.add(&op);
                    st.begin_send(&op);
                    jobs.push((op, r));
                }
                _ => break,
            }
        }
    }
    let taken: Vec<u64> = jobs.iter().map(|(op, _)| op.id).collect();
    let items = build(shared, jobs).await?;
    {
        // Ops the batch ended before (a file written while read) wait their turn.
        let mut st = shared.state.lock();
        taken[items.len()..].iter().for_each(|id| st.pending.put_back(*id));
    }
    let changes = items.iter().map(|i| i.change.clone()).collect();
    tracing::debug!(ops = items.len(), "sending a batch");
    let answer = remote.batch(&BatchRequest { changes }).await;
    let answer = match answer {
        Ok(a) => a,
        Err(err) => {
            let first = items.into_iter().next().expect("a batch has its head");
            return Err(Failed { op: first.op, err, sent: first.list.map(|l| l.id()), gen: first.gen });
        }
    };
    let applied = answer.done.len();
    let mut items = items.into_iter();
    // Answers first: zip would take (and lose) the item after the last answer.
    for (resp, item) in answer.done.into_iter().zip(items.by_ref()) {
        finish(shared, &item.op, Some(&resp), item.list.as_ref().map(ChunkList::id), item.gen);
        remember_chunks(shared, &item.op, item.list);
    }
    match (answer.refused, items.next()) {
        (Some(r), Some(item)) => Err(Failed {
            err: ApiError::Rejected { status: r.status, body: Box::new(r.error) },
            sent: item.list.map(|l| l.id()),
            gen: item.gen,
            op: item.op,
        }),
        (None, None) => Ok(()),
        (refused, _) => {
            let what = refused.map_or("nothing refused".to_string(), |r| r.error.message);
            let err = ApiError::Protocol(format!("a batch answered for {applied} changes and {what}"));
            let first = shared.state.lock().pending.front().cloned();
            Err(Failed { op: first.expect("unanswered ops are still queued"), err, sent: None, gen: 0 })
        }
    }
}

/// What reading one small file gave: its list and inline frames, and the
/// file's stamp before and after.
type Read = (std::io::Result<(ChunkList, Option<String>)>, Option<FileStamp>, Option<FileStamp>);

/// The changes of `jobs`; an upload's file is read here (all of them in one
/// blocking task), and the batch ends before the first file written while it
/// was read.
async fn build(shared: &Shared, jobs: Vec<(Op, Request)>) -> Result<Vec<Item>, Failed> {
    let files: Vec<PathBuf> = jobs
        .iter()
        .filter_map(|(_, r)| match r {
            Request::Upload { file, .. } => Some(file.clone()),
            _ => None,
        })
        .collect();
    let reads = tokio::task::spawn_blocking(move || {
        let stamp = |f: &Path| std::fs::File::open(f).and_then(|f| FileStamp::of(&f)).ok();
        files
            .iter()
            .map(|f| {
                let before = stamp(f);
                let read = read_small_file(f, &HashSet::new());
                (read, before, stamp(f))
            })
            .collect::<Vec<Read>>()
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()));
    let mut reads = match reads {
        Ok(r) => r.into_iter(),
        Err(e) => {
            let (op, _) = jobs.into_iter().next().expect("a batch has its head");
            return Err(Failed { op, err: ApiError::Local(e), sent: None, gen: 0 });
        }
    };
    let mut items = Vec::with_capacity(jobs.len());
    for (op, req) in jobs {
        let item = match req {
            Request::Upload { meta, gen, ino, .. } => {
                let (read, before, after) = reads.next().expect("one read per upload");
                let unchanged = || {
                    shared.state.lock().tree.get(ino).is_some_and(|n| n.write_gen == gen)
                        && before.is_some()
                        && after == before
                };
                match read.map_err(ApiError::Local) {
                    Ok((list, inline)) if unchanged() => {
                        let change = Change::Commit(meta.commit(&list, WireList::whole(&list), inline));
                        Item { op, change, list: Some(list), gen }
                    }
                    Ok(_) if items.is_empty() => {
                        return Err(Failed { op, err: ApiError::ChangedWhileRead, sent: None, gen })
                    }
                    Err(err) if items.is_empty() => return Err(Failed { op, err, sent: None, gen }),
                    _ => break,
                }
            }
            Request::Mkdir(r) => Item { op, change: Change::Mkdir(r), list: None, gen: 0 },
            Request::Delete(r) => Item { op, change: Change::Delete(r), list: None, gen: 0 },
            Request::Rename(r) => Item { op, change: Change::Rename(r), list: None, gen: 0 },
            Request::Exchange(r) => Item { op, change: Change::Exchange(r), list: None, gen: 0 },
            Request::SetAttr(r) => Item { op, change: Change::Setattr(r), list: None, gen: 0 },
        };
        items.push(item);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: OpKind, ino: u64, ino2: u64, path: &str, path2: Option<&str>) -> Op {
        let p = |s: &str| RelPath::parse(s).unwrap();
        Op { id: 0, kind, ino, ino2, path: p(path), path2: path2.map(p) }
    }

    #[test]
    fn a_batch_takes_only_ops_whose_bases_no_earlier_op_changes() {
        let mut f = Footprint::default();
        f.add(&op(OpKind::Mkdir, 2, 0, "d", None));
        assert!(f.admits(&op(OpKind::Upload, 3, 0, "d/f", None)), "a file in a folder made earlier");
        f.add(&op(OpKind::Upload, 3, 0, "d/f", None));
        assert!(!f.admits(&op(OpKind::SetAttr, 3, 0, "d/f", None)), "the same inode");
        assert!(!f.admits(&op(OpKind::Rename, 4, 0, "g", Some("d/f"))), "a path an earlier op changes");
        assert!(!f.admits(&op(OpKind::Rename, 4, 3, "g", Some("h"))), "replaces an inode sent earlier");
        f.add(&op(OpKind::Rename, 5, 0, "a", Some("b")));
        assert!(!f.admits(&op(OpKind::Upload, 6, 0, "b/x", None)), "below an earlier rename");
        assert!(!f.admits(&op(OpKind::Delete, 7, 0, "a/y", None)), "below an earlier rename's source");
        assert!(f.admits(&op(OpKind::Upload, 8, 0, "c", None)));
    }
}
