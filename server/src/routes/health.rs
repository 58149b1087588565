use crate::db::{entries, DbError};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use ssync_common::api::{Health, Stats};

pub async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    let cursor = state.db.call(|c| Ok::<_, DbError>(entries::last_seq(c)?)).await?;
    Ok(Json(Health { status: "ok".into(), version: env!("CARGO_PKG_VERSION").into(), cursor }))
}

/// `GET /v1/stats`: bytes received and sent since the hub started.
pub async fn stats(State(state): State<AppState>) -> Json<Stats> {
    Json(state.traffic.stats())
}
