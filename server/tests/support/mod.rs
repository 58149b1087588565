//! What the in-process router tests share.
use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use ssync_server::{app, AppState};
use tower::ServiceExt;

/// Sends `req` through the hub's router with a token made for it, as a mount would.
pub async fn send(state: &AppState, mut req: Request<Body>) -> Response {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = format!("test-{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let token = ssync_server::token_cli::add(&state.db, &name).unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    app(state.clone()).oneshot(req).await.unwrap()
}

/// `send`, and the answer's status and JSON body (`Null` when it is not JSON).
#[allow(dead_code)] // not every test file uses it
pub async fn call_json(state: &AppState, req: Request<Body>) -> (axum::http::StatusCode, serde_json::Value) {
    let resp = send(state, req).await;
    let status = resp.status();
    let bytes = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

/// Records chunk list `list` and makes it the content of file `path` in the
/// default share (a content is read only through a share that holds it).
#[allow(dead_code)] // not every test file uses it
pub async fn put_file(state: &AppState, path: &str, list: &ssync_common::ChunkList) {
    use ssync_server::db::{manifests, DbError, Scoped, ShareId};
    use ssync_server::tree::{commit_file, Author, Carried, FileCommit};
    let (path, list) = (ssync_common::RelPath::parse(path).unwrap(), list.clone());
    state
        .db
        .call(move |c| {
            manifests::put(c, &list).map_err(DbError::from)?;
            let commit = FileCommit {
                path,
                kind: ssync_common::api::EntryKind::File,
                base: 0,
                hash: list.id(),
                size: list.size(),
                mode: 0o644,
                mtime_ns: 0,
                carried: Carried::default(),
            };
            commit_file(&Scoped::new(c, ShareId::DEFAULT), &Author::default(), commit)
                .map_err(|e| DbError::Join(e.to_string()))?;
            Ok::<_, DbError>(())
        })
        .await
        .unwrap();
}
