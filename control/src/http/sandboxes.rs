//! Lifecycle handlers: HTTP in, `SandboxService` call, HTTP out. No logic.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sandgate_shared::api::{
    CreateSandboxResponse, DiagnosticContent, Endpoint, ErrorBody, ListSandboxesResponse,
    RenewExpiration, Sandbox,
};

use super::AppState;
use super::extract::ApiJson;
use crate::error::{ApiError, codes};
use crate::sandbox::devops::{EventsQuery, LogsQuery, SummaryQuery};
use crate::sandbox::diagnostics::DiagnosticKind;
use crate::sandbox::lifecycle::DeleteCause;
use crate::sandbox::ops::EndpointOptions;
use crate::sandbox::query::ListQuery;
use crate::sandbox::request::CreateSandboxBody;

/// `POST /sandboxes` → 202 with the `Pending` sandbox.
#[utoipa::path(
    post,
    path = "/v1/sandboxes",
    operation_id = "createSandbox",
    tag = super::TAG_SANDBOXES,
    summary = "Create a sandbox",
    request_body(
        content = CreateSandboxBody,
        description = "What to run. Unknown fields are ignored.",
        example = json!({
            "image": {"uri": "python:3.12"},
            "entrypoint": ["python", "-m", "http.server"],
            "resourceLimits": {"cpu": "500m", "memory": "512Mi"},
            "timeout": 3600,
            "metadata": {"team": "infra"}
        })
    ),
    responses(
        (
            status = 202,
            description = "Accepted; the sandbox is `Pending` while it is provisioned.",
            body = CreateSandboxResponse,
            links(
                ("getSandbox" = (operation_id = "getSandbox", parameters(("sandboxId" = "$response.body#/id")))),
                ("patchSandboxMetadata" = (operation_id = "patchSandboxMetadata", parameters(("sandboxId" = "$response.body#/id")))),
                ("pauseSandbox" = (operation_id = "pauseSandbox", parameters(("sandboxId" = "$response.body#/id")))),
                ("resumeSandbox" = (operation_id = "resumeSandbox", parameters(("sandboxId" = "$response.body#/id")))),
                ("renewSandboxExpiration" = (operation_id = "renewSandboxExpiration", parameters(("sandboxId" = "$response.body#/id")))),
                ("getSandboxEndpoint" = (operation_id = "getSandboxEndpoint", parameters(("sandboxId" = "$response.body#/id")))),
                ("getSandboxDiagnostics" = (operation_id = "getSandboxDiagnostics", parameters(("sandboxId" = "$response.body#/id")))),
                ("inspectSandbox" = (operation_id = "inspectSandbox", parameters(("sandboxId" = "$response.body#/id")))),
                ("getSandboxDiagnosticsSummary" = (operation_id = "getSandboxDiagnosticsSummary", parameters(("sandboxId" = "$response.body#/id")))),
                ("deleteSandbox" = (operation_id = "deleteSandbox", parameters(("sandboxId" = "$response.body#/id")))),
            )
        ),
        (status = 400, description = "A parameter or body field breaks a rule; the message names it.", body = ErrorBody),
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 404, description = "The snapshot to restore does not exist.", body = ErrorBody),
        (status = 409, description = "The sandbox's state does not allow the operation.", body = ErrorBody),
        (status = 500, description = "The runtime or the state store failed.", body = ErrorBody),
        (status = 503, description = "The runtime is not reachable or not ready; retry.", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateSandboxBody>,
) -> Result<(StatusCode, Json<CreateSandboxResponse>), ApiError> {
    let record = state.service.create(body).await?;
    Ok((StatusCode::ACCEPTED, Json(record.to_create_response())))
}

/// `GET /sandboxes`.
#[utoipa::path(
    get,
    path = "/v1/sandboxes",
    operation_id = "listSandboxes",
    tag = super::TAG_SANDBOXES,
    summary = "List sandboxes",
    params(
        ("state" = Option<Vec<String>>, Query, style = Form, explode, description = "Lifecycle states to match (any case); repeat for OR. Unknown names match nothing."),
        ("metadata" = Option<String>, Query, description = "URL-encoded `key=value&key2=value2` metadata filter (AND)."),
        ("page" = Option<i64>, Query, minimum = 1, maximum = 4294967295_i64, description = "1-based page number (default 1)."),
        ("pageSize" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Items per page (default 20, at most 200)."),
    ),
    responses(
        (status = 200, description = "One page of sandboxes, newest first.", body = ListSandboxesResponse),
        (status = 400, description = "A parameter or body field breaks a rule; the message names it.", body = ErrorBody),
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 500, description = "The runtime or the state store failed.", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<ListSandboxesResponse>, ApiError> {
    let query = ListQuery::parse(query.as_deref())
        .map_err(|p| ApiError::new(StatusCode::BAD_REQUEST, p.code, p.message))?;
    Ok(Json(state.service.list(&query)))
}

/// `GET /sandboxes/{id}`.
#[utoipa::path(
    get,
    path = "/v1/sandboxes/{sandboxId}",
    operation_id = "getSandbox",
    tag = super::TAG_SANDBOXES,
    summary = "Get a sandbox",
    params(
        ("sandboxId" = String, Path, description = "The sandbox id."),
    ),
    responses(
        (status = 200, description = "The sandbox.", body = Sandbox),
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 404, description = "No such sandbox.", body = ErrorBody),
        (status = 500, description = "The runtime or the state store failed.", body = ErrorBody),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, ApiError> {
    Ok(Json(state.service.get(&id)?.to_api()))
}

/// `DELETE /sandboxes/{id}` → 204 once the runtime removed it.
#[utoipa::path(
    delete,
    path = "/v1/sandboxes/{sandboxId}",
    operation_id = "deleteSandbox",
    tag = super::TAG_SANDBOXES,
    summary = "Delete a sandbox",
    params(
        ("sandboxId" = String, Path, description = "The sandbox id."),
    ),
    responses(
        (status = 204, description = "Deleted: the runtime removed it."),
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 404, description = "No such sandbox.", body = ErrorBody),
        (status = 409, description = "The sandbox's state does not allow the operation.", body = ErrorBody),
        (status = 500, description = "The runtime or the state store failed.", body = ErrorBody),
        (status = 503, description = "The runtime is not reachable or not ready; retry.", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.service.delete(&id, DeleteCause::User).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PATCH /sandboxes/{id}/metadata` (JSON merge patch).
#[utoipa::path(
    patch,
    path = "/v1/sandboxes/{sandboxId}/metadata",
    operation_id = "patchSandboxMetadata",
    tag = super::TAG_SANDBOXES,
    summary = "Patch sandbox metadata",
    params(
        ("sandboxId" = String, Path, description = "The sandbox id."),
    ),
    request_body(content = BTreeMap<String, Option<String>>, description = "JSON merge patch (RFC 7396): a string sets a key, `null` removes it, `{}` changes nothing."),
    responses(
        (status = 200, description = "The sandbox with its updated metadata.", body = Sandbox),
        (status = 400, description = "A parameter or body field breaks a rule; the message names it.", body = ErrorBody),
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 404, description = "No such sandbox.", body = ErrorBody),
        (status = 409, description = "The sandbox's state does not allow the operation.", body = ErrorBody),
        (status = 500, description = "The runtime or the state store failed.", body = ErrorBody),
        (status = 503, description = "The runtime is not reachable or not ready; retry.", body = ErrorBody),
    )
)]
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
#[utoipa::path(
    post,
    path = "/v1/sandboxes/{sandboxId}/pause",
    operation_id = "pauseSandbox",
    tag = super::TAG_SANDBOXES,
    summary = "Pause a sandbox",
    params(
        ("sandboxId" = String, Path, description = "The sandbox id."),
    ),
    responses(
        (status = 202, description = "Accepted; the sandbox goes through `Pausing` to `Paused`."),
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 404, description = "No such sandbox.", body = ErrorBody),
        (status = 409, description = "The sandbox's state does not allow the operation.", body = ErrorBody),
        (status = 500, description = "The runtime or the state store failed.", body = ErrorBody),
        (status = 503, description = "The runtime is not reachable or not ready; retry.", body = ErrorBody),
    )
)]
pub async fn pause(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.service.pause(&id).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /sandboxes/{id}/resume` → 202.
#[utoipa::path(
    post,
    path = "/v1/sandboxes/{sandboxId}/resume",
    operation_id = "resumeSandbox",
    tag = super::TAG_SANDBOXES,
    summary = "Resume a paused sandbox",
    params(
        ("sandboxId" = String, Path, description = "The sandbox id."),
    ),
    responses(
        (status = 202, description = "Accepted; the sandbox goes through `Resuming` to `Running`."),
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 404, description = "No such sandbox.", body = ErrorBody),
        (status = 409, description = "The sandbox's state does not allow the operation.", body = ErrorBody),
        (status = 500, description = "The runtime or the state store failed.", body = ErrorBody),
        (status = 503, description = "The runtime is not reachable or not ready; retry.", body = ErrorBody),
    )
)]
pub async fn resume(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.service.resume(&id).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /sandboxes/{id}/renew-expiration`.
#[utoipa::path(
    post,
    path = "/v1/sandboxes/{sandboxId}/renew-expiration",
    operation_id = "renewSandboxExpiration",
    tag = super::TAG_SANDBOXES,
    summary = "Renew sandbox expiration",
    params(
        ("sandboxId" = String, Path, description = "The sandbox id."),
    ),
    request_body(content = RenewExpiration, description = "The new absolute expiry."),
    responses(
        (status = 200, description = "The expiry now in force.", body = RenewExpiration),
        (status = 400, description = "A parameter or body field breaks a rule; the message names it.", body = ErrorBody),
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 404, description = "No such sandbox.", body = ErrorBody),
        (status = 409, description = "The sandbox's state does not allow the operation.", body = ErrorBody),
        (status = 500, description = "The runtime or the state store failed.", body = ErrorBody),
        (status = 503, description = "The runtime is not reachable or not ready; retry.", body = ErrorBody),
    )
)]
pub async fn renew(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RenewExpiration>,
) -> Result<Json<RenewExpiration>, ApiError> {
    let expires_at = state.service.renew(&id, body.expires_at).await?;
    Ok(Json(RenewExpiration { expires_at }))
}

/// `GET /sandboxes/{id}/endpoints/{port}`.
#[utoipa::path(
    get,
    path = "/v1/sandboxes/{sandboxId}/endpoints/{port}",
    operation_id = "getSandboxEndpoint",
    tag = super::TAG_SANDBOXES,
    summary = "Get a sandbox access endpoint",
    params(
        ("sandboxId" = String, Path, description = "The sandbox id."),
        ("port" = u16, Path, minimum = 1, maximum = 65535, description = "Port the service listens on inside the sandbox."),
        ("use_server_proxy" = Option<bool>, Query, description = "Return an endpoint relayed through this server (default false). Cannot be combined with `expires`."),
        ("expires" = Option<u64>, Query, description = "Issue a signed route valid until this Unix time, in whole seconds. Cannot be combined with `use_server_proxy=true`."),
    ),
    responses(
        (status = 200, description = "Where to reach the port, and the headers to send.", body = Endpoint),
        (status = 400, description = "A parameter or body field breaks a rule; the message names it.", body = ErrorBody),
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 404, description = "No such sandbox.", body = ErrorBody),
        (status = 409, description = "The sandbox's state does not allow the operation.", body = ErrorBody),
        (status = 500, description = "The runtime or the state store failed.", body = ErrorBody),
        (status = 503, description = "The runtime is not reachable or not ready; retry.", body = ErrorBody),
    )
)]
pub async fn endpoint(
    State(state): State<AppState>,
    Path((id, port)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Endpoint>, ApiError> {
    let mut options = endpoint_options(query.as_deref())?;
    options.request_host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let port = parse_port(&port)?;
    Ok(Json(state.service.endpoint(&id, port, options).await?))
}

pub(super) fn parse_port(text: &str) -> Result<u16, ApiError> {
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
/// the plain text OpenSandbox's legacy clients read (`osb devops logs |
/// events`) is returned as `text/plain` with `Deprecation: true`.
#[utoipa::path(
    get,
    path = "/v1/sandboxes/{sandboxId}/diagnostics/{kind}",
    operation_id = "getSandboxDiagnostics",
    tag = super::TAG_SANDBOXES,
    summary = "Get diagnostic logs or events",
    params(
        ("sandboxId" = String, Path, description = "The sandbox id."),
        ("kind" = String, Path, pattern = "^(logs|events)$", description = "`logs` or `events`."),
        ("scope" = Option<String>, Query, pattern = "^(all|lifecycle|container|runtime)$", description = "`all`, `lifecycle`, and `container` (logs) or `runtime` (events). Without it the legacy plain text is returned as `text/plain` (deprecated): logs are the container output only, events are the status history and the engine's process events merged by time."),
        ("tail" = Option<u32>, Query, minimum = 1, maximum = 10000, description = "Without `scope`, logs only: at most this many of the last lines (default 100)."),
        ("since" = Option<String>, Query, description = "Without `scope`, logs only: only the output of the last `30s`, `10m`, `1h`, `2d`, …; a value that does not parse means `10m`."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "Without `scope`, events only: at most this many of the most recent events (default 50)."),
    ),
    responses(
        (status = 200, description = "The diagnostic text: JSON with `scope`; without it plain text, `(no logs)` or `(no events)` when there is none.", content(
            (DiagnosticContent = "application/json"),
            (String = "text/plain"),
        )),
        (status = 400, description = "A parameter or body field breaks a rule; the message names it.", body = ErrorBody),
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 404, description = "No such sandbox, or an unknown kind.", body = ErrorBody),
        (status = 500, description = "The runtime or the state store failed.", body = ErrorBody),
        (status = 503, description = "The runtime is not reachable or not ready; retry.", body = ErrorBody),
    )
)]
pub async fn diagnostics(
    State(state): State<AppState>,
    Path((id, kind)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let kind = match kind.as_str() {
        "logs" => DiagnosticKind::Logs,
        "events" => DiagnosticKind::Events,
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                codes::NOT_FOUND,
                format!("No diagnostics kind {other:?}; use logs, events, inspect or summary."),
            ));
        }
    };
    let query = query.as_deref();
    let scope = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned());
    let Some(scope) = scope else {
        let text = match kind {
            DiagnosticKind::Logs => {
                let query = LogsQuery::parse(query)?;
                state.service.plain_logs(&id, query).await?
            }
            DiagnosticKind::Events => {
                let query = EventsQuery::parse(query)?;
                state.service.plain_events(&id, query).await?
            }
        };
        return Ok(plain_text(text, true));
    };
    Ok(Json(state.service.diagnostics(&id, kind, &scope).await?).into_response())
}

/// `GET /sandboxes/{id}/diagnostics/inspect`: the engine object, as text.
#[utoipa::path(
    get,
    path = "/v1/sandboxes/{sandboxId}/diagnostics/inspect",
    operation_id = "inspectSandbox",
    tag = super::TAG_SANDBOXES,
    summary = "Inspect a sandbox's container",
    description = "What the runtime knows about the sandbox's container: id, name, image, state, exit code, start and finish times, restart count, OOM kill, resource limits, network mode and addresses, ports, mounts and labels. Environment values are never shown. Plain text for `osb devops inspect` (OpenSandbox marks this route deprecated; it has no replacement).",
    params(
        ("sandboxId" = String, Path, description = "The sandbox id."),
    ),
    responses(
        (status = 200, description = "The description, one `Field: value` per line.", body = String, content_type = "text/plain"),
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 404, description = "No such sandbox.", body = ErrorBody),
        (status = 500, description = "The runtime or the state store failed.", body = ErrorBody),
        (status = 503, description = "The runtime is not reachable or not ready; retry.", body = ErrorBody),
    )
)]
pub async fn inspect(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(plain_text(state.service.inspect(&id).await?, false))
}

/// `GET /sandboxes/{id}/diagnostics/summary`: inspect, events and logs.
#[utoipa::path(
    get,
    path = "/v1/sandboxes/{sandboxId}/diagnostics/summary",
    operation_id = "getSandboxDiagnosticsSummary",
    tag = super::TAG_SANDBOXES,
    summary = "Get a diagnostics summary",
    description = "Inspect, events and logs in one plain-text page, as `osb devops summary` prints it. A part that cannot be collected reads `[error] Failed to collect {inspect|event|log} diagnostics.`; the cause is logged, not returned.",
    params(
        ("sandboxId" = String, Path, description = "The sandbox id."),
        ("tail" = Option<u32>, Query, minimum = 1, maximum = 10000, description = "Log lines (default 50)."),
        ("event_limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "Most recent events (default 20)."),
    ),
    responses(
        (status = 200, description = "The summary.", body = String, content_type = "text/plain"),
        (status = 400, description = "A parameter or body field breaks a rule; the message names it.", body = ErrorBody),
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 404, description = "No such sandbox.", body = ErrorBody),
        (status = 500, description = "The runtime or the state store failed.", body = ErrorBody),
    )
)]
pub async fn summary(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = SummaryQuery::parse(query.as_deref())?;
    Ok(plain_text(state.service.summary(&id, query).await?, false))
}

/// A `text/plain` UTF-8 body, with `Deprecation: true` when `deprecated`.
fn plain_text(text: String, deprecated: bool) -> Response {
    let mut response =
        ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response();
    if deprecated {
        response
            .headers_mut()
            .insert("deprecation", HeaderValue::from_static("true"));
    }
    response
}
