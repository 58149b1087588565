use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use ssync_common::api::{Health, Stats};

#[utoipa::path(get, path = "/v1/health", tag = "hub", security(()),
    responses((status = 200, description = "The hub is up, and its version", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok".into(), version: env!("CARGO_PKG_VERSION").into() })
}

/// `GET /v1/stats`: bytes received and sent since the hub started.
#[utoipa::path(get, path = "/v1/stats", tag = "hub",
    responses((status = 200, description = "Bytes moved since the hub started", body = Stats)))]
pub async fn stats(State(state): State<AppState>) -> Json<Stats> {
    Json(state.traffic.stats())
}
