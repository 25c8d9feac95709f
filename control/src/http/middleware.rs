//! Per-request context: the `X-Request-ID`, a span carrying it, one
//! access-log line, the error cause logged once, metrics.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tokio::time::Instant;
use tracing::Instrument;

use super::AppState;
use crate::error::ErrorCause;

/// The request-id header, echoed or generated on every response.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

tokio::task_local! {
    static CURRENT: HeaderValue;
}

/// The id of the request being handled on this task, if any.
pub fn current_request_id() -> Option<String> {
    CURRENT
        .try_with(|id| id.to_str().unwrap_or("-").to_owned())
        .ok()
}

/// Assigns the request id, times the request in a span carrying the id,
/// logs one line (and the cause of an error response) and records metrics.
pub async fn request_context(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = incoming_id(&request).unwrap_or_else(generate_id);
    request.extensions_mut().insert(RequestId(id.clone()));
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    // `Router::layer` runs after routing, so the matched route is known here.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let span = tracing::info_span!(
        "request",
        request.id = id.to_str().unwrap_or("-"),
        http.method = %method,
        http.route = %route,
    );
    async move {
        let mut response = CURRENT.scope(id.clone(), next.run(request)).await;
        let elapsed = started.elapsed();
        let status = response.status().as_u16();
        response
            .headers_mut()
            .insert(REQUEST_ID.clone(), id.clone());
        if let Some(cause) = response.extensions_mut().remove::<ErrorCause>() {
            log_cause(status, &cause);
        }
        state
            .metrics
            .request(&route, method.as_str(), status, elapsed);
        tracing::info!(
            http.path = %path,
            http.status = status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
        response
    }
    .instrument(span)
    .await
}

fn log_cause(status: u16, cause: &ErrorCause) {
    if status >= 500 {
        tracing::error!(http.status = status, error.code = cause.code, error = %cause.chain, "request failed");
    } else {
        tracing::warn!(http.status = status, error.code = cause.code, error = %cause.chain, "request refused");
    }
}

fn incoming_id(request: &Request) -> Option<HeaderValue> {
    let raw = request.headers().get(&REQUEST_ID)?.to_str().ok()?.trim();
    let usable = !raw.is_empty() && raw.len() <= 200;
    usable.then(|| HeaderValue::from_str(raw).ok()).flatten()
}

fn generate_id() -> HeaderValue {
    let id = uuid::Uuid::new_v4().simple().to_string();
    HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("-"))
}
