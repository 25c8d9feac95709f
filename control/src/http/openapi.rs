//! The OpenAPI 3.1 document, generated from the handlers' annotations and
//! the wire types, and the pages that render it: Swagger UI at `/docs`
//! and ReDoc at `/redoc`. Everything is served from the binary; no page
//! loads anything from another host.
//!
//! The document lists the Lifecycle API under `/v1`; the server also
//! answers every such path without the prefix (see [`super::router`]).

use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{HeaderBuilder, ObjectBuilder, OpenApi as Document, PathItem, RefOr, Type};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::snapshots::{self, TAG_SNAPSHOTS};
use super::{TAG_SANDBOXES, TAG_SYSTEM, sandboxes, system};

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/openapi.json";
/// The name of the API-key security scheme.
pub const SECURITY_SCHEME: &str = "apiKeyAuth";

/// The bundled ReDoc version (see `control/assets/redoc/README.md`).
const REDOC_VERSION: &str = "2.5.4";
/// ReDoc's standalone bundle as published (MIT; its licence notices sit
/// next to it).
static REDOC_JS_ORIGINAL: &[u8] = include_bytes!("../../assets/redoc/redoc.standalone.js");
/// The one remote resource the bundle loads: the "API docs by Redocly"
/// footer logo. It is swapped for an inline blank image.
const REDOC_REMOTE_LOGO: &str = "https://cdn.redoc.ly/redoc/logo-mini.svg";
const BLANK_SVG: &str = "data:image/svg+xml,%3Csvg%20xmlns=%22http://www.w3.org/2000/svg%22%20width=%221%22%20height=%221%22/%3E";

/// The bundle as served: the original with the remote logo replaced.
static REDOC_JS: LazyLock<Vec<u8>> =
    LazyLock::new(|| match std::str::from_utf8(REDOC_JS_ORIGINAL) {
        Ok(text) => text.replace(REDOC_REMOTE_LOGO, BLANK_SVG).into_bytes(),
        Err(_) => REDOC_JS_ORIGINAL.to_vec(),
    });

/// Only this server (plus inline and `data:`/`blob:` resources) may be
/// loaded by the docs pages: a browser blocks anything from another host.
const DOCS_CSP: &str = "default-src 'self' data: blob: 'unsafe-inline' 'unsafe-eval'; \
                        object-src 'none'; base-uri 'self'; frame-ancestors 'self'";

/// The document's source: every annotated handler and the wire schemas.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sandgate Lifecycle API",
        description = "The OpenSandbox Lifecycle API as Sandgate serves it. \
            Every `/v1/...` path is also served without the `/v1` prefix. \
            Field names are camelCase; optional fields are omitted, never `null`. \
            Every error is `{\"code\": \"...\", \"message\": \"...\"}`. \
            Every response carries an `X-Request-ID` header (echoed when the request sends one)."
    ),
    paths(
        sandboxes::create,
        sandboxes::list,
        sandboxes::get_one,
        sandboxes::delete,
        sandboxes::patch_metadata,
        sandboxes::pause,
        sandboxes::resume,
        sandboxes::renew,
        sandboxes::endpoint,
        sandboxes::diagnostics,
        sandboxes::inspect,
        sandboxes::summary,
        snapshots::create,
        snapshots::list,
        snapshots::get_one,
        snapshots::delete,
        system::health,
        system::metrics,
    ),
    components(schemas(
        sandgate_shared::api::SandboxState,
        sandgate_shared::snapshots::SnapshotState
    )),
    modifiers(&ApiKeySecurity, &RequestIdHeader),
    tags(
        (name = TAG_SANDBOXES, description = "Create sandboxes and move them through their lifecycle."),
        (name = TAG_SNAPSHOTS, description = "Commit sandboxes to snapshots and restore sandboxes from them (`snapshotId` in the create body)."),
        (name = TAG_SYSTEM, description = "Liveness and metrics."),
    )
)]
pub struct ApiDoc;

/// The `OPEN-SANDBOX-API-KEY` header scheme, required by every operation
/// that does not say otherwise.
struct ApiKeySecurity;

impl Modify for ApiKeySecurity {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SECURITY_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "OPEN-SANDBOX-API-KEY",
                "The server's API key. Not needed when the server runs without one.",
            ))),
        );
        openapi.security = Some(vec![SecurityRequirement::new(
            SECURITY_SCHEME,
            Vec::<String>::new(),
        )]);
    }
}

/// Adds the `X-Request-ID` header to every response of every operation.
struct RequestIdHeader;

impl Modify for RequestIdHeader {
    fn modify(&self, openapi: &mut Document) {
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item).into_iter().flatten() {
                for response in operation.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        response
                            .headers
                            .insert("X-Request-ID".to_owned(), request_id_header().into());
                    }
                }
            }
        }
    }
}

fn request_id_header() -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .description(Some(
            "The request's id: the one the client sent, or a generated one.",
        ))
        .build()
}

fn operations(item: &mut PathItem) -> [&mut Option<utoipa::openapi::path::Operation>; 8] {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
}

/// The generated document.
pub fn document() -> Document {
    let mut document = ApiDoc::openapi();
    document.merge(super::catalog::CatalogDoc::openapi());
    document.merge(super::sdk::SdkDoc::openapi());
    RequestIdHeader.modify(&mut document);
    document
}

static REDOC_PAGE: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sandgate Lifecycle API</title>
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<redoc spec-url="{OPENAPI_PATH}"></redoc>
<script src="/redoc/redoc.standalone.js?v={REDOC_VERSION}"></script>
</body>
</html>
"#
    )
});

async fn redoc_page() -> Html<&'static str> {
    Html(REDOC_PAGE.as_str())
}

/// Adds [`DOCS_CSP`] to a docs response.
async fn docs_csp(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DOCS_CSP),
    );
    response
}

async fn redoc_js() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        REDOC_JS.as_slice(),
    )
}

/// `/openapi.json`, `/docs` (Swagger UI) and `/redoc` (ReDoc).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    // Swagger UI would otherwise show a validator badge loaded from another host.
    let swagger = SwaggerUi::new("/docs")
        .url(OPENAPI_PATH, document())
        .config(
            Config::default()
                .validator_url("none")
                .persist_authorization(true),
        );
    // `swagger` also serves the document at `OPENAPI_PATH`.
    Router::new()
        .merge(swagger)
        .route("/redoc", get(redoc_page))
        .route("/redoc/redoc.standalone.js", get(redoc_js))
        .layer(axum::middleware::map_response(docs_csp))
}
