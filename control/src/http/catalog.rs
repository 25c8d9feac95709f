//! `/pools` and `/templates` (at `/` and `/v1`), answered as OpenSandbox
//! 1.1.1 answers them off Kubernetes: the body is checked first (as
//! FastAPI does), then 501 with OpenSandbox's code and message.

use axum::Router;
use axum::extract::RawQuery;
use axum::routing::get;
use sandgate_shared::api::ErrorBody;
use utoipa::OpenApi;

use super::AppState;
use super::extract::ApiJson;
use crate::catalog::{self, CatalogError, CreatePoolBody, CreateTemplateBody, UpdatePoolBody};
use crate::error::ApiError;
use crate::sandbox::error::SandboxError;
use crate::sandbox::query::ListQuery;
use crate::sandbox::rules::FieldProblem;

/// Tag of the pool operations.
pub const TAG_POOLS: &str = "Pools";
/// Tag of the template operations.
pub const TAG_TEMPLATES: &str = "Templates";

/// The routes, mounted at `/` and `/v1`.
pub fn routes() -> Router<AppState> {
    let routes = || {
        Router::new()
            .route("/pools", get(list_pools).post(create_pool))
            .route(
                "/pools/{pool_name}",
                get(get_pool).put(update_pool).delete(delete_pool),
            )
            .route("/templates", get(list_templates).post(create_template))
            .route(
                "/templates/{template_id}",
                get(get_template).delete(delete_template),
            )
    };
    routes().nest("/v1", routes())
}

/// The operations, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(
        create_pool, list_pools, get_pool, update_pool, delete_pool,
        create_template, list_templates, get_template, delete_template,
    ),
    tags(
        (name = TAG_POOLS, description = "Pre-warmed pools: Kubernetes only; 501 here."),
        (name = TAG_TEMPLATES, description = "Fast-sandbox templates: Kubernetes only; 501 here."),
    )
)]
pub struct CatalogDoc;

/// A 400 naming the problems, else `refusal`.
fn answer(problems: Vec<FieldProblem>, refusal: CatalogError) -> ApiError {
    if problems.is_empty() {
        refusal.into()
    } else {
        SandboxError::Invalid(problems).into()
    }
}

#[utoipa::path(post, path = "/v1/pools", operation_id = "createPool", tag = TAG_POOLS,
    summary = "Create a pool (Kubernetes only)", request_body = CreatePoolBody,
    responses(
        (status = 400, description = "A body field breaks a rule; the message names it.", body = ErrorBody),
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 501, description = "`KUBERNETES::POOL_NOT_SUPPORTED`: pools need the Kubernetes runtime.", body = ErrorBody),
    ))]
/// `POST /pools`.
pub async fn create_pool(ApiJson(body): ApiJson<CreatePoolBody>) -> ApiError {
    answer(
        catalog::check_create_pool(&body),
        CatalogError::PoolsNeedKubernetes,
    )
}

#[utoipa::path(get, path = "/v1/pools", operation_id = "listPools", tag = TAG_POOLS,
    summary = "List pools (Kubernetes only)",
    responses(
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 501, description = "`KUBERNETES::POOL_NOT_SUPPORTED`: pools need the Kubernetes runtime.", body = ErrorBody),
    ))]
/// `GET /pools`.
pub async fn list_pools() -> ApiError {
    CatalogError::PoolsNeedKubernetes.into()
}

#[utoipa::path(get, path = "/v1/pools/{poolName}", operation_id = "getPool", tag = TAG_POOLS,
    summary = "Get a pool (Kubernetes only)",
    params(("poolName" = String, Path, description = "The pool's name.")),
    responses(
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 501, description = "`KUBERNETES::POOL_NOT_SUPPORTED`: pools need the Kubernetes runtime.", body = ErrorBody),
    ))]
/// `GET /pools/{poolName}`.
pub async fn get_pool() -> ApiError {
    CatalogError::PoolsNeedKubernetes.into()
}

#[utoipa::path(put, path = "/v1/pools/{poolName}", operation_id = "updatePool", tag = TAG_POOLS,
    summary = "Update a pool's capacity (Kubernetes only)", request_body = UpdatePoolBody,
    params(("poolName" = String, Path, description = "The pool's name.")),
    responses(
        (status = 400, description = "A body field breaks a rule; the message names it.", body = ErrorBody),
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 501, description = "`KUBERNETES::POOL_NOT_SUPPORTED`: pools need the Kubernetes runtime.", body = ErrorBody),
    ))]
/// `PUT /pools/{poolName}`.
pub async fn update_pool(ApiJson(_body): ApiJson<UpdatePoolBody>) -> ApiError {
    CatalogError::PoolsNeedKubernetes.into()
}

#[utoipa::path(delete, path = "/v1/pools/{poolName}", operation_id = "deletePool", tag = TAG_POOLS,
    summary = "Delete a pool (Kubernetes only)",
    params(("poolName" = String, Path, description = "The pool's name.")),
    responses(
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 501, description = "`KUBERNETES::POOL_NOT_SUPPORTED`: pools need the Kubernetes runtime.", body = ErrorBody),
    ))]
/// `DELETE /pools/{poolName}`.
pub async fn delete_pool() -> ApiError {
    CatalogError::PoolsNeedKubernetes.into()
}

#[utoipa::path(post, path = "/v1/templates", operation_id = "createTemplate", tag = TAG_TEMPLATES,
    summary = "Create a template (Kubernetes only)", request_body = CreateTemplateBody,
    responses(
        (status = 400, description = "A body field breaks a rule, or is unknown; the message names it.", body = ErrorBody),
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 501, description = "`FSB::API_NOT_SUPPORTED`: templates need the Kubernetes runtime.", body = ErrorBody),
    ))]
/// `POST /templates`.
pub async fn create_template(ApiJson(body): ApiJson<CreateTemplateBody>) -> ApiError {
    answer(
        catalog::check_create_template(&body),
        CatalogError::TemplatesNeedKubernetes,
    )
}

#[utoipa::path(get, path = "/v1/templates", operation_id = "listTemplates", tag = TAG_TEMPLATES,
    summary = "List templates (Kubernetes only)",
    params(
        ("page" = Option<i64>, Query, minimum = 1, maximum = 4294967295_i64, description = "1-based page number (default 1)."),
        ("pageSize" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Items per page (default 20, at most 200)."),
        ("metadata" = Option<String>, Query, description = "URL-encoded `key=value&key2=value2` metadata filter (AND)."),
    ),
    responses(
        (status = 400, description = "A parameter breaks a rule; the message names it.", body = ErrorBody),
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 501, description = "`FSB::API_NOT_SUPPORTED`: templates need the Kubernetes runtime.", body = ErrorBody),
    ))]
/// `GET /templates`: the query is checked first, as OpenSandbox does.
pub async fn list_templates(RawQuery(query): RawQuery) -> ApiError {
    let problems = ListQuery::parse(query.as_deref())
        .err()
        .into_iter()
        .collect();
    answer(problems, CatalogError::TemplatesNeedKubernetes)
}

#[utoipa::path(get, path = "/v1/templates/{templateId}", operation_id = "getTemplate", tag = TAG_TEMPLATES,
    summary = "Get a template (Kubernetes only)",
    params(("templateId" = String, Path, description = "The template's id.")),
    responses(
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 501, description = "`FSB::API_NOT_SUPPORTED`: templates need the Kubernetes runtime.", body = ErrorBody),
    ))]
/// `GET /templates/{templateId}`.
pub async fn get_template() -> ApiError {
    CatalogError::TemplatesNeedKubernetes.into()
}

#[utoipa::path(delete, path = "/v1/templates/{templateId}", operation_id = "deleteTemplate", tag = TAG_TEMPLATES,
    summary = "Delete a template (Kubernetes only)",
    params(("templateId" = String, Path, description = "The template's id.")),
    responses(
        (status = 401, description = "The API key is missing or wrong.", body = ErrorBody),
        (status = 501, description = "`FSB::API_NOT_SUPPORTED`: templates need the Kubernetes runtime.", body = ErrorBody),
    ))]
/// `DELETE /templates/{templateId}`.
pub async fn delete_template() -> ApiError {
    CatalogError::TemplatesNeedKubernetes.into()
}
