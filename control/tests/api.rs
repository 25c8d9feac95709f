//! Handler tests: every route on `/` and `/v1`, every validation rule and
//! every error code that applies, against the fake runtime.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{Knobs, PREFIXES, TestApp, body, body_with, body_without};
use sandgate_control::runtime::fake::Op;
use serde_json::{Value, json};

async fn app() -> TestApp {
    TestApp::start(Knobs::default()).await
}

#[tokio::test]
async fn create_answers_202_pending_then_runs() {
    let app = TestApp::start(Knobs {
        provision_latency: Duration::from_millis(50),
        ..Knobs::default()
    })
    .await;
    for prefix in PREFIXES {
        let (status, created) = app
            .call(Method::POST, &format!("{prefix}/sandboxes"), Some(body()))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(created["status"]["state"], "Pending");
        assert_eq!(
            created["entrypoint"],
            json!(["python", "-m", "http.server"])
        );
        assert_eq!(created["metadata"], json!({"team": "infra"}));
        assert!(created["createdAt"].as_str().unwrap().ends_with('Z'));
        assert!(created["expiresAt"].as_str().unwrap().ends_with('Z'));
        assert!(
            created.get("image").is_none(),
            "create response has no image"
        );
        let id = created["id"].as_str().unwrap();
        let running = app.wait_state(id, "Running").await;
        assert_eq!(running["image"], json!({"uri": "python:3.12"}));
    }
}

#[tokio::test]
async fn manual_cleanup_omits_expiry_and_unknown_fields_are_ignored() {
    let app = app().await;
    for timeout in [Value::Null, json!("__absent__")] {
        let mut b = body_with("timeout", timeout.clone());
        if timeout == json!("__absent__") {
            b.as_object_mut().unwrap().remove("timeout");
        }
        b["futureField"] = json!({"x": 1});
        let (status, created) = app.call(Method::POST, "/v1/sandboxes", Some(b)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{created}");
        assert!(created.get("expiresAt").is_none());
    }
}

/// (body, expected code, message fragment)
fn invalid_bodies() -> Vec<(Value, &'static str, &'static str)> {
    let p = "SANDBOX::INVALID_PARAMETER";
    let vol = |v: Value| body_with("volumes", json!([v]));
    vec![
        (body_with("timeout", json!(10)), p, "at least 60"),
        (body_with("timeout", json!(0)), p, "at least 60"),
        (body_with("timeout", json!(120.5)), p, "whole"),
        (
            body_with("timeout", json!("600")),
            p,
            "integer number of seconds",
        ),
        (
            body_with("timeout", json!(86_401)),
            p,
            "configured maximum of 86400s",
        ),
        (body_with("timeout", json!(1e20)), p, "too large"),
        (body_without("image"), p, "exactly one of image"),
        (
            body_with("image", json!({"uri": "  "})),
            p,
            "exactly one of image",
        ),
        (body_with("snapshotId", json!("snap-1")), p, "not both"),
        (body_without("entrypoint"), p, "entrypoint: required"),
        (
            body_with("entrypoint", json!([])),
            p,
            "entrypoint: must be a non-empty list",
        ),
        (
            body_without("resourceLimits"),
            p,
            "resourceLimits: required",
        ),
        (
            body_with("resourceLimits", json!({"cpu": "fast"})),
            p,
            "resourceLimits.cpu",
        ),
        (
            body_with("resourceLimits", json!({"memory": "12XB"})),
            p,
            "resourceLimits.memory",
        ),
        (
            body_with("resourceLimits", json!({"gpu": "many"})),
            p,
            "resourceLimits.gpu",
        ),
        (
            body_with("resourceLimits", json!({"cpu": 2})),
            p,
            "resourceLimits.cpu: invalid type",
        ),
        (
            body_with("metadata", json!({"Bad Key": "v"})),
            "SANDBOX::INVALID_METADATA_LABEL",
            "Bad Key",
        ),
        (
            body_with("metadata", json!({"opensandbox.io/id": "x"})),
            "SANDBOX::INVALID_METADATA_LABEL",
            "reserved prefix",
        ),
        (
            body_with("metadata", json!({"k": "v".repeat(64)})),
            "SANDBOX::INVALID_METADATA_LABEL",
            "at most 63",
        ),
        (
            body_with("platform", json!({"os": "darwin", "arch": "arm64"})),
            p,
            "platform.os",
        ),
        (
            body_with("platform", json!({"os": "linux", "arch": "riscv"})),
            p,
            "platform.arch",
        ),
        (
            body_with("env", json!({"A=B": "x"})),
            p,
            "env: variable name",
        ),
        (
            body_with("networkPolicy", json!({"defaultAction": "block"})),
            p,
            "networkPolicy.defaultAction",
        ),
        (
            body_with(
                "networkPolicy",
                json!({"egress": [{"action": "allow", "target": ""}]}),
            ),
            p,
            "networkPolicy.egress[0].target",
        ),
        (
            body_with("credentialProxy", json!({"enabled": true})),
            p,
            "credentialProxy.enabled requires networkPolicy",
        ),
        (
            body_with("extensions", json!({"poolRef": "pool-a"})),
            "SANDBOX::UNSUPPORTED_POOL_REF",
            "poolRef",
        ),
        (
            body_with("extensions", json!({"access.renew.extend.seconds": "299"})),
            p,
            "300 to 86400",
        ),
        (
            body_with("extensions", json!({"access.renew.extend.seconds": "abc"})),
            p,
            "300 to 86400",
        ),
        (
            body_with(
                "volumes",
                json!([
            {"name": "a", "mountPath": "/a", "pvc": {"claimName": "c"}},
            {"name": "a", "mountPath": "/b", "pvc": {"claimName": "c"}}]),
            ),
            "VOLUME::DUPLICATE_NAME",
            "unique",
        ),
        (
            vol(json!({"name": "Bad_Name", "mountPath": "/a", "pvc": {"claimName": "c"}})),
            "VOLUME::INVALID_NAME",
            "DNS label",
        ),
        (
            vol(json!({"name": "a", "mountPath": "rel", "pvc": {"claimName": "c"}})),
            "VOLUME::INVALID_MOUNT_PATH",
            "absolute",
        ),
        (
            vol(
                json!({"name": "a", "mountPath": "/a", "subPath": "x/../../y", "pvc": {"claimName": "c"}}),
            ),
            "VOLUME::INVALID_SUB_PATH",
            "'..'",
        ),
        (
            vol(
                json!({"name": "a", "mountPath": "/a", "subPath": "/abs", "pvc": {"claimName": "c"}}),
            ),
            "VOLUME::INVALID_SUB_PATH",
            "relative",
        ),
        (
            vol(json!({"name": "a", "mountPath": "/a"})),
            "VOLUME::INVALID_BACKEND",
            "none was given",
        ),
        (
            vol(
                json!({"name": "a", "mountPath": "/a", "host": {"path": "/data"}, "pvc": {"claimName": "c"}}),
            ),
            "VOLUME::INVALID_BACKEND",
            "several",
        ),
        (
            vol(json!({"name": "a", "mountPath": "/a", "host": {"path": "/etc"}})),
            "VOLUME::HOST_PATH_NOT_ALLOWED",
            "/data",
        ),
        (
            vol(json!({"name": "a", "mountPath": "/a", "host": {"path": "/data2"}})),
            "VOLUME::HOST_PATH_NOT_ALLOWED",
            "allowed prefix",
        ),
        (
            vol(json!({"name": "a", "mountPath": "/a", "host": {"path": "/data/../etc"}})),
            "VOLUME::INVALID_HOST_PATH",
            "normalized",
        ),
        (
            vol(json!({"name": "a", "mountPath": "/a", "host": {"path": "relative"}})),
            "VOLUME::INVALID_HOST_PATH",
            "absolute",
        ),
        (
            vol(json!({"name": "a", "mountPath": "/a", "pvc": {"claimName": "Bad"}})),
            "VOLUME::INVALID_PVC_NAME",
            "claimName",
        ),
        (
            vol(json!({"name": "a", "mountPath": "/a", "ossfs": {"bucket": "b", "endpoint": "e"}})),
            "VOLUME::INVALID_OSSFS_BUCKET",
            "bucket",
        ),
        (
            vol(
                json!({"name": "a", "mountPath": "/a", "ossfs": {"bucket": "bucket", "endpoint": "e"}}),
            ),
            "VOLUME::INVALID_OSSFS_CREDENTIALS",
            "accessKeyId",
        ),
    ]
}

#[tokio::test]
async fn every_create_rule_is_a_400_naming_the_field() {
    let app = app().await;
    for prefix in PREFIXES {
        for (bad, code, fragment) in invalid_bodies() {
            let (status, error) = app
                .call(
                    Method::POST,
                    &format!("{prefix}/sandboxes"),
                    Some(bad.clone()),
                )
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} -> {error}");
            assert_eq!(error["code"], code, "{bad} -> {error}");
            assert!(
                error["message"].as_str().unwrap().contains(fragment),
                "{bad} -> {error}"
            );
            assert_eq!(
                error.as_object().unwrap().len(),
                2,
                "envelope has exactly code and message"
            );
        }
    }
    let (_, list) = app.call(Method::GET, "/v1/sandboxes", None).await;
    assert_eq!(
        list["pagination"]["totalItems"], 0,
        "nothing was created by invalid requests"
    );
    assert!(app.fake.calls().iter().all(|(op, _)| *op != Op::Provision));
}

#[tokio::test]
async fn several_problems_are_reported_at_once() {
    let app = app().await;
    let bad = json!({"timeout": 5, "entrypoint": [], "resourceLimits": {"cpu": "x"}, "image": {"uri": "a"}});
    let (status, error) = app.call(Method::POST, "/v1/sandboxes", Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = error["message"].as_str().unwrap();
    for fragment in ["timeout", "entrypoint", "resourceLimits.cpu"] {
        assert!(message.contains(fragment), "{message}");
    }
}

#[tokio::test]
async fn malformed_json_and_snapshots() {
    let app = app().await;
    let (status, error) = app.raw(Method::POST, "/v1/sandboxes", "{not json").await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("SANDBOX::INVALID_PARAMETER"))
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{error}"
    );
    let (status, error) = app.raw(Method::POST, "/v1/sandboxes", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let (status, error) = app.raw(Method::POST, "/v1/sandboxes", "[1]").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let restore = json!({"snapshotId": "snap-404", "resourceLimits": {}});
    let (status, error) = app.call(Method::POST, "/v1/sandboxes", Some(restore)).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("SNAPSHOT::NOT_FOUND"))
    );
}

#[tokio::test]
async fn get_list_delete_on_both_prefixes() {
    let app = app().await;
    for prefix in PREFIXES {
        let id = app.create(prefix, body()).await;
        let (status, got) = app
            .call(Method::GET, &format!("{prefix}/sandboxes/{id}"), None)
            .await;
        assert_eq!(
            (status, got["id"].as_str()),
            (StatusCode::OK, Some(id.as_str()))
        );
        let (status, none) = app
            .call(Method::DELETE, &format!("{prefix}/sandboxes/{id}"), None)
            .await;
        assert_eq!((status, none), (StatusCode::NO_CONTENT, Value::Null));
        assert!(
            !app.fake.contains(&id.parse().unwrap()),
            "the runtime removed it"
        );
        for (method, path) in [
            (Method::GET, ""),
            (Method::DELETE, ""),
            (Method::POST, "/pause"),
            (Method::POST, "/resume"),
        ] {
            let (status, error) = app
                .call(
                    method.clone(),
                    &format!("{prefix}/sandboxes/{id}{path}"),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
            assert_eq!(error["code"], "DOCKER::SANDBOX_NOT_FOUND");
        }
    }
    let (status, error) = app.call(Method::GET, "/v1/sandboxes/NOT_AN_ID", None).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("DOCKER::SANDBOX_NOT_FOUND"))
    );
}

#[tokio::test]
async fn list_filters_sorts_and_paginates() {
    let app = app().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let team = if i % 2 == 0 { "infra" } else { "ml" };
        ids.push(
            app.create(
                "/v1",
                body_with("metadata", json!({"team": team, "n": i.to_string()})),
            )
            .await,
        );
    }
    for id in &ids {
        app.wait_state(id, "Running").await;
    }
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/v1/sandboxes/{}/pause", ids[0]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    for prefix in PREFIXES {
        let (_, page) = app
            .call(
                Method::GET,
                &format!("{prefix}/sandboxes?pageSize=3&page=2"),
                None,
            )
            .await;
        assert_eq!(
            page["pagination"],
            json!({"page": 2, "pageSize": 3, "totalItems": 7, "totalPages": 3, "hasNextPage": true})
        );
        let newest_first: Vec<_> = ids.iter().rev().skip(3).take(3).map(|s| json!(s)).collect();
        let got: Vec<_> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].clone())
            .collect();
        assert_eq!(got, newest_first);
        let (_, paused) = app
            .call(
                Method::GET,
                &format!("{prefix}/sandboxes?state=PAUSED&state=pending"),
                None,
            )
            .await;
        assert_eq!(paused["pagination"]["totalItems"], 1);
        let (_, infra) = app
            .call(
                Method::GET,
                &format!("{prefix}/sandboxes?metadata=team%3Dinfra%26n%3D2"),
                None,
            )
            .await;
        assert_eq!(infra["pagination"]["totalItems"], 1);
        assert_eq!(infra["items"][0]["id"], json!(ids[2]));
        let (_, beyond) = app
            .call(Method::GET, &format!("{prefix}/sandboxes?page=9"), None)
            .await;
        assert_eq!(
            (
                beyond["items"].as_array().unwrap().len(),
                &beyond["pagination"]["hasNextPage"]
            ),
            (0, &json!(false))
        );
        let (_, unknown) = app
            .call(
                Method::GET,
                &format!("{prefix}/sandboxes?state=Sleeping"),
                None,
            )
            .await;
        assert_eq!(unknown["pagination"]["totalItems"], 0);
    }
    for (query, code) in [
        ("metadata=team%3Dinfra%26broken", "INVALID_METADATA_FORMAT"),
        ("pageSize=201", "SANDBOX::INVALID_PARAMETER"),
        ("page=0", "SANDBOX::INVALID_PARAMETER"),
        ("pageSize=abc", "SANDBOX::INVALID_PARAMETER"),
    ] {
        let (status, error) = app
            .call(Method::GET, &format!("/v1/sandboxes?{query}"), None)
            .await;
        assert_eq!(
            (status, error["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{query}"
        );
    }
}

#[tokio::test]
async fn patch_metadata_merges_and_validates() {
    let app = app().await;
    let id = app
        .create(
            "/v1",
            body_with("metadata", json!({"team": "infra", "old": "x"})),
        )
        .await;
    for prefix in PREFIXES {
        let uri = format!("{prefix}/sandboxes/{id}/metadata");
        let (status, patched) = app
            .call(
                Method::PATCH,
                &uri,
                Some(json!({"team": "ml", "old": null, "missing": null, "new": ""})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{patched}");
        assert_eq!(patched["metadata"], json!({"team": "ml", "new": ""}));
        let (status, same) = app.call(Method::PATCH, &uri, Some(json!({}))).await;
        assert_eq!(
            (status, &same["metadata"]),
            (StatusCode::OK, &json!({"team": "ml", "new": ""}))
        );
        for (bad, code) in [
            (json!({"opensandbox.io/id": null}), "INVALID_METADATA_LABEL"),
            (json!({"Bad Key": "v"}), "SANDBOX::INVALID_METADATA_LABEL"),
            (json!({"k": "bad value"}), "SANDBOX::INVALID_METADATA_LABEL"),
            (json!({"k": 5}), "SANDBOX::INVALID_PARAMETER"),
            (json!(["k"]), "SANDBOX::INVALID_PARAMETER"),
        ] {
            let (status, error) = app.call(Method::PATCH, &uri, Some(bad.clone())).await;
            assert_eq!(
                (status, error["code"].as_str()),
                (StatusCode::BAD_REQUEST, Some(code)),
                "{bad}"
            );
        }
        app.call(
            Method::PATCH,
            &uri,
            Some(json!({"team": "infra", "new": null})),
        )
        .await;
    }
    let (status, _) = app
        .call(
            Method::PATCH,
            "/v1/sandboxes/nope/metadata",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pause_and_resume_follow_the_state_machine() {
    let app = TestApp::start(Knobs {
        provision_latency: Duration::from_millis(300),
        ..Knobs::default()
    })
    .await;
    let id = app.create("/v1", body()).await;
    let (status, error) = app
        .call(Method::POST, &format!("/v1/sandboxes/{id}/pause"), None)
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::CONFLICT, Some("DOCKER::SANDBOX_NOT_RUNNING")),
        "pending"
    );
    app.wait_state(&id, "Running").await;
    for prefix in PREFIXES {
        let uri = |op: &str| format!("{prefix}/sandboxes/{id}/{op}");
        let (status, error) = app.call(Method::POST, &uri("resume"), None).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (StatusCode::CONFLICT, Some("DOCKER::SANDBOX_NOT_PAUSED"))
        );
        let (status, none) = app.call(Method::POST, &uri("pause"), None).await;
        assert_eq!((status, none), (StatusCode::ACCEPTED, Value::Null));
        app.wait_state(&id, "Paused").await;
        let (status, error) = app.call(Method::POST, &uri("pause"), None).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (StatusCode::CONFLICT, Some("DOCKER::SANDBOX_NOT_RUNNING")),
            "paused twice"
        );
        let (status, _) = app.call(Method::POST, &uri("resume"), None).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        app.wait_state(&id, "Running").await;
    }
    app.fake.fail_next(Op::Pause, "freezer busy");
    let (status, error) = app
        .call(Method::POST, &format!("/v1/sandboxes/{id}/pause"), None)
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Some("DOCKER::SANDBOX_PAUSE_FAILED")
        )
    );
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("failed: the container runtime failed (request id "),
        "a 5xx says what failed and the request id: {message}"
    );
    assert!(
        !message.contains("freezer busy"),
        "engine text leaked: {message}"
    );
    let state = app.wait_state(&id, "Running").await;
    assert!(
        state["status"]["message"]
            .as_str()
            .unwrap()
            .contains("Pause failed")
    );
    app.call(Method::POST, &format!("/v1/sandboxes/{id}/pause"), None)
        .await;
    app.fake.fail_next(Op::Resume, "thaw failed");
    let (status, error) = app
        .call(Method::POST, &format!("/v1/sandboxes/{id}/resume"), None)
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Some("DOCKER::SANDBOX_RESUME_FAILED")
        )
    );
    app.wait_state(&id, "Paused").await;
}

#[tokio::test]
async fn renew_expiration_rules() {
    let app = app().await;
    let id = app.create("/v1", body()).await;
    let manual = app.create("/v1", body_with("timeout", Value::Null)).await;
    let later = (chrono::Utc::now() + chrono::Duration::hours(2))
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    for prefix in PREFIXES {
        let uri = format!("{prefix}/sandboxes/{id}/renew-expiration");
        let (status, renewed) = app
            .call(Method::POST, &uri, Some(json!({"expiresAt": later})))
            .await;
        assert_eq!(
            (status, renewed["expiresAt"].as_str()),
            (StatusCode::OK, Some(later.as_str())),
            "{renewed}"
        );
        let (_, got) = app
            .call(Method::GET, &format!("{prefix}/sandboxes/{id}"), None)
            .await;
        assert_eq!(got["expiresAt"].as_str(), Some(later.as_str()));
        let (status, error) = app
            .call(
                Method::POST,
                &uri,
                Some(json!({"expiresAt": "2001-01-01T00:00:00Z"})),
            )
            .await;
        assert_eq!(
            (status, error["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("DOCKER::INVALID_EXPIRATION"))
        );
        let too_far = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
        let (status, error) = app
            .call(Method::POST, &uri, Some(json!({"expiresAt": too_far})))
            .await;
        assert_eq!(
            (status, error["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("DOCKER::INVALID_EXPIRATION")),
            "{error}"
        );
        for bad in [json!({"expiresAt": "not-a-datetime"}), json!({})] {
            let (status, error) = app.call(Method::POST, &uri, Some(bad)).await;
            assert_eq!(
                (status, error["code"].as_str()),
                (StatusCode::BAD_REQUEST, Some("SANDBOX::INVALID_PARAMETER")),
                "{error}"
            );
        }
        let manual_uri = format!("{prefix}/sandboxes/{manual}/renew-expiration");
        let (status, error) = app
            .call(Method::POST, &manual_uri, Some(json!({"expiresAt": later})))
            .await;
        assert_eq!(
            (status, error["code"].as_str()),
            (StatusCode::CONFLICT, Some("DOCKER::INVALID_EXPIRATION"))
        );
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("does not have automatic expiration enabled")
        );
        let (status, _) = app
            .call(
                Method::POST,
                &format!("{prefix}/sandboxes/nope/renew-expiration"),
                Some(json!({"expiresAt": later})),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn endpoints_answer_for_pending_sandboxes_and_check_input() {
    let app = TestApp::start(Knobs {
        provision_latency: Duration::from_millis(200),
        ..Knobs::default()
    })
    .await;
    for prefix in PREFIXES {
        let id = app.create(prefix, body()).await;
        for port in [44772, 18080, 8080] {
            let (status, endpoint) = app
                .call(
                    Method::GET,
                    &format!("{prefix}/sandboxes/{id}/endpoints/{port}"),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{endpoint}");
            assert_eq!(endpoint, json!({"endpoint": format!("127.0.0.1:{port}")}));
        }
        let cases = [
            ("0", "DOCKER::INVALID_PORT"),
            ("65536", "DOCKER::INVALID_PORT"),
            ("abc", "SANDBOX::INVALID_PARAMETER"),
            (
                "8080?use_server_proxy=true&expires=2000000000",
                "SANDBOX::INVALID_PARAMETER",
            ),
            ("8080?expires=2000000000", "SANDBOX::INVALID_PARAMETER"),
            ("8080?expires=1", "SANDBOX::INVALID_PARAMETER"),
            ("8080?expires=soon", "SANDBOX::INVALID_PARAMETER"),
            ("8080?use_server_proxy=maybe", "SANDBOX::INVALID_PARAMETER"),
        ];
        for (tail, code) in cases {
            let (status, error) = app
                .call(
                    Method::GET,
                    &format!("{prefix}/sandboxes/{id}/endpoints/{tail}"),
                    None,
                )
                .await;
            assert_eq!(
                (status, error["code"].as_str()),
                (StatusCode::BAD_REQUEST, Some(code)),
                "{tail}: {error}"
            );
        }
        let (status, _) = app
            .call(
                Method::GET,
                &format!("{prefix}/sandboxes/nope/endpoints/8080"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn provisioning_failures_end_failed_with_the_reason() {
    let app = app().await;
    let id = app
        .create(
            "/v1",
            body_with("image", json!({"uri": "fake/fail: image not found"})),
        )
        .await;
    let failed = app.wait_state(&id, "Failed").await;
    assert_eq!(failed["status"]["reason"], "PROVISIONING_ERROR");
    assert!(
        failed["status"]["message"]
            .as_str()
            .unwrap()
            .contains("Provisioning failed: the container runtime failed"),
        "{failed}"
    );
    assert!(
        !failed["status"]["message"]
            .as_str()
            .unwrap()
            .contains("image not found"),
        "engine text leaked into the status: {failed}"
    );
}

#[tokio::test]
async fn runtime_reported_exits_and_removals_show_up() {
    let app = app().await;
    let ids: Vec<String> = futures_join(&app, 3).await;
    app.fake.exit(&ids[0].parse().unwrap(), 0, false);
    app.fake.exit(&ids[1].parse().unwrap(), 137, true);
    app.fake.remove_behind_back(&ids[2].parse().unwrap());
    let done = app.wait_state(&ids[0], "Terminated").await;
    assert_eq!(done["status"]["reason"], "CONTAINER_EXITED");
    let oom = app.wait_state(&ids[1], "Failed").await;
    assert_eq!(oom["status"]["reason"], "CONTAINER_OOM_KILLED");
    assert!(oom["status"]["message"].as_str().unwrap().contains("137"));
    let lost = app.wait_state(&ids[2], "Failed").await;
    assert_eq!(lost["status"]["reason"], "RUNTIME_LOST");
}

async fn futures_join(app: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = app.create("/v1", body()).await;
        app.wait_state(&id, "Running").await;
        ids.push(id);
    }
    ids
}

#[tokio::test]
async fn api_key_is_required_except_on_public_paths() {
    let app = TestApp::start(Knobs {
        api_key: Some("s3cret".to_owned()),
        ..Knobs::default()
    })
    .await;
    for prefix in PREFIXES {
        for (method, path) in [
            (Method::GET, "/sandboxes"),
            (Method::POST, "/sandboxes"),
            (Method::DELETE, "/sandboxes/x"),
            (Method::POST, "/sandboxes/x/pause"),
        ] {
            let uri = format!("{prefix}{path}");
            let (status, headers, error) = app.call_with(method.clone(), &uri, None, &[]).await;
            assert_eq!(
                (status, error["code"].as_str()),
                (StatusCode::UNAUTHORIZED, Some("MISSING_API_KEY")),
                "{uri}"
            );
            assert!(headers.contains_key("x-request-id"));
            let (status, _, error) = app
                .call_with(method, &uri, None, &[("OPEN-SANDBOX-API-KEY", "wrong")])
                .await;
            assert_eq!(
                (status, error["code"].as_str()),
                (StatusCode::UNAUTHORIZED, Some("INVALID_API_KEY"))
            );
        }
        let (status, _, _) = app
            .call_with(
                Method::GET,
                &format!("{prefix}/sandboxes"),
                None,
                &[("open-sandbox-api-key", "s3cret")],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _, health) = app.call_with(Method::GET, "/health", None, &[]).await;
    assert_eq!(
        (status, health["status"].as_str()),
        (StatusCode::OK, Some("healthy"))
    );
    let (status, _, _) = app.call_with(Method::GET, "/v1/health", None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "/v1/health is not public");
    let (status, _, _) = app.call_with(Method::GET, "/metrics", None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, headers, _) = app
        .call_with(
            Method::OPTIONS,
            "/v1/sandboxes",
            None,
            &[
                ("Origin", "https://app.example"),
                ("Access-Control-Request-Method", "POST"),
            ],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "CORS pre-flight is answered before auth"
    );
    assert!(
        !headers.contains_key("access-control-allow-origin"),
        "no origin is allowed unless configured (see tests/web.rs)"
    );
}

#[tokio::test]
async fn request_ids_health_metrics_and_unknown_routes() {
    let app = app().await;
    let (_, headers, _) = app
        .call_with(
            Method::GET,
            "/health",
            None,
            &[("X-Request-ID", " abc-123 ")],
        )
        .await;
    assert_eq!(headers["x-request-id"], "abc-123");
    let (status, headers, error) = app
        .call_with(Method::GET, "/v1/nothing-here", None, &[])
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("GENERAL::NOT_FOUND"))
    );
    assert_eq!(
        headers["x-request-id"].len(),
        32,
        "generated ids are 32 hex characters"
    );
    let (status, error) = app.call(Method::PUT, "/v1/sandboxes", None).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (
            StatusCode::METHOD_NOT_ALLOWED,
            Some("GENERAL::METHOD_NOT_ALLOWED")
        )
    );
    app.create("/v1", body()).await;
    let (status, metrics) = app.call(Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains(
            r#"sandgate_http_requests_total{route="/v1/sandboxes",method="POST",status="202"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains("sandgate_sandboxes{state=") && text.contains("sandgate_expiry_timers 1"),
        "{text}"
    );
}

#[tokio::test]
async fn gateway_endpoints_secure_access_and_signed_routes() {
    use sandgate_control::ingress::{GatewayRoute, Ingress, Signing};
    let direct = app().await;
    let (status, error) = direct
        .call(
            Method::POST,
            "/v1/sandboxes",
            Some(body_with("secureAccess", json!(true))),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("SANDBOX::INVALID_PARAMETER"))
    );
    assert!(
        error["message"].as_str().unwrap().contains("gateway"),
        "{error}"
    );

    let signing = Signing {
        active: 'a',
        keys: [('a', b"edge-secret".to_vec())].into(),
    };
    let ingress = Ingress {
        gateway: Some(GatewayRoute::Uri {
            address: "127.0.0.1:28888".into(),
        }),
        signing: Some(signing),
        eip: None,
    };
    let app = TestApp::start(Knobs {
        ingress,
        // Auth is off here, so the `Host` below must be a configured name.
        web: sandgate_control::config::WebConfig {
            allowed_hosts: vec!["control.example".to_owned()],
            ..Default::default()
        },
        ..Knobs::default()
    })
    .await;
    let open = app.create("/v1", body()).await;
    let (_, endpoint) = app
        .call(
            Method::GET,
            &format!("/v1/sandboxes/{open}/endpoints/44772"),
            None,
        )
        .await;
    assert_eq!(
        endpoint,
        json!({"endpoint": format!("127.0.0.1:28888/{open}/44772")})
    );

    let secured = app
        .create("/v1", body_with("secureAccess", json!(true)))
        .await;
    let (_, endpoint) = app
        .call(
            Method::GET,
            &format!("/v1/sandboxes/{secured}/endpoints/8080"),
            None,
        )
        .await;
    let token = endpoint["headers"]["OpenSandbox-Secure-Access"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(token.len(), 64);

    let expires = chrono::Utc::now().timestamp() + 600;
    let uri = format!("/v1/sandboxes/{secured}/endpoints/8080?expires={expires}");
    let (status, signed) = app.call(Method::GET, &uri, None).await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    assert!(
        signed.get("headers").is_none(),
        "signed routes carry no secure-access header"
    );
    let text = signed["endpoint"].as_str().unwrap();
    let path = text.strip_prefix("127.0.0.1:28888").unwrap();
    let (key, rest) = sandgate_shared::route_key::parse_uri_path(path).unwrap();
    assert_eq!(
        (key.sandbox_id, key.port, rest),
        (secured.as_str(), 8080, "/")
    );
    let keys = |id: char| (id == 'a').then(|| b"edge-secret".to_vec());
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap();
    assert_eq!(
        sandgate_shared::signing::verify(&keys, &secured, 8080, &key.signed.unwrap(), now),
        Ok(())
    );

    let (_, _, proxied) = app
        .call_with(
            Method::GET,
            &format!("/v1/sandboxes/{secured}/endpoints/44772?use_server_proxy=true"),
            None,
            &[("host", "control.example:8080")],
        )
        .await;
    assert_eq!(
        proxied["endpoint"],
        json!(format!(
            "control.example:8080/sandboxes/{secured}/proxy/44772"
        ))
    );
    assert_eq!(
        proxied["headers"]["OpenSandbox-Secure-Access"],
        json!(token)
    );
}

/// A stand-in edge proxy that echoes what it received.
async fn echo_edge() -> axum::http::Uri {
    use axum::extract::Request;
    let echo = |request: Request| async move {
        let (parts, body) = request.into_parts();
        let body = http_body_util::BodyExt::collect(body)
            .await
            .unwrap()
            .to_bytes();
        let headers: serde_json::Map<String, Value> = parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap())))
            .collect();
        let seen = json!({"method": parts.method.as_str(), "uri": parts.uri.to_string(),
            "headers": headers, "body": String::from_utf8_lossy(&body)});
        (
            StatusCode::CREATED,
            [("x-from-sandbox", "yes")],
            axum::Json(seen),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(echo)).await });
    format!("http://{address}").parse().unwrap()
}

#[tokio::test]
async fn server_proxy_paths_are_relayed_to_the_edge_proxy_when_one_is_configured() {
    let without = TestApp::start(Knobs {
        api_key: Some("k".into()),
        ..Knobs::default()
    })
    .await;
    let (status, error) = without
        .call(Method::GET, "/v1/sandboxes/abc/proxy/8080/x", None)
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("DOCKER::SANDBOX_NOT_FOUND")),
        "no API key needed; without an edge proxy the control plane looks the sandbox up: {error}"
    );
    let (status, _) = without
        .call(Method::GET, "/v1/sandboxes/abc/proxy/8080/../x", None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "paths with '..' are not proxy paths"
    );

    let app = TestApp::start(Knobs {
        edge_proxy: Some(echo_edge().await),
        web: sandgate_control::config::WebConfig {
            allowed_hosts: vec!["control.example".to_owned()],
            ..Default::default()
        },
        ..Knobs::default()
    })
    .await;
    for tail in ["", "/"] {
        let (status, seen) = app
            .call(
                Method::GET,
                &format!("/v1/sandboxes/abc/proxy/8080{tail}"),
                None,
            )
            .await;
        assert_eq!(
            (status, &seen["uri"]),
            (
                StatusCode::CREATED,
                &json!(format!("/v1/sandboxes/abc/proxy/8080{tail}"))
            )
        );
    }
    for prefix in PREFIXES {
        let uri = format!("{prefix}/sandboxes/abc/proxy/8080/api/run?q=search&path=%2Fworkspace");
        let headers = [
            ("x-trace", "t-1"),
            ("open-sandbox-api-key", "secret"),
            ("connection", "x-hop-temp"),
            ("x-hop-temp", "1"),
            ("cookie", "session=1"),
            ("host", "control.example"),
        ];
        let (status, response_headers, seen) = app
            .call_with(Method::POST, &uri, Some(json!({"run": 1})), &headers)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{seen}");
        assert_eq!(response_headers["x-from-sandbox"], "yes");
        assert_eq!(seen["method"], "POST");
        assert_eq!(
            seen["uri"],
            json!(uri),
            "path and query (with its encoding) are relayed verbatim"
        );
        assert_eq!(seen["body"], r#"{"run":1}"#);
        let forwarded = seen["headers"].as_object().unwrap();
        assert_eq!(forwarded["x-trace"], "t-1");
        assert_eq!(forwarded["cookie"], "session=1");
        assert_eq!(forwarded["x-forwarded-host"], "control.example");
        assert!(
            !forwarded.contains_key("open-sandbox-api-key"),
            "the control plane's key never leaves it"
        );
        assert!(
            !forwarded.contains_key("x-hop-temp"),
            "hop-by-hop headers are dropped"
        );
    }
}

#[tokio::test]
async fn diagnostics_report_the_status_history() {
    let app = app().await;
    let id = app.create("/v1", body()).await;
    app.wait_state(&id, "Running").await;
    app.call(Method::POST, &format!("/v1/sandboxes/{id}/pause"), None)
        .await;
    for prefix in PREFIXES {
        let (status, events) = app
            .call(
                Method::GET,
                &format!("{prefix}/sandboxes/{id}/diagnostics/events?scope=lifecycle"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{events}");
        assert_eq!(
            (events["kind"].as_str(), events["delivery"].as_str()),
            (Some("events"), Some("inline"))
        );
        let text = events["content"].as_str().unwrap();
        let order: Vec<_> = ["Pending", "Running", "Pausing", "Paused"]
            .iter()
            .map(|s| text.find(&format!("lifecycle {s} ")).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
        let (_, logs) = app
            .call(
                Method::GET,
                &format!("{prefix}/sandboxes/{id}/diagnostics/logs?scope=container"),
                None,
            )
            .await;
        assert_eq!(logs["content"], "(no container output)\n");
        let (status, error) = app
            .call(
                Method::GET,
                &format!("{prefix}/sandboxes/{id}/diagnostics/logs?scope=network"),
                None,
            )
            .await;
        assert_eq!(
            (status, error["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("SANDBOX::INVALID_PARAMETER"))
        );
        let (status, _) = app
            .call(
                Method::GET,
                &format!("{prefix}/sandboxes/nope/diagnostics/logs?scope=all"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, headers, legacy) = app
        .call_with(
            Method::GET,
            &format!("/v1/sandboxes/{id}/diagnostics/events"),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (status, &headers["deprecation"], &headers["content-type"]),
        (
            StatusCode::OK,
            &"true".parse::<axum::http::HeaderValue>().unwrap(),
            &"text/plain; charset=utf-8"
                .parse::<axum::http::HeaderValue>()
                .unwrap()
        )
    );
    assert!(legacy.as_str().unwrap().contains("lifecycle Paused"));
}

/// `GET` returning the plain-text body and its headers.
async fn get_text(app: &TestApp, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let (status, headers, value) = app.call_with(Method::GET, uri, None, &[]).await;
    let text = match value {
        Value::String(text) => text,
        other => other.to_string(),
    };
    (status, headers, text)
}

fn assert_invalid(status: StatusCode, body: &str, fields: &[&str]) {
    let error: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("SANDBOX::INVALID_PARAMETER")),
        "{body}"
    );
    let message = error["message"].as_str().unwrap();
    for field in fields {
        assert!(
            message.contains(&format!("{field}: ")) && message.contains("must be an integer from"),
            "{field} not named in {message}"
        );
    }
}

fn ago(seconds: i64) -> sandgate_shared::time::Timestamp {
    sandgate_shared::time::Timestamp::from_utc(
        chrono::Utc::now() - chrono::Duration::seconds(seconds),
    )
}

#[tokio::test]
async fn devops_inspect_describes_the_engine_object() {
    let app = app().await;
    let id = app.create("/v1", body()).await;
    app.wait_state(&id, "Running").await;
    for prefix in PREFIXES {
        let uri = format!("{prefix}/sandboxes/{id}/diagnostics/inspect");
        let (status, headers, text) = get_text(&app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
        assert!(
            !headers.contains_key("deprecation"),
            "inspect carries no Deprecation header"
        );
        for expected in [
            format!("Sandbox:        {id}\n"),
            "Image:          python:3.12\n".to_owned(),
            "Status:         running\n".to_owned(),
            "Labels:\n  team=infra\n".to_owned(),
        ] {
            assert!(text.contains(&expected), "{expected:?} missing:\n{text}");
        }
        let (status, _, error) = get_text(
            &app,
            &format!("{prefix}/sandboxes/nope/diagnostics/inspect"),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
        assert!(error.contains("DOCKER::SANDBOX_NOT_FOUND"), "{error}");
    }
    app.fake.fail_next(Op::Inspect, "engine-detail-42");
    let (status, _, error) =
        get_text(&app, &format!("/v1/sandboxes/{id}/diagnostics/inspect")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{error}");
    assert!(error.contains("DOCKER::SANDBOX_QUERY_FAILED"), "{error}");
    // A sandbox whose container went away is described as such, not a 404.
    app.fake.remove_behind_back(&id.parse().unwrap());
    app.wait_state(&id, "Failed").await;
    let (status, _, text) =
        get_text(&app, &format!("/v1/sandboxes/{id}/diagnostics/inspect")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        text.starts_with("(no container: ") && text.contains("Failed"),
        "{text}"
    );
}

#[tokio::test]
async fn devops_summary_frames_inspect_events_and_logs() {
    let app = app().await;
    let id = app.create("/v1", body()).await;
    app.wait_state(&id, "Running").await;
    let sandbox = id.parse().unwrap();
    for (seconds, line) in [(120, "first line"), (60, "second line"), (0, "third line")] {
        app.fake.write_output(&sandbox, ago(seconds), line);
    }
    for prefix in PREFIXES {
        let base = format!("{prefix}/sandboxes/{id}/diagnostics");
        let (status, headers, summary) =
            get_text(&app, &format!("{base}/summary?tail=2&event_limit=3")).await;
        assert_eq!(status, StatusCode::OK, "{summary}");
        assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
        assert!(!headers.contains_key("deprecation"));
        let (_, _, inspect) = get_text(&app, &format!("{base}/inspect")).await;
        let (_, _, events) = get_text(&app, &format!("{base}/events?limit=3")).await;
        let (_, _, logs) = get_text(&app, &format!("{base}/logs?tail=2")).await;
        assert_eq!(events.lines().count(), 3, "{events}");
        assert!(
            logs.contains("second line") && logs.contains("third line") && !logs.contains("first"),
            "{logs}"
        );
        let (double, single) = ("=".repeat(72), "-".repeat(40));
        let section = |title: &str, text: &str| {
            format!(
                "\n{single}\n{title}\n{single}\n{}",
                text.trim_end_matches('\n')
            )
        };
        let expected = format!(
            "{double}\nSANDBOX DIAGNOSTICS SUMMARY\nSandbox ID: {id}\n{double}\n{}\n{}\n{}\n",
            section("INSPECT", &inspect),
            section("EVENTS", &events),
            section("LOGS (last 2 lines)", &logs),
        );
        assert_eq!(summary, expected);

        let (_, _, defaults) = get_text(&app, &format!("{base}/summary")).await;
        assert!(defaults.contains("\nLOGS (last 50 lines)\n"), "{defaults}");
        assert!(defaults.contains("first line"), "{defaults}");
        let (status, _, _) =
            get_text(&app, &format!("{base}/summary?tail=10000&event_limit=500")).await;
        assert_eq!(status, StatusCode::OK);
        for (query, fields) in [
            ("tail=0", &["tail"][..]),
            ("tail=10001", &["tail"]),
            ("tail=many", &["tail"]),
            ("event_limit=0", &["event_limit"]),
            ("event_limit=501", &["event_limit"]),
            ("tail=-1&event_limit=x", &["tail", "event_limit"]),
        ] {
            let (status, _, body) = get_text(&app, &format!("{base}/summary?{query}")).await;
            assert_invalid(status, &body, fields);
        }
        let (status, _, error) = get_text(
            &app,
            &format!("{prefix}/sandboxes/nope/diagnostics/summary"),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
        assert!(error.contains("DOCKER::SANDBOX_NOT_FOUND"), "{error}");
    }
    // Parts that fail are replaced by a fixed line; the cause is not sent.
    app.fake.fail_next(Op::Inspect, "engine-detail-inspect");
    app.fake.fail_next(Op::Events, "engine-detail-events");
    app.fake.fail_next(Op::Logs, "engine-detail-logs");
    let (status, _, summary) =
        get_text(&app, &format!("/v1/sandboxes/{id}/diagnostics/summary")).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    for part in ["inspect", "event", "log"] {
        let line = format!(
            "\n{}\n[error] Failed to collect {part} diagnostics.\n",
            "-".repeat(40)
        );
        assert!(summary.contains(&line), "{line:?} missing:\n{summary}");
    }
    assert!(!summary.contains("engine-detail"), "{summary}");
}

#[tokio::test]
async fn legacy_logs_are_the_container_output_with_tail_and_since() {
    let app = app().await;
    let id = app.create("/v1", body()).await;
    app.wait_state(&id, "Running").await;
    let logs = |query: &str| format!("/v1/sandboxes/{id}/diagnostics/logs{query}");
    let (status, headers, text) = get_text(&app, &logs("")).await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::OK, "(no logs)"),
        "no output and no status history"
    );
    assert_eq!(headers["deprecation"], "true");
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    let sandbox = id.parse().unwrap();
    for (seconds, line) in [
        (3 * 3600, "three hours ago"),
        (30 * 60, "half an hour ago"),
        (60, "a minute ago"),
        (0, "just now"),
    ] {
        app.fake.write_output(&sandbox, ago(seconds), line);
    }
    let lines = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| l.split_once(' ').unwrap().1.to_owned())
            .collect()
    };
    for prefix in PREFIXES {
        let uri = |query: &str| format!("{prefix}/sandboxes/{id}/diagnostics/logs{query}");
        for (query, expected) in [
            (
                "",
                &[
                    "three hours ago",
                    "half an hour ago",
                    "a minute ago",
                    "just now",
                ][..],
            ),
            ("?tail=1", &["just now"]),
            ("?tail=2&since=2d", &["a minute ago", "just now"]),
            ("?since=10m", &["a minute ago", "just now"]),
            ("?since=90s", &["a minute ago", "just now"]),
            (
                "?since=1h",
                &["half an hour ago", "a minute ago", "just now"],
            ),
            (
                "?since=4h",
                &[
                    "three hours ago",
                    "half an hour ago",
                    "a minute ago",
                    "just now",
                ],
            ),
            ("?since=whenever", &["a minute ago", "just now"]),
            (
                "?tail=10000",
                &[
                    "three hours ago",
                    "half an hour ago",
                    "a minute ago",
                    "just now",
                ],
            ),
        ] {
            let (status, _, text) = get_text(&app, &uri(query)).await;
            assert_eq!(status, StatusCode::OK, "{query}: {text}");
            assert_eq!(lines(&text), expected, "{query}:\n{text}");
            assert!(!text.contains("lifecycle"), "output only: {text}");
        }
        let (_, _, text) = get_text(&app, &uri("?since=0s")).await;
        assert_eq!(text, "(no logs)");
        for query in ["?tail=0", "?tail=10001", "?tail=ten", "?tail=-3&since=1h"] {
            let (status, _, body) = get_text(&app, &uri(query)).await;
            assert_invalid(status, &body, &["tail"]);
        }
        let (status, _, _) = get_text(
            &app,
            &format!("{prefix}/sandboxes/nope/diagnostics/logs?tail=5"),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _, text) = get_text(&app, &logs("?scope=container&tail=0")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the stable form ignores tail: {text}"
    );
}

#[tokio::test]
async fn legacy_events_honour_limit() {
    let app = app().await;
    let id = app.create("/v1", body()).await;
    app.wait_state(&id, "Running").await;
    app.call(Method::POST, &format!("/v1/sandboxes/{id}/pause"), None)
        .await;
    app.wait_state(&id, "Paused").await;
    for prefix in PREFIXES {
        let uri = |query: &str| format!("{prefix}/sandboxes/{id}/diagnostics/events{query}");
        let (status, headers, all) = get_text(&app, &uri("")).await;
        assert_eq!(status, StatusCode::OK, "{all}");
        assert_eq!(headers["deprecation"], "true");
        let all: Vec<&str> = all.lines().collect();
        // Pending, Running, Pausing, Paused; created, started, paused.
        assert_eq!(all.len(), 7, "{all:#?}");
        for expected in [
            "lifecycle Pending",
            "lifecycle Paused",
            "runtime container created",
            "runtime process started",
        ] {
            assert!(
                all.iter().any(|l| l.contains(expected)),
                "{expected}: {all:#?}"
            );
        }
        assert_eq!(
            all.last(),
            Some(&"runtime container is paused"),
            "undated facts come last"
        );
        let (_, _, two) = get_text(&app, &uri("?limit=2")).await;
        assert_eq!(
            two.lines().collect::<Vec<_>>(),
            all[5..],
            "the most recent two"
        );
        let (status, _, _) = get_text(&app, &uri("?limit=500")).await;
        assert_eq!(status, StatusCode::OK);
        for query in ["?limit=0", "?limit=501", "?limit=some"] {
            let (status, _, body) = get_text(&app, &uri(query)).await;
            assert_invalid(status, &body, &["limit"]);
        }
        let (status, _, _) =
            get_text(&app, &format!("{prefix}/sandboxes/nope/diagnostics/events")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

/// Issue 10: values that Docker only refuses deep inside (or that change the
/// meaning of its `source:target:mode` binds) are 400s at validation, naming
/// the field and the rule, before anything is created.
#[tokio::test]
async fn values_that_would_only_fail_inside_the_engine_are_400s() {
    let p = "SANDBOX::INVALID_PARAMETER";
    let mount = "VOLUME::INVALID_MOUNT_PATH";
    let vol = |v: Value| body_with("volumes", json!([v]));
    let at = |path: &str| vol(json!({"name": "a", "mountPath": path, "pvc": {"claimName": "c"}}));
    let cases = [
        (
            body_with("image", json!({"uri": "busy\u{0}box"})),
            p,
            "image.uri: must not contain a NUL byte",
        ),
        (
            body_with("entrypoint", json!(["sh", "-c\u{0}"])),
            p,
            "entrypoint[1]: must not contain a NUL byte",
        ),
        (
            body_with("env", json!({"A\u{0}": "x"})),
            p,
            "neither '=' nor NUL",
        ),
        (
            body_with("env", json!({"A": "x\u{0}"})),
            p,
            "env.A: the value contains a NUL byte",
        ),
        (
            body_with("extensions", json!({"k": "v\u{0}"})),
            p,
            "extensions[\"k\"]: must not contain a NUL byte",
        ),
        (
            body_with("metadata", json!({"team": "a\u{0}"})),
            "SANDBOX::INVALID_METADATA_LABEL",
            "metadata value",
        ),
        (
            body_with("metadata", json!({"sandgate.io/metadata": "x"})),
            "SANDBOX::INVALID_METADATA_LABEL",
            "reserved prefix \"sandgate.io/\"",
        ),
        (
            body_with("resourceLimits", json!({"cpu": "1e300"})),
            p,
            "resourceLimits.cpu: \"1e300\" is not a CPU quantity",
        ),
        (
            body_with("resourceLimits", json!({"cpu": "0"})),
            p,
            "resourceLimits.cpu: \"0\" must be at least 1m",
        ),
        (
            body_with("resourceLimits", json!({"cpu": "100000000000"})),
            p,
            "resourceLimits.cpu: \"100000000000\" is more CPU than any host has",
        ),
        (at("/"), mount, "volumes[0].mountPath: must not be '/'"),
        (
            at("/a:b"),
            mount,
            "volumes[0].mountPath: must not contain ':'",
        ),
        (at("/a\u{0}"), mount, "must not contain ':' or a NUL byte"),
        (at("/tmp/.."), mount, "must be normalized"),
        (at("/data/"), mount, "must be normalized"),
        (at("/proc/sys"), mount, "must not be /proc or below it"),
        (at("/dev"), mount, "must not be /dev or below it"),
        (at("/sys"), mount, "must not be /sys or below it"),
        (
            body_with(
                "volumes",
                json!([
                {"name": "a", "mountPath": "/same", "pvc": {"claimName": "c"}},
                {"name": "b", "mountPath": "/same", "pvc": {"claimName": "d"}}]),
            ),
            mount,
            "volumes[1].mountPath: \"/same\" is used by an earlier volume",
        ),
        (
            vol(json!({"name": "a", "mountPath": "/a", "host": {"path": "/data/a:b"}})),
            "VOLUME::INVALID_HOST_PATH",
            "volumes[0].host.path: must not contain ':'",
        ),
        (
            vol(json!({"name": "a", "mountPath": "/a", "host": {"path": "/data/a\u{0}"}})),
            "VOLUME::INVALID_HOST_PATH",
            "NUL byte",
        ),
        (
            vol(
                json!({"name": "a", "mountPath": "/a", "subPath": "x:y", "host": {"path": "/data"}}),
            ),
            "VOLUME::INVALID_SUB_PATH",
            "volumes[0].subPath: must not contain ':'",
        ),
    ];
    let app = app().await;
    for (bad, code, fragment) in cases {
        let (status, error) = app
            .call(Method::POST, "/v1/sandboxes", Some(bad.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} -> {error}");
        assert_eq!(error["code"], code, "{bad} -> {error}");
        assert!(
            error["message"].as_str().unwrap().contains(fragment),
            "{bad} -> {error}"
        );
    }
    assert!(app.fake.calls().iter().all(|(op, _)| *op != Op::Provision));
}
