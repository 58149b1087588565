//! The hub's own tree rules (`ssync_server::tree`) over an in-memory
//! database, as a `Remote`: what the simulation runs the engine against, so
//! a rule of the real hub that the planner does not expect shows as a seed
//! that fails.
use super::canopy::{Kind, Meta, NodeId, Tree};
use super::hub_view::{HubView, Request};
use super::remote::{Refusal, Remote};
use ssync_common::api::{EntriesPage, Entry, EntryKind};
use ssync_common::{NodeId as WireId, PathLimits};
use ssync_server::db::{entries, Db, Scoped, ShareId};
use ssync_server::tree::{self, Author, Carried, FileCommit, TreeError};

pub struct MemoryHub {
    db: Db,
    author: Author,
}

const PAGE: u32 = 1000;

impl MemoryHub {
    pub fn new() -> MemoryHub {
        MemoryHub { db: Db::open_in_memory().expect("an in-memory hub opens"), author: Author::default() }
    }

    /// The hub's whole tree, as a mount that reads the feed from its start sees it.
    pub fn tree(&mut self) -> Tree {
        let mut view = HubView::default();
        loop {
            let page = self.changes_since(view.cursor()).expect("the in-memory hub answers");
            view.fold_page(&page).expect("the hub's own feed folds");
            if page.entries.is_empty() {
                break;
            }
        }
        view.settle_feed();
        assert_eq!(view.unplaced(), 0, "the hub's feed named a folder it does not hold");
        view.tree().clone()
    }

    fn run(&self, request: &Request) -> Result<Vec<Entry>, TreeError> {
        let dev = &self.author;
        let carried = |node: Option<NodeId>, meta: &Option<Box<Meta>>| Carried {
            node: node.map(WireId),
            owner: meta.as_ref().and_then(|m| m.owner.clone()),
            xattrs: Some(meta.as_ref().and_then(|m| m.xattrs.clone()).unwrap_or_default()),
        };
        self.db
            .with_conn(|c| {
                let txn = c.unchecked_transaction()?;
                let tx = Scoped::new(&txn, ShareId::DEFAULT);
                let done = match request {
                    Request::Mkdir { path, node, mode, meta } => {
                        tree::mkdir(&tx, dev, path, 0, *mode, 0, carried(Some(*node), meta))
                    }
                    Request::Commit { path, base, node, kind, content, mode, meta } => {
                        let kind = if *kind == Kind::Symlink { EntryKind::Symlink } else { EntryKind::File };
                        let commit = FileCommit {
                            path: path.clone(),
                            kind,
                            base: *base,
                            hash: *content,
                            size: 0,
                            mode: *mode,
                            mtime_ns: 0,
                            carried: carried(Some(*node), meta),
                        };
                        tree::commit_file(&tx, dev, commit)
                    }
                    Request::SetAttr { path, base, mode, meta } => {
                        tree::set_attr(&tx, dev, path, *base, Some(*mode), None, carried(None, meta))
                    }
                    Request::Rename { from, to, base, to_parent } => {
                        tree::rename(&tx, dev, from, to, *base, 0, to_parent.map(WireId), PathLimits::default())
                    }
                    Request::Exchange { a, a_base, b, b_base } => {
                        tree::exchange(&tx, dev, a, b, *a_base, *b_base, PathLimits::default())
                    }
                    Request::Delete { path, base } => tree::delete(&tx, dev, path, *base),
                };
                if done.is_ok() {
                    txn.commit()?;
                }
                Ok(done)
            })
            .expect("the in-memory database answers")
    }
}

impl Remote for MemoryHub {
    fn send(&mut self, request: &Request) -> Result<Vec<Entry>, Refusal> {
        self.run(request).map_err(|e| match e {
            TreeError::Db(e) => panic!("the in-memory hub's database failed: {e}"),
            e => Refusal::Refused(e.to_string()),
        })
    }

    fn changes_since(&mut self, cursor: u64) -> Result<EntriesPage, Refusal> {
        Ok(self
            .db
            .with_conn(|c| entries::feed_page(&Scoped::new(c, ShareId::DEFAULT), cursor, PAGE))
            .expect("the in-memory database answers"))
    }
}
