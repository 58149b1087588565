//! A chunk list that lies about its chunks' lengths. A commit names each
//! chunk with its length; a hub that took the lengths on trust let mounts
//! show one size and read other bytes, and a false total over 16 TiB stalled
//! every mount. The hub now checks every length against the chunk it
//! stores (400, naming the first wrong chunk), through every way a list
//! arrives: `/v1/shares/default/commit`, `/v1/shares/default/batch`, with the chunks stored or inline. A
//! mount given such a list anyway (by an older hub) refuses that one entry,
//! says so once, and goes on with the feed.
use ssync_common::api::{inline_encode, EntryKind, WireList};
use ssync_common::{ChunkList, ChunkRef, ContentHash, RelPath};
use ssync_tests::{hub_tree, pseudo_random, wait_for_content, Hub, Mount};
use std::time::Duration;

/// A 3,000-byte chunk the hub stores, claimed with other lengths below.
const REAL_LEN: usize = 3000;

/// The forged lists: (name, claimed length of the chunk, times listed).
const FORGED: [(&str, u32, usize); 4] =
    [("short", 10, 1), ("long", 5000, 1), ("max", u32::MAX, 1), ("sixteen-tib", u32::MAX, 4100)];

fn forged_list(hash: ContentHash, claim: u32, times: usize) -> ChunkList {
    ChunkList(vec![ChunkRef { hash, len: claim }; times])
}

fn commit_body(path: &str, list: &ChunkList, inline: Option<&[u8]>) -> serde_json::Value {
    let mut body = serde_json::json!({
        "path": path, "base": 0, "id": list.id(), "size": list.size(), "mode": 420, "mtime_ns": 1,
        "list": WireList::whole(list),
    });
    if let Some(frames) = inline {
        body["inline"] = serde_json::json!(inline_encode(frames));
    }
    body
}

fn assert_names_chunk_0(status: u64, body: &serde_json::Value, what: &str) {
    assert_eq!(status, 400, "{what}: {body}");
    assert_eq!(body["code"], "bad_request", "{what}: {body}");
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(msg.contains("chunk 0 "), "{what}: the first wrong chunk is named: {body}");
}

#[test]
fn the_hub_refuses_lists_whose_lengths_lie_through_every_way_in() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let (http, url) = (hub.http(), hub.url());
    let data = pseudo_random(REAL_LEN, 1);
    let hash = ContentHash::of(&data);
    let mut frames = Vec::new();
    ssync_common::frames::encode(&mut frames, &hash, &data, false);
    let stored = http.post(format!("{url}/v1/shares/default/chunks")).body(frames.clone()).send().unwrap();
    assert_eq!(stored.status().as_u16(), 200);

    for (name, claim, times) in FORGED {
        let list = forged_list(hash, claim, times);
        for inline in [None, Some(&frames[..])] {
            let how = if inline.is_some() { "inline" } else { "stored" };
            let body = commit_body(name, &list, inline);
            let resp = http.post(format!("{url}/v1/shares/default/commit")).json(&body).send().unwrap();
            let status = resp.status().as_u16() as u64;
            assert_names_chunk_0(status, &resp.json().unwrap(), &format!("commit {name}, {how}"));

            let mut change = body.clone();
            change["op"] = "commit".into();
            let batch = serde_json::json!({ "changes": [change] });
            let resp = http.post(format!("{url}/v1/shares/default/batch")).json(&batch).send().unwrap();
            assert_eq!(resp.status().as_u16(), 200, "a batch answers per change");
            let answer: serde_json::Value = resp.json().unwrap();
            assert_eq!(answer["done"], serde_json::json!([]), "batch {name}, {how}: {answer}");
            let refused = &answer["refused"];
            assert_names_chunk_0(
                refused["status"].as_u64().unwrap(),
                &refused["error"],
                &format!("batch {name}, {how}"),
            );
        }
    }
    // The true list is taken, and it is the only thing the hub holds.
    let honest = forged_list(hash, REAL_LEN as u32, 1);
    let resp = http
        .post(format!("{url}/v1/shares/default/commit"))
        .json(&commit_body("honest", &honest, None))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let tree = hub_tree(&hub).unwrap();
    assert_eq!(tree.keys().collect::<Vec<_>>(), ["honest"], "nothing forged was committed");
    let content = http.get(format!("{url}/v1/shares/default/content/{}", honest.id())).send().unwrap().bytes().unwrap();
    assert_eq!(&content[..], &data[..]);
}

/// What an older hub that took lengths on trust would hold: forged entries
/// written with the hub's own tree rules into its database, the hub stopped.
fn forge_as_an_old_hub_would(hub: &Hub, hash: ContentHash) {
    let conn = rusqlite::Connection::open(hub.data.join("meta.db")).unwrap();
    let author = ssync_server::tree::Author { device: Some("old-hub".into()), origin: None };
    for (name, claim, times) in FORGED {
        let list = forged_list(hash, claim, times);
        ssync_server::db::manifests::put(&conn, &list).unwrap();
        let commit = ssync_server::tree::FileCommit {
            path: RelPath::parse(&format!("forged-{name}")).unwrap(),
            kind: EntryKind::File,
            base: 0,
            hash: list.id(),
            size: list.size(),
            mode: 0o644,
            mtime_ns: 1,
            carried: Default::default(),
        };
        let tree = ssync_server::db::Scoped::new(&conn, ssync_server::db::ShareId::DEFAULT);
        ssync_server::tree::commit_file(&tree, &author, commit).unwrap();
    }
}

#[test]
fn a_mount_refuses_a_forged_entry_once_and_its_feed_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = Hub::start(dir.path());
    let a = Mount::start(dir.path(), "a", &hub);
    let b = Mount::start(dir.path(), "b", &hub);
    let mut c = Mount::start_with(dir.path(), "c", &hub, &["--cache-max", "16M"]);
    // The chunk the forged lists name is really on the hub.
    let data = pseudo_random(REAL_LEN, 1);
    std::fs::write(a.p("real"), &data).unwrap();
    for m in [&b, &c] {
        wait_for_content(&m.p("real"), &data, Duration::from_secs(20));
    }
    hub.stop();
    forge_as_an_old_hub_would(&hub, ContentHash::of(&data));
    hub.restart();
    // Changes made after the forged ones still arrive everywhere.
    std::fs::write(a.p("after"), b"after the forged entries").unwrap();
    for m in [&b, &c] {
        wait_for_content(&m.p("after"), b"after the forged entries", Duration::from_secs(20));
    }
    // Long enough for an idle mount's compare with the hub (every 15 s),
    // which finds the refused entries missing and must not log them again.
    std::thread::sleep(Duration::from_secs(17));
    std::fs::write(a.p("later"), b"and later").unwrap();
    wait_for_content(&b.p("later"), b"and later", Duration::from_secs(20));
    for (name, _, _) in FORGED {
        let path = format!("forged-{name}");
        assert!(!b.p(&path).exists(), "a full mount does not show {path}, whose bytes it cannot have");
        let said = b.log().lines().filter(|l| l.contains(&path) && l.contains("skipped")).count();
        assert_eq!(said, 1, "{path} is refused and said once:\n{}", b.log());
    }
    assert!(b.log().contains("does not add up"), "{}", b.log());
    // A mount with a cache limit lists entries before their content: the
    // ones whose size this machine can hold are listed, and a read fails
    // with EIO instead of returning bytes that are not the file's.
    wait_for_content(&c.p("later"), b"and later", Duration::from_secs(20));
    for name in ["short", "long", "max"] {
        let path = c.p(&format!("forged-{name}"));
        if let Ok(read) = std::fs::read(&path) {
            panic!("{} read {} bytes of a forged file", path.display(), read.len());
        }
    }
    assert!(!c.p("forged-sixteen-tib").exists(), "a 16 TiB placeholder cannot be made here, and is refused");
    assert!(c.is_running(), "the small-cache mount is still up");
}
