//! Lifecycle handlers: HTTP in, `SandboxService` call, HTTP out. No logic.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use sandgate_shared::api::{
    CreateSandboxResponse, Endpoint, ListSandboxesResponse, RenewExpiration, Sandbox,
};

use super::AppState;
use super::extract::{ApiJson, RawQueryString};
use crate::error::{ApiError, codes};
use crate::sandbox::lifecycle::DeleteCause;
use crate::sandbox::ops::EndpointOptions;
use crate::sandbox::query::ListQuery;
use crate::sandbox::request::CreateSandboxBody;

/// `POST /sandboxes` → 202 with the `Pending` sandbox.
pub async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateSandboxBody>,
) -> Result<(StatusCode, Json<CreateSandboxResponse>), ApiError> {
    let record = state.service.create(body).await?;
    Ok((StatusCode::ACCEPTED, Json(record.to_create_response())))
}

/// `GET /sandboxes`.
pub async fn list(
    State(state): State<AppState>,
    RawQueryString(query): RawQueryString,
) -> Result<Json<ListSandboxesResponse>, ApiError> {
    let query = ListQuery::parse(query.as_deref())
        .map_err(|p| ApiError::new(StatusCode::BAD_REQUEST, p.code, p.message))?;
    Ok(Json(state.service.list(&query)))
}

/// `GET /sandboxes/{id}`.
pub async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, ApiError> {
    Ok(Json(state.service.get(&id)?.to_api()))
}

/// `DELETE /sandboxes/{id}` → 204 once the runtime removed it.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.service.delete(&id, DeleteCause::User).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PATCH /sandboxes/{id}/metadata` (JSON merge patch).
pub async fn patch_metadata(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<BTreeMap<String, Option<String>>>,
) -> Result<Json<Sandbox>, ApiError> {
    Ok(Json(
        state.service.patch_metadata(&id, patch).await?.to_api(),
    ))
}

/// `POST /sandboxes/{id}/pause` → 202.
pub async fn pause(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.service.pause(&id).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /sandboxes/{id}/resume` → 202.
pub async fn resume(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.service.resume(&id).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /sandboxes/{id}/renew-expiration`.
pub async fn renew(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RenewExpiration>,
) -> Result<Json<RenewExpiration>, ApiError> {
    let expires_at = state.service.renew(&id, body.expires_at).await?;
    Ok(Json(RenewExpiration { expires_at }))
}

/// `GET /sandboxes/{id}/endpoints/{port}`.
pub async fn endpoint(
    State(state): State<AppState>,
    Path((id, port)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    RawQueryString(query): RawQueryString,
) -> Result<Json<Endpoint>, ApiError> {
    let mut options = endpoint_options(query.as_deref())?;
    options.request_host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let port = parse_port(&port)?;
    Ok(Json(state.service.endpoint(&id, port, options).await?))
}

fn parse_port(text: &str) -> Result<u16, ApiError> {
    let number: i64 = text
        .parse()
        .map_err(|_| ApiError::invalid(format!("port: {text:?} is not an integer")))?;
    u16::try_from(number)
        .ok()
        .filter(|p| *p >= 1)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::INVALID_PORT,
                "Port must be between 1 and 65535.",
            )
        })
}

fn endpoint_options(query: Option<&str>) -> Result<EndpointOptions, ApiError> {
    let mut options = EndpointOptions::default();
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "use_server_proxy" => {
                options.use_server_proxy = parse_flag("use_server_proxy", &value)?
            }
            "expires" => {
                let expires = value.trim().parse::<u64>().map_err(|_| {
                    ApiError::invalid(format!(
                        "expires: {value:?} must be a non-negative Unix timestamp in seconds"
                    ))
                })?;
                options.expires = Some(expires);
            }
            _ => {}
        }
    }
    Ok(options)
}

fn parse_flag(name: &str, value: &str) -> Result<bool, ApiError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err(ApiError::invalid(format!(
            "{name}: {value:?} is not a boolean; use true or false"
        ))),
    }
}

/// `GET /sandboxes/{id}/diagnostics/{logs|events}?scope=…`. Without `scope`
/// the text alone is returned as `text/plain` with `Deprecation: true`, as
/// OpenSandbox's legacy clients expect (scope `all`).
pub async fn diagnostics(
    State(state): State<AppState>,
    Path((id, kind)): Path<(String, String)>,
    RawQueryString(query): RawQueryString,
) -> Result<axum::response::Response, ApiError> {
    use crate::sandbox::diagnostics::DiagnosticKind;
    use axum::response::IntoResponse;
    let kind = match kind.as_str() {
        "logs" => DiagnosticKind::Logs,
        "events" => DiagnosticKind::Events,
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                codes::NOT_FOUND,
                format!("No diagnostics kind {other:?}; use logs or events."),
            ));
        }
    };
    let scope = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned());
    let Some(scope) = scope else {
        let content = state.service.diagnostics(&id, kind, "all").await?.content;
        let headers = [
            (
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            ),
            (axum::http::HeaderName::from_static("deprecation"), "true"),
        ];
        return Ok((headers, content).into_response());
    };
    Ok(Json(state.service.diagnostics(&id, kind, &scope).await?).into_response())
}
