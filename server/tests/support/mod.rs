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
