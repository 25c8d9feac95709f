//! `GET /version` (root only, no key needed) and `POST /v1/metrics/events`
//! (SDK-reported create timings, `/v1` only), as OpenSandbox 1.1.1 mounts
//! them.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use sandgate_shared::api::ErrorBody;
use serde::Serialize;
use utoipa::OpenApi;

use super::AppState;
use super::extract::ApiJson;
use crate::sdk_events::{EventType, MetricsEvent, language_label, sdk_from_user_agent};

/// The body of `GET /version`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VersionInfo {
    /// Sandgate's version (not OpenSandbox's).
    pub version: &'static str,
}

/// The routes: `/version` at the root, `/v1/metrics/events`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/version", get(version))
        .route("/v1/metrics/events", post(metrics_event))
}

/// The operations, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(version, metrics_event))]
pub struct SdkDoc;

#[utoipa::path(get, path = "/version", operation_id = "version", tag = super::TAG_SYSTEM,
    summary = "The server's version", security(()),
    responses((status = 200, description = "Sandgate's version.", body = VersionInfo)))]
/// `GET /version`.
pub async fn version() -> Json<VersionInfo> {
    Json(VersionInfo {
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[utoipa::path(post, path = "/v1/metrics/events", operation_id = "reportMetricsEvent",
    tag = super::TAG_SYSTEM, summary = "Report an SDK-measured event", request_body = MetricsEvent,
    responses(
        (status = 204, description = "Recorded in `sandgate_sdk_create_events` and `sandgate_sdk_create_duration_seconds`."),
        (status = 400, description = "A body field breaks a rule; the message names it.", body = ErrorBody),
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
    ))]
/// `POST /v1/metrics/events`: the SDK language comes from `User-Agent`.
pub async fn metrics_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(event): ApiJson<MetricsEvent>,
) -> StatusCode {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let (language, sdk_version) = sdk_from_user_agent(agent);
    match event.event_type {
        EventType::SandboxCreate => {
            let duration = Duration::from_millis(event.create_duration_ms);
            state
                .metrics
                .sdk_create(language_label(&language), event.success, duration);
            tracing::debug!(
                sandbox.id = event.sandbox_id.as_deref().unwrap_or_default(),
                duration_ms = event.create_duration_ms,
                success = event.success,
                sdk = %language,
                sdk_version = %sdk_version,
                "SDK reported a sandbox create"
            );
        }
    }
    StatusCode::NO_CONTENT
}
