//! `/health` (never behind auth) and `/metrics` (Prometheus text).

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;

use super::AppState;

/// The body of `GET /health`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// `healthy`, or `degraded` when the runtime does not answer or the store cannot be written.
    pub status: &'static str,
    /// The configured runtime (`docker`).
    pub runtime: &'static str,
    /// `ok`, or why the runtime does not answer.
    pub runtime_status: String,
    /// `ok`, or that writes to the state store are failing.
    pub store_status: &'static str,
}

#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = super::TAG_SYSTEM,
    summary = "Liveness and runtime reachability",
    security(()),
    responses(
        (status = 200, description = "The server is up; `status` says whether the runtime answers.", body = Health),
    )
)]
/// `GET /health`: always 200 while the process serves; `status` says
/// whether the runtime answers.
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    let runtime = state.service.runtime();
    let checked = tokio::time::timeout(std::time::Duration::from_secs(2), runtime.health()).await;
    let (status, runtime_status) = match checked {
        Ok(Ok(())) => ("healthy", "ok".to_owned()),
        Ok(Err(error)) => ("degraded", error.to_string()),
        Err(_) => (
            "degraded",
            "the runtime did not answer within 2s".to_owned(),
        ),
    };
    let store_status = if state.store.writes_failing() {
        "writes are failing: changes cannot be saved"
    } else {
        "ok"
    };
    Json(Health {
        status: if store_status == "ok" {
            status
        } else {
            "degraded"
        },
        runtime: runtime.kind().as_str(),
        runtime_status,
        store_status,
    })
}

#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = super::TAG_SYSTEM,
    summary = "Prometheus metrics",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4.", body = String, content_type = "text/plain"),
        (status = 401, description = "The API key is missing or wrong.", body = sandgate_shared::api::ErrorBody),
    )
)]
/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let counts = state.service.registry().count_by_state();
    state.metrics.snapshots(|s| state.snapshots.count(s));
    let body = state.metrics.render(&counts, state.service.armed_timers());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}
