//! The mount's side of the operations the planner makes for Local: each
//! one carried out on the mount's tree and cache, and told to the kernel.
//!
//! Content from the hub is downloaded first, outside every lock, into a
//! partial file that is fsynced (`chunk_download`); then, under the state
//! lock, the operation checks that the node is still as its base says and
//! renames the file into place. A node that users changed meanwhile, or a
//! file open right now, refuses the operation: the engine plans again from
//! the trees as they are then. FUSE callbacks never wait on any of it.
use super::canopy::{self, Kind, NodeId, ROOT};
use super::engine::LocalSide;
use super::hub_view::HubView;
use super::inode_map::InoMap;
use super::local_tree::node_of_in;
use super::planner::Op;
use crate::local::invalidate::Inval;
use crate::local::on_demand::OnDemand;
use crate::local::state::{Shared, State};
use crate::local::tree::{self as mount, Kind as MountKind};
use crate::remote::client::{self, ApiError};
use ssync_common::{ChunkList, ContentHash};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

pub struct MountSide {
    shared: Arc<Shared>,
    on_demand: Arc<OnDemand>,
    client: client::Remote,
    runtime: tokio::runtime::Handle,
    /// Where each node of Local is on this mount: set by the reads of
    /// Local (`local_reader`), kept up to date by this side's creates and
    /// deletes. The sending side looks a content's file up in it too.
    ino_of: InoMap,
    /// Contents being brought ahead (`prepare`), by node: each download runs on the
    /// runtime, FETCHES_AT_ONCE at a time, while this thread carries out the
    /// operations before the one that needs it.
    fetching: HashMap<(NodeId, ContentHash), Fetching>,
    /// What limits the downloads brought ahead to FETCHES_AT_ONCE.
    slots: Arc<tokio::sync::Semaphore>,
}

/// A content on its way here: the download's task, and the modification
/// time its node takes (the hub's).
struct Fetching {
    task: tokio::task::JoinHandle<Result<(PathBuf, ChunkList), ApiError>>,
    mtime_ns: i64,
}

/// A file ready to take a node's place: its bytes in `file`, fsynced, and
/// their chunk list; or, for files on demand (`--cache-max`), a sparse
/// file of the content's size (`list` None), filled in as it is read.
pub struct Brought {
    file: PathBuf,
    list: Option<ChunkList>,
    size: u64,
    /// The modification time the node takes (the hub's).
    mtime_ns: i64,
}

/// Contents brought from the hub at once.
const FETCHES_AT_ONCE: usize = 8;

type Outcome = Result<(), String>;

fn stale(id: NodeId) -> String {
    format!("node {id:x} changed here meanwhile")
}

impl MountSide {
    pub fn new(
        shared: Arc<Shared>,
        on_demand: Arc<OnDemand>,
        client: client::Remote,
        runtime: tokio::runtime::Handle,
        ino_of: InoMap,
    ) -> MountSide {
        MountSide {
            shared,
            on_demand,
            client,
            runtime,
            ino_of,
            fetching: HashMap::new(),
            slots: Arc::new(tokio::sync::Semaphore::new(FETCHES_AT_ONCE)),
        }
    }

    /// The inode node `id` is on, if Local has it.
    pub fn ino(&self, id: NodeId) -> Option<u64> {
        self.ino_of.lock().ino(id)
    }

    /// The inode of live node `id`, if it is as `base` says.
    fn current(&self, st: &State, id: NodeId, base: &canopy::Node) -> Result<u64, String> {
        let ino = self.ino(id).ok_or_else(|| stale(id))?;
        let n = st.tree.get(ino).filter(|n| n.id.map(|i| i.0) == Some(id) && n.parent != 0).ok_or_else(|| stale(id))?;
        let parent = self.folder_id(st, n.parent).ok_or_else(|| stale(id))?;
        // The owner aside: Local says it from Synced (`owner_of`), which
        // this side does not hold; an owner changed here meanwhile is the
        // next round's change.
        let owner = base.meta.as_ref().and_then(|m| m.owner.clone());
        match node_of_in(n, parent, owner) {
            Some(now) if now == *base => Ok(ino),
            _ => Err(stale(id)),
        }
    }

    /// `n` takes the owner and `user.` extended attributes the hub has
    /// (`meta`), keeping its attributes of other namespaces. Owners show
    /// only with `--sync-owners`; without, a node whose owner the hub
    /// changed shows the mount's user.
    fn take_meta(shared: &Shared, n: &mut mount::Node, meta: &Option<Box<canopy::Meta>>) {
        let owner = meta.as_ref().and_then(|m| m.owner.as_ref());
        let accounts = &shared.accounts;
        match owner {
            Some(o) if shared.sync_owners => n.owner = Some(accounts.to_local(o)),
            Some(o) if n.owner.is_some_and(|mine| mine != accounts.to_local(o)) => n.owner = None,
            _ => {}
        }
        let hub = meta.as_ref().and_then(|m| m.xattrs.clone()).unwrap_or_default();
        let merged = n.xattrs.as_deref().cloned().unwrap_or_default().with_synced(&hub);
        n.xattrs = (!merged.is_empty()).then(|| Box::new(merged));
    }

    /// The id of the folder that is inode `ino`.
    fn folder_id(&self, st: &State, ino: u64) -> Option<NodeId> {
        match ino {
            mount::ROOT => Some(ROOT),
            _ => st.tree.get(ino).filter(|n| n.is_dir() && n.parent != 0)?.id.map(|i| i.0),
        }
    }

    /// The inode of folder `id`.
    fn folder(&self, st: &State, id: NodeId) -> Result<u64, String> {
        if id == ROOT {
            return Ok(mount::ROOT);
        }
        let ino = self.ino(id).ok_or_else(|| format!("folder {id:x} is not here"))?;
        match self.folder_id(st, ino) {
            Some(i) if i == id => Ok(ino),
            _ => Err(format!("folder {id:x} is not here")),
        }
    }

    fn free(st: &State, folder: u64, name: &str) -> Outcome {
        match st.tree.child(folder, name) {
            None => Ok(()),
            Some(_) => Err(format!("'{name}' is taken here")),
        }
    }

    /// Downloads content `id` (as the hub's row of `node` describes it) into
    /// a partial file, with its chunk list; `have` is (inode, content) of an
    /// earlier content of the node here, whose chunks need not come again.
    fn download(
        &mut self,
        node: NodeId,
        id: ContentHash,
        hub: &HubView,
        have: Option<(u64, ContentHash)>,
    ) -> Result<Brought, String> {
        if let Some(f) = self.fetching.remove(&(node, id)) {
            match self.runtime.block_on(f.task) {
                Ok(Ok((file, list))) => {
                    return Ok(Brought { file, size: list.size(), list: Some(list), mtime_ns: f.mtime_ns })
                }
                // Fetched again below, with what the hub says now.
                Ok(Err(e)) => tracing::debug!(%id, "a content brought ahead did not come: {e}"),
                Err(e) => tracing::debug!(%id, "a content brought ahead did not come: {e}"),
            }
        }
        if self.shared.refused_contents.lock().contains(&id) {
            return Err(format!("content {id} was refused here before; not fetched again"));
        }
        let row = hub.row_of(node).ok_or_else(|| format!("the hub's row of node {node:x} is not known"))?;
        let (size, mtime_ns) = (row.size, row.mtime_ns);
        let brought = match self.on_demand(row.kind) {
            true => self.placeholder(size, mtime_ns),
            false => self
                .runtime
                .block_on(Self::fetch(&self.client, &self.shared, self.partial_for(node, id), id, size, have))
                .map(|(file, list)| Brought { file, size: list.size(), list: Some(list), mtime_ns }),
        };
        brought.map_err(|e| {
            // Trying again cannot help (the hub's chunk list does not add up,
            // or this machine cannot hold the size): the node is left out
            // (`Engine::set_refused`) rather than stall the rest; said once.
            let too_big = matches!(&e, ApiError::Local(io) if io.raw_os_error() == Some(libc::EFBIG));
            if (too_big || !e.is_retryable()) && self.shared.refused_contents.lock().insert(id) {
                let path = hub.path_of_node(node).map_or_else(|| format!("node {node:x}"), |p| p.to_string());
                tracing::error!(path, %id, "cannot take this file from the hub, skipped: {e}");
            }
            e.to_string()
        })
    }

    /// Once the trees agree, nothing will take the contents brought ahead
    /// and not used (their operations were refused, or planned otherwise):
    /// the finished downloads' files go. One still running stays until it
    /// has finished (its file is being written).
    pub fn drop_unused_fetches(&mut self) {
        let done: Vec<(NodeId, ContentHash)> =
            self.fetching.iter().filter(|(_, f)| f.task.is_finished()).map(|(k, _)| *k).collect();
        for id in done {
            let f = self.fetching.remove(&id).expect("listed");
            if let Ok(Ok((file, _))) = self.runtime.block_on(f.task) {
                let _ = std::fs::remove_file(file);
            }
        }
    }

    /// Whether a node of `kind` from the hub comes without its content:
    /// files, with a cache limit (the whole tree is listed before any
    /// content comes; small and pinned files are fetched at once in the
    /// background, the rest when read, on_demand.rs).
    fn on_demand(&self, kind: Kind) -> bool {
        kind == Kind::File && self.shared.state.lock().limit.is_some()
    }

    /// A sparse file of `size` bytes that stands in for a content not here
    /// (a size the local filesystem cannot hold fails with EFBIG).
    fn placeholder(&self, size: u64, mtime_ns: i64) -> Result<Brought, ApiError> {
        let made = tempfile::Builder::new().prefix("hole-").tempfile_in(&self.shared.cache.tmp).and_then(|tmp| {
            tmp.as_file().set_len(size)?;
            tmp.into_temp_path().keep().map_err(|e| e.error)
        });
        let file = made.map_err(ApiError::Local)?;
        Ok(Brought { file, list: None, size, mtime_ns })
    }

    async fn fetch(
        client: &client::Remote,
        sh: &Shared,
        partial: PathBuf,
        id: ContentHash,
        size: u64,
        have: Option<(u64, ContentHash)>,
    ) -> Result<(PathBuf, ChunkList), ApiError> {
        let fetched =
            crate::remote::chunk_download::fetch_file(client, &sh.chunks, &sh.cache.files, partial, id, size, have)
                .await;
        let got = fetched?;
        sh.status.downloads_done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(got)
    }

    /// Where node `node`'s download of content `id` goes: the content's
    /// partial file, or one of its own while another node's download of the
    /// same content runs (files of one content come side by side).
    fn partial_for(&self, node: NodeId, id: ContentHash) -> PathBuf {
        let beside = self.fetching.keys().any(|(n, c)| *c == id && *n != node);
        self.shared.cache.partial(&id, beside.then_some(node))
    }

    /// A copy of the cache file of local node `from`, which must hold
    /// `content` (a conflict copy keeps the bytes this mount had).
    fn copy_of(&self, from: NodeId, content: ContentHash) -> Result<(PathBuf, ChunkList), String> {
        let ino = self.ino(from).ok_or_else(|| stale(from))?;
        let sh = &self.shared;
        let tmp = sh.cache.tmp.join(format!("copy-{}", ssync_common::NodeId::random()));
        let copied = std::fs::copy(sh.cache.file(ino), &tmp)
            .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|()| crate::content::file_chunks::list_of_file(&tmp));
        match copied {
            Ok(list) if list.id() == content => Ok((tmp, list)),
            Ok(_) => {
                let _ = std::fs::remove_file(&tmp);
                Err(stale(from))
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(format!("cannot copy node {from:x} here: {e}"))
            }
        }
    }

    fn create(&mut self, id: NodeId, node: &canopy::Node, copy_of: Option<NodeId>, hub: &HubView) -> Outcome {
        let brought = match (node.kind, node.content, copy_of) {
            (Kind::Dir, _, _) => None,
            (_, None, _) => return Err(format!("node {id:x} has no content")),
            (_, Some(c), Some(from)) => {
                let (file, list) = self.copy_of(from, c)?;
                Some(Brought { file, size: list.size(), list: Some(list), mtime_ns: crate::local::clock::now_ns() })
            }
            (_, Some(c), None) => Some(self.download(id, c, hub, None)?),
        };
        let sh = self.shared.clone();
        let mut invals = Vec::new();
        let done = {
            let mut st = sh.state.lock();
            self.insert(&mut st, id, node, brought.as_ref(), hub, &mut invals)
        };
        sh.invalidate(invals);
        self.settle_brought(&sh, done, brought)
    }

    /// After an operation that brought a file: its chunks are indexed where
    /// it was placed (a file on demand is fetched at once if it is small or
    /// pinned), or the file goes if the operation was refused.
    fn settle_brought(&self, sh: &Arc<Shared>, done: Result<u64, String>, brought: Option<Brought>) -> Outcome {
        match (&done, brought) {
            (Ok(ino), Some(Brought { list: Some(list), .. })) => {
                if let Err(e) = sh.chunks.record(*ino, &list) {
                    tracing::debug!(ino, "cannot index the chunks of a file brought here: {e}");
                }
            }
            (Ok(ino), Some(Brought { list: None, size, .. })) if size > 0 => {
                let soon = size <= crate::local::cache_limit::EAGER_MAX || sh.state.lock().tree.is_pinned(*ino);
                if soon {
                    self.on_demand.spawn_ensure(sh.clone(), vec![*ino], 0..u64::MAX);
                }
            }
            (Err(_), Some(b)) => drop(std::fs::remove_file(b.file)),
            _ => {}
        }
        done.map(|_| ())
    }

    /// Puts `b`'s file in place as `ino`'s cache file.
    fn place(&self, n: &mut mount::Node, b: &Brought, content: Option<ContentHash>) -> Outcome {
        std::fs::rename(&b.file, self.shared.cache.file(n.ino)).map_err(|e| format!("cannot place a file: {e}"))?;
        n.hash = content;
        n.size = b.size;
        n.mtime_ns = b.mtime_ns;
        // An empty file is whole: nothing to fetch.
        n.cached = match b.list.is_some() || b.size == 0 {
            true => crate::local::residency::Residency::full(),
            false => crate::local::residency::Residency::none(),
        };
        Ok(())
    }

    fn insert(
        &mut self,
        st: &mut State,
        id: NodeId,
        node: &canopy::Node,
        brought: Option<&Brought>,
        hub: &HubView,
        invals: &mut Vec<Inval>,
    ) -> Result<u64, String> {
        let parent = self.folder(st, node.place.parent)?;
        Self::free(st, parent, &node.place.name)?;
        let kind = match node.kind {
            Kind::File => MountKind::File,
            Kind::Dir => MountKind::Dir,
            Kind::Symlink => MountKind::Symlink,
        };
        let mtime = brought.map_or_else(crate::local::clock::now_ns, |b| b.mtime_ns);
        let mut n = mount::Node::new(kind, parent, &node.place.name, node.mode, mtime);
        n.id = Some(ssync_common::NodeId(id));
        n.base_version = hub.version(id).unwrap_or(0);
        Self::take_meta(&self.shared, &mut n, &node.meta);
        n.ino = st.new_ino().map_err(|e| e.to_string())?;
        if let Some(b) = brought {
            self.place(&mut n, b, node.content)?;
        }
        let ino = n.ino;
        st.tree.insert(n);
        st.note_node(ino);
        self.ino_of.lock().insert(id, ino);
        invals.push(Inval::Entry { parent, name: node.place.name.clone() });
        invals.push(Inval::Inode(parent));
        Ok(ino)
    }

    fn edit(
        &mut self,
        id: NodeId,
        base: &canopy::Node,
        content: Option<ContentHash>,
        mode: u32,
        meta: &Option<Box<canopy::Meta>>,
        hub: &HubView,
    ) -> Outcome {
        let brought = match content {
            Some(c) if content != base.content => {
                let have = self.ino(id).zip(base.content);
                Some(self.download(id, c, hub, have)?)
            }
            _ => None,
        };
        let sh = self.shared.clone();
        let mut invals = Vec::new();
        let done = {
            let mut st = sh.state.lock();
            self.change(&mut st, id, base, (content, mode, meta), brought.as_ref(), hub, &mut invals)
        };
        sh.invalidate(invals);
        self.settle_brought(&sh, done, brought)
    }

    /// `to`: the content, mode, owner and attributes the node takes.
    #[allow(clippy::too_many_arguments)]
    fn change(
        &mut self,
        st: &mut State,
        id: NodeId,
        base: &canopy::Node,
        to: (Option<ContentHash>, u32, &Option<Box<canopy::Meta>>),
        brought: Option<&Brought>,
        hub: &HubView,
        invals: &mut Vec<Inval>,
    ) -> Result<u64, String> {
        let (content, mode, meta) = to;
        let ino = self.current(st, id, base)?;
        if let Some(b) = brought {
            // Programs that have the file open keep reading the bytes they
            // opened; its cache file is replaced once they close it.
            let n = st.tree.get(ino).expect("current");
            if n.dirty {
                return Err(format!("node {id:x} is being written here"));
            }
            if st.tree.has_other_names(ino) {
                // One name of a hard-linked file: the change is that name's
                // alone, so it becomes a file of its own (a new inode), and
                // the other names keep what they had.
                remove_local(st, &self.shared, ino, invals).map_err(|e| e.to_string())?;
                let mut node = base.clone();
                (node.content, node.mode, node.meta) = (content, mode, meta.clone());
                return self.insert(st, id, &node, brought, hub, invals);
            }
            if n.open_handles > 0 {
                return Err(format!("node {id:x} is open here"));
            }
            let n = st.tree.get_mut(ino).expect("current");
            self.place(n, b, content)?;
            n.base_version = hub.version(id).unwrap_or(0);
        }
        let n = st.tree.get_mut(ino).expect("current");
        n.mode = (n.mode & !0o7777) | (mode & 0o7777);
        Self::take_meta(&self.shared, n, meta);
        n.touch_ctime();
        st.persist(&[ino]);
        invals.push(Inval::Inode(ino));
        Ok(ino)
    }

    fn move_to(&mut self, id: NodeId, base: &canopy::Node, to: &canopy::Place) -> Outcome {
        let sh = self.shared.clone();
        let mut invals = Vec::new();
        let done = {
            let mut st = sh.state.lock();
            (|| {
                let ino = self.current(&st, id, base)?;
                let parent = self.folder(&st, to.parent)?;
                Self::free(&st, parent, &to.name)?;
                Self::relink(&mut st, ino, parent, &to.name, &mut invals);
                Ok(())
            })()
        };
        sh.invalidate(invals);
        done
    }

    /// Moves `ino` to `name` in `parent`, telling the kernel.
    fn relink(st: &mut State, ino: u64, parent: u64, name: &str, invals: &mut Vec<Inval>) {
        let n = st.tree.get(ino).expect("live");
        let (old_parent, old_name, kino) = (n.parent, n.name.clone(), n.kernel_ino());
        st.tree.detach(ino);
        st.tree.attach(ino, parent, name);
        st.tree.get_mut(ino).expect("attached").touch_ctime();
        st.persist(&[ino]);
        invals.push(Inval::Delete { parent: old_parent, child: kino, name: old_name });
        invals.push(Inval::Entry { parent, name: name.to_string() });
        invals.push(Inval::Inode(old_parent));
        invals.push(Inval::Inode(parent));
    }

    fn exchange(&mut self, a: NodeId, a_base: &canopy::Node, b: NodeId, b_base: &canopy::Node) -> Outcome {
        let sh = self.shared.clone();
        let mut invals = Vec::new();
        let done = {
            let mut st = sh.state.lock();
            (|| {
                let ia = self.current(&st, a, a_base)?;
                let ib = self.current(&st, b, b_base)?;
                let (pa, na) = st.tree.get(ia).map(|n| (n.parent, n.name.clone())).expect("current");
                let (pb, nb) = st.tree.get(ib).map(|n| (n.parent, n.name.clone())).expect("current");
                st.tree.detach(ia);
                st.tree.detach(ib);
                st.tree.attach(ia, pb, &nb);
                st.tree.attach(ib, pa, &na);
                for ino in [ia, ib] {
                    st.tree.get_mut(ino).expect("attached").touch_ctime();
                }
                st.persist(&[ia, ib]);
                invals.extend([
                    Inval::Entry { parent: pa, name: na },
                    Inval::Entry { parent: pb, name: nb },
                    Inval::Inode(pa),
                    Inval::Inode(pb),
                ]);
                Ok(())
            })()
        };
        sh.invalidate(invals);
        done
    }

    fn delete(&mut self, id: NodeId, base: &canopy::Node) -> Outcome {
        let sh = self.shared.clone();
        let mut invals = Vec::new();
        let done = {
            let mut st = sh.state.lock();
            (|| {
                let ino = self.current(&st, id, base)?;
                let n = st.tree.get(ino).expect("current");
                if !n.children.is_empty() {
                    return Err(format!("folder {id:x} is not empty here"));
                }
                if n.dirty {
                    return Err(format!("node {id:x} is being written here"));
                }
                remove_local(&mut st, &sh, ino, &mut invals).map_err(|e| e.to_string())?;
                self.ino_of.lock().remove_id(id);
                Ok(())
            })()
        };
        sh.invalidate(invals);
        done
    }
}

impl LocalSide for MountSide {
    /// Brings the contents of the creates and edits ahead from the hub,
    /// several at a time (a new mount, or a burst of changes elsewhere,
    /// brings thousands of files).
    fn prepare(&mut self, ops: &[&Op], hub: &HubView) {
        // Files on demand are not brought ahead.
        let later = self.shared.state.lock().limit.is_some();
        for op in ops {
            let (id, content) = match op {
                Op::Create { id, node, copy_of: None, .. } => (*id, node.content),
                Op::Edit { id, base, content, .. } if *content != base.content => (*id, *content),
                _ => continue,
            };
            // One download per node: many files of one content (empty
            // files, copies) come at once, each into its own partial file.
            let Some(content) = content.filter(|c| !self.fetching.contains_key(&(id, *c))) else {
                continue;
            };
            let Some(row) = hub.row_of(id).filter(|r| !(later && r.kind == Kind::File)) else { continue };
            let (client, sh, slots, size) = (self.client.clone(), self.shared.clone(), self.slots.clone(), row.size);
            let partial = self.partial_for(id, content);
            let task = self.runtime.spawn(async move {
                let _slot = slots.acquire_owned().await;
                Self::fetch(&client, &sh, partial, content, size, None).await
            });
            self.fetching.insert((id, content), Fetching { task, mtime_ns: row.mtime_ns });
        }
    }

    fn carry_out(&mut self, op: &Op, hub: &HubView) -> Outcome {
        match op {
            Op::Create { id, node, copy_of, .. } => self.create(*id, node, *copy_of, hub),
            Op::Edit { id, base, content, mode, meta, .. } => self.edit(*id, base, *content, *mode, meta, hub),
            Op::Move { id, base, to, .. } => self.move_to(*id, base, to),
            Op::Exchange { a, a_base, b, b_base, .. } => self.exchange(*a, a_base, *b, b_base),
            Op::Delete { id, base, .. } => self.delete(*id, base),
        }
    }
}

/// Takes `ino` and everything below it out of the mount's tree, and tells
/// the kernel its name is gone.
fn remove_local(
    st: &mut State,
    shared: &Shared,
    ino: u64,
    invals: &mut Vec<Inval>,
) -> crate::local::error::FsResult<()> {
    let Some(n) = st.tree.get(ino) else { return Ok(()) };
    let (parent, name, kernel_ino) = (n.parent, n.name.clone(), n.kernel_ino());
    let mut all = st.tree.subtree(ino);
    all.reverse();
    for i in all {
        if st.tree.get(i).is_some_and(mount::Node::has_content) {
            shared.reaper.remove(shared.cache.file(i));
        }
        st.tree.remove(i);
        st.note_node(i);
    }
    invals.push(Inval::Delete { parent, child: kernel_ino, name });
    invals.push(Inval::Inode(parent));
    Ok(())
}
