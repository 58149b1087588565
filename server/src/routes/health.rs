use crate::db::{entries, DbError, Scoped, ShareId};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use ssync_common::api::{Health, Stats};

#[utoipa::path(get, path = "/v1/health", tag = "hub", security(()),
    responses((status = 200, description = "The hub is up; `cursor` is its newest change", body = Health)))]
pub async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    let cursor = state.db.call(|c| Ok::<_, DbError>(entries::last_seq(&Scoped::new(c, ShareId::DEFAULT))?)).await?;
    Ok(Json(Health { status: "ok".into(), version: env!("CARGO_PKG_VERSION").into(), cursor }))
}

/// `GET /v1/stats`: bytes received and sent since the hub started.
#[utoipa::path(get, path = "/v1/stats", tag = "hub",
    responses((status = 200, description = "Bytes moved since the hub started", body = Stats)))]
pub async fn stats(State(state): State<AppState>) -> Json<Stats> {
    Json(state.traffic.stats())
}
