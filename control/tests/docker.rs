//! Integration tests against the real Docker engine (started by `.ci/run`),
//! with the images from `scripts/build-test-images.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::docker::{DockerApp, EXECD, busybox, docker, http_get, wait_http};
use serde_json::{Value, json};

const HTTPD: [&str; 6] = ["httpd", "-f", "-p", "8080", "-h", "/www"];

async fn endpoint(app: &DockerApp, id: &str, port: u16) -> String {
    let (status, body) = app
        .app
        .call(
            Method::GET,
            &format!("/v1/sandboxes/{id}/endpoints/{port}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["endpoint"].as_str().unwrap().to_owned()
}

fn container(id: &str) -> String {
    format!("sandbox-{id}")
}

async fn wait_gone_from_engine(id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("name=^{}$", container(id)),
    ])
    .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "container of {id} was not removed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn bridge_lifecycle_serves_http_pauses_and_deletes() {
    let app = DockerApp::start(|_| {}).await;
    let id = app.app.create("/v1", busybox(&HTTPD)).await;
    let address = endpoint(&app, &id, 8080).await;
    let (status, body) = wait_http(&address, "/").await;
    assert_eq!((status, body.trim()), (200, "hello from sandgate-test"));
    let running = app.app.wait_state(&id, "Running").await;
    assert_eq!(
        running["image"],
        json!({"uri": "sandgate-test/busybox:latest"})
    );

    let (status, _) = app
        .app
        .call(Method::POST, &format!("/v1/sandboxes/{id}/pause"), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Paused}}", &container(&id)]),
        "true"
    );
    assert!(
        http_get(&address, "/").await.is_err(),
        "a paused sandbox does not answer"
    );
    let (status, _) = app
        .app
        .call(Method::POST, &format!("/v1/sandboxes/{id}/resume"), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        wait_http(&address, "/").await.0,
        200,
        "resume brings it back"
    );

    let (status, _) = app
        .app
        .call(Method::DELETE, &format!("/v1/sandboxes/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    wait_gone_from_engine(&id).await;
}

#[tokio::test]
async fn host_network_lifecycle() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = DockerApp::start(|s| s.network_mode = "host".to_owned()).await;
    let port_text = port.to_string();
    let id = app
        .app
        .create(
            "/v1",
            busybox(&["httpd", "-f", "-p", &port_text, "-h", "/www"]),
        )
        .await;
    let address = endpoint(&app, &id, port).await;
    assert_eq!(address, format!("127.0.0.1:{port}"));
    app.app.wait_state(&id, "Running").await;
    assert_eq!(wait_http(&address, "/").await.0, 200);
    let (status, _) = app
        .app
        .call(Method::DELETE, &format!("/v1/sandboxes/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    wait_gone_from_engine(&id).await;
}

#[tokio::test]
async fn limits_and_security_defaults_are_applied() {
    let app = DockerApp::start(|_| {}).await;
    let mut body = busybox(&["sleep", "600"]);
    body["resourceLimits"] = json!({"cpu": "250m", "memory": "64Mi"});
    body["env"] = json!({"GREETING": "hi", "EMPTY": ""});
    let id = app.app.create("/v1", body).await;
    app.app.wait_state(&id, "Running").await;
    let format = "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.SecurityOpt}} {{.HostConfig.CapDrop}}";
    let inspected = docker(&["inspect", "-f", format, &container(&id)]);
    assert!(
        inspected.starts_with(
            "250000000 67108864 4096 [no-new-privileges:true] [AUDIT_WRITE MKNOD NET_ADMIN NET_RAW"
        ),
        "{inspected}"
    );
    let env = docker(&["inspect", "-f", "{{json .Config.Env}}", &container(&id)]);
    assert!(
        env.contains("\"GREETING=hi\"") && env.contains("\"EMPTY=\""),
        "{env}"
    );
}

#[tokio::test]
async fn execd_is_injected_and_answers_through_the_endpoint() {
    let app = DockerApp::start(|s| s.execd_image = Some(EXECD.to_owned())).await;
    let id = app.app.create("/v1", busybox(&HTTPD)).await;
    let execd = endpoint(&app, &id, 44772).await;
    assert_eq!(wait_http(&execd, "/ping").await.0, 200);
    let app_port = endpoint(&app, &id, 8080).await;
    assert_eq!(
        wait_http(&app_port, "/").await.0,
        200,
        "the user entrypoint runs after the bootstrap"
    );
    let entrypoint = docker(&[
        "inspect",
        "-f",
        "{{json .Config.Entrypoint}}",
        &container(&id),
    ]);
    assert_eq!(entrypoint, r#"["/opt/opensandbox/bootstrap.sh"]"#);
    let got = app.app.wait_state(&id, "Running").await;
    assert_eq!(
        got["entrypoint"],
        json!(HTTPD),
        "GET reports the user's entrypoint, not the bootstrap"
    );
}

#[tokio::test]
async fn a_crashing_entrypoint_ends_failed_with_its_exit_code() {
    let app = DockerApp::start(|_| {}).await;
    let id = app
        .app
        .create("/v1", busybox(&["sh", "-c", "sleep 0.3; exit 7"]))
        .await;
    let failed = app.app.wait_state(&id, "Failed").await;
    assert!(
        failed["status"]["message"]
            .as_str()
            .unwrap()
            .contains("code 7"),
        "{failed}"
    );
    let done = app.app.create("/v1", busybox(&["true"])).await;
    let terminated = app.app.wait_state(&done, "Terminated").await;
    assert_eq!(terminated["status"]["reason"], "CONTAINER_EXITED");
    let missing = app.app.create("/v1", busybox(&["/no/such/program"])).await;
    let failed = app.app.wait_state(&missing, "Failed").await;
    assert_eq!(failed["status"]["reason"], "PROVISIONING_ERROR", "{failed}");
    assert!(
        failed["status"]["message"]
            .as_str()
            .unwrap()
            .contains("/no/such/program"),
        "{failed}"
    );
}

#[tokio::test]
async fn a_container_removed_by_hand_shows_up_as_failed() {
    let app = DockerApp::start(|_| {}).await;
    let id = app.app.create("/v1", busybox(&["sleep", "600"])).await;
    app.app.wait_state(&id, "Running").await;
    docker(&["rm", "-f", &container(&id)]);
    // Followed from the engine's event stream; nothing polls, so reaching
    // `Failed` at all within wait_state's deadline shows the event arrived.
    let failed = app.app.wait_state(&id, "Failed").await;
    // `docker rm -f` kills (137) and then removes: events are hints re-read
    // from the engine, so the record says whichever of the two it saw first.
    let outcome = (
        failed["status"]["reason"].as_str().unwrap(),
        failed["status"]["message"].as_str().unwrap(),
    );
    assert!(
        matches!(
            outcome,
            (
                "CONTAINER_EXITED_ERROR",
                "Sandbox container exited with code 137."
            ) | (
                "RUNTIME_LOST",
                "The runtime no longer has this sandbox (removed outside Sandgate)."
            )
        ),
        "{failed}"
    );
}

#[tokio::test]
async fn deleting_while_provisioning_leaves_no_container() {
    // The SDKs delete a sandbox whose readiness check timed out, possibly
    // while the engine is still creating its container: the deletion must
    // wait for that creation and remove what it made.
    let app = DockerApp::start(|s| s.execd_image = Some(EXECD.to_owned())).await;
    for _ in 0..4 {
        let id = app.app.create("/v1", busybox(&["sleep", "600"])).await;
        // Delete as soon as provisioning reports the container creation.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (_, sandbox) = app
                .app
                .call(Method::GET, &format!("/v1/sandboxes/{id}"), None)
                .await;
            if sandbox["status"]["message"] == "Creating the container." {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{sandbox}");
            tokio::task::yield_now().await;
        }
        let (status, body) = app
            .app
            .call(Method::DELETE, &format!("/v1/sandboxes/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    // A creation still in flight in the engine would surface shortly after:
    // watch for a while; nothing of this instance may appear.
    let filter = format!("label=sandgate.io/instance={}", app.settings.instance);
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < until {
        let left = docker(&["ps", "-aq", "--filter", &filter]);
        assert!(left.is_empty(), "containers left behind: {left}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn ttl_expiry_removes_the_container() {
    let app = DockerApp::start(|_| {}).await;
    let id = app.app.create("/v1", busybox(&["sleep", "600"])).await;
    app.app.wait_state(&id, "Running").await;
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let (status, _) = app
        .app
        .call(
            Method::POST,
            &format!("/v1/sandboxes/{id}/renew-expiration"),
            Some(json!({"expiresAt": soon})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    wait_gone_from_engine(&id).await;
    app.app.wait_gone(&id).await;
}

#[tokio::test]
async fn a_restart_keeps_live_sandboxes_and_their_timers() {
    let mut app = DockerApp::start(|_| {}).await;
    let id = app.app.create("/v1", busybox(&HTTPD)).await;
    app.app.wait_state(&id, "Running").await;
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(4)).to_rfc3339();
    app.app
        .call(
            Method::POST,
            &format!("/v1/sandboxes/{id}/renew-expiration"),
            Some(json!({"expiresAt": soon})),
        )
        .await;
    let keeper = app.app.create("/v1", busybox(&HTTPD)).await;
    app.app.wait_state(&keeper, "Running").await;
    app.restart().await;
    assert_eq!(app.app.app.reconciled.lost, 0);
    let address = endpoint(&app, &keeper, 8080).await;
    assert_eq!(
        wait_http(&address, "/").await.0,
        200,
        "live sandboxes keep running across a restart"
    );
    wait_gone_from_engine(&id).await;
    app.app.wait_state(&keeper, "Running").await;
}

#[tokio::test]
async fn host_paths_follow_the_allow_list_and_resist_traversal() {
    let root = tempfile::tempdir().unwrap();
    let allowed = root.path().join("allowed");
    let outside = root.path().join("outside");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(allowed.join("hello.txt"), "from the host").unwrap();
    std::os::unix::fs::symlink(&outside, allowed.join("escape")).unwrap();
    std::fs::create_dir_all(allowed.join("inner")).unwrap();
    std::os::unix::fs::symlink(allowed.join("inner"), allowed.join("inward")).unwrap();
    let allowed_text = allowed.to_string_lossy().to_string();
    let app = DockerApp::start(|s| s.allowed_host_paths = vec![allowed_text.clone()]).await;
    let volume = |path: String, sub: Option<&str>| {
        let mut v =
            json!({"name": "data", "mountPath": "/data", "readOnly": true, "host": {"path": path}});
        if let Some(sub) = sub {
            v["subPath"] = json!(sub);
        }
        v
    };
    let mut body = busybox(&["httpd", "-f", "-p", "8080", "-h", "/data"]);
    body["volumes"] = json!([volume(allowed_text.clone(), None)]);
    let id = app.app.create("/v1", body.clone()).await;
    let address = endpoint(&app, &id, 8080).await;
    assert_eq!(wait_http(&address, "/hello.txt").await.1, "from the host");
    let cases = [
        (
            volume(outside.to_string_lossy().to_string(), None),
            "VOLUME::HOST_PATH_NOT_ALLOWED",
        ),
        (
            volume(format!("{allowed_text}/../outside"), None),
            "VOLUME::INVALID_HOST_PATH",
        ),
        (
            volume(format!("{allowed_text}/escape"), None),
            "VOLUME::HOST_PATH_NOT_ALLOWED",
        ),
        (
            volume(allowed_text.clone(), Some("escape/x")),
            "VOLUME::HOST_PATH_NOT_ALLOWED",
        ),
        (
            volume(allowed_text.clone(), Some("../outside")),
            "VOLUME::INVALID_SUB_PATH",
        ),
        // Issue 10: no symlink below the prefix is followed, even one that
        // stays inside (another sandbox could retarget it), and only
        // directories are mounted.
        (
            volume(format!("{allowed_text}/inward"), None),
            "VOLUME::HOST_PATH_NOT_ALLOWED",
        ),
        (
            volume(allowed_text.clone(), Some("escape")),
            "VOLUME::HOST_PATH_NOT_ALLOWED",
        ),
        (
            volume(allowed_text.clone(), Some("inner/../escape")),
            "VOLUME::INVALID_SUB_PATH",
        ),
        (
            volume(format!("{allowed_text}/hello.txt"), None),
            "VOLUME::INVALID_HOST_PATH",
        ),
        (
            volume(allowed_text.clone(), Some("hello.txt/x")),
            "VOLUME::INVALID_HOST_PATH",
        ),
    ];
    for (bad, code) in cases {
        body["volumes"] = json!([bad]);
        let (status, error) = app
            .app
            .call(Method::POST, "/v1/sandboxes", Some(body.clone()))
            .await;
        assert_eq!(
            (status, error["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{bad}: {error}"
        );
    }
}

#[tokio::test]
async fn a_named_volume_is_shared_by_two_sandboxes_and_cleaned_up() {
    let app = DockerApp::start(|_| {}).await;
    let name = format!("sgt-{}", &app.settings.instance[5..17]);
    let volume = json!([{"name": "shared", "mountPath": "/shared",
        "pvc": {"claimName": name, "createIfNotExists": true, "deleteOnSandboxTermination": true}}]);
    let mut writer = busybox(&[
        "sh",
        "-c",
        "echo written-by-one > /shared/note && sleep 600",
    ]);
    writer["volumes"] = volume.clone();
    let one = app.app.create("/v1", writer).await;
    app.app.wait_state(&one, "Running").await;
    let mut reader = busybox(&["httpd", "-f", "-p", "8080", "-h", "/shared"]);
    reader["volumes"] = volume;
    let two = app.app.create("/v1", reader).await;
    let address = endpoint(&app, &two, 8080).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok((200, body)) = http_get(&address, "/note").await {
            assert_eq!(body.trim(), "written-by-one");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second sandbox never saw the file"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        docker(&[
            "volume",
            "inspect",
            "-f",
            "{{index .Labels \"opensandbox.io/volume-managed-by\"}}",
            &name
        ]),
        "server"
    );
    app.app
        .call(Method::DELETE, &format!("/v1/sandboxes/{two}"), None)
        .await;
    let (status, _) = app
        .app
        .call(Method::DELETE, &format!("/v1/sandboxes/{one}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        docker(&["volume", "ls", "-q", "--filter", &format!("name=^{name}$")]),
        "",
        "created volume removed with its sandbox"
    );
    let _ = Value::Null;
}

/// A `docker-registry` with htpasswd auth on 127.0.0.1, stopped on drop.
struct Registry {
    values: std::collections::HashMap<String, String>,
}

impl Registry {
    fn start(password: &str) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/test-registry.sh");
        let output = std::process::Command::new(script)
            .args(["sandgate", password])
            .output()
            .expect("scripts/test-registry.sh runs");
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            output.status.success(),
            "registry failed to start: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let values = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self { values }
    }

    fn get(&self, key: &str) -> &str {
        &self.values[key]
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/test-registry.sh");
        let _ = std::process::Command::new(script)
            .args(["stop", self.get("REGISTRY_PID")])
            .output();
    }
}

#[tokio::test]
async fn private_registry_pulls_need_the_right_credentials() {
    // A password whose base64 form contains '+' and '/' exercises the
    // URL-safe header fix.
    let password = "s3cret?>>?~~pass/word+";
    let registry = Registry::start(password);
    let image = registry.get("REGISTRY_IMAGE").to_owned();
    let _ = docker(&["rmi", &image]);
    let app = DockerApp::start(|_| {}).await;
    let mut wrong = busybox(&["sleep", "600"]);
    wrong["image"] = json!({"uri": image, "auth": {"username": "sandgate", "password": "not-it"}});
    let id = app.app.create("/v1", wrong).await;
    let failed = app.app.wait_state(&id, "Failed").await;
    let message = failed["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("unauthorized") && message.contains("check image.auth"),
        "{message}"
    );
    let mut right = busybox(&["sleep", "600"]);
    right["image"] = json!({"uri": image, "auth": {"username": "sandgate", "password": password}});
    let id = app.app.create("/v1", right).await;
    let running = app.app.wait_state(&id, "Running").await;
    assert_eq!(running["image"]["uri"], json!(image));
    assert!(
        running["image"].get("auth").is_none(),
        "credentials are never returned"
    );
    let _ = docker(&["rm", "-f", &container(&id)]);
    let _ = docker(&["rmi", &image]);
}

#[tokio::test]
async fn diagnostics_carry_container_output_and_process_events() {
    let app = DockerApp::start(|_| {}).await;
    let id = app
        .app
        .create(
            "/v1",
            busybox(&[
                "sh",
                "-c",
                "echo hello-from-the-sandbox; echo oops >&2; sleep 600",
            ]),
        )
        .await;
    app.app.wait_state(&id, "Running").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let logs = loop {
        let (status, logs) = app
            .app
            .call(
                Method::GET,
                &format!("/v1/sandboxes/{id}/diagnostics/logs?scope=container"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{logs}");
        if logs["content"].as_str().unwrap().contains("oops") {
            break logs;
        }
        assert!(tokio::time::Instant::now() < deadline, "{logs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        logs["content"]
            .as_str()
            .unwrap()
            .contains("hello-from-the-sandbox")
    );
    let (_, events) = app
        .app
        .call(
            Method::GET,
            &format!("/v1/sandboxes/{id}/diagnostics/events?scope=all"),
            None,
        )
        .await;
    let text = events["content"].as_str().unwrap();
    assert!(
        text.contains("process started") && text.contains("lifecycle Running"),
        "{text}"
    );
}

/// `GET` of a plain-text diagnostics route: (status, text).
async fn get_text(app: &DockerApp, uri: &str) -> (StatusCode, String) {
    let (status, value) = app.app.call(Method::GET, uri, None).await;
    match value {
        Value::String(text) => (status, text),
        other => (status, other.to_string()),
    }
}

#[tokio::test]
async fn devops_inspect_summary_and_legacy_logs_on_docker() {
    let app = DockerApp::start(|_| {}).await;
    let mut create = busybox(&[
        "sh",
        "-c",
        "echo line-one; echo line-two; echo line-three; sleep 600",
    ]);
    create["env"] = json!({"SANDGATE_TEST_SECRET": "env-value-never-shown-7f3a"});
    create["metadata"] = json!({"team": "diagnostics"});
    let id = app.app.create("/v1", create).await;
    app.app.wait_state(&id, "Running").await;
    let full_id = docker(&["inspect", "-f", "{{.Id}}", &container(&id)]);
    assert!(
        docker(&["inspect", "-f", "{{.Config.Env}}", &container(&id)])
            .contains("env-value-never-shown-7f3a"),
        "the env value is in the container"
    );

    let (status, inspect) =
        get_text(&app, &format!("/v1/sandboxes/{id}/diagnostics/inspect")).await;
    assert_eq!(status, StatusCode::OK, "{inspect}");
    for expected in [
        format!("Container ID:   {}\n", &full_id[..12]),
        format!("Name:           {}\n", container(&id)),
        "Image:          sandgate-test/busybox:latest\n".to_owned(),
        "Status:         running\n".to_owned(),
        "Running:        true\n".to_owned(),
        "OOMKilled:      false\n".to_owned(),
        "  CPU:          0.50 cores\n".to_owned(),
        "  Memory:       128.00 MiB\n".to_owned(),
        "  PIDs limit:   4096\n".to_owned(),
        "Network mode:   bridge\n".to_owned(),
        format!("  opensandbox.io/id={id}\n"),
        // Metadata is labelled under Sandgate's own prefix only (issue 10).
        "  sandgate.io/metadata.team=diagnostics\n".to_owned(),
    ] {
        assert!(
            inspect.contains(&expected),
            "{expected:?} missing:\n{inspect}"
        );
    }
    assert!(inspect.contains("  bridge: 172."), "{inspect}");
    for leaked in ["env-value-never-shown-7f3a", "SANDGATE_TEST_SECRET"] {
        assert!(!inspect.contains(leaked), "{leaked} leaked:\n{inspect}");
    }

    // The legacy logs: the container's output only, with tail and since.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let logs = loop {
        let (status, logs) = get_text(&app, &format!("/v1/sandboxes/{id}/diagnostics/logs")).await;
        assert_eq!(status, StatusCode::OK, "{logs}");
        if logs.contains("line-three") {
            break logs;
        }
        assert!(tokio::time::Instant::now() < deadline, "{logs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(logs.lines().count(), 3, "{logs}");
    assert!(!logs.contains("lifecycle"), "{logs}");
    let (_, last) = get_text(&app, &format!("/v1/sandboxes/{id}/diagnostics/logs?tail=1")).await;
    assert!(
        last.ends_with(" line-three\n") && last.lines().count() == 1,
        "{last}"
    );
    let (_, recent) = get_text(
        &app,
        &format!("/v1/sandboxes/{id}/diagnostics/logs?since=1h"),
    )
    .await;
    assert_eq!(recent, logs);

    let (status, summary) = get_text(
        &app,
        &format!("/v1/sandboxes/{id}/diagnostics/summary?tail=2&event_limit=5"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    for expected in [
        format!("SANDBOX DIAGNOSTICS SUMMARY\nSandbox ID: {id}\n"),
        "\nINSPECT\n".to_owned(),
        format!("Container ID:   {}\n", &full_id[..12]),
        "\nEVENTS\n".to_owned(),
        "runtime process started".to_owned(),
        "\nLOGS (last 2 lines)\n".to_owned(),
        " line-three\n".to_owned(),
    ] {
        assert!(
            summary.contains(&expected),
            "{expected:?} missing:\n{summary}"
        );
    }
    assert!(
        !summary.contains(" line-one\n"),
        "only the last 2 lines: {summary}"
    );
    assert!(!summary.contains("env-value-never-shown-7f3a"), "{summary}");
}

/// Issue 10: a `pvc` volume names only a volume Sandgate created, or one the
/// operator listed in `sandgate.allowed_pvc_names`; a named volume's
/// `subPath` is walked without symlinks (sandbox code writes into volumes).
#[tokio::test]
async fn pvc_volumes_are_sandgates_own_or_allowed_and_subpaths_follow_no_symlinks() {
    let foreign = format!("sgt-foreign-{}", uuid::Uuid::new_v4().simple());
    docker(&["volume", "create", &foreign]);
    struct RemoveVolume(String);
    impl Drop for RemoveVolume {
        fn drop(&mut self) {
            docker(&["volume", "rm", "-f", &self.0]);
        }
    }
    let _cleanup = RemoveVolume(foreign.clone());
    let with_volume = |claim: &str, sub: Option<&str>, entrypoint: &[&str]| {
        let mut volume = json!({"name": "v", "mountPath": "/v", "pvc": {"claimName": claim, "createIfNotExists": false}});
        if let Some(sub) = sub {
            volume["subPath"] = json!(sub);
        }
        let mut body = busybox(entrypoint);
        body["volumes"] = json!([volume]);
        body
    };

    let app = DockerApp::start(|_| {}).await;
    let id = app
        .app
        .create("/v1", with_volume(&foreign, None, &["sleep", "600"]))
        .await;
    let failed = app.app.wait_state(&id, "Failed").await;
    let message = failed["status"]["message"].as_str().unwrap();
    assert!(message.contains("sandgate.allowed_pvc_names"), "{failed}");
    drop(app);

    let app = DockerApp::start(|s| s.allowed_pvc_names = vec![foreign.clone()]).await;
    let planter = with_volume(
        &foreign,
        None,
        &[
            "sh",
            "-c",
            "mkdir -p /v/dir && ln -s /etc /v/link && sleep 600",
        ],
    );
    let planter = app.app.create("/v1", planter).await;
    app.app.wait_state(&planter, "Running").await;
    let mountpoint = docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", &foreign]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while std::fs::symlink_metadata(format!("{mountpoint}/link")).is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the link was never planted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let escape = app
        .app
        .create(
            "/v1",
            with_volume(&foreign, Some("link"), &["sleep", "600"]),
        )
        .await;
    let failed = app.app.wait_state(&escape, "Failed").await;
    assert!(
        failed["status"]["message"]
            .as_str()
            .unwrap()
            .contains("symbolic link"),
        "{failed}"
    );
    let inside = app
        .app
        .create("/v1", with_volume(&foreign, Some("dir"), &["sleep", "600"]))
        .await;
    app.app.wait_state(&inside, "Running").await;
}

/// Issue 10: metadata is written under `sandgate.io/metadata.` only, so it
/// cannot set `traefik.*` or `com.docker.*` labels on the container; CPU
/// limits beyond the engine's CPUs are a 400 before anything is created.
#[tokio::test]
async fn metadata_stays_in_its_label_namespace_and_cpu_stays_within_the_engine() {
    let app = DockerApp::start(|_| {}).await;
    let mut body = busybox(&["sleep", "600"]);
    body["metadata"] = json!({"traefik.enable": "true", "com.docker.compose.project": "x"});
    let id = app.app.create("/v1", body).await;
    let running = app.app.wait_state(&id, "Running").await;
    assert_eq!(running["metadata"]["traefik.enable"], "true");
    let labels = docker(&["inspect", "-f", "{{json .Config.Labels}}", &container(&id)]);
    let labels: Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels.get("traefik.enable"), None, "{labels}");
    assert_eq!(labels.get("com.docker.compose.project"), None, "{labels}");
    assert_eq!(labels["sandgate.io/metadata.traefik.enable"], "true");

    let mut body = busybox(&["sleep", "600"]);
    body["resourceLimits"] = json!({"cpu": "100000"});
    let (status, error) = app
        .app
        .call(Method::POST, "/v1/sandboxes", Some(body))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("CPUs the engine has"),
        "{error}"
    );
}

/// Polls until the snapshot reaches `state` (deadline 60 s).
async fn wait_snapshot(app: &DockerApp, id: &str, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, value) = app
            .app
            .call(Method::GET, &format!("/v1/snapshots/{id}"), None)
            .await;
        if status == StatusCode::OK && value["status"]["state"] == state {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "snapshot {id} never reached {state}: {status} {value}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_snapshot_restores_the_files_and_its_image_goes_with_it() {
    let app = DockerApp::start(|_| {}).await;
    let mut source = busybox(&[
        "sh",
        "-c",
        "echo from-the-source > /snapped.txt && exec sleep 3600",
    ]);
    source["metadata"] = json!({"team": "infra"});
    let source = app.app.create("/v1", source).await;
    app.app.wait_state(&source, "Running").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while docker(&["exec", &container(&source), "cat", "/snapped.txt"]) != "from-the-source" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the file never appeared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (status, created) = app
        .app
        .call(
            Method::POST,
            &format!("/v1/sandboxes/{source}/snapshots"),
            Some(json!({"name": "with-file"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let ready = wait_snapshot(&app, &id, "Ready").await;
    assert_eq!(ready["name"], "with-file");
    let image = format!("opensandbox-snapshots:{id}");
    assert_eq!(
        docker(&[
            "image",
            "inspect",
            "-f",
            "{{index .Config.Labels \"sandgate.io/snapshot-of\"}} {{index .Config.Labels \"sandgate.io/instance\"}}",
            &image,
        ]),
        format!("{source} {}", app.settings.instance)
    );
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Status}}", &container(&source)]),
        "running",
        "the source runs on after the commit"
    );

    let restored = app
        .app
        .create(
            "/v1",
            json!({"snapshotId": id, "resourceLimits": {"memory": "128Mi"}, "timeout": 600}),
        )
        .await;
    let sandbox = app.app.wait_state(&restored, "Running").await;
    assert_eq!(sandbox["snapshotId"], id.as_str());
    assert!(sandbox.get("metadata").is_none(), "{sandbox}");
    assert_eq!(
        docker(&["exec", &container(&restored), "cat", "/snapped.txt"]),
        "from-the-source"
    );
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{.Config.Image}}|{{index .Config.Labels \"sandgate.io/metadata.team\"}}|{{index .Config.Labels \"opensandbox.io/id\"}}|{{index .Config.Labels \"opensandbox.io/snapshot-id\"}}",
            &container(&restored),
        ]),
        format!("{image}||{restored}|{id}"),
        "the source's labels are not inherited"
    );

    let (status, refused) = app
        .app
        .call(Method::DELETE, &format!("/v1/snapshots/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["code"], "SNAPSHOT::DELETE_CONFLICT");
    wait_snapshot(&app, &id, "Ready").await;

    for sandbox in [&restored, &source] {
        let (status, _) = app
            .app
            .call(Method::DELETE, &format!("/v1/sandboxes/{sandbox}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let (status, _) = app
        .app
        .call(Method::DELETE, &format!("/v1/snapshots/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        docker(&["image", "ls", "-q", &image]),
        "",
        "the image is removed"
    );
    let (status, _) = app
        .app
        .call(Method::GET, &format!("/v1/snapshots/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
