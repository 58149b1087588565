//! The hub never reads or writes outside its data dir, whatever path a
//! request names: every traversal form, sent to every endpoint that takes a
//! path, is refused with 400 and a JSON error, and changes nothing.
use ssync_tests::Hub;
use std::collections::BTreeSet;
use std::path::Path;

/// Traversal forms as they arrive once decoded (JSON strings).
fn decoded_forms() -> Vec<String> {
    let mut forms: Vec<String> = [
        "..",
        ".",
        "../escape",
        "a/../../escape",
        "a/./b",
        "/etc/passwd",
        "/",
        "a\\..\\..\\escape",
        "..\\escape",
        "a\0b",
        "..\0/escape",
        "a//b",
        "a/",
        "",
        "\u{ff0e}\u{ff0e}/escape",   // full-width dots: '..' under NFKC
        "a\u{ff0f}..\u{ff0f}escape", // full-width solidus: '/' under NFKC
        "\u{2024}\u{2024}/escape",   // one-dot leaders: '..' under NFKC
        "evil\u{202e}txt.exe",       // right-to-left override
        "line\nbreak",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    forms.push("x".repeat(256)); // one name too long
    forms.push(vec!["abcdefgh"; 600].join("/")); // a path too long
    forms
}

/// Traversal forms as they appear in a URL, percent-encoded (query strings).
const ENCODED_FORMS: &[&str] = &[
    "..",
    "..%2Fescape",
    "%2e%2e%2fescape",
    "%2E%2E/escape",
    "a%2F..%2F..%2Fescape",
    "%2Fetc%2Fpasswd",
    "..%5Cescape",
    "a%00b",
    "%EF%BC%8E%EF%BC%8E/escape", // full-width dots
    "%C0%AE%C0%AE/escape",       // overlong UTF-8 for '..': not UTF-8 at all
];

/// Every file and folder under `root`, except the hub's own data dir and log.
fn outside_data(root: &Path, data: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p == data || p == data.with_extension("log") {
                continue;
            }
            out.insert(p.display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

fn assert_400(resp: reqwest::blocking::Response, what: &str) {
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().unwrap_or_else(|e| panic!("{what}: error body is not JSON: {e}"));
    assert_eq!(status, 400, "{what}: {body}");
    assert!(body["code"].is_string() && body["message"].is_string(), "{what}: {body}");
}

#[test]
fn every_traversal_form_on_every_path_endpoint_is_400_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Bait next to the data dir: what an escape would read or overwrite.
    std::fs::write(dir.path().join("escape"), b"outside").unwrap();
    let hub = Hub::start(dir.path());
    let before = outside_data(dir.path(), &hub.data);
    let http = hub.http();
    let url = hub.url();
    let empty = ssync_common::ChunkList::default();
    let mut sent = 0;

    for form in decoded_forms() {
        let p = serde_json::Value::String(form.clone());
        let bodies = [
            (
                "commit",
                serde_json::json!({"path": p, "base": 0, "id": empty.id(), "size": 0, "mode": 420,
                "mtime_ns": 0, "list": ssync_common::api::WireList::whole(&empty)}),
            ),
            ("mkdir", serde_json::json!({"path": p, "base": 0, "mode": 493, "mtime_ns": 0})),
            ("delete", serde_json::json!({"path": p, "base": 1})),
            ("setattr", serde_json::json!({"path": p, "base": 1, "mode": 420})),
            ("rename", serde_json::json!({"from": p, "to": "ok", "base": 1})),
            ("rename", serde_json::json!({"from": "ok", "to": p, "base": 1})),
            ("restore", serde_json::json!({"path": p, "version": 1})),
            ("restore", serde_json::json!({"path": "ok", "version": 1, "as": p})),
            ("restore-tree", serde_json::json!({"path": p, "at_ns": 0})),
        ];
        for (endpoint, body) in bodies {
            let resp = http.post(format!("{url}/v1/shares/default/{endpoint}")).json(&body).send().unwrap();
            assert_400(resp, &format!("POST /v1/shares/default/{endpoint} with {form:?}"));
            sent += 1;
        }
    }
    // The same forms with JSON escapes instead of the characters themselves.
    for raw in [r#""\u002e\u002e/escape""#, r#""a\u005c..\u005cescape""#, r#""a\u0000b""#] {
        let body = format!(r#"{{"path": {raw}, "base": 0, "mode": 493, "mtime_ns": 0}}"#);
        let resp =
            http.post(format!("{url}/v1/shares/default/mkdir")).header("content-type", "application/json").body(body);
        assert_400(resp.send().unwrap(), &format!("POST /v1/shares/default/mkdir with {raw}"));
        sent += 1;
    }
    // Raw bytes that are not UTF-8 (an overlong encoding of '..').
    let mut body = br#"{"path": ""#.to_vec();
    body.extend_from_slice(b"\xc0\xae\xc0\xae/escape");
    body.extend_from_slice(br#"", "base": 0, "mode": 493, "mtime_ns": 0}"#);
    let resp =
        http.post(format!("{url}/v1/shares/default/mkdir")).header("content-type", "application/json").body(body);
    assert_400(resp.send().unwrap(), "POST /v1/shares/default/mkdir with overlong UTF-8");
    for form in ENCODED_FORMS {
        for endpoint in ["entry", "versions"] {
            let resp = http.get(format!("{url}/v1/shares/default/{endpoint}?path={form}")).send().unwrap();
            assert_400(resp, &format!("GET /v1/shares/default/{endpoint}?path={form}"));
            sent += 1;
        }
        // Content ids are hashes; anything else, decoded or not, is refused.
        for endpoint in ["content", "manifest"] {
            let resp = http.get(format!("{url}/v1/shares/default/{endpoint}/{form}")).send().unwrap();
            let status = resp.status().as_u16();
            // A form with an encoded '/' may not match the route at all (404); it must never be served.
            assert!(status == 400 || status == 404, "GET /v1/shares/default/{endpoint}/{form}: {status}");
            sent += 1;
        }
    }

    assert!(sent > 200, "only {sent} requests were sent");
    let tree: serde_json::Value = http.get(format!("{url}/v1/shares/default/tree")).send().unwrap().json().unwrap();
    assert_eq!(tree["entries"].as_array().map(Vec::len), Some(0), "nothing was stored: {tree}");
    assert_eq!(tree["cursor"], 0, "no change was numbered");
    assert_eq!(outside_data(dir.path(), &hub.data), before, "nothing appeared outside the data dir");
    assert_eq!(std::fs::read(dir.path().join("escape")).unwrap(), b"outside", "the bait is untouched");
    assert!(!hub.log().contains("panicked"), "{}", hub.log());
}
