//! The new sync engine (`ssync_fs::sync`: three trees, the planner, the
//! hub's view) against a real hub over HTTP, with no FUSE: two engines, each
//! with a Local tree its "user" changes and file bytes kept by content id,
//! sync through `ssync-server` on 127.0.0.1. This is the engine the mounts
//! are to switch to; here it meets the hub's real endpoints, chunk upload
//! included.
use ssync_common::ContentHash;
use ssync_fs::sync::canopy::{Kind, Node, NodeId, Place, ROOT};
use ssync_fs::sync::engine::{Engine, LocalSide};
use ssync_fs::sync::http_remote::{Held, HttpRemote};
use ssync_fs::sync::hub_view::{HubView, Request};
use ssync_fs::sync::planner::{apply, Op, Side};
use ssync_fs::sync::remote::{Refusal, Remote};
use ssync_tests::Hub;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// File bytes by content id, as files (the chunked upload reads files).
#[derive(Clone)]
struct Store {
    dir: PathBuf,
    files: Arc<Mutex<HashMap<ContentHash, PathBuf>>>,
}

impl Store {
    fn put(&self, data: &[u8]) -> ContentHash {
        let id = ssync_common::chunks::list_of(data).id();
        let path = self.dir.join(id.to_string());
        std::fs::write(&path, data).unwrap();
        self.files.lock().unwrap().insert(id, path);
        id
    }
}

/// A Local side that only records what it was asked to do: content brought
/// down is named by its id (the hub's bytes are checked separately).
#[derive(Default)]
struct Recorder {
    ops: Vec<Op>,
}

impl LocalSide for Recorder {
    fn carry_out(&mut self, op: &Op, _: &ssync_fs::sync::hub_view::HubView) -> Result<(), String> {
        self.ops.push(op.clone());
        Ok(())
    }
}

/// The hub over HTTP, keeping every request the engine sent.
struct Counted {
    http: HttpRemote,
    sent: Vec<Request>,
}

impl Remote for Counted {
    fn send(&mut self, request: &Request) -> Result<Vec<ssync_common::api::Entry>, Refusal> {
        self.sent.push(request.clone());
        self.http.send(request)
    }

    fn changes_since(&mut self, cursor: u64) -> Result<ssync_common::api::EntriesPage, Refusal> {
        self.http.changes_since(cursor)
    }
}

struct Machine {
    engine: Engine<Counted>,
    local: Recorder,
    rng: u128,
}

impl Machine {
    fn new(hub: &Hub, runtime: &tokio::runtime::Runtime, store: &Store, name: &str) -> Machine {
        let token = ssync_fs::remote::token::load(Some(&hub.token_file)).unwrap();
        let client = ssync_fs::remote::client::Remote::new(&hub.url(), name, &token, None).unwrap();
        let files = store.files.clone();
        let contents = Box::new(move |_node: u128, id: &ContentHash| {
            files.lock().unwrap().get(id).cloned().map(|file| Held { file, mtime_ns: None, list: None })
        });
        let remote = HttpRemote::new(client, runtime.handle().clone(), contents, std::sync::Arc::new(|| {}));
        let seed = name.bytes().fold(0x9E37_79B9_7F4A_7C15u128, |a, b| a.wrapping_mul(31).wrapping_add(b as u128));
        Machine {
            engine: Engine::new(Counted { http: remote, sent: Vec::new() }),
            local: Recorder::default(),
            rng: seed,
        }
    }

    fn new_id(&mut self) -> NodeId {
        self.rng = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D_2545_F491_4F6C_DD1D).wrapping_add(1442695040888963407);
        self.rng | 1
    }

    /// A change by this machine's user, to its Local tree.
    fn user(&mut self, op: Op) {
        apply(&mut self.engine.canopy.local, &op).unwrap_or_else(|e| panic!("the user's {op:?}: {e}"));
    }

    fn create(&mut self, parent: NodeId, name: &str, kind: Kind, content: Option<ContentHash>) -> NodeId {
        let id = self.new_id();
        let node = Node { place: Place { parent, name: name.into() }, kind, content, mode: 0o644, meta: None };
        self.user(Op::Create { side: Side::Local, id, node, copy_of: None });
        id
    }

    fn local(&self, id: NodeId) -> Node {
        self.engine.canopy.local.get(id).expect("the node is here").clone()
    }

    fn sync(&mut self) {
        let rounds = self.engine.sync(&mut self.local, 20).unwrap();
        assert!(self.engine.converged(), "not converged after {rounds} rounds");
    }
}

/// The hub's tree as a reader of its whole feed builds it.
fn hub_tree(m: &mut Machine) -> ssync_fs::sync::canopy::Tree {
    let mut view = HubView::default();
    loop {
        let page = m.engine.remote().changes_since(view.cursor()).unwrap();
        view.fold_page(&page).unwrap();
        if page.entries.is_empty() {
            view.settle_feed();
            return view.tree().clone();
        }
    }
}

#[test]
fn two_engines_converge_through_a_real_hub() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(&dir.path().join("hub"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store_dir = dir.path().join("store");
    std::fs::create_dir(&store_dir).unwrap();
    let store = Store { dir: store_dir, files: Arc::default() };
    let (mut a, mut b) = (Machine::new(&hub, &runtime, &store, "a"), Machine::new(&hub, &runtime, &store, "b"));

    // A makes a folder with files (one big enough to go up in chunks) and a symlink.
    let docs = a.create(ROOT, "docs", Kind::Dir, None);
    let small = store.put(b"a small file");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let big = store.put(&big);
    let f1 = a.create(docs, "f1.txt", Kind::File, Some(small));
    let f2 = a.create(docs, "big.bin", Kind::File, Some(big));
    let link = store.put(b"f1.txt");
    a.create(docs, "link", Kind::Symlink, Some(link));
    a.sync();
    b.sync();
    assert_eq!(b.engine.canopy.local, a.engine.canopy.local, "B has A's tree, node for node");
    assert_eq!(hub_tree(&mut a), a.engine.canopy.local);
    let token = ssync_fs::remote::token::load(Some(&hub.token_file)).unwrap();
    let client = ssync_fs::remote::client::Remote::new(&hub.url(), "check", &token, None).unwrap();
    let big_on_hub = runtime.block_on(client.manifest(&big, None)).unwrap();
    assert_eq!(big_on_hub.id, big, "the hub holds the big file's chunks");

    // A renames the folder: one operation, and B gets the same nodes under the new name.
    let before = a.local(docs);
    a.user(Op::Move { side: Side::Local, id: docs, base: before, to: Place { parent: ROOT, name: "papers".into() } });
    a.engine.remote().sent.clear();
    b.local.ops.clear();
    a.sync();
    b.sync();
    assert_eq!(a.engine.remote().sent.len(), 1, "one request for the rename: {:?}", a.engine.remote().sent);
    assert!(
        matches!(&a.engine.remote().sent[0], Request::Rename { from, to, to_parent: None, .. }
        if from.as_str() == "docs" && to.as_str() == "papers"),
        "{:?}",
        a.engine.remote().sent
    );
    assert!(
        matches!(b.local.ops.as_slice(), [Op::Move { id, .. }] if *id == docs),
        "B moves one node: {:?}",
        b.local.ops
    );
    assert_eq!(b.local(f2).place.parent, docs);
    assert_eq!(b.engine.canopy.local.path_of(f1).as_deref(), Some("papers/f1.txt"));
    assert_eq!(b.engine.canopy.local, a.engine.canopy.local);

    // Edits of different files on both: no conflict copy.
    let e1 = store.put(b"a's edit of f1");
    let base = a.local(f1);
    a.user(Op::Edit { side: Side::Local, id: f1, base, content: Some(e1), mode: 0o644, meta: None });
    let e2 = store.put(b"b's edit of the big file");
    let base = b.local(f2);
    b.user(Op::Edit { side: Side::Local, id: f2, base, content: Some(e2), mode: 0o600, meta: None });
    a.sync();
    b.sync();
    a.sync();
    assert_eq!(a.engine.canopy.local, b.engine.canopy.local);
    assert_eq!(a.engine.canopy.local.len(), 4, "no conflict copy: {:?}", a.engine.canopy.local);
    assert_eq!((a.local(f2).content, a.local(f2).mode), (Some(e2), 0o600));

    // Both edit the same file: the hub's (first) edit keeps the node, the other is a copy beside it.
    let (ea, eb) = (store.put(b"a, concurrently"), store.put(b"b, concurrently"));
    let base = a.local(f1);
    a.user(Op::Edit { side: Side::Local, id: f1, base: base.clone(), content: Some(ea), mode: 0o644, meta: None });
    b.user(Op::Edit { side: Side::Local, id: f1, base, content: Some(eb), mode: 0o644, meta: None });
    a.sync();
    b.sync();
    a.sync();
    assert_eq!(a.engine.canopy.local, b.engine.canopy.local);
    let names: Vec<String> = a.engine.canopy.local.iter().map(|(_, n)| n.place.name.clone()).collect();
    let copies: Vec<&String> = names.iter().filter(|n| n.contains(".conflict-")).collect();
    assert_eq!(copies.len(), 1, "{names:?}");
    assert_eq!(a.local(f1).content, Some(ea), "the first to reach the hub keeps the node");
    let copy = a.engine.canopy.local.iter().find(|(_, n)| n.place.name.contains(".conflict-")).unwrap().1.clone();
    assert_eq!(copy.content, Some(eb), "the other edit is kept in the copy");

    // rm -rf on B, deepest first: nothing of it is left on A or the hub.
    let mut doomed: Vec<NodeId> = b.engine.canopy.local.ids().collect();
    doomed.sort_by_key(|id| std::cmp::Reverse(b.engine.canopy.local.depth(*id)));
    for id in doomed {
        let base = b.local(id);
        b.user(Op::Delete { side: Side::Local, id, base });
    }
    b.sync();
    a.sync();
    assert!(a.engine.canopy.local.is_empty(), "{:?}", a.engine.canopy.local);
    assert!(hub_tree(&mut a).is_empty());
    // Every path the engines wrote is a valid path on the hub; the hub's own
    // list agrees that nothing is left.
    let left = runtime.block_on(client.list(None)).unwrap();
    assert!(left.entries.iter().all(|e| e.deleted), "{:?}", left.entries);
}
