//! The HTTP surface: the Lifecycle API mounted at `/` and `/v1`, plus
//! `/health`, `/metrics` and the API docs (`/openapi.json`, `/docs`,
//! `/redoc`) at the root.
//!
//! Middleware, outermost first: request id + span + access log + metrics,
//! CORS (configured origins only), API-key auth (or, with auth off, the
//! `Host` check), then the router. Handlers only translate HTTP to
//! [`SandboxService`](crate::sandbox::service::SandboxService) calls.

pub mod auth;
pub mod catalog;
pub mod extract;
pub mod forward;
pub mod hop;
pub mod middleware;
pub mod network_policy;
pub mod openapi;
pub mod relay;
pub mod route_stream;
pub mod sandboxes;
pub mod sdk;
pub mod server_proxy;
pub mod snapshots;
pub mod system;
pub mod upstream;
pub mod web;

use std::sync::Arc;

use axum::Router;
use axum::http::{Method, StatusCode};
use axum::routing::{get, patch, post};

use crate::error::{ApiError, codes};
use crate::metrics::Metrics;
use crate::sandbox::service::SandboxService;

/// Tag of the lifecycle operations in the OpenAPI document.
pub const TAG_SANDBOXES: &str = "Sandboxes";
/// Tag of `/health` and `/metrics` in the OpenAPI document.
pub const TAG_SYSTEM: &str = "System";

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The sandbox domain service.
    pub service: SandboxService,
    /// The snapshot domain service.
    pub snapshots: crate::sandbox::snapshot::SnapshotService,
    /// API-key checking.
    pub auth: Arc<auth::ApiKeyAuth>,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// The routing table for edge proxies.
    pub routes: crate::routes::RoutePublisher,
    /// Who may stream it.
    pub route_access: route_stream::RouteStreamAccess,
    /// How server-proxy paths reach sandboxes (relay or forward).
    pub server_proxy: Arc<server_proxy::ServerProxy>,
    /// Allowed CORS origins and `Host` names.
    pub web: Arc<crate::config::WebConfig>,
    /// The state store, for `/health`.
    pub store: crate::store::Store,
}

/// The lifecycle routes, mounted twice.
fn lifecycle_routes() -> Router<AppState> {
    Router::new()
        .merge(snapshots::routes())
        .route("/sandboxes", post(sandboxes::create).get(sandboxes::list))
        .route(
            "/sandboxes/{sandbox_id}",
            get(sandboxes::get_one).delete(sandboxes::delete),
        )
        .route(
            "/sandboxes/{sandbox_id}/metadata",
            patch(sandboxes::patch_metadata),
        )
        .route("/sandboxes/{sandbox_id}/pause", post(sandboxes::pause))
        .route("/sandboxes/{sandbox_id}/resume", post(sandboxes::resume))
        .route(
            "/sandboxes/{sandbox_id}/renew-expiration",
            post(sandboxes::renew),
        )
        .route(
            "/sandboxes/{sandbox_id}/endpoints/{port}",
            get(sandboxes::endpoint),
        )
        .route(
            "/sandboxes/{sandbox_id}/diagnostics/inspect",
            get(sandboxes::inspect),
        )
        .route(
            "/sandboxes/{sandbox_id}/diagnostics/summary",
            get(sandboxes::summary),
        )
        .route(
            "/sandboxes/{sandbox_id}/diagnostics/{kind}",
            get(sandboxes::diagnostics),
        )
        .merge(server_proxy::routes())
        .merge(network_policy::routes())
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(lifecycle_routes())
        .nest("/v1", lifecycle_routes())
        .merge(catalog::routes())
        .merge(sdk::routes())
        .route("/health", get(system::health))
        .route("/metrics", get(system::metrics))
        .route("/internal/v1/routes", get(route_stream::routes))
        .merge(openapi::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ))
        .layer(web::cors(&state.web))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::request_context,
        ))
        .with_state(state)
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::NOT_FOUND,
        format!("No route for {method} {}.", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        codes::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}.", uri.path()),
    )
}
