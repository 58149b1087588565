//! Hostile or malformed requests get 400 with a JSON error naming the problem,
//! and change nothing; names the hub cannot store are refused by the mount.
use ssync_tests::{api_upload, hub_packed_chunks, Cluster, Hub};
use std::fs;

fn json_error(resp: reqwest::blocking::Response) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().expect("error bodies are JSON");
    (status, body)
}

fn assert_bad(resp: reqwest::blocking::Response, needle: &str) {
    let (status, body) = json_error(resp);
    assert_eq!(status, 400, "{body}");
    let msg = body["message"].as_str().unwrap_or_default().to_string();
    assert!(body["code"].is_string(), "{body}");
    assert!(msg.contains(needle), "message {msg:?} should mention {needle:?}");
}

#[test]
fn bad_paths_and_bodies_are_400_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let http = hub.http();
    let url = hub.url();
    let long = "x".repeat(300);
    let cases: Vec<(&str, &str)> = vec![
        ("../escape", "'..'"),
        ("a/../../etc/passwd", "'..'"),
        ("/etc/passwd", "relative"),
        ("a\0b", "NUL"),
        (&long, "limit is 255"),
        ("a\\..\\b", "backslash"),
        ("a//b", "empty component"),
    ];
    for (path, needle) in &cases {
        let list = ssync_common::api::WireList::whole(&ssync_common::ChunkList::default());
        let commit = serde_json::json!({"path": path, "base": 0, "id": ssync_common::ChunkList::default().id(),
            "size": 0, "mode": 420, "mtime_ns": 0, "list": list});
        assert_bad(http.post(format!("{url}/v1/shares/default/commit")).json(&commit).send().unwrap(), needle);
        for (ep, body) in [
            ("mkdir", serde_json::json!({"path": path, "base": 0, "mode": 493, "mtime_ns": 0})),
            ("delete", serde_json::json!({"path": path, "base": 1})),
            ("setattr", serde_json::json!({"path": path, "base": 1, "mode": 420})),
            ("rename", serde_json::json!({"from": "ok", "to": path, "base": 1})),
            ("exchange", serde_json::json!({"a": "ok", "b": path, "a_base": 1, "b_base": 1})),
        ] {
            let resp = http.post(format!("{url}/v1/shares/default/{ep}")).json(&body).send().unwrap();
            assert_bad(resp, needle);
        }
    }
    // Malformed bodies and queries.
    let resp = http
        .post(format!("{url}/v1/shares/default/mkdir"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .unwrap();
    assert_bad(resp, "JSON");
    let resp =
        http.post(format!("{url}/v1/shares/default/rename")).json(&serde_json::json!({"from": "a"})).send().unwrap();
    assert_bad(resp, "missing field");
    let resp = http.get(format!("{url}/v1/shares/default/changes?since=minus-one")).send().unwrap();
    assert_bad(resp, "since");
    let resp = http.get(format!("{url}/v1/shares/default/content/..%2F..%2Fmeta.db")).send().unwrap();
    assert_bad(resp, "hex");
    let (status, body) = json_error(http.get(format!("{url}/v1/nope")).send().unwrap());
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));

    // Nothing was written: the tree is empty and no object was stored.
    let tree: serde_json::Value = http.get(format!("{url}/v1/shares/default/tree")).send().unwrap().json().unwrap();
    assert_eq!(tree["entries"].as_array().map(Vec::len), Some(0), "{tree}");
    assert_eq!(tree["cursor"], 0);
    assert_eq!(hub_packed_chunks(&hub.data), (0, 0), "no chunk may be stored for a refused request");
    assert!(!hub.log().contains("panicked"), "{}", hub.log());
}

#[test]
fn stale_base_version_is_409_with_current_entry() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let http = hub.http();
    let put =
        |base: &str, body: &'static str| api_upload(&http, &hub.url(), "f.txt", base.parse().unwrap(), body.as_bytes());
    let first: serde_json::Value = put("0", "one").json().unwrap();
    let v1 = first["entries"][0]["version"].as_u64().unwrap();
    assert_eq!(put(&v1.to_string(), "two").status().as_u16(), 200);
    let stale = put(&v1.to_string(), "three");
    let (status, body) = json_error(stale);
    assert_eq!(status, 409);
    assert_eq!(body["code"], "conflict");
    assert_eq!(body["current"]["size"], 3, "the current entry is the 'two' version: {body}");
    let tree: serde_json::Value =
        http.get(format!("{}/v1/shares/default/tree", hub.url())).send().unwrap().json().unwrap();
    assert_eq!(tree["cursor"], 2, "the refused request took no sequence number");
}

#[test]
fn names_the_hub_cannot_store_are_refused_by_the_mount() {
    let c = Cluster::new(1);
    let a = &c.mounts[0];
    let err = fs::write(a.p("back\\slash"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
    let err = fs::write(a.p(&"n".repeat(256)), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENAMETOOLONG), "{err}");
    let err = fs::read(a.p("missing")).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    fs::create_dir(a.p("d")).unwrap();
    fs::write(a.p("d/f"), b"x").unwrap();
    assert_eq!(fs::remove_dir(a.p("d")).unwrap_err().raw_os_error(), Some(libc::ENOTEMPTY));
    assert!(a.p("d/f").exists());
}

#[test]
fn chunks_are_checked_and_commits_need_every_chunk() {
    use ssync_common::{chunks::list_of, frames, ContentHash};
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let http = hub.http();
    let url = hub.url();
    // A chunk whose bytes do not match its name: 400, and nothing of the request is stored.
    let mut body = Vec::new();
    frames::encode(&mut body, &ContentHash::of(b"good"), b"good", false);
    frames::encode(&mut body, &ContentHash::of(b"claimed"), b"forged", false);
    assert_bad(
        http.post(format!("{url}/v1/shares/default/chunks")).body(body.clone()).send().unwrap(),
        "different bytes",
    );
    assert_eq!(hub_packed_chunks(&hub.data), (0, 0), "a request with a forged chunk stores nothing");
    // A stream cut inside a frame.
    assert_bad(
        http.post(format!("{url}/v1/shares/default/chunks")).body(body[..20].to_vec()).send().unwrap(),
        "ends inside",
    );
    // A commit naming chunks the hub never got: 422, and no version.
    let data = ssync_tests::pseudo_random(200_000, 4);
    let list = list_of(&data);
    let commit = serde_json::json!({"path": "f", "base": 0, "id": list.id(), "size": list.size(), "mode": 420,
        "mtime_ns": 0, "list": ssync_common::api::WireList::whole(&list)});
    let (status, err) = json_error(http.post(format!("{url}/v1/shares/default/commit")).json(&commit).send().unwrap());
    assert_eq!((status, err["code"].as_str()), (422, Some("missing_chunks")), "{err}");
    // An id that is not the list's hash.
    let mut wrong = commit.clone();
    wrong["id"] = serde_json::json!(ContentHash::of(b"x"));
    assert_bad(http.post(format!("{url}/v1/shares/default/commit")).json(&wrong).send().unwrap(), "does not hash");
    let tree: serde_json::Value = http.get(format!("{url}/v1/shares/default/tree")).send().unwrap().json().unwrap();
    assert_eq!(tree["cursor"], 0, "{tree}");
    // Once the chunks are there, the same commit goes through and the content reads back.
    assert_eq!(api_upload(&http, &url, "f", 0, &data).status().as_u16(), 200);
    let back = http.get(format!("{url}/v1/shares/default/content/{}", list.id())).send().unwrap().bytes().unwrap();
    assert!(back[..] == data[..], "the file reads back from its chunks");
    assert!(!hub.log().contains("panicked"), "{}", hub.log());
}

/// A symlink's target with a NUL byte would be cut there on every mount, and
/// `user.` (an empty name after the namespace) is what Linux refuses: both
/// are 400, stored or inline, and leave nothing on the hub.
#[test]
fn a_nul_in_a_symlink_target_and_an_empty_xattr_name_are_400() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let (http, url) = (hub.http(), hub.url());
    for (target, inline) in [(&b"../etc\0passwd"[..], true), (&b"/tmp/a\0b"[..], false)] {
        let mut change = ssync_tests::batch_commit("link", target);
        change["kind"] = "symlink".into();
        if !inline {
            let frames = change.as_object_mut().unwrap().remove("inline").unwrap();
            let raw = ssync_common::api::inline_decode(frames.as_str().unwrap()).unwrap();
            assert_eq!(
                http.post(format!("{url}/v1/shares/default/chunks")).body(raw).send().unwrap().status().as_u16(),
                200
            );
        }
        assert_bad(http.post(format!("{url}/v1/shares/default/commit")).json(&change).send().unwrap(), "NUL");
    }
    let mkdir = serde_json::json!({"path": "d", "base": 0, "mode": 493, "mtime_ns": 0, "xattrs": {"user.": ""}});
    assert_bad(http.post(format!("{url}/v1/shares/default/mkdir")).json(&mkdir).send().unwrap(), "user.NAME");
    let tree: serde_json::Value = http.get(format!("{url}/v1/shares/default/tree")).send().unwrap().json().unwrap();
    assert_eq!(tree["entries"], serde_json::json!([]), "nothing was stored: {tree}");
}
