//! The API cannot be driven from a web page: CORS only for configured
//! origins, JSON bodies only with a JSON content type, and with
//! authentication off only `Host` values a DNS-rebinding page cannot send.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Knobs, TestApp, body};
use sandgate_control::config::WebConfig;

async fn app_with(web: WebConfig, api_key: Option<&str>) -> TestApp {
    TestApp::start(Knobs {
        web,
        api_key: api_key.map(str::to_owned),
        ..Knobs::default()
    })
    .await
}

fn origins(list: &[&str]) -> WebConfig {
    WebConfig {
        cors_allowed_origins: list.iter().map(|s| (*s).to_owned()).collect(),
        ..WebConfig::default()
    }
}

#[tokio::test]
async fn cors_allows_configured_origins_only_and_never_mirrors() {
    for key in [None, Some("s3cret")] {
        let app = app_with(origins(&["https://console.example"]), key).await;
        for (origin, allowed) in [
            ("https://console.example", true),
            ("https://evil.example", false),
            ("null", false),
        ] {
            let preflight = [
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type"),
            ];
            let (_, headers, _) = app
                .call_with(Method::OPTIONS, "/v1/sandboxes", None, &preflight)
                .await;
            let allow = headers.get("access-control-allow-origin");
            assert_eq!(
                allow.is_some(),
                allowed,
                "pre-flight from {origin}: {headers:?}"
            );
            let (_, headers, _) = app
                .call_with(
                    Method::GET,
                    "/v1/sandboxes",
                    None,
                    &[("Origin", origin), ("OPEN-SANDBOX-API-KEY", "s3cret")],
                )
                .await;
            match headers.get("access-control-allow-origin") {
                Some(value) => {
                    assert!(allowed, "{origin} must not be allowed");
                    assert_eq!(value, origin);
                    assert_eq!(headers["access-control-allow-credentials"], "true");
                }
                None => assert!(!allowed, "{origin} is configured"),
            }
        }
    }
}

#[tokio::test]
async fn json_bodies_need_a_json_content_type() {
    let app = app_with(WebConfig::default(), None).await;
    for (content_type, accepted) in [
        (Some("application/json"), true),
        (Some("application/json; charset=utf-8"), true),
        (Some("Application/JSON"), true),
        (Some("application/merge-patch+json"), true),
        (Some("text/plain"), false),
        (Some("text/plain;charset=UTF-8"), false),
        (Some("application/x-www-form-urlencoded"), false),
        (Some("multipart/form-data; boundary=x"), false),
        (Some("application/jsonx"), false),
        (None, false),
    ] {
        let request = axum::http::Request::builder()
            .method(Method::POST)
            .uri("/v1/sandboxes");
        let request = match content_type {
            Some(value) => request.header("content-type", value),
            None => request,
        };
        let request = request
            .body(axum::body::Body::from(body().to_string()))
            .unwrap();
        let (status, error) = send(&app, request).await;
        if accepted {
            assert_eq!(status, StatusCode::ACCEPTED, "{content_type:?}: {error}");
            continue;
        }
        assert_eq!(
            (status, error["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("SANDBOX::INVALID_PARAMETER")),
            "{content_type:?}"
        );
        let message = error["message"].as_str().unwrap();
        assert!(
            message.starts_with("Content-Type: must be application/json"),
            "names the header and the rule: {message}"
        );
    }
    let (status, listed) = app.call(Method::GET, "/v1/sandboxes", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        4,
        "only the JSON-typed creates"
    );
}

async fn send(
    app: &TestApp,
    request: axum::http::Request<axum::body::Body>,
) -> (StatusCode, serde_json::Value) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let response = app.app.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

#[tokio::test]
async fn with_auth_off_only_ip_localhost_and_configured_hosts_are_served() {
    let web = WebConfig {
        allowed_hosts: vec!["sandgate.internal".to_owned()],
        ..WebConfig::default()
    };
    let app = app_with(web.clone(), None).await;
    for host in [
        "127.0.0.1:8080",
        "[::1]:8080",
        "localhost:8080",
        "sandgate.internal",
    ] {
        let (status, _, _) = app
            .call_with(Method::GET, "/v1/sandboxes", None, &[("Host", host)])
            .await;
        assert_eq!(status, StatusCode::OK, "{host}");
    }
    for (method, path) in [
        (Method::GET, "/v1/sandboxes"),
        (Method::POST, "/v1/sandboxes"),
        (Method::DELETE, "/v1/sandboxes/x"),
        (Method::GET, "/health"),
    ] {
        let payload = (method == Method::POST).then(body);
        let (status, _, error) = app
            .call_with(
                method,
                path,
                payload,
                &[("Host", "rebound.evil.example:8080")],
            )
            .await;
        assert_eq!(
            (status, error["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("SANDBOX::INVALID_PARAMETER")),
            "{path}"
        );
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .starts_with("Host: must be an IP address"),
            "{error}"
        );
    }
    let (_, listed) = app.call(Method::GET, "/v1/sandboxes", None).await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        0,
        "nothing was created"
    );
    let (status, _, _) = app
        .call_with(
            Method::GET,
            "/internal/v1/routes",
            None,
            &[("Host", "sandgate-control")],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the route stream answers to its own token, whatever the Host"
    );
    let guarded = app_with(web, Some("s3cret")).await;
    let (status, _, _) = guarded
        .call_with(
            Method::GET,
            "/v1/sandboxes",
            None,
            &[
                ("Host", "sandgate.example.com"),
                ("OPEN-SANDBOX-API-KEY", "s3cret"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "with a key any Host is served");
}
