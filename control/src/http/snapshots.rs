//! Snapshot handlers: HTTP in, `SnapshotService` call, HTTP out. No logic.

use axum::Json;
use axum::Router;
use axum::extract::{FromRequest, Path, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sandgate_shared::api::ErrorBody;
use sandgate_shared::snapshots::{CreateSnapshotRequest, ListSnapshotsResponse, Snapshot};

use super::AppState;
use super::extract::ApiJson;
use crate::error::ApiError;
use crate::sandbox::snapshot_query::SnapshotQuery;

/// Tag of the snapshot operations in the OpenAPI document.
pub const TAG_SNAPSHOTS: &str = "Snapshots";

/// The largest create body read (it holds one optional name).
const MAX_BODY: usize = 64 * 1024;

/// The snapshot routes (mounted with the lifecycle routes, at `/` and `/v1`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sandboxes/{sandbox_id}/snapshots", post(create))
        .route("/snapshots", get(list))
        .route("/snapshots/{snapshot_id}", get(get_one).delete(delete))
}

/// `POST /sandboxes/{id}/snapshots` → 202 with the `Creating` snapshot.
#[utoipa::path(
    post,
    path = "/v1/sandboxes/{sandboxId}/snapshots",
    operation_id = "createSnapshot",
    tag = TAG_SNAPSHOTS,
    summary = "Snapshot a running sandbox",
    params(("sandboxId" = String, Path, description = "The sandbox to snapshot; it must be `Running`.")),
    request_body(content = CreateSnapshotRequest, description = "Optional; may be empty.", example = json!({"name": "after-setup"})),
    responses(
        (status = 202, description = "Accepted; the snapshot is `Creating` while the image is committed. `Location` names it.", body = Snapshot,
            headers(("Location" = String, description = "`/v1/snapshots/{id}`"))),
        (status = 400, description = "A body field breaks a rule; the message names it.", body = ErrorBody),
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 404, description = "No such sandbox.", body = ErrorBody),
        (status = 409, description = "The sandbox is not `Running` (`SNAPSHOT::INVALID_SOURCE_STATE`).", body = ErrorBody),
        (status = 500, description = "The state store failed.", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Path(sandbox_id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let body = optional_body(request, &state).await?;
    let record = state.snapshots.create(&sandbox_id, body).await?;
    let mut response = (StatusCode::ACCEPTED, Json(record.to_api())).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/snapshots/{}", record.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// An empty body is no body; anything else must be a JSON object.
async fn optional_body(
    request: Request,
    state: &AppState,
) -> Result<CreateSnapshotRequest, ApiError> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|e| ApiError::invalid(format!("request body: cannot be read: {e}")))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(CreateSnapshotRequest::default());
    }
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    let ApiJson(body) = ApiJson::from_request(request, state).await?;
    Ok(body)
}

/// `GET /snapshots`.
#[utoipa::path(
    get,
    path = "/v1/snapshots",
    operation_id = "listSnapshots",
    tag = TAG_SNAPSHOTS,
    summary = "List snapshots",
    params(
        ("sandboxId" = Option<String>, Query, description = "Only snapshots of this sandbox."),
        ("name" = Option<String>, Query, description = "Only snapshots with exactly this name."),
        ("state" = Option<Vec<String>>, Query, style = Form, explode, description = "States to match (`Creating`, `Ready`, `Failed`, `Deleting`, exact case); repeat for OR."),
        ("page" = Option<i64>, Query, minimum = 1, maximum = 4294967295_i64, description = "1-based page number (default 1)."),
        ("pageSize" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Items per page (default 20, at most 200)."),
    ),
    responses(
        (status = 200, description = "One page of snapshots, newest first.", body = ListSnapshotsResponse),
        (status = 400, description = "A parameter breaks a rule; the message names it.", body = ErrorBody),
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<ListSnapshotsResponse>, ApiError> {
    let query = SnapshotQuery::parse(query.as_deref())
        .map_err(|p| ApiError::new(StatusCode::BAD_REQUEST, p.code, p.message))?;
    Ok(Json(state.snapshots.list(&query)))
}

/// `GET /snapshots/{id}`.
#[utoipa::path(
    get,
    path = "/v1/snapshots/{snapshotId}",
    operation_id = "getSnapshot",
    tag = TAG_SNAPSHOTS,
    summary = "Get a snapshot",
    params(("snapshotId" = String, Path, description = "The snapshot id.")),
    responses(
        (status = 200, description = "The snapshot.", body = Snapshot),
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 404, description = "No such snapshot (`SNAPSHOT::NOT_FOUND`).", body = ErrorBody),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Snapshot>, ApiError> {
    Ok(Json(state.snapshots.get(&id)?.to_api()))
}

/// `DELETE /snapshots/{id}` → 204 once the image is removed.
#[utoipa::path(
    delete,
    path = "/v1/snapshots/{snapshotId}",
    operation_id = "deleteSnapshot",
    tag = TAG_SNAPSHOTS,
    summary = "Delete a snapshot and its image",
    params(("snapshotId" = String, Path, description = "The snapshot id.")),
    responses(
        (status = 204, description = "Deleted: the image is removed."),
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 404, description = "No such snapshot (`SNAPSHOT::NOT_FOUND`).", body = ErrorBody),
        (status = 409, description = "The snapshot is still `Creating` (`SNAPSHOT::INVALID_STATE`), or a sandbox still uses its image (`SNAPSHOT::DELETE_CONFLICT`).", body = ErrorBody),
        (status = 500, description = "The runtime or the state store failed.", body = ErrorBody),
        (status = 503, description = "The runtime is not reachable; retry.", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.snapshots.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
