//! What a commit may make: files, and symlinks whose target (their content)
//! is at most 4095 bytes; folders come from mkdir, other kinds from nowhere.
mod support;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use ssync_common::api::WireList;
use ssync_common::chunks::list_of;
use ssync_server::{AppState, Limits};

#[tokio::test]
async fn a_commit_makes_files_and_short_symlinks_only() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(dir.path(), Limits::default()).await.unwrap();
    let commit = |kind: &str, size: u64| {
        let list = list_of(b"");
        let body = serde_json::json!({"path": "x", "kind": kind, "base": 0, "id": list.id(), "size": size,
            "mode": 0o777, "mtime_ns": 0, "list": WireList::whole(&list)});
        Request::post("/v1/shares/default/commit")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let (status, v) = support::call_json(&state, commit("dir", 0)).await;
    assert_eq!((status, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")), "{v}");
    assert!(v["message"].as_str().unwrap().contains("unknown variant `dir`"), "{v}");
    let (status, v) = support::call_json(&state, commit("symlink", 4096)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["message"].as_str().unwrap().contains("at most 4095 bytes"), "{v}");
    let (status, v) = support::call_json(&state, commit("socket", 0)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an unknown kind: {v}");
    let (status, v) = support::call_json(&state, commit("symlink", 0)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["entries"][0]["kind"], "symlink");
}
