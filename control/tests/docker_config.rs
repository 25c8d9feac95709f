//! OpenSandbox 1.1.1 `[docker]` and `[runtime]` keys reaching real containers:
//! the config text goes through `config::load_str` and `bootstrap::docker_settings`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use common::docker::{DockerApp, EXECD, busybox, docker};
use sandgate_control::bootstrap::docker_settings;
use sandgate_control::config::load_str;
use sandgate_control::runtime::docker::DockerSettings;
use serde_json::json;

/// The Docker settings a 1.1.1 config text describes.
fn settings_from(text: &str) -> DockerSettings {
    let env = HashMap::from([("HOME".to_owned(), "/tmp".to_owned())]);
    docker_settings(&load_str(text, "test.toml", &env).unwrap())
}

fn env_of(id: &str) -> Vec<String> {
    let text = docker(&[
        "inspect",
        "-f",
        "{{json .Config.Env}}",
        &format!("sandbox-{id}"),
    ]);
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn sandbox_env_and_binds_reach_every_sandbox_and_the_request_env_wins() {
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("root-ca.crt"), "operator CA").unwrap();
    let text = format!(
        "[docker]\nsandbox_env = {{ NODE_EXTRA_CA_CERTS = \"/etc/ssl/private-ca/root-ca.crt\", GREETING = \"operator\" }}\n\
         sandbox_binds = [\"{}/root-ca.crt:/etc/ssl/private-ca/root-ca.crt:ro\"]\n",
        host.path().display()
    );
    let from_config = settings_from(&text);
    let app = DockerApp::start(|s| {
        s.sandbox_env = from_config.sandbox_env.clone();
        s.sandbox_binds = from_config.sandbox_binds.clone();
    })
    .await;
    let mut body = busybox(&["sleep", "600"]);
    body["env"] = json!({"GREETING": "request"});
    let id = app.app.create("/v1", body).await;
    app.app.wait_state(&id, "Running").await;
    let env = env_of(&id);
    assert!(
        env.contains(&"NODE_EXTRA_CA_CERTS=/etc/ssl/private-ca/root-ca.crt".to_owned()),
        "{env:?}"
    );
    assert!(env.contains(&"GREETING=request".to_owned()), "{env:?}");
    assert!(
        !env.contains(&"GREETING=operator".to_owned()),
        "the request wins: {env:?}"
    );
    let read = docker(&[
        "exec",
        &format!("sandbox-{id}"),
        "cat",
        "/etc/ssl/private-ca/root-ca.crt",
    ]);
    assert_eq!(read, "operator CA");
    let write = std::process::Command::new("docker")
        .args([
            "exec",
            &format!("sandbox-{id}"),
            "sh",
            "-c",
            "echo x > /etc/ssl/private-ca/root-ca.crt",
        ])
        .status()
        .unwrap();
    assert!(!write.success(), "the :ro option is kept");
}

#[tokio::test]
async fn execd_run_as_init_sets_execd_init_only_when_execd_is_injected() {
    let on = settings_from(&format!(
        "[runtime]\nexecd_image = \"{EXECD}\"\nexecd_run_as_init = true\n"
    ));
    assert!(on.execd_run_as_init);
    let app = DockerApp::start(|s| {
        s.execd_image = on.execd_image.clone();
        s.execd_run_as_init = on.execd_run_as_init;
    })
    .await;
    let id = app.app.create("/v1", busybox(&["sleep", "600"])).await;
    app.app.wait_state(&id, "Running").await;
    assert!(
        env_of(&id).contains(&"EXECD_INIT=1".to_owned()),
        "{:?}",
        env_of(&id)
    );

    let off = DockerApp::start(|s| s.execd_image = Some(EXECD.to_owned())).await;
    let id = off.app.create("/v1", busybox(&["sleep", "600"])).await;
    off.app.wait_state(&id, "Running").await;
    assert!(
        !env_of(&id).iter().any(|v| v.starts_with("EXECD_INIT=")),
        "default off"
    );
}
