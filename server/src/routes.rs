//! The route table: every endpoint of the hub in one place, with its layers.
mod batch;
mod changes;
pub(crate) mod chunks;
mod health;
mod history;
mod mutate;
mod shares;

use crate::error::{ApiError, LoggedError};
use crate::openapi::{self, ApiDoc, Document};
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::{Extension, Router};
use ssync_common::log_limit::LogLimiter;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router(state: AppState) -> Router {
    let (routes, api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(openapi::document))
        .routes(routes!(changes::tree))
        .routes(routes!(changes::digest))
        .routes(routes!(changes::list))
        .routes(routes!(changes::changes))
        .routes(routes!(health::stats))
        .routes(routes!(shares::shares))
        .routes(routes!(chunks::download))
        .routes(routes!(chunks::manifest))
        .routes(routes!(chunks::manifests_many))
        .routes(routes!(chunks::upload))
        .routes(routes!(chunks::missing))
        .routes(routes!(chunks::fetch))
        .routes(routes!(chunks::commit))
        .routes(routes!(mutate::mkdir))
        .routes(routes!(mutate::delete))
        .routes(routes!(mutate::rename))
        .routes(routes!(mutate::exchange))
        .routes(routes!(mutate::set_attr))
        .routes(routes!(batch::batch))
        .routes(routes!(history::entry))
        .routes(routes!(history::versions))
        .routes(routes!(history::restore))
        .routes(routes!(history::restore_tree))
        .split_for_parts();
    routes
        .layer(Extension(Document::from_routes(api)))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // JSON requests (hash lists included); chunk uploads are streamed and capped on their own.
        .layer(DefaultBodyLimit::max(state.limits.max_json_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), crate::body_limits::enforce))
        .layer(middleware::from_fn_with_state(state.clone(), crate::scope::resolve))
        .layer(middleware::from_fn_with_state(state.clone(), crate::auth::require_token))
        .layer(middleware::from_fn(log_errors))
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn_with_state(state.traffic.clone(), crate::traffic::count))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound(
        "no such endpoint; the API lives under /v1, a share's tree under /v1/shares/NAME/ \
         (GET /v1/openapi.json lists it; a mount older than shares must be upgraded)"
            .into(),
    )
}

async fn method_not_allowed() -> ApiError {
    // axum adds the `Allow` header naming the methods the endpoint takes.
    ApiError::MethodNotAllowed("this endpoint does not take that method; see the Allow header".into())
}

/// Refusals of one kind (method and status): a few a minute, the rest counted,
/// so a client that repeats a bad request cannot flood the log.
static REFUSALS: LogLimiter = LogLimiter::new(std::time::Duration::from_secs(60), 10);

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
        } else if let Some(left_out) = REFUSALS.admit(&format!("{method} {status}")) {
            match left_out {
                0 => tracing::warn!(%method, %uri, %status, "{msg}"),
                n => tracing::warn!(%method, %uri, %status, left_out = n, "{msg} (and {n} more like it since)"),
            }
        } else {
            tracing::debug!(%method, %uri, %status, "{msg}");
        }
    }
    resp
}
