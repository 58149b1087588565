//! The Local tree, read from the mount's own tree (`tree::Tree`, what the
//! kernel shows): each node by its id, in its folder's id, with its kind,
//! content id and permission bits.
//!
//! What never travels stays out: FIFOs, sockets and devices, and unlinked
//! nodes kept while a program has them open. A file written since its
//! content was last identified shows the content it had (`content_ids`
//! identifies the new one once the file is closed or fsynced), so nothing
//! half-written is ever planned; a new file is left out until it has one.
use super::canopy::{self, Kind, NodeId, Place, Tree};
use super::hub_view::HubView;
use super::inode_map::InodeMap;
use crate::local::accounts::Accounts;
use crate::local::tree::{self as mount, Kind as MountKind};
use ssync_common::api::Owner;
use std::collections::HashMap;

/// Local, and which inode each of its nodes is on this mount.
#[derive(Default)]
pub struct LocalRead {
    pub tree: Tree,
    pub ino_of: HashMap<NodeId, u64>,
    /// Nodes left out, with what lies below them, because they have no id
    /// yet (see `adopt_ids`).
    pub without_id: usize,
}

pub fn kind_of(kind: MountKind) -> Kind {
    match kind {
        MountKind::File => Kind::File,
        MountKind::Dir => Kind::Dir,
        MountKind::Symlink => Kind::Symlink,
    }
}

/// The canopy node `n` is, in folder `parent`, with `owner` (see
/// `owner_of`); None for a file or symlink whose content was never
/// identified. Of its extended attributes, the `user.` ones travel.
pub(crate) fn node_of_in(n: &mount::Node, parent: NodeId, owner: Option<Owner>) -> Option<canopy::Node> {
    let kind = kind_of(n.kind);
    let content = match kind {
        Kind::Dir => None,
        Kind::File | Kind::Symlink => Some(n.hash?),
    };
    let meta = canopy::Meta::boxed(owner, n.xattrs.as_ref().map(|x| x.synced()));
    Some(canopy::Node { place: Place { parent, name: n.name.clone() }, kind, content, mode: n.mode & 0o7777, meta })
}

/// A node's owner as Local says it: `agreed` (see `agreed_owner`), unless
/// the owner here changed since (a chown, or a file made here by another
/// user). A mount shows owners from the hub only with `--sync-owners` (the
/// others show its own user), so what it shows is not what the hub has; it
/// is a change only when it moved away from what was agreed.
pub(crate) fn owner_of(here: Option<mount::Owner>, synced: Option<&Owner>, accounts: &Accounts) -> Option<Owner> {
    match here {
        None => synced.cloned(),
        Some(o) if synced.is_some_and(|s| accounts.to_local(s) == o) => synced.cloned(),
        Some(o) => Some(accounts.to_wire(o)),
    }
}

/// The owner a node has in Local when this mount set none: the one both
/// sides last agreed on (Synced's), or, for a node Synced lacks (one
/// brought here whose agreement a crash lost before it was kept), the
/// hub's. Never "none" against an owner the hub has: the hub keeps the
/// owner of a change that sends none, so a change to "none" could never
/// be carried out, and would be planned again and again.
pub fn agreed_owner<'a>(synced: Option<&'a canopy::Node>, remote: Option<&'a canopy::Node>) -> Option<&'a Owner> {
    synced.or(remote).and_then(|n| n.meta.as_ref()).and_then(|m| m.owner.as_ref())
}

/// Local, from the mount's tree; `synced`, `remote` and `accounts` say
/// owners (`owner_of`, `agreed_owner`).
pub fn read(tree: &mount::Tree, synced: &Tree, remote: &Tree, accounts: &Accounts) -> LocalRead {
    build(copy(tree), synced, remote, accounts)
}

/// What Local needs of the mount's tree, copied while the state is locked:
/// each node that travels, with its folder's id and inode, as a canopy node
/// whose owner is not said yet (`build` says it, without the lock: every
/// FUSE call waits on the state while it is held, and building the tree's
/// indexes was most of a read of a large tree).
pub struct Copied {
    nodes: Vec<Seen>,
    without_id: usize,
}

struct Seen {
    id: NodeId,
    ino: u64,
    node: canopy::Node,
    /// The owner set here, if any (`mount::Node::owner`).
    owner: Option<mount::Owner>,
}

/// Phase one of a read, under the state lock.
pub fn copy(tree: &mount::Tree) -> Copied {
    let mut out = Copied { nodes: Vec::new(), without_id: 0 };
    let mut folders = vec![(mount::ROOT, canopy::ROOT)];
    while let Some((ino, id)) = folders.pop() {
        let Some(dir) = tree.get(ino) else { continue };
        for child in dir.children.values() {
            let Some(n) = tree.get(*child) else { continue };
            if n.special.is_some() {
                continue;
            }
            let Some(cid) = n.id else {
                out.without_id += tree.subtree(*child).len();
                continue;
            };
            let Some(node) = node_of_in(n, id, None) else { continue };
            if node.kind == Kind::Dir {
                folders.push((*child, cid.0));
            }
            out.nodes.push(Seen { id: cid.0, ino: *child, node, owner: n.owner });
        }
    }
    out
}

/// Makes `local` equal to `read`, setting and removing only the nodes that
/// differ: `local` keeps its journal of what changed (`Tree::take_touched`).
pub fn set_in_place(local: &mut Tree, read: &Tree) {
    for (id, n) in read.iter() {
        if local.get(id) != Some(n) {
            local.set(id, n.clone());
        }
    }
    let gone: Vec<NodeId> = local.ids().filter(|id| !read.contains(*id)).collect();
    for id in gone {
        local.remove(id);
    }
}

/// What changed of some nodes of the mount's tree, copied under the state
/// lock (`copy_nodes`): each node as Local has it now (its owner not said
/// yet), or gone from Local.
pub struct CopiedNodes {
    seen: Vec<Seen>,
    gone: Vec<u64>,
}

/// Phase one of a read of nodes `inos` alone, under the state lock. None
/// when only a whole read can say (a node without an id, or in a folder
/// without one: a cache from before identities).
///
/// Whether a node is in Local depends on itself and on its folder's id, so
/// the nodes that changed are all a read needs: a folder's move changes
/// nothing of what is below it (nodes name their folder by id), and a
/// folder leaves the tree only empty.
pub fn copy_nodes(tree: &mount::Tree, inos: impl IntoIterator<Item = u64>) -> Option<CopiedNodes> {
    let mut out = CopiedNodes { seen: Vec::new(), gone: Vec::new() };
    for ino in inos {
        if ino == mount::ROOT {
            continue;
        }
        let Some(n) = tree.get(ino).filter(|n| n.parent != 0 && n.special.is_none()) else {
            out.gone.push(ino);
            continue;
        };
        let cid = n.id?;
        let parent = match n.parent {
            mount::ROOT => canopy::ROOT,
            p => tree.get(p)?.id?.0,
        };
        match node_of_in(n, parent, None) {
            Some(node) => out.seen.push(Seen { id: cid.0, ino, node, owner: n.owner }),
            None => out.gone.push(ino),
        }
    }
    Some(out)
}

/// Phase two of a read of some nodes, without the lock: `local` and
/// `inos` brought up to date in place, so that a round costs what changed
/// (`Canopy::differing`).
pub fn update(
    copied: CopiedNodes,
    local: &mut Tree,
    inos: &mut InodeMap,
    (synced, remote): (&Tree, &Tree),
    accounts: &Accounts,
) {
    for ino in copied.gone {
        // None: the mount side deleted the node (and Local lost it then).
        if let Some(id) = inos.remove_ino(ino) {
            local.remove(id);
        }
    }
    for Seen { id, ino, node, owner } in copied.seen {
        let node = with_owner(node, owner, agreed_owner(synced.get(id), remote.get(id)), accounts);
        if local.get(id) != Some(&node) {
            local.set(id, node);
        }
        inos.insert(id, ino);
    }
}

/// `node` with the owner Local says (see `owner_of`).
fn with_owner(
    mut node: canopy::Node,
    here: Option<mount::Owner>,
    agreed: Option<&Owner>,
    accounts: &Accounts,
) -> canopy::Node {
    let owner = owner_of(here, agreed, accounts);
    if owner.is_some() {
        let xattrs = node.meta.take().and_then(|m| m.xattrs);
        node.meta = canopy::Meta::boxed(owner, xattrs);
    }
    node
}

/// Phase two of a read, without the lock: owners said, the tree built.
pub fn build(copied: Copied, synced: &Tree, remote: &Tree, accounts: &Accounts) -> LocalRead {
    let mut out = LocalRead { without_id: copied.without_id, ..LocalRead::default() };
    out.ino_of.reserve(copied.nodes.len());
    for Seen { id, ino, node, owner } in copied.nodes {
        let node = with_owner(node, owner, agreed_owner(synced.get(id), remote.get(id)), accounts);
        out.tree.set(id, node);
        out.ino_of.insert(id, ino);
    }
    out
}

/// What the path-keyed engine's queue, left unsent by a cache from before
/// identities, says the files alone cannot: a node that was moved here
/// from `from` (the hub still has it there), and a path deleted here that
/// the hub still has at `base`.
#[derive(Debug, Default)]
pub struct Unsent {
    pub moved: Vec<(u64, ssync_common::RelPath)>,
    pub deleted: Vec<(ssync_common::RelPath, u64)>,
}

/// Gives every node without an id one (a cache from before identities, on
/// its first start with the engine): the hub's node at its path when the
/// hub has one of the same kind there, else a new id. Returns the merge
/// base of each node the hub had, as Synced must start: its state at the
/// version it was based on (`base_version`, `hash`). So a change made here
/// and not sent yet is a local change against it, planned again from the
/// files, and one made on both sides is a conflict, as it was. `unsent`
/// adds the moves and deletes the files cannot show: a moved node takes
/// the hub's node at its old path, and a deleted one is in Synced but not
/// in Local, which the planner sends as a delete.
pub fn adopt_ids(tree: &mut mount::Tree, hub: &HubView, unsent: &Unsent) -> Vec<(NodeId, canopy::Node)> {
    let mut synced = Vec::new();
    let mut claimed = std::collections::HashSet::new();
    // The hub's node as it is, when it is still at the version this mount's
    // change was based on.
    let unchanged = |path: &ssync_common::RelPath, base: u64| {
        hub.live_row_at(path)
            .filter(|(_, r)| r.version == base)
            .and_then(|(id, _)| Some((id, hub.tree().get(id)?.clone())))
    };
    for (path, base) in &unsent.deleted {
        if let Some((id, node)) = unchanged(path, *base) {
            claimed.insert(id);
            synced.push((id, node));
        }
    }
    for (ino, from) in &unsent.moved {
        let Some(n) = tree.get(*ino).filter(|n| n.id.is_none() && n.parent != 0) else { continue };
        match unchanged(from, n.base_version) {
            Some((id, node)) if node.kind == kind_of(n.kind) && claimed.insert(id) => {
                tree.get_mut(*ino).expect("listed").id = Some(ssync_common::NodeId(id));
                synced.push((id, node));
            }
            _ => {}
        }
    }
    let mut folders = vec![(mount::ROOT, canopy::ROOT)];
    while let Some((ino, id)) = folders.pop() {
        let Some(dir) = tree.get(ino) else { continue };
        let children: Vec<u64> = dir.children.values().copied().collect();
        for child in children {
            let Some(n) = tree.get(child) else { continue };
            if n.special.is_some() {
                continue;
            }
            let cid = match n.id {
                Some(cid) => cid,
                None => {
                    let path = tree.path_of(child);
                    let row = path
                        .as_ref()
                        .and_then(|p| hub.live_row_at(p))
                        .filter(|(id, r)| r.kind == kind_of(n.kind) && !claimed.contains(id));
                    let cid = row.map_or_else(ssync_common::NodeId::random, |(id, _)| ssync_common::NodeId(id));
                    claimed.insert(cid.0);
                    if n.base_version > 0 {
                        let mut base = node_of_in(n, id, None);
                        if let (Some(b), Some((_, r))) = (&mut base, row) {
                            if r.version == n.base_version {
                                b.mode = r.mode;
                                b.meta = r.meta.clone();
                            }
                        }
                        synced.extend(base.map(|b| (cid.0, b)));
                    }
                    tree.get_mut(child).expect("listed above").id = Some(cid);
                    cid
                }
            };
            if tree.get(child).is_some_and(mount::Node::is_dir) {
                folders.push((child, cid.0));
            }
        }
    }
    synced
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::tree::{Node, Special, Tree as MountTree, ROOT};
    use crate::sync::hub_view::tests::row;
    use ssync_common::api::EntryKind;
    use ssync_common::{ContentHash, NodeId as WireId};

    fn mount_tree(nodes: Vec<Node>) -> MountTree {
        let mut all = vec![Node { ino: ROOT, ..Node::new(MountKind::Dir, 0, "", 0o755, 0) }];
        all.extend(nodes);
        MountTree::from_nodes(all)
    }

    fn node(ino: u64, parent: u64, name: &str, kind: MountKind, id: Option<u128>) -> Node {
        let mut n = Node { ino, id: id.map(WireId), ..Node::new(kind, parent, name, 0o640, 0) };
        if kind != MountKind::Dir {
            n.hash = Some(ContentHash::of(name.as_bytes()));
        }
        n
    }

    #[test]
    fn local_has_what_travels_by_id() {
        let mut new_file = node(5, 2, "new", MountKind::File, Some(50));
        new_file.hash = None; // written, never identified
        let mut fifo = node(6, ROOT, "pipe", MountKind::File, Some(60));
        fifo.special = Some(Special { format: libc::S_IFIFO, rdev: 0 });
        let t = mount_tree(vec![
            node(2, ROOT, "d", MountKind::Dir, Some(20)),
            node(3, 2, "f", MountKind::File, Some(30)),
            node(4, ROOT, "l", MountKind::Symlink, Some(40)),
            new_file,
            fifo,
            node(7, ROOT, "old", MountKind::Dir, None),
            node(8, 7, "inside", MountKind::File, Some(80)),
        ]);
        let local = read(&t, &Tree::default(), &Tree::default(), &Accounts::default());
        assert_eq!(local.tree.len(), 3, "d, d/f and l: {:?}", local.tree);
        let f = local.tree.get(30).unwrap();
        assert_eq!((f.place.parent, f.place.name.as_str(), f.kind), (20, "f", Kind::File));
        assert_eq!(f.content, Some(ContentHash::of(b"f")));
        assert_eq!(f.mode, 0o640);
        assert_eq!(local.tree.get(40).unwrap().kind, Kind::Symlink);
        assert_eq!(local.ino_of[&30], 3);
        assert_eq!(local.without_id, 2, "the folder without an id and what it holds");
        local.tree.check().unwrap();
    }

    /// An owner this mount never set is the one agreed on, else the hub's:
    /// never "none" against an owner the hub has (the hub keeps an owner a
    /// change does not send, so "none" could never be carried out and would
    /// be planned again each round). One set here is this mount's change.
    #[test]
    fn an_owner_not_set_here_is_the_agreed_one_else_the_hubs() {
        let owner = |uid: u32| ssync_common::api::Owner { uid, gid: uid, user: None, group: None };
        let with_owner = |uid: u32| canopy::Node {
            place: Place { parent: canopy::ROOT, name: "f".into() },
            kind: Kind::File,
            content: Some(ContentHash::of(b"f")),
            mode: 0o640,
            meta: canopy::Meta::boxed(Some(owner(uid)), None),
        };
        let t = mount_tree(vec![node(3, ROOT, "f", MountKind::File, Some(30))]);
        let (mut synced, mut remote) = (Tree::default(), Tree::default());
        let owner_read = |synced: &Tree, remote: &Tree| {
            let local = read(&t, synced, remote, &Accounts::default());
            local.tree.get(30).unwrap().meta.as_ref().and_then(|m| m.owner.clone())
        };
        assert_eq!(owner_read(&synced, &remote), None, "known nowhere");
        remote.set(30, with_owner(1001));
        assert_eq!(owner_read(&synced, &remote), Some(owner(1001)), "Synced lacks it (a crash lost its agreement)");
        synced.set(30, with_owner(1002));
        assert_eq!(owner_read(&synced, &remote), Some(owner(1002)), "agreed on, and changed on the hub since");
        let mut chowned = node(3, ROOT, "f", MountKind::File, Some(30));
        chowned.owner = Some(crate::local::tree::Owner { uid: 1003, gid: 1003 });
        let chowned = mount_tree(vec![chowned]);
        let local = read(&chowned, &synced, &remote, &Accounts::default());
        let o = local.tree.get(30).unwrap().meta.as_ref().and_then(|m| m.owner.clone()).unwrap();
        assert_eq!((o.uid, o.gid), (1003, 1003), "set here: a change of this mount's");
    }

    #[test]
    fn an_upgraded_cache_takes_the_hubs_ids_and_its_merge_base() {
        let mut hub = HubView::default();
        hub.fold_feed(&[row("d", 20, 0, 1, EntryKind::Dir, false), row("d/f", 30, 20, 2, EntryKind::File, false)])
            .unwrap();
        let mut f = node(3, 2, "f", MountKind::File, None);
        f.base_version = 2;
        let t = &mut mount_tree(vec![
            Node { base_version: 1, ..node(2, ROOT, "d", MountKind::Dir, None) },
            f,
            node(4, 2, "mine", MountKind::File, None),
        ]);
        let synced = adopt_ids(t, &hub, &Unsent::default());
        assert_eq!(t.get(2).unwrap().id, Some(WireId(20)));
        assert_eq!(t.get(3).unwrap().id, Some(WireId(30)));
        let mine = t.get(4).unwrap().id.expect("a new id");
        assert!(mine.0 != 20 && mine.0 != 30);
        let base: HashMap<_, _> = synced.into_iter().collect();
        assert_eq!(base.len(), 2, "the hub had d and d/f; 'mine' is new");
        assert_eq!(base[&30].content, Some(ContentHash::of(b"f")), "the content it was based on");
        assert_eq!(base[&30].place, Place { parent: 20, name: "f".into() });
        assert_eq!(read(t, &Tree::default(), &Tree::default(), &Accounts::default()).tree.len(), 3);
    }
}
