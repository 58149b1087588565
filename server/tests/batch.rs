//! `POST /v1/shares/default/batch`: changes applied in order in one transaction, each
//! checked as its own endpoint would; the first refusal ends the batch, what
//! came before it stays, and nothing of the refused change is written.
mod support;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use ssync_common::api::{inline_encode, WireList};
use ssync_common::chunks::list_of;
use ssync_server::{AppState, Limits};

fn post(uri: &str, body: serde_json::Value) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .header("x-ssync-mount", "m1")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// A commit change of a small file, its chunks inline.
fn commit(path: &str, base: u64, data: &[u8]) -> serde_json::Value {
    let list = list_of(data);
    let mut frames = Vec::new();
    for (off, c) in list.with_offsets() {
        ssync_common::frames::encode(&mut frames, &c.hash, &data[off as usize..off as usize + c.len as usize], false);
    }
    serde_json::json!({"op": "commit", "path": path, "base": base, "id": list.id(), "size": list.size(),
        "mode": 0o644, "mtime_ns": 1, "list": WireList::whole(&list), "inline": inline_encode(&frames)})
}

#[tokio::test]
async fn a_batch_applies_in_order_and_stops_at_the_first_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(dir.path(), Limits::default()).await.unwrap();
    let (status, v) = support::call_json(
        &state,
        post(
            "/v1/shares/default/batch",
            serde_json::json!({"changes": [
                {"op": "mkdir", "path": "d", "base": 0, "mode": 0o755, "mtime_ns": 1},
                commit("d/f", 0, b"first"),
                {"op": "delete", "path": "d/f", "base": 999},
                {"op": "mkdir", "path": "never", "base": 0, "mode": 0o755, "mtime_ns": 1},
            ]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let done = v["done"].as_array().unwrap();
    assert_eq!(done.len(), 2, "mkdir and commit applied: {v}");
    assert_eq!(done[1]["entries"][0]["path"], "d/f");
    assert_eq!(done[1]["entries"][0]["origin"], "m1", "the mount that made it is recorded");
    assert_eq!(
        (v["refused"]["status"].as_u64(), v["refused"]["error"]["code"].as_str()),
        (Some(409), Some("conflict"))
    );
    assert_eq!(v["refused"]["error"]["current"]["path"], "d/f", "the refusal carries the hub's entry");

    let (_, tree) =
        support::call_json(&state, Request::get("/v1/shares/default/tree").body(Body::empty()).unwrap()).await;
    let paths: Vec<&str> = tree["entries"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["d", "d/f"], "nothing after the refusal was applied");

    // A change refused halfway (a parent that is a file) leaves nothing of itself.
    let f_version = done[1]["entries"][0]["version"].as_u64().unwrap();
    let (status, v) = support::call_json(
        &state,
        post(
            "/v1/shares/default/batch",
            serde_json::json!({"changes": [
                {"op": "rename", "from": "d/f", "to": "d/g", "base": f_version, "to_base": 0},
                commit("d/g/x/y", 0, b"under a file"),
            ]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["done"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["refused"]["error"]["code"], "path_blocked", "{v}");
    let (_, tree) =
        support::call_json(&state, Request::get("/v1/shares/default/tree").body(Body::empty()).unwrap()).await;
    let paths: Vec<&str> = tree["entries"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["d", "d/g"]);

    let too_many: Vec<serde_json::Value> = (0..1001)
        .map(|i| serde_json::json!({"op": "mkdir", "path": format!("m{i}"), "base": 0, "mode": 0o755, "mtime_ns": 1}))
        .collect();
    let (status, v) =
        support::call_json(&state, post("/v1/shares/default/batch", serde_json::json!({"changes": too_many}))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
}
