//! OpenSandbox 1.1.1 surface beyond the sandbox lifecycle, against the fake
//! runtime: `/version`, `/v1/metrics/events`, `/pools`, `/templates`, and
//! the 1.1.1 create fields (`lifecycle`, `templateId`, `resourceRequests`,
//! the server-owned `env` names).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Knobs, PREFIXES, TestApp, body, body_with};
use sandgate_control::runtime::fake::Op;
use serde_json::{Value, json};

const KEY: (&str, &str) = ("OPEN-SANDBOX-API-KEY", "k");

async fn keyed_app() -> TestApp {
    TestApp::start(Knobs {
        api_key: Some("k".to_owned()),
        ..Knobs::default()
    })
    .await
}

fn assert_error(status: StatusCode, error: &Value, want: StatusCode, code: &str, fragment: &str) {
    assert_eq!(status, want, "{error}");
    assert_eq!(error["code"], code, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
    assert_eq!(error.as_object().unwrap().len(), 2, "{error}");
}

#[tokio::test]
async fn version_is_public_at_the_root_only() {
    let app = keyed_app().await;
    let (status, _, info) = app.call_with(Method::GET, "/version", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info, json!({"version": env!("CARGO_PKG_VERSION")}));
    let (status, _, _) = app.call_with(Method::GET, "/v1/version", None, &[]).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "/v1/version is not exempt"
    );
    let (status, _, error) = app
        .call_with(Method::GET, "/v1/version", None, &[KEY])
        .await;
    assert_error(
        status,
        &error,
        StatusCode::NOT_FOUND,
        "GENERAL::NOT_FOUND",
        "/v1/version",
    );
}

fn event(success: bool, ms: u64) -> Value {
    json!({"eventType": "sandbox.create", "sandboxId": "s", "image": "busybox",
           "createDurationMs": ms, "success": success, "futureField": 1})
}

#[tokio::test]
async fn metrics_events_are_recorded_by_sdk_language() {
    let app = keyed_app().await;
    let python = ("User-Agent", "OpenSandbox-Python-SDK/1.1.1 httpx/0.28");
    for (body, agent) in [
        (event(true, 1500), python),
        (event(false, 20), ("User-Agent", "curl/8")),
    ] {
        let (status, _, _) = app
            .call_with(
                Method::POST,
                "/v1/metrics/events",
                Some(body),
                &[KEY, agent],
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let (status, _, text) = app.call_with(Method::GET, "/metrics", None, &[KEY]).await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap();
    for line in [
        r#"sandgate_sdk_create_events_total{sdk="python",success="true"} 1"#,
        r#"sandgate_sdk_create_events_total{sdk="unknown",success="false"} 1"#,
        r#"sandgate_sdk_create_duration_seconds_sum{sdk="python",success="true"} 1.5"#,
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}

#[tokio::test]
async fn metrics_events_live_under_v1_only_and_need_the_key() {
    let app = keyed_app().await;
    let (status, _, _) = app
        .call_with(
            Method::POST,
            "/v1/metrics/events",
            Some(event(true, 1)),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, error) = app
        .call_with(
            Method::POST,
            "/metrics/events",
            Some(event(true, 1)),
            &[KEY],
        )
        .await;
    assert_error(
        status,
        &error,
        StatusCode::NOT_FOUND,
        "GENERAL::NOT_FOUND",
        "/metrics/events",
    );
}

#[tokio::test]
async fn invalid_metrics_events_are_400s_naming_the_field() {
    let app = keyed_app().await;
    let mut missing = event(true, 1);
    missing.as_object_mut().unwrap().remove("success");
    let cases = [
        (
            json!({"eventType": "sandbox.delete", "createDurationMs": 1, "success": true}),
            "eventType",
        ),
        (
            json!({"eventType": "sandbox.create", "createDurationMs": -1, "success": true}),
            "createDurationMs",
        ),
        (
            json!({"eventType": "sandbox.create", "createDurationMs": 1.5, "success": true}),
            "createDurationMs",
        ),
        (
            json!({"eventType": "sandbox.create", "createDurationMs": 1, "success": "yes"}),
            "success",
        ),
        (missing, "success"),
        (json!([1, 2]), "must be a JSON object"),
    ];
    for (bad, field) in cases {
        let (status, _, error) = app
            .call_with(Method::POST, "/v1/metrics/events", Some(bad), &[KEY])
            .await;
        assert_error(
            status,
            &error,
            StatusCode::BAD_REQUEST,
            "SANDBOX::INVALID_PARAMETER",
            field,
        );
    }
}

const POOL_CODE: &str = "KUBERNETES::POOL_NOT_SUPPORTED";
const POOL_MESSAGE: &str = "Pool management is only available when runtime.type is 'kubernetes'.";
const TEMPLATE_CODE: &str = "FSB::API_NOT_SUPPORTED";
const TEMPLATE_MESSAGE: &str = "Template management requires the kubernetes runtime.";

fn pool() -> Value {
    json!({"name": "warm-1", "template": {"spec": {}},
           "capacitySpec": {"bufferMax": 2, "bufferMin": 1, "poolMax": 4, "poolMin": 0}})
}

fn template() -> Value {
    json!({"image": "python:3.12", "publish": "s3://bucket/publish", "format": "native"})
}

#[tokio::test]
async fn pools_and_templates_answer_501_with_the_reference_code_and_message() {
    let app = TestApp::start(Knobs::default()).await;
    let capacity = json!({"capacitySpec": pool()["capacitySpec"].clone()});
    for prefix in PREFIXES {
        let calls = [
            (
                Method::POST,
                "/pools",
                Some(pool()),
                POOL_CODE,
                POOL_MESSAGE,
            ),
            (Method::GET, "/pools", None, POOL_CODE, POOL_MESSAGE),
            (Method::GET, "/pools/warm-1", None, POOL_CODE, POOL_MESSAGE),
            (
                Method::PUT,
                "/pools/warm-1",
                Some(capacity.clone()),
                POOL_CODE,
                POOL_MESSAGE,
            ),
            (
                Method::DELETE,
                "/pools/warm-1",
                None,
                POOL_CODE,
                POOL_MESSAGE,
            ),
            (
                Method::POST,
                "/templates",
                Some(template()),
                TEMPLATE_CODE,
                TEMPLATE_MESSAGE,
            ),
            (
                Method::GET,
                "/templates?page=2&pageSize=50",
                None,
                TEMPLATE_CODE,
                TEMPLATE_MESSAGE,
            ),
            (
                Method::GET,
                "/templates/tpl_1",
                None,
                TEMPLATE_CODE,
                TEMPLATE_MESSAGE,
            ),
            (
                Method::DELETE,
                "/templates/tpl_1",
                None,
                TEMPLATE_CODE,
                TEMPLATE_MESSAGE,
            ),
        ];
        for (method, path, body, code, message) in calls {
            let uri = format!("{prefix}{path}");
            let (status, error) = app.call(method.clone(), &uri, body).await;
            assert_eq!(
                status,
                StatusCode::NOT_IMPLEMENTED,
                "{method} {uri}: {error}"
            );
            assert_eq!(
                error,
                json!({"code": code, "message": message}),
                "{method} {uri}: the exact reference answer, no request id"
            );
        }
    }
}

#[tokio::test]
async fn pool_and_template_bodies_are_checked_before_the_501() {
    let app = TestApp::start(Knobs::default()).await;
    let mut unknown_field = template();
    unknown_field["zzz"] = json!(1);
    let mut bad_name = pool();
    bad_name["name"] = json!("Warm_1");
    let mut negative = pool();
    negative["capacitySpec"]["poolMax"] = json!(-1);
    let cases = [
        (Method::POST, "/pools", bad_name, "name"),
        (Method::POST, "/pools", json!({"name": "a"}), "template"),
        (Method::POST, "/pools", negative, "capacitySpec.poolMax"),
        (Method::PUT, "/pools/a", json!({}), "capacitySpec"),
        (Method::POST, "/templates", unknown_field, "zzz"),
        (
            Method::POST,
            "/templates",
            json!({"image": "", "publish": "s3://b"}),
            "image",
        ),
        (
            Method::POST,
            "/templates",
            json!({"image": "i", "publish": "s3://b", "format": "zip"}),
            "format",
        ),
        (
            Method::POST,
            "/templates",
            json!({"image": "i", "publish": "s3://b", "entrypoint": []}),
            "entrypoint",
        ),
    ];
    for prefix in PREFIXES {
        for (method, path, bad, field) in cases.clone() {
            let uri = format!("{prefix}{path}");
            let (status, error) = app.call(method, &uri, Some(bad)).await;
            assert_error(
                status,
                &error,
                StatusCode::BAD_REQUEST,
                "SANDBOX::INVALID_PARAMETER",
                field,
            );
        }
        for query in ["page=0", "pageSize=201"] {
            let (status, error) = app
                .call(Method::GET, &format!("{prefix}/templates?{query}"), None)
                .await;
            let field = query.split('=').next().unwrap();
            assert_error(
                status,
                &error,
                StatusCode::BAD_REQUEST,
                "SANDBOX::INVALID_PARAMETER",
                field,
            );
        }
    }
    let (status, error) = app.call(Method::PATCH, "/v1/pools/a", None).await;
    assert_error(
        status,
        &error,
        StatusCode::METHOD_NOT_ALLOWED,
        "GENERAL::METHOD_NOT_ALLOWED",
        "PATCH",
    );
}

/// (body, message fragment): every one a 400 `SANDBOX::INVALID_PARAMETER`.
fn refused_1_1_1_fields() -> Vec<(Value, &'static str)> {
    let lifecycle = |l: Value| body_with("lifecycle", l);
    let env = |e: Value| body_with("env", e);
    let hook = json!({"name": "a", "schedule": "@every 1m", "command": ["x"]});
    vec![
        (
            lifecycle(json!({"preStart": {"command": ["true"]}})),
            "lifecycle: lifecycle hooks are not supported",
        ),
        (
            lifecycle(json!({})),
            "lifecycle: lifecycle hooks are not supported",
        ),
        (
            lifecycle(json!({"preStart": {"command": ["true"], "timeoutSeconds": 0}})),
            "lifecycle.preStart.timeoutSeconds",
        ),
        (
            lifecycle(json!({"preStart": {"command": [" "]}})),
            "lifecycle.preStart.command",
        ),
        (lifecycle(json!({"bogus": 1})), "unknown field `bogus`"),
        (
            lifecycle(json!({"periodic": [hook.clone(), hook]})),
            "lifecycle.periodic[1].name",
        ),
        (
            body_with("templateId", json!("tpl_1")),
            "templateId: cannot be combined with entrypoint, image, resourceLimits",
        ),
        (
            json!({"templateId": "tpl_1"}),
            "timeout: required when templateId is given",
        ),
        (
            json!({"templateId": "tpl_1", "timeout": 120}),
            "templateId: templates (fast-sandbox golden images) are not supported",
        ),
        (
            body_with("templateId", json!("")),
            "templateId: must not be empty",
        ),
        (
            env(json!({"OPENSANDBOX_EGRESS_SANDBOX_ID": "x"})),
            "env.OPENSANDBOX_EGRESS_SANDBOX_ID: not allowed",
        ),
        (
            env(json!({"OPENSANDBOX_EGRESS_SANDBOX_ID": null})),
            "env.OPENSANDBOX_EGRESS_SANDBOX_ID: not allowed",
        ),
        (
            env(json!({"OPENSANDBOX_EGRESS_ANYTHING": "x"})),
            "env.OPENSANDBOX_EGRESS_ANYTHING: not allowed",
        ),
        (
            env(json!({"OPENSANDBOX_LIFECYCLE": "x"})),
            "env.OPENSANDBOX_LIFECYCLE: the name is reserved",
        ),
        (
            body_with("resourceRequests", json!({"cpu": 1})),
            "resourceRequests.cpu",
        ),
    ]
}

#[tokio::test]
async fn the_1_1_1_create_fields_docker_refuses_are_400s_naming_the_field() {
    let app = TestApp::start(Knobs::default()).await;
    for prefix in PREFIXES {
        for (bad, fragment) in refused_1_1_1_fields() {
            let (status, error) = app
                .call(
                    Method::POST,
                    &format!("{prefix}/sandboxes"),
                    Some(bad.clone()),
                )
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} -> {error}");
            assert_error(
                status,
                &error,
                StatusCode::BAD_REQUEST,
                "SANDBOX::INVALID_PARAMETER",
                fragment,
            );
        }
    }
    assert!(app.fake.calls().iter().all(|(op, _)| *op != Op::Provision));
}

/// `resourceRequests` is accepted unchecked and ignored (as on OpenSandbox's
/// Docker runtime); `lifecycle: null` and a blank `templateId` are absent.
/// (Where the egress variables go is checked in `sandbox::request`'s unit tests.)
#[tokio::test]
async fn accepted_1_1_1_fields_create_a_sandbox() {
    let app = TestApp::start(Knobs::default()).await;
    let mut b = body();
    b["resourceRequests"] = json!({"cpu": "not-even-a-quantity", "memory": "1Gi"});
    b["lifecycle"] = Value::Null;
    b["templateId"] = json!("   ");
    b["env"] = json!({"APP": "1", "OPENSANDBOX_EGRESS_LOG_LEVEL": "debug"});
    let id = app.create("/v1", b).await;
    app.wait_state(&id, "Running").await;
}
