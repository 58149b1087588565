//! The change feed over the real router: answers at once when something is
//! newer than the cursor, holds the request until a commit otherwise, and
//! reports deletes and renames as entries above the cursor.
mod support;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use ssync_common::api::EntriesPage;
use ssync_server::{AppState, Limits};
use std::time::{Duration, Instant};

async fn state() -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (AppState::open(dir.path(), Limits::default()).await.unwrap(), dir)
}

async fn call(state: &AppState, req: Request<Body>) -> (StatusCode, Vec<u8>) {
    let resp = support::send(state, req).await;
    let status = resp.status();
    (status, resp.into_body().collect().await.unwrap().to_bytes().to_vec())
}

async fn changes(state: &AppState, since: u64, wait: u64) -> EntriesPage {
    let req =
        Request::get(format!("/v1/shares/default/changes?since={since}&wait={wait}")).body(Body::empty()).unwrap();
    let (status, body) = call(state, req).await;
    assert_eq!(status, StatusCode::OK);
    serde_json::from_slice(&body).unwrap()
}

async fn mkdir(state: &AppState, path: &str) {
    let body = serde_json::json!({"path": path, "base": 0, "mode": 493, "mtime_ns": 0}).to_string();
    let req = Request::post("/v1/shares/default/mkdir")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(call(state, req).await.0, StatusCode::OK);
}

#[tokio::test]
async fn long_poll_wakes_on_commit_not_on_timeout() {
    let (state, _dir) = state().await;
    let waiting = tokio::spawn({
        let state = state.clone();
        async move {
            let t = Instant::now();
            (changes(&state, 0, 30).await, t.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "nothing is newer than 0 yet: the request must wait");
    mkdir(&state, "d").await;
    let (page, took) = tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap();
    assert!(took < Duration::from_secs(5), "woken by the commit, not the 30 s wait ({took:?})");
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].path.as_str(), "d");
    assert_eq!(page.cursor, 1);
}

#[tokio::test]
async fn answers_at_once_with_everything_newer_than_the_cursor() {
    let (state, _dir) = state().await;
    for p in ["a", "b", "c"] {
        mkdir(&state, p).await;
    }
    let t = Instant::now();
    let page = changes(&state, 1, 30).await;
    assert!(t.elapsed() < Duration::from_secs(1));
    let paths: Vec<_> = page.entries.iter().map(|e| e.path.to_string()).collect();
    assert_eq!(paths, vec!["b", "c"]);
    assert_eq!(page.cursor, 3);

    let empty = changes(&state, 3, 0).await;
    assert!(empty.entries.is_empty());
    assert_eq!(empty.cursor, 3);

    let body = serde_json::json!({"path": "a", "base": 1}).to_string();
    let req = Request::post("/v1/shares/default/delete")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(call(&state, req).await.0, StatusCode::OK);
    let page = changes(&state, 3, 0).await;
    assert_eq!(page.entries.len(), 1);
    assert!(page.entries[0].deleted, "a delete is reported as a tombstone");
}

#[tokio::test]
async fn shutdown_releases_waiting_polls() {
    let (state, _dir) = state().await;
    let waiting = tokio::spawn({
        let state = state.clone();
        async move { changes(&state, 0, 60).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    state.shutdown.cancel();
    let page = tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("released by shutdown").unwrap();
    assert!(page.entries.is_empty());
}
