//! Retention and garbage collection on a real data dir.
mod support;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use ssync_common::api::WireList;
use ssync_common::chunks::list_of;
use ssync_common::ContentHash;
use ssync_server::{gc, AppState, Limits, Retention};
use std::time::Duration;

use support::call_json as call;

/// Sends `body`'s chunks and commits them as `path`, as a mount does.
async fn put(state: &AppState, path: &str, base: u64, body: &'static str) -> u64 {
    let list = list_of(body.as_bytes());
    let mut frames = Vec::new();
    for c in &list.0 {
        ssync_common::frames::encode(&mut frames, &c.hash, body.as_bytes(), false);
    }
    let (status, _) = call(state, Request::post("/v1/shares/default/chunks").body(Body::from(frames)).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let commit = serde_json::json!({"path": path, "base": base, "id": list.id(), "size": list.size(),
        "mode": 420, "mtime_ns": 0, "list": WireList::whole(&list)});
    let req = Request::post("/v1/shares/default/commit")
        .header("content-type", "application/json")
        .body(Body::from(commit.to_string()));
    let (status, v) = call(state, req.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["entries"].as_array().unwrap().last().unwrap()["version"].as_u64().unwrap()
}

async fn stored(state: &AppState, body: &str) -> bool {
    state.store.read_chunk(&ContentHash::of(body.as_bytes())).await.is_ok_and(|b| b == body.as_bytes())
}

fn no_grace() -> Retention {
    Retention { grace: Duration::ZERO, ..Retention::default() }
}

#[tokio::test]
async fn keeps_n_versions_and_deletes_what_nothing_names() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention { keep_versions: 2, ..no_grace() };
    let state = AppState::open_with(dir.path(), Limits::default(), retention).await.unwrap();
    let v1 = put(&state, "f", 0, "first").await;
    let v2 = put(&state, "f", v1, "second").await;
    put(&state, "f", v2, "third").await;
    let report = gc::collect(&state).await.unwrap();
    assert_eq!(report.pruned_versions, 1, "{report:?}");
    assert_eq!(report.deleted_objects, 1);
    assert_eq!(report.freed_bytes, 5);
    assert!(!stored(&state, "first").await && stored(&state, "second").await && stored(&state, "third").await);
    // Nothing more to do the second time.
    assert_eq!(gc::collect(&state).await.unwrap(), gc::GcReport::default());
}

#[tokio::test]
async fn old_versions_expire_but_current_content_stays() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention { keep: Duration::ZERO, ..no_grace() };
    let state = AppState::open_with(dir.path(), Limits::default(), retention).await.unwrap();
    let v1 = put(&state, "f", 0, "old").await;
    put(&state, "f", v1, "current").await;
    let report = gc::collect(&state).await.unwrap();
    assert_eq!((report.pruned_versions, report.deleted_objects), (1, 1), "{report:?}");
    assert!(stored(&state, "current").await, "the live entry's content is never collected");
}

#[tokio::test]
async fn collection_waits_for_a_commit_checking_its_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open_with(dir.path(), Limits::default(), no_grace()).await.unwrap();
    // A commit (or a "have it" answer) between checking chunks and recording them.
    let committing = state.store.gc_lock.clone().read_owned().await;
    let pending = tokio::spawn({
        let state = state.clone();
        async move { gc::collect(&state).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pending.is_finished(), "GC must not decide while a commit relies on its chunks");
    drop(committing);
    tokio::time::timeout(Duration::from_secs(5), pending).await.expect("GC proceeds after the commit").unwrap();
}

#[tokio::test]
async fn unnamed_chunks_are_kept_for_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(dir.path(), Limits::default()).await.unwrap();
    let v1 = put(&state, "f", 0, "uploaded earlier").await;
    put(&state, "f", v1, "now").await;
    let mut frames = Vec::new();
    ssync_common::frames::encode(&mut frames, &ContentHash::of(b"not committed yet"), b"not committed yet", false);
    call(&state, Request::post("/v1/shares/default/chunks").body(Body::from(frames)).unwrap()).await;
    let report = gc::collect(&state).await.unwrap();
    assert_eq!(report.deleted_objects, 0, "young chunks stay: {report:?}");
    assert!(stored(&state, "not committed yet").await && stored(&state, "uploaded earlier").await);
}

#[tokio::test]
async fn a_mostly_unused_pack_is_rewritten_with_what_is_still_named() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open_with(dir.path(), Limits::default(), no_grace()).await.unwrap();
    // One upload request, one pack: a named chunk between two that nothing names.
    let mut frames = Vec::new();
    for body in ["an abandoned upload, long enough to outweigh the rest", "kept", "another abandoned upload"] {
        ssync_common::frames::encode(&mut frames, &ContentHash::of(body.as_bytes()), body.as_bytes(), false);
    }
    let (status, _) = call(&state, Request::post("/v1/shares/default/chunks").body(Body::from(frames)).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    put(&state, "f", 0, "kept").await;
    let packs_before = state.store.list_packs().unwrap();
    assert_eq!(packs_before.len(), 1, "the commit found its chunk stored: {packs_before:?}");
    let report = gc::collect(&state).await.unwrap();
    assert_eq!(report.deleted_objects, 2, "{report:?}");
    let packs_after = state.store.list_packs().unwrap();
    assert_eq!(packs_after.len(), 1);
    assert_ne!(packs_after[0].0, packs_before[0].0, "rewritten as a new pack");
    assert_eq!(packs_after[0].1, 4, "holding only the named chunk");
    assert_eq!(report.freed_bytes, packs_before[0].1 - 4);
    assert!(stored(&state, "kept").await && !stored(&state, "another abandoned upload").await);
}
