//! Retention and garbage collection on a real data dir.
use axum::body::Body;
use axum::http::{Request, StatusCode};
use ssync_common::ContentHash;
use ssync_server::{app, gc, AppState, Limits, Retention};
use std::time::Duration;
use tower::ServiceExt;

async fn put(state: &AppState, path: &str, base: u64, body: &'static str) -> u64 {
    let req =
        Request::put(format!("/v1/file?path={path}&base={base}&mode=420&mtime_ns=0")).body(Body::from(body)).unwrap();
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["entries"].as_array().unwrap().last().unwrap()["version"].as_u64().unwrap()
}

fn stored(state: &AppState, body: &str) -> bool {
    state.store.object_path(&ContentHash::of(body.as_bytes())).exists()
}

#[tokio::test]
async fn keeps_n_versions_and_deletes_what_nothing_names() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention { keep_versions: 2, ..Retention::default() };
    let state = AppState::open_with(dir.path(), Limits::default(), retention).await.unwrap();
    let v1 = put(&state, "f", 0, "first").await;
    let v2 = put(&state, "f", v1, "second").await;
    put(&state, "f", v2, "third").await;
    let report = gc::collect(&state).await.unwrap();
    assert_eq!(report.pruned_versions, 1, "{report:?}");
    assert_eq!(report.deleted_objects, 1);
    assert_eq!(report.freed_bytes, 5);
    assert!(!stored(&state, "first") && stored(&state, "second") && stored(&state, "third"));
    // Nothing more to do the second time.
    assert_eq!(gc::collect(&state).await.unwrap(), gc::GcReport::default());
}

#[tokio::test]
async fn old_versions_expire_but_current_content_stays() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention { keep: Duration::ZERO, ..Retention::default() };
    let state = AppState::open_with(dir.path(), Limits::default(), retention).await.unwrap();
    let v1 = put(&state, "f", 0, "old").await;
    put(&state, "f", v1, "current").await;
    let report = gc::collect(&state).await.unwrap();
    assert_eq!((report.pruned_versions, report.deleted_objects), (1, 1), "{report:?}");
    assert!(stored(&state, "current"), "the live entry's content is never collected");
}

#[tokio::test]
async fn collection_waits_for_an_upload_between_store_and_commit() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(dir.path(), Limits::default()).await.unwrap();
    // An upload that has put its object in place and not committed yet.
    let uploading = state.store.gc_lock.clone().read_owned().await;
    let pending = tokio::spawn({
        let state = state.clone();
        async move { gc::collect(&state).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pending.is_finished(), "GC must not decide while an upload is between store and commit");
    drop(uploading);
    tokio::time::timeout(Duration::from_secs(5), pending).await.expect("GC proceeds after the commit").unwrap();
}
