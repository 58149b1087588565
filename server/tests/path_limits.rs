//! Path length limits over the real router: the parser's own (4096/255) and a
//! hub's narrower `--max-path-bytes`/`--max-name-bytes`, for paths a request
//! names and for the paths a folder rename would make. A refused request is a
//! 400 naming the limit and changes nothing.
mod support;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use ssync_common::PathLimits;
use ssync_server::{AppState, Limits};

async fn state(paths: PathLimits) -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (AppState::open(dir.path(), Limits { paths, ..Limits::default() }).await.unwrap(), dir)
}

use support::call_json as call;

async fn post(state: &AppState, endpoint: &str, body: Value) -> (StatusCode, Value) {
    let req = Request::post(endpoint).header("content-type", "application/json").body(Body::from(body.to_string()));
    call(state, req.unwrap()).await
}

async fn mkdir(state: &AppState, path: &str) -> (StatusCode, Value) {
    post(state, "/v1/shares/default/mkdir", json!({"path": path, "base": 0, "mode": 0o755, "mtime_ns": 0})).await
}

async fn cursor(state: &AppState) -> u64 {
    let (status, tree) = call(state, Request::get("/v1/shares/default/tree").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    tree["cursor"].as_u64().unwrap()
}

async fn version_of(state: &AppState, path: &str) -> u64 {
    let (status, e) =
        call(state, Request::get(format!("/v1/shares/default/entry?path={path}")).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    e["version"].as_u64().unwrap()
}

fn assert_refused(what: &str, (status, body): (StatusCode, Value), message: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
    assert_eq!(body["code"], "bad_path", "{what}: {body}");
    assert!(body["message"].as_str().unwrap().contains(message), "{what}: {body}");
}

#[tokio::test]
async fn a_folder_rename_that_would_outgrow_4096_bytes_is_refused() {
    let (state, _dir) = state(PathLimits::default()).await;
    // d/xxx.../xxx... : 4003 bytes, within the limit.
    let deep = format!("d/{}", vec!["x".repeat(199); 20].join("/"));
    assert_eq!(mkdir(&state, &deep).await.0, StatusCode::OK);
    let before = cursor(&state).await;
    let d = version_of(&state, "d").await;
    let longer = "n".repeat(200);
    let moved = post(&state, "/v1/shares/default/rename", json!({"from": "d", "to": longer, "base": d})).await;
    assert_refused("rename d", moved, "the limit is 4096");
    assert_eq!(cursor(&state).await, before, "nothing was numbered");
    assert_eq!(version_of(&state, "d").await, d, "the folder stayed where it was");
    // The hub carries on: a rename that fits goes through.
    let fits = post(&state, "/v1/shares/default/rename", json!({"from": "d", "to": "e", "base": d})).await;
    assert_eq!(fits.0, StatusCode::OK, "{}", fits.1);
}

#[tokio::test]
async fn narrower_limits_hold_for_every_path_a_request_names() {
    let (state, _dir) = state(PathLimits { max_path_bytes: 32, max_name_bytes: 8 }).await;
    assert_refused("mkdir", mkdir(&state, "abcdefghi").await, "component is 9 bytes long; the limit is 8");
    assert_refused("mkdir", mkdir(&state, "aaaaaaaa/bbbbbbbb/cccccccc/dddddd").await, "is 33 bytes");
    let long = "aaaaaaaa/bbbbbbbb/cccccccc/ddddd";
    assert_eq!(mkdir(&state, long).await.0, StatusCode::OK, "32 bytes fit");
    let too_long = format!("{long}x");
    let (status, body) =
        call(&state, Request::get(format!("/v1/shares/default/entry?path={too_long}")).body(Body::empty()).unwrap())
            .await;
    assert_refused("entry", (status, body), "33 bytes long; the limit is 32");
    let a = version_of(&state, "aaaaaaaa").await;
    let rename = json!({"from": "aaaaaaaa", "to": "aaaaaaaaa", "base": a});
    assert_refused("rename to a long name", post(&state, "/v1/shares/default/rename", rename).await, "the limit is 8");
    let before = cursor(&state).await;
    let rename = json!({"from": "aaaaaaaa/bbbbbbbb", "to": "zz/bbbbbbbb", "base": version_of(&state, "aaaaaaaa/bbbbbbbb").await});
    assert_eq!(post(&state, "/v1/shares/default/rename", rename).await.0, StatusCode::OK, "26 bytes after the move");
    assert!(cursor(&state).await > before);
    let before = cursor(&state).await;
    let rename = json!({"from": "zz", "to": "zzzzzzzz/y", "base": version_of(&state, "zz").await});
    assert_refused(
        "rename growing a child",
        post(&state, "/v1/shares/default/rename", rename).await,
        "34 bytes long; the limit is 32",
    );
    assert_eq!(cursor(&state).await, before, "nothing was numbered");
}
