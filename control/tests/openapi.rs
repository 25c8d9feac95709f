//! The generated OpenAPI document and the pages that render it: the
//! document matches what the router serves and what goes on the wire, and
//! the docs pages load nothing from other hosts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use common::{Knobs, TestApp, body};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const KEY: &str = "test-api-key";

async fn app_with_key() -> TestApp {
    TestApp::start(Knobs {
        api_key: Some(KEY.to_owned()),
        ..Knobs::default()
    })
    .await
}

/// One request without the API key; status, headers and raw body.
async fn get_raw(app: &TestApp, uri: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    send(app, Method::GET, uri, None, &[]).await
}

async fn send(
    app: &TestApp,
    method: Method,
    uri: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let response = app
        .app
        .router
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, bytes.to_vec())
}

/// The document as `/openapi.json` serves it (without a key).
async fn served_document(app: &TestApp) -> Value {
    let (status, headers, bytes) = get_raw(app, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let content_type = headers[header::CONTENT_TYPE].to_str().unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    serde_json::from_slice(&bytes).expect("/openapi.json is JSON")
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let schema = &doc["components"]["schemas"][name];
    assert!(schema.is_object(), "schema {name} is missing");
    schema
}

fn property_names(schema: &Value) -> BTreeSet<String> {
    schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn required_names(schema: &Value) -> BTreeSet<String> {
    schema["required"]
        .as_array()
        .map(|r| r.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// `(method, path)` of every documented operation.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                out.push((method.to_owned(), path.clone()));
            }
        }
    }
    out
}

/// `(method, path)` of every lifecycle route the router registers, read
/// from `lifecycle_routes()` in the router's source, with the path
/// parameters spelled as the document spells them. The server-proxy relay
/// (`/proxy/{port}[/...]`, any method, an opaque upstream) is not an API
/// operation and is left out.
fn routed_lifecycle_operations() -> BTreeSet<(String, String)> {
    let mut routes = scan_routes(include_str!("../src/http/mod.rs"), "fn lifecycle_routes");
    routes.extend(scan_routes(
        include_str!("../src/http/snapshots.rs"),
        "pub fn routes",
    ));
    routes.extend(scan_routes(
        include_str!("../src/http/catalog.rs"),
        "pub fn routes",
    ));
    assert!(
        routes.len() >= 10,
        "route scan found too little: {routes:?}"
    );
    routes
}

/// The `(method, path)` pairs routed in the function `fn_start` of `source`.
fn scan_routes(source: &str, fn_start: &str) -> BTreeSet<(String, String)> {
    let start = source.find(fn_start).unwrap();
    let end = start + source[start..].find("\n}\n").unwrap();
    let mut routes = BTreeSet::new();
    for chunk in source[start..end].split(".route(").skip(1) {
        let path = chunk.split('"').nth(1).unwrap();
        if path.contains("/proxy/") {
            continue;
        }
        let path = path
            .replace("{sandbox_id}", "{sandboxId}")
            .replace("{snapshot_id}", "{snapshotId}")
            .replace("{pool_name}", "{poolName}")
            .replace("{template_id}", "{templateId}");
        for method in METHODS {
            let call = format!("{method}(");
            let found = chunk.match_indices(&call).any(|(i, _)| {
                i == 0
                    || !chunk.as_bytes()[i - 1].is_ascii_alphanumeric()
                        && chunk.as_bytes()[i - 1] != b'_'
            });
            if found {
                routes.insert((method.to_owned(), path.clone()));
            }
        }
    }
    routes
}

#[tokio::test]
async fn document_is_openapi_3_1_served_without_a_key() {
    let app = app_with_key().await;
    let doc = served_document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(
        doc,
        serde_json::to_value(sandgate_control::http::openapi::document()).unwrap()
    );
    let scheme = &doc["components"]["securitySchemes"]["apiKeyAuth"];
    assert_eq!(scheme["type"], "apiKey");
    assert_eq!(scheme["in"], "header");
    assert_eq!(scheme["name"], "OPEN-SANDBOX-API-KEY");
    assert_eq!(doc["security"], json!([{"apiKeyAuth": []}]));
    assert_eq!(doc["paths"]["/health"]["get"]["security"], json!([{}]));
}

#[tokio::test]
async fn every_lifecycle_route_is_documented_and_nothing_else() {
    let app = app_with_key().await;
    let doc = served_document(&app).await;
    let documented: BTreeSet<(String, String)> = operations(&doc).into_iter().collect();
    for (method, path) in routed_lifecycle_operations() {
        let v1 = (method.clone(), format!("/v1{path}"));
        assert!(
            documented.contains(&v1),
            "{method} /v1{path} is served but not documented"
        );
    }
    let expected: BTreeSet<_> = routed_lifecycle_operations()
        .into_iter()
        .map(|(m, p)| (m, format!("/v1{p}")))
        .chain([
            ("get".to_owned(), "/health".to_owned()),
            ("get".to_owned(), "/metrics".to_owned()),
            ("get".to_owned(), "/version".to_owned()),
            ("post".to_owned(), "/v1/metrics/events".to_owned()),
        ])
        .collect();
    assert_eq!(
        documented, expected,
        "documented operations that are not routed"
    );
    let ids: BTreeSet<_> = operations(&doc)
        .iter()
        .map(|(m, p)| {
            doc["paths"][p][m]["operationId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), documented.len(), "operation ids are unique");
}

/// Every documented operation answers on its path (with and without the
/// `/v1` prefix) with a documented status, an `X-Request-ID`, and, for
/// errors, the error envelope.
#[tokio::test]
async fn every_documented_operation_is_served_with_a_documented_status() {
    let app = TestApp::start(Knobs::default()).await;
    let doc = served_document(&app).await;
    for (method, path) in operations(&doc) {
        let concrete = path
            .replace("{sandboxId}", "no-such-sandbox")
            .replace("{port}", "8080")
            .replace("{kind}", "logs");
        let mut uris = vec![concrete.clone()];
        // OpenSandbox mounts the SDK's metrics events under `/v1` only.
        if let Some(root) = concrete
            .strip_prefix("/v1")
            .filter(|_| path != "/v1/metrics/events")
        {
            uris.push(root.to_owned());
        }
        let documented = doc["paths"][&path][&method]["responses"]
            .as_object()
            .unwrap();
        for uri in uris {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = (method == Method::POST || method == Method::PATCH).then(|| json!({}));
            let (status, headers, bytes) =
                send(&app, method.clone(), &uri, body.as_ref(), &[]).await;
            assert!(
                documented.contains_key(status.as_str()),
                "{method} {uri} answered {status}, documented: {:?}",
                documented.keys().collect::<Vec<_>>()
            );
            assert!(headers.contains_key("x-request-id"), "{method} {uri}");
            if status.is_client_error() || status.is_server_error() {
                let error: Value = serde_json::from_slice(&bytes).unwrap();
                let keys: Vec<_> = error.as_object().unwrap().keys().collect();
                assert_eq!(keys, ["code", "message"], "{method} {uri}: {error}");
                assert_ne!(
                    error["code"], "GENERAL::NOT_FOUND",
                    "{method} {uri} is not routed"
                );
            }
        }
    }
}

#[tokio::test]
async fn error_responses_use_the_error_body() {
    let doc = serde_json::to_value(sandgate_control::http::openapi::document()).unwrap();
    let error = schema(&doc, "ErrorBody");
    assert_eq!(
        required_names(error),
        BTreeSet::from(["code".into(), "message".into()])
    );
    for (method, path) in operations(&doc) {
        let responses = doc["paths"][&path][&method]["responses"]
            .as_object()
            .unwrap();
        assert!(
            // Pools and templates answer 501 on Docker, as OpenSandbox does.
            responses.keys().any(|s| s.starts_with('2') || s == "501"),
            "{method} {path}"
        );
        for (status, response) in responses {
            assert!(
                response["headers"]["X-Request-ID"].is_object(),
                "{method} {path} {status} lacks X-Request-ID"
            );
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
        if path.starts_with("/v1/") {
            assert!(
                responses.contains_key("401"),
                "{method} {path} documents 401"
            );
        }
    }
    let lifecycle = &doc["paths"]["/v1/sandboxes/{sandboxId}"];
    assert!(lifecycle["delete"]["responses"]["204"]["content"].is_null());
    for action in ["pause", "resume"] {
        let accepted = &doc["paths"][format!("/v1/sandboxes/{{sandboxId}}/{action}")]["post"]["responses"]
            ["202"];
        assert!(
            accepted.is_object() && accepted["content"].is_null(),
            "{action}"
        );
    }
    let create = &doc["paths"]["/v1/sandboxes"]["post"];
    assert_eq!(
        create["responses"]["202"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/CreateSandboxResponse"
    );
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/CreateSandboxBody"
    );
    // Links let generated clients and stateful testers follow the new id.
    let links = create["responses"]["202"]["links"].as_object().unwrap();
    for (name, link) in links {
        let target = link["operationId"].as_str().unwrap();
        assert!(
            operations(&doc)
                .iter()
                .any(|(m, p)| doc["paths"][p][m]["operationId"] == target),
            "link {name} targets unknown operation {target}"
        );
        assert_eq!(link["parameters"]["sandboxId"], "$response.body#/id");
    }
    assert!(links.contains_key("getSandbox"));
    let params: BTreeMap<_, _> = doc["paths"]["/v1/sandboxes"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p))
        .collect();
    assert_eq!(
        params.keys().copied().collect::<Vec<_>>(),
        ["metadata", "page", "pageSize", "state"]
    );
    assert_eq!(params["state"]["schema"]["type"], "array");
    assert_eq!(params["state"]["explode"], true);
}

/// Every `$ref` reachable from `value`, transitively, as schema names.
fn reachable_schemas(doc: &Value, value: &Value, seen: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                let name = target.rsplit('/').next().unwrap().to_owned();
                if seen.insert(name.clone()) {
                    reachable_schemas(doc, schema(doc, &name), seen);
                }
            }
            map.values().for_each(|v| reachable_schemas(doc, v, seen));
        }
        Value::Array(items) => items.iter().for_each(|v| reachable_schemas(doc, v, seen)),
        _ => {}
    }
}

/// Whether a schema admits `null` anywhere in it.
fn admits_null(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            map.get("type") == Some(&json!("null"))
                || map
                    .get("type")
                    .and_then(Value::as_array)
                    .is_some_and(|t| t.contains(&json!("null")))
                || map.get("nullable") == Some(&json!(true))
                || map.values().any(admits_null)
        }
        Value::Array(items) => items.iter().any(admits_null),
        _ => false,
    }
}

#[test]
fn response_schemas_are_camel_case_and_never_nullable() {
    let doc = serde_json::to_value(sandgate_control::http::openapi::document()).unwrap();
    let mut response_schemas = BTreeSet::new();
    for (method, path) in operations(&doc) {
        reachable_schemas(
            &doc,
            &doc["paths"][&path][&method]["responses"],
            &mut response_schemas,
        );
    }
    for name in [
        "Sandbox",
        "CreateSandboxResponse",
        "ListSandboxesResponse",
        "ErrorBody",
    ] {
        assert!(
            response_schemas.contains(name),
            "{name} not reachable from a response"
        );
    }
    for name in &response_schemas {
        let schema = schema(&doc, name);
        assert!(
            !admits_null(schema),
            "response schema {name} admits null: {schema}"
        );
        for property in property_names(schema) {
            assert!(
                !property.contains('_') && property.chars().next().unwrap().is_ascii_lowercase(),
                "{name}.{property} is not camelCase"
            );
        }
    }
    for name in ["Sandbox", "CreateSandboxResponse"] {
        let schema = schema(&doc, name);
        let properties = property_names(schema);
        for expected in [
            "id",
            "status",
            "metadata",
            "expiresAt",
            "createdAt",
            "entrypoint",
        ] {
            assert!(properties.contains(expected), "{name} lacks {expected}");
        }
        let required = required_names(schema);
        for expected in ["id", "status", "createdAt", "entrypoint"] {
            assert!(
                required.contains(expected),
                "{name}: {expected} must be required"
            );
        }
        for optional in ["metadata", "expiresAt", "platform"] {
            assert!(
                !required.contains(optional),
                "{name}: {optional} is omitted when empty"
            );
        }
        assert_eq!(schema["properties"]["createdAt"]["format"], "date-time");
        assert_eq!(schema["properties"]["id"]["type"], "string");
    }
    let states = &schema(&doc, "SandboxState")["enum"];
    assert_eq!(states.as_array().unwrap().len(), 8);
    assert!(states.as_array().unwrap().contains(&json!("Running")));
}

/// Checks a wire object against its schema: every key is a declared
/// property and every required property is present.
fn conforms(doc: &Value, name: &str, value: &Value) {
    let schema = schema(doc, name);
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{name}: {value}"));
    let properties = property_names(schema);
    for key in object.keys() {
        assert!(
            properties.contains(key),
            "{name}: undeclared key {key} in {value}"
        );
    }
    for key in required_names(schema) {
        assert!(
            object.contains_key(&key),
            "{name}: required {key} missing in {value}"
        );
    }
}

#[tokio::test]
async fn wire_bodies_match_their_schemas() {
    let app = TestApp::start(Knobs::default()).await;
    let doc = served_document(&app).await;
    let (status, created) = app.call(Method::POST, "/v1/sandboxes", Some(body())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    conforms(&doc, "CreateSandboxResponse", &created);
    conforms(&doc, "SandboxStatus", &created["status"]);
    let id = created["id"].as_str().unwrap().to_owned();
    let running = app.wait_state(&id, "Running").await;
    conforms(&doc, "Sandbox", &running);
    let (_, list) = app.call(Method::GET, "/v1/sandboxes", None).await;
    conforms(&doc, "ListSandboxesResponse", &list);
    conforms(&doc, "Pagination", &list["pagination"]);
    let (_, missing) = app.call(Method::GET, "/v1/sandboxes/absent", None).await;
    conforms(&doc, "ErrorBody", &missing);
    let (_, health) = app.call(Method::GET, "/health", None).await;
    conforms(&doc, "Health", &health);
}

fn no_remote_sources(page: &str) {
    let lower = page.to_ascii_lowercase();
    for attr in ["src=", "href="] {
        for (i, _) in lower.match_indices(attr) {
            let value = lower[i + attr.len()..].trim_start_matches(['"', '\'']);
            assert!(
                !value.starts_with("http://")
                    && !value.starts_with("https://")
                    && !value.starts_with("//"),
                "the page loads from another host: {}",
                &page[i..(i + 80).min(page.len())]
            );
        }
    }
    assert!(!lower.contains("@import"), "no imported stylesheets");
}

#[tokio::test]
async fn swagger_ui_is_served_offline() {
    let app = app_with_key().await;
    let (status, headers, page) = get_raw(&app, "/docs/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("swagger-ui-bundle.js"), "{page}");
    no_remote_sources(&page);
    assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY));
    let (status, _, bundle) = get_raw(&app, "/docs/swagger-ui-bundle.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(bundle.len() > 100_000);
    let (status, _, init) = get_raw(&app, "/docs/swagger-initializer.js").await;
    assert_eq!(status, StatusCode::OK);
    let init = String::from_utf8(init).unwrap();
    assert!(init.contains("/openapi.json"), "{init}");
    assert!(
        init.contains(r#""validatorUrl": "none""#) || init.contains(r#""validatorUrl":"none""#),
        "{init}"
    );
    let (status, headers, _) = get_raw(&app, "/docs").await;
    assert!(status.is_redirection(), "{status}");
    assert_eq!(headers[header::LOCATION], "/docs/");
}

#[tokio::test]
async fn redoc_is_served_offline() {
    let app = app_with_key().await;
    let (status, headers, page) = get_raw(&app, "/redoc").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains(r#"spec-url="/openapi.json""#), "{page}");
    assert!(
        page.contains(r#"<script src="/redoc/redoc.standalone.js"#),
        "{page}"
    );
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
    no_remote_sources(&page);
    let (status, headers, script) = get_raw(&app, "/redoc/redoc.standalone.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    assert!(
        headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );
    assert!(script.len() > 500_000);
    assert!(
        script.starts_with(b"/*! For license information"),
        "licence header kept"
    );
}

#[tokio::test]
async fn the_api_still_requires_the_key() {
    let app = app_with_key().await;
    let (status, _, _) = get_raw(&app, "/v1/sandboxes").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = send(
        &app,
        Method::GET,
        "/v1/sandboxes",
        None,
        &[("OPEN-SANDBOX-API-KEY", KEY)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// The devops diagnostics (`osb devops ...`) are documented as plain text,
/// with their query bounds and the 400 those bounds produce.
#[test]
fn devops_diagnostics_are_documented_as_plain_text_with_bounds() {
    let doc = serde_json::to_value(sandgate_control::http::openapi::document()).unwrap();
    let bounds = |path: &str| -> BTreeMap<String, (Value, Value)> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| {
                let schema = &p["schema"];
                (
                    p["name"].as_str().unwrap().to_owned(),
                    (schema["minimum"].clone(), schema["maximum"].clone()),
                )
            })
            .collect()
    };
    let summary = "/v1/sandboxes/{sandboxId}/diagnostics/summary";
    let inspect = "/v1/sandboxes/{sandboxId}/diagnostics/inspect";
    let legacy = "/v1/sandboxes/{sandboxId}/diagnostics/{kind}";
    for path in [summary, inspect, legacy] {
        let ok = &doc["paths"][path]["get"]["responses"]["200"]["content"]["text/plain"];
        assert_eq!(ok["schema"]["type"], "string", "{path}");
    }
    assert_eq!(
        bounds(summary),
        BTreeMap::from([
            ("tail".to_owned(), (json!(1), json!(10000))),
            ("event_limit".to_owned(), (json!(1), json!(500))),
        ])
    );
    assert!(bounds(inspect).is_empty());
    let legacy_bounds = bounds(legacy);
    assert_eq!(legacy_bounds["tail"], (json!(1), json!(10000)));
    assert_eq!(legacy_bounds["limit"], (json!(1), json!(500)));
    assert!(legacy_bounds.contains_key("since") && legacy_bounds.contains_key("scope"));
    for path in [summary, legacy] {
        assert!(
            doc["paths"][path]["get"]["responses"]["400"].is_object(),
            "{path} documents the 400 of bad query values"
        );
    }
}
