//! The route table: every endpoint of the hub in one place, with its layers.
mod changes;
mod chunks;
mod health;
mod history;
mod mutate;

use crate::error::{ApiError, LoggedError};
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tower_http::trace::TraceLayer;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/health", get(health::health))
        .route("/v1/tree", get(changes::tree))
        .route("/v1/changes", get(changes::changes))
        .route("/v1/stats", get(health::stats))
        .route("/v1/content/{id}", get(chunks::download))
        .route("/v1/manifest/{id}", get(chunks::manifest))
        .route("/v1/chunks", post(chunks::upload))
        .route("/v1/chunks/missing", post(chunks::missing))
        .route("/v1/chunks/fetch", post(chunks::fetch))
        .route("/v1/commit", post(chunks::commit))
        .route("/v1/mkdir", post(mutate::mkdir))
        .route("/v1/delete", post(mutate::delete))
        .route("/v1/rename", post(mutate::rename))
        .route("/v1/setattr", post(mutate::set_attr))
        .route("/v1/entry", get(history::entry))
        .route("/v1/versions", get(history::versions))
        .route("/v1/restore", post(history::restore))
        .route("/v1/restore-tree", post(history::restore_tree))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // JSON requests (hash lists included); chunk uploads are streamed and capped on their own.
        .layer(DefaultBodyLimit::max(state.limits.max_json_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), crate::auth::require_token))
        .layer(middleware::from_fn(log_errors))
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn_with_state(state.traffic.clone(), crate::traffic::count))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint; the API lives under /v1 (see README)".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::BadRequest("method not allowed on this endpoint".into())
}

/// Logs each failed request once, at a level that fits its status.
async fn log_errors(req: Request, next: Next) -> Response {
    let (method, uri) = (req.method().clone(), req.uri().path().to_string());
    let resp = next.run(req).await;
    if let Some(LoggedError(msg)) = resp.extensions().get::<LoggedError>() {
        let status = resp.status();
        if status.is_server_error() {
            tracing::error!(%method, %uri, %status, "{msg}");
        } else if status.as_u16() == 409 || status.as_u16() == 404 {
            tracing::debug!(%method, %uri, %status, "{msg}");
        } else {
            tracing::warn!(%method, %uri, %status, "{msg}");
        }
    }
    resp
}
