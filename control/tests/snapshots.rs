//! Snapshot API tests against the fake runtime: the state machine, every
//! error code, pagination and filters, restores, and restart recovery
//! through the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{Knobs, PREFIXES, TestApp, body};
use sandgate_control::runtime::fake::Op;
use serde_json::{Value, json};

async fn app() -> TestApp {
    TestApp::start(Knobs::default()).await
}

/// A running sandbox's id.
async fn running(app: &TestApp) -> String {
    let id = app.create("/v1", body()).await;
    app.wait_state(&id, "Running").await;
    id
}

/// Asks for a snapshot of `sandbox`; returns the 202 body.
async fn snapshot(app: &TestApp, sandbox: &str, request: Option<Value>) -> Value {
    let (status, value) = app
        .call(
            Method::POST,
            &format!("/v1/sandboxes/{sandbox}/snapshots"),
            request,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{value}");
    value
}

/// Polls until the snapshot reaches `state` (deadline 10 s).
async fn wait_snapshot(app: &TestApp, id: &str, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, value) = app
            .call(Method::GET, &format!("/v1/snapshots/{id}"), None)
            .await;
        if status == StatusCode::OK && value["status"]["state"] == state {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "snapshot {id} never reached {state}: {status} {value}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn assert_error(answer: (StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["code"], code, "{}", answer.1);
}

#[tokio::test]
async fn a_snapshot_is_accepted_creating_then_ready_on_both_prefixes() {
    let app = app().await;
    let sandbox = running(&app).await;
    for prefix in PREFIXES {
        let (status, headers, created) = app
            .call_with(
                Method::POST,
                &format!("{prefix}/sandboxes/{sandbox}/snapshots"),
                Some(json!({"name": "after-setup", "unknown": 1})),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{created}");
        let id = created["id"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "ids are UUIDs: {id}");
        assert_eq!(headers["location"], format!("/v1/snapshots/{id}").as_str());
        assert_eq!(created["sandboxId"], sandbox.as_str());
        assert_eq!(created["name"], "after-setup");
        assert_eq!(created["status"]["state"], "Creating");
        assert_eq!(created["status"]["reason"], "snapshot_accepted");
        assert_eq!(created["status"]["message"], "Snapshot creation accepted.");
        assert!(created["createdAt"].as_str().unwrap().ends_with('Z'));
        let ready = wait_snapshot(&app, id, "Ready").await;
        assert_eq!(ready["status"]["reason"], "snapshot_runtime_ready");
        let (status, got) = app
            .call(Method::GET, &format!("{prefix}/snapshots/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(got, ready);
        assert!(app.fake.has_snapshot(id));
    }
}

#[tokio::test]
async fn the_body_is_optional_and_name_must_not_be_empty() {
    let app = app().await;
    let sandbox = running(&app).await;
    let created = snapshot(&app, &sandbox, None).await;
    assert!(created.get("name").is_none(), "{created}");
    let (status, created) = app
        .raw(
            Method::POST,
            &format!("/v1/sandboxes/{sandbox}/snapshots"),
            "{}",
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let answer = app
        .call(
            Method::POST,
            &format!("/v1/sandboxes/{sandbox}/snapshots"),
            Some(json!({"name": ""})),
        )
        .await;
    assert_error(
        answer.clone(),
        StatusCode::BAD_REQUEST,
        "SANDBOX::INVALID_PARAMETER",
    );
    assert!(answer.1["message"].as_str().unwrap().contains("name"));
    let answer = app
        .call(
            Method::POST,
            &format!("/v1/sandboxes/{sandbox}/snapshots"),
            Some(json!({"name": 5})),
        )
        .await;
    assert_error(
        answer,
        StatusCode::BAD_REQUEST,
        "SANDBOX::INVALID_PARAMETER",
    );
}

#[tokio::test]
async fn only_running_sandboxes_that_exist_can_be_snapshotted() {
    let app = app().await;
    let answer = app
        .call(Method::POST, "/v1/sandboxes/nope/snapshots", None)
        .await;
    assert_error(answer, StatusCode::NOT_FOUND, "DOCKER::SANDBOX_NOT_FOUND");
    let sandbox = running(&app).await;
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/v1/sandboxes/{sandbox}/pause"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    app.wait_state(&sandbox, "Paused").await;
    let answer = app
        .call(
            Method::POST,
            &format!("/v1/sandboxes/{sandbox}/snapshots"),
            None,
        )
        .await;
    assert_error(
        answer.clone(),
        StatusCode::CONFLICT,
        "SNAPSHOT::INVALID_SOURCE_STATE",
    );
    assert_eq!(
        answer.1["message"],
        "Snapshot can only be created from a Running sandbox."
    );
}

#[tokio::test]
async fn unknown_snapshots_answer_404() {
    let app = app().await;
    for method in [Method::GET, Method::DELETE] {
        let answer = app.call(method, "/v1/snapshots/missing", None).await;
        assert_error(answer.clone(), StatusCode::NOT_FOUND, "SNAPSHOT::NOT_FOUND");
        assert_eq!(answer.1["message"], "Snapshot missing not found");
    }
}

#[tokio::test]
async fn a_failed_commit_ends_failed_and_can_be_deleted() {
    let app = app().await;
    let sandbox = running(&app).await;
    app.fake.fail_next(Op::Snapshot, "disk full");
    let created = snapshot(&app, &sandbox, None).await;
    let id = created["id"].as_str().unwrap();
    let failed = wait_snapshot(&app, id, "Failed").await;
    assert_eq!(failed["status"]["reason"], "snapshot_runtime_failed");
    let message = failed["status"]["message"].as_str().unwrap();
    assert!(message.contains(&sandbox), "{message}");
    assert!(
        !message.contains("disk full"),
        "engine text stays in the log: {message}"
    );
    let answer = app
        .call(
            Method::POST,
            "/v1/sandboxes",
            Some(json!({"snapshotId": id, "resourceLimits": {}})),
        )
        .await;
    assert_error(answer, StatusCode::CONFLICT, "SNAPSHOT::NOT_READY");
    let (status, _) = app
        .call(Method::DELETE, &format!("/v1/snapshots/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_snapshot_being_created_cannot_be_deleted_or_restored() {
    let app = app().await;
    let sandbox = running(&app).await;
    app.fake.hang_snapshots(false);
    let created = snapshot(&app, &sandbox, None).await;
    let id = created["id"].as_str().unwrap();
    let answer = app
        .call(Method::DELETE, &format!("/v1/snapshots/{id}"), None)
        .await;
    assert_error(
        answer.clone(),
        StatusCode::CONFLICT,
        "SNAPSHOT::INVALID_STATE",
    );
    assert_eq!(
        answer.1["message"],
        format!("Snapshot {id} is still being created and cannot be deleted")
    );
    let answer = app
        .call(
            Method::POST,
            "/v1/sandboxes",
            Some(json!({"snapshotId": id, "resourceLimits": {}})),
        )
        .await;
    assert_error(answer.clone(), StatusCode::CONFLICT, "SNAPSHOT::NOT_READY");
    assert_eq!(
        answer.1["message"],
        format!("Snapshot {id} is not ready for restore.")
    );
}

#[tokio::test]
async fn a_restore_runs_the_snapshot_image_and_keeps_it_until_the_sandbox_goes() {
    let app = app().await;
    let source = running(&app).await;
    let created = snapshot(&app, &source, None).await;
    let id = created["id"].as_str().unwrap().to_owned();
    wait_snapshot(&app, &id, "Ready").await;

    let restored = app
        .create(
            "/v1",
            json!({"snapshotId": id, "resourceLimits": {"cpu": "500m"}, "timeout": 600}),
        )
        .await;
    let sandbox = app.wait_state(&restored, "Running").await;
    assert_eq!(sandbox["snapshotId"], id.as_str());
    assert!(sandbox.get("image").is_none(), "{sandbox}");
    assert_eq!(sandbox["entrypoint"], json!(["tail", "-f", "/dev/null"]));
    let (status, inspect) = app
        .call(
            Method::GET,
            &format!("/v1/sandboxes/{restored}/diagnostics/inspect"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let inspect = inspect.to_string();
    assert!(
        inspect.contains(&format!("opensandbox-snapshots:{id}")),
        "the restored sandbox runs the snapshot's image: {inspect}"
    );

    let answer = app
        .call(Method::DELETE, &format!("/v1/snapshots/{id}"), None)
        .await;
    assert_error(answer, StatusCode::CONFLICT, "SNAPSHOT::DELETE_CONFLICT");
    let kept = wait_snapshot(&app, &id, "Ready").await;
    assert_eq!(kept["status"]["reason"], "snapshot_runtime_ready");
    assert!(app.fake.has_snapshot(&id));

    for sandbox in [&restored, &source] {
        let (status, _) = app
            .call(Method::DELETE, &format!("/v1/sandboxes/{sandbox}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    wait_snapshot(&app, &id, "Ready").await;
    let (status, _) = app
        .call(Method::DELETE, &format!("/v1/snapshots/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!app.fake.has_snapshot(&id));
    let answer = app
        .call(Method::GET, &format!("/v1/snapshots/{id}"), None)
        .await;
    assert_error(answer, StatusCode::NOT_FOUND, "SNAPSHOT::NOT_FOUND");
}

#[tokio::test]
async fn the_list_filters_and_paginates_newest_first() {
    let app = app().await;
    let first = running(&app).await;
    let second = running(&app).await;
    let mut ids = Vec::new();
    for (sandbox, name) in [(&first, "a"), (&first, "b"), (&second, "a")] {
        let created = snapshot(&app, sandbox, Some(json!({"name": name}))).await;
        let id = created["id"].as_str().unwrap().to_owned();
        wait_snapshot(&app, &id, "Ready").await;
        ids.push(id);
    }
    let list = |query: &'static str| {
        let app = &app;
        async move {
            let (status, value) = app
                .call(Method::GET, &format!("/snapshots{query}"), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{value}");
            value
        }
    };
    let ids_of = |value: &Value| -> Vec<String> {
        value["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = list("").await;
    assert_eq!(
        all["pagination"],
        json!({"page": 1, "pageSize": 20, "totalItems": 3, "totalPages": 1, "hasNextPage": false})
    );
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(ids_of(&all), newest_first);

    let named = list("?name=a").await;
    assert_eq!(ids_of(&named), vec![ids[2].clone(), ids[0].clone()]);
    let by_sandbox = format!("?sandboxId={first}");
    let (_, of_first) = app
        .call(
            Method::GET,
            &format!("/v1/snapshots{by_sandbox}&name=a"),
            None,
        )
        .await;
    assert_eq!(ids_of(&of_first), vec![ids[0].clone()]);

    let page = list("?pageSize=2&page=2").await;
    assert_eq!(ids_of(&page), vec![ids[0].clone()]);
    assert_eq!(
        page["pagination"],
        json!({"page": 2, "pageSize": 2, "totalItems": 3, "totalPages": 2, "hasNextPage": false})
    );
    let first_page = list("?pageSize=2").await;
    assert_eq!(first_page["pagination"]["hasNextPage"], true);
    assert_eq!(ids_of(&list("?page=9").await), Vec::<String>::new());

    assert_eq!(ids_of(&list("?state=Ready&state=Failed").await).len(), 3);
    assert_eq!(ids_of(&list("?state=Creating").await).len(), 0);
    assert_eq!(
        ids_of(&list("?state=ready").await).len(),
        0,
        "states match exactly"
    );
    assert_eq!(list("?name=zzz").await["pagination"]["totalPages"], 0);

    for bad in ["?page=0", "?pageSize=0", "?pageSize=201", "?page=x"] {
        let answer = app
            .call(Method::GET, &format!("/v1/snapshots{bad}"), None)
            .await;
        assert_error(
            answer,
            StatusCode::BAD_REQUEST,
            "SANDBOX::INVALID_PARAMETER",
        );
    }
}

#[tokio::test]
async fn deleting_a_sandbox_keeps_its_snapshots() {
    let app = app().await;
    let sandbox = running(&app).await;
    let created = snapshot(&app, &sandbox, None).await;
    let id = created["id"].as_str().unwrap();
    wait_snapshot(&app, id, "Ready").await;
    let (status, _) = app
        .call(Method::DELETE, &format!("/v1/sandboxes/{sandbox}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let kept = wait_snapshot(&app, id, "Ready").await;
    assert_eq!(kept["sandboxId"], sandbox.as_str());
    let restored = app
        .create("/v1", json!({"snapshotId": id, "resourceLimits": {}}))
        .await;
    app.wait_state(&restored, "Running").await;
}

#[tokio::test]
async fn snapshots_survive_a_restart_and_interrupted_ones_are_settled() {
    let app = app().await;
    let sandbox = running(&app).await;
    let ready = snapshot(&app, &sandbox, Some(json!({"name": "kept"}))).await;
    let ready_id = ready["id"].as_str().unwrap().to_owned();
    let ready = wait_snapshot(&app, &ready_id, "Ready").await;

    app.fake.hang_snapshots(false);
    let lost = snapshot(&app, &sandbox, None).await;
    let lost_id = lost["id"].as_str().unwrap().to_owned();
    let app = app.restart().await;

    assert_eq!(wait_snapshot(&app, &ready_id, "Ready").await, ready);
    let failed = wait_snapshot(&app, &lost_id, "Failed").await;
    assert_eq!(
        failed["status"]["reason"],
        "snapshot_recovery_missing_image"
    );
    assert_eq!(
        failed["status"]["message"],
        "Snapshot creation was interrupted and no snapshot image was found."
    );

    app.fake.hang_snapshots(true);
    let committed = snapshot(&app, &sandbox, None).await;
    let committed_id = committed["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !app.fake.has_snapshot(&committed_id) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the engine never committed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let app = app.restart().await;
    let recovered = wait_snapshot(&app, &committed_id, "Ready").await;
    assert_eq!(recovered["status"]["reason"], "snapshot_recovery_ready");
    let restored = app
        .create(
            "/v1",
            json!({"snapshotId": committed_id, "resourceLimits": {}}),
        )
        .await;
    app.wait_state(&restored, "Running").await;
}

#[tokio::test]
async fn a_deletion_the_engine_could_not_finish_is_retried_on_start() {
    let app = app().await;
    let sandbox = running(&app).await;
    let created = snapshot(&app, &sandbox, None).await;
    let id = created["id"].as_str().unwrap().to_owned();
    wait_snapshot(&app, &id, "Ready").await;
    app.fake.fail_next(Op::DeleteSnapshot, "engine hiccup");
    let answer = app
        .call(Method::DELETE, &format!("/v1/snapshots/{id}"), None)
        .await;
    assert_error(
        answer,
        StatusCode::INTERNAL_SERVER_ERROR,
        "DOCKER::SNAPSHOT_IMAGE_REMOVE_FAILED",
    );
    let deleting = wait_snapshot(&app, &id, "Deleting").await;
    assert_eq!(deleting["status"]["reason"], "snapshot_delete_requested");
    assert!(app.fake.has_snapshot(&id));
    let app = app.restart().await;
    let answer = app
        .call(Method::GET, &format!("/v1/snapshots/{id}"), None)
        .await;
    assert_error(answer, StatusCode::NOT_FOUND, "SNAPSHOT::NOT_FOUND");
    assert!(!app.fake.has_snapshot(&id));
}

#[tokio::test]
async fn metrics_count_snapshots_by_state() {
    let app = app().await;
    let sandbox = running(&app).await;
    let created = snapshot(&app, &sandbox, None).await;
    wait_snapshot(&app, created["id"].as_str().unwrap(), "Ready").await;
    app.fake.fail_next(Op::Snapshot, "broken");
    let failed = snapshot(&app, &sandbox, None).await;
    wait_snapshot(&app, failed["id"].as_str().unwrap(), "Failed").await;
    let (status, metrics) = app.call(Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = metrics.as_str().unwrap();
    for line in [
        r#"sandgate_snapshots{state="Ready"} 1"#,
        r#"sandgate_snapshots{state="Failed"} 1"#,
        r#"sandgate_snapshots{state="Creating"} 0"#,
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
}

#[tokio::test]
async fn a_store_from_before_snapshots_gains_their_table() {
    let base = app().await;
    let db = base.dir.path().join("old/state.db");
    std::fs::create_dir(db.parent().unwrap()).unwrap();
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE sandboxes (id TEXT PRIMARY KEY, record TEXT NOT NULL);
             CREATE TABLE sandbox_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, sandbox_id TEXT NOT NULL, event TEXT NOT NULL);",
        )
        .unwrap();
    let mut options = base.options.clone();
    options.store_path = db;
    let app = TestApp {
        app: sandgate_control::app::App::start(
            options.clone(),
            base.fake.clone() as std::sync::Arc<dyn sandgate_control::runtime::Runtime>,
        )
        .await
        .unwrap(),
        fake: base.fake.clone(),
        dir: base.dir.clone(),
        options,
    };
    let sandbox = running(&app).await;
    let created = snapshot(&app, &sandbox, None).await;
    let id = created["id"].as_str().unwrap().to_owned();
    wait_snapshot(&app, &id, "Ready").await;
    let app = app.restart().await;
    wait_snapshot(&app, &id, "Ready").await;
}
