//! Adversarial recovery: the states Sandgate reports must follow what the
//! engine really holds, after a SIGKILL in the middle of creates, deletes,
//! pauses and resumes, and after changes made behind its back.
//!
//! - Docker (`sandgate-test/busybox`, each test with its own `[sandgate]
//!   instance`, containers removed on drop): SIGKILL during creates, deletes
//!   and pauses/resumes, then every sandbox's state checked against
//!   `docker inspect`, twice (a second restart changes nothing); `docker
//!   pause`/`unpause`/`kill`/`start`/`rm -f` reflected in `GET`.
//! - Fake runtime with slow engine calls: the API answers reads from the
//!   stored records while recovery is still running.
//!
//! Needs the binaries (`cargo build --workspace`, or `SANDGATE_CONTROL_BIN`
//! and `SANDGATE_PROXY_BIN`),
//! a Docker engine and the images of `scripts/build-test-images.sh`.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use sandgate_shared::api::{Sandbox, SandboxState};
use sandgate_tests::{
    Api, ControlOptions, ControlProcess, DockerInstance, EdgeStack, Http, Listing, RuntimeKind,
    StackOptions, bounded, create_body, poll_until,
};
use serde_json::json;

/// Generous deadline for a noisy 2-core machine.
const LONG: Duration = Duration::from_secs(120);
/// How long an engine-side change may take to show in `GET`.
const FOLLOW: Duration = Duration::from_secs(5);
/// Creates in flight at the kill.
const CREATES: usize = 16;
/// Deletes in flight at the kill.
const DELETES: usize = 10;
/// Sandboxes being paused and resumed at the kill.
const FREEZES: usize = 8;

fn docker(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("docker")
        .args(args)
        .output()
        .context("running docker")?;
    if !output.status.success() {
        bail!(
            "docker {args:?}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn container(id: &str) -> String {
    format!("sandbox-{id}")
}

/// The engine's status of the sandbox's container (`running`, `paused`,
/// `exited`, ...), or `None` when there is no container.
fn engine_status(id: &str) -> Option<String> {
    docker(&["inspect", "-f", "{{.State.Status}}", &container(id)]).ok()
}

fn docker_options(instance: &DockerInstance) -> ControlOptions {
    ControlOptions {
        runtime: RuntimeKind::Docker,
        instance: Some(instance.name().to_owned()),
        ..ControlOptions::default()
    }
}

fn sleeper() -> serde_json::Value {
    json!({
        "image": {"uri": "sandgate-test/busybox:latest"},
        "entrypoint": ["sleep", "3600"],
        "resourceLimits": {"cpu": "100m", "memory": "32Mi"},
        "timeout": 1800,
    })
}

async fn wait_state(api: &Api, id: &str, want: SandboxState) -> anyhow::Result<Sandbox> {
    wait_state_within(api, id, want, LONG).await
}

async fn wait_state_within(
    api: &Api,
    id: &str,
    want: SandboxState,
    within: Duration,
) -> anyhow::Result<Sandbox> {
    poll_until(&format!("{id} to be {want}"), within, || async {
        let sandbox = api.sandbox(id).await?.context("the sandbox vanished")?;
        Ok((sandbox.status.state == want).then_some(sandbox))
    })
    .await
}

async fn post_status(api: &Api, path: &str) -> anyhow::Result<u16> {
    Ok(api.post_json(path, &json!({})).await?.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_behind_sandgates_back_show_in_get_and_the_api_recovers_them() {
    bounded(Duration::from_secs(300), async {
        let instance = DockerInstance::new().unwrap();
        let control = ControlProcess::start(docker_options(&instance))
            .await
            .unwrap();
        let api = control.api();
        let id = api.create_sandbox(&sleeper()).await.unwrap().id.to_string();
        wait_state(&api, &id, SandboxState::Running).await.unwrap();
        let name = container(&id);
        let pause = format!("/v1/sandboxes/{id}/pause");
        let resume = format!("/v1/sandboxes/{id}/resume");

        docker(&["pause", &name]).unwrap();
        wait_state_within(&api, &id, SandboxState::Paused, FOLLOW)
            .await
            .unwrap();
        assert_eq!(post_status(&api, &resume).await.unwrap(), 202);
        wait_state(&api, &id, SandboxState::Running).await.unwrap();
        assert_eq!(engine_status(&id).as_deref(), Some("running"));

        docker(&["pause", &name]).unwrap();
        wait_state_within(&api, &id, SandboxState::Paused, FOLLOW)
            .await
            .unwrap();
        docker(&["unpause", &name]).unwrap();
        wait_state_within(&api, &id, SandboxState::Running, FOLLOW)
            .await
            .unwrap();
        assert_eq!(post_status(&api, &pause).await.unwrap(), 202);
        wait_state(&api, &id, SandboxState::Paused).await.unwrap();
        assert_eq!(engine_status(&id).as_deref(), Some("paused"));
        assert_eq!(post_status(&api, &resume).await.unwrap(), 202);
        wait_state(&api, &id, SandboxState::Running).await.unwrap();

        docker(&["kill", &name]).unwrap();
        let killed = wait_state_within(&api, &id, SandboxState::Failed, FOLLOW)
            .await
            .unwrap();
        assert!(
            killed
                .status
                .message
                .as_deref()
                .unwrap_or("")
                .contains("137"),
            "{:?}",
            killed.status
        );
        docker(&["start", &name]).unwrap();
        wait_state_within(&api, &id, SandboxState::Running, FOLLOW)
            .await
            .unwrap();

        docker(&["rm", "-f", &name]).unwrap();
        wait_state_within(&api, &id, SandboxState::Failed, FOLLOW)
            .await
            .unwrap();
        assert_eq!(engine_status(&id), None);
        assert_eq!(post_status(&api, &resume).await.unwrap(), 409);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_proxy_follows_a_pause_behind_sandgates_back() {
    bounded(Duration::from_secs(300), async {
        let stack = EdgeStack::start(StackOptions {
            runtime: RuntimeKind::Docker,
            ..StackOptions::default()
        })
        .await
        .unwrap();
        let api = stack.control.api();
        let body = json!({
            "image": {"uri": "sandgate-test/busybox:latest"},
            "entrypoint": ["httpd", "-f", "-p", "8080", "-h", "/www"],
            "resourceLimits": {"cpu": "100m", "memory": "32Mi"},
            "timeout": 1800,
        });
        let id = api.create_sandbox(&body).await.unwrap().id.to_string();
        wait_state(&api, &id, SandboxState::Running).await.unwrap();
        let http = Http::new();
        let url = format!("{}/{id}/8080/", stack.proxy.base_url());
        poll_until("the sandbox to answer through the proxy", LONG, || async {
            let reply = http.get(&url, &[]).await?;
            Ok((reply.status == 200).then_some(()))
        })
        .await
        .unwrap();

        // Once the control plane records the engine's pause, the route the
        // proxy holds says so, and the proxy refuses at once instead of
        // forwarding into a frozen container until its idle timeout.
        docker(&["pause", &container(&id)]).unwrap();
        wait_state_within(&api, &id, SandboxState::Paused, FOLLOW)
            .await
            .unwrap();
        stack.wait_proxy_synced().await.unwrap();
        let reply = http.get(&url, &[]).await.unwrap();
        assert_eq!(reply.status, 503, "{}", reply.text());
        assert_eq!(reply.code(), "PROXY::SANDBOX_PAUSED", "{}", reply.text());

        docker(&["unpause", &container(&id)]).unwrap();
        wait_state_within(&api, &id, SandboxState::Running, FOLLOW)
            .await
            .unwrap();
        stack.wait_proxy_synced().await.unwrap();
        assert_eq!(http.get(&url, &[]).await.unwrap().status, 200);
    })
    .await;
}

/// What the workers saw acknowledged before the kill.
#[derive(Debug, Default)]
struct Acknowledged {
    created: BTreeSet<String>,
    deleted: BTreeSet<String>,
}

/// Starts creates, deletes of `doomed` and pause/resume loops on `frozen`,
/// kills the server once every create was acknowledged and a third of their
/// containers exist (the rest of the provisioning, the deletes and the
/// freezes still in flight), and returns what was acknowledged.
async fn writes_then_kill(
    control: &mut ControlProcess,
    instance: &DockerInstance,
    doomed: &[String],
    frozen: &[String],
) -> anyhow::Result<Acknowledged> {
    let created = Arc::new(Ids::default());
    let deleted = Arc::new(Ids::default());
    let acked_creates = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CREATES {
        let (api, created, acked) = (control.api(), created.clone(), acked_creates.clone());
        tasks.push(tokio::spawn(async move {
            if let Ok((202, body)) = api.post_json("/v1/sandboxes", &sleeper()).await {
                created.push(body["id"].as_str().unwrap_or_default().to_owned());
                acked.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for id in doomed.iter().cloned() {
        let (api, deleted) = (control.api(), deleted.clone());
        tasks.push(tokio::spawn(async move {
            if let Ok((204, _)) = api.delete(&format!("/v1/sandboxes/{id}")).await {
                deleted.push(id);
            }
        }));
    }
    for id in frozen {
        let (api, id) = (control.api(), id.clone());
        tasks.push(tokio::spawn(async move {
            for verb in ["pause", "resume"].iter().cycle().take(200) {
                let path = format!("/v1/sandboxes/{id}/{verb}");
                if api.post_json(&path, &json!({})).await.is_err() {
                    return;
                }
            }
        }));
    }
    poll_until("every create to be acknowledged", LONG, || {
        let done = acked_creates.load(Ordering::SeqCst) == CREATES;
        async move { Ok(done.then_some(())) }
    })
    .await?;
    let before = doomed.len() + frozen.len();
    poll_until("a third of the new containers to exist", LONG, || async {
        let new = instance.containers()?.len().saturating_sub(before);
        Ok((new >= CREATES / 3).then_some(()))
    })
    .await?;
    control.kill_hard()?;
    for task in tasks {
        tokio::time::timeout(LONG, task)
            .await
            .context("a worker did not stop after the kill")??;
    }
    Ok(Acknowledged {
        created: created.take(),
        deleted: deleted.take(),
    })
}

/// Ids shared by the workers.
#[derive(Debug, Default)]
struct Ids(std::sync::Mutex<BTreeSet<String>>);

impl Ids {
    fn push(&self, id: String) {
        self.0.lock().unwrap().insert(id);
    }

    fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

/// Restarts and returns how long the first `GET /v1/sandboxes` took to be
/// answered from the spawn (a measurement printed, never asserted).
async fn restart_measured(control: &mut ControlProcess) -> anyhow::Result<Duration> {
    let started = tokio::time::Instant::now();
    control.restart().await?;
    let api = control.api();
    poll_until("the first answered list", LONG, || async {
        Ok(matches!(api.get("/v1/sandboxes").await, Ok((200, _))).then_some(()))
    })
    .await?;
    Ok(started.elapsed())
}

/// Waits until no sandbox is in a transitional state.
async fn settled(api: &Api) -> anyhow::Result<Listing> {
    poll_until("every sandbox to settle", LONG, || async {
        let listing = api.list_all("").await?;
        let busy = [
            SandboxState::Pending,
            SandboxState::Stopping,
            SandboxState::Pausing,
            SandboxState::Resuming,
        ]
        .iter()
        .map(|s| listing.count_in(*s))
        .sum::<usize>();
        Ok((busy == 0).then_some(listing))
    })
    .await
}

/// Every listed sandbox's state against its container; the problems found.
fn check_against_engine(listing: &Listing, instance: &DockerInstance) -> Vec<String> {
    let mut problems = Vec::new();
    for sandbox in &listing.items {
        let id = sandbox.id.to_string();
        let state = sandbox.status.state;
        let engine = engine_status(&id);
        let truthful = match engine.as_deref() {
            Some("running") => state == SandboxState::Running,
            Some("paused") => state == SandboxState::Paused,
            _ => matches!(state, SandboxState::Failed | SandboxState::Terminated),
        };
        if !truthful {
            problems.push(format!(
                "{id}: {state} ({:?}) but the engine says {engine:?}",
                sandbox.status
            ));
        }
    }
    let listed: BTreeSet<String> = listing
        .items
        .iter()
        .map(|s| container(s.id.as_ref()))
        .collect();
    for name in instance_container_names(instance) {
        if !listed.contains(&name) {
            problems.push(format!("container {name} has no sandbox"));
        }
    }
    problems
}

fn instance_container_names(instance: &DockerInstance) -> Vec<String> {
    let filter = format!("label=sandgate.io/instance={}", instance.name());
    docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"])
        .map(|text| text.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn states(listing: &Listing) -> BTreeMap<String, SandboxState> {
    listing
        .items
        .iter()
        .map(|s| (s.id.to_string(), s.status.state))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_creates_deletes_and_freezes_converges_to_the_engine() {
    bounded(Duration::from_secs(600), async {
        let instance = DockerInstance::new().unwrap();
        let mut control = ControlProcess::start(docker_options(&instance))
            .await
            .unwrap();
        let api = control.api();
        let mut initial = Vec::new();
        for _ in 0..DELETES + FREEZES {
            initial.push(api.create_sandbox(&sleeper()).await.unwrap().id.to_string());
        }
        for id in &initial {
            wait_state(&api, id, SandboxState::Running).await.unwrap();
        }
        let (doomed, frozen) = initial.split_at(DELETES);
        let acknowledged = writes_then_kill(&mut control, &instance, doomed, frozen).await.unwrap();
        let first = restart_measured(&mut control).await.unwrap();
        let api = control.api();
        let listing = settled(&api).await.unwrap();
        eprintln!(
            "{} sandboxes in the store; restart → first answered GET: {} ms; {} deletes acknowledged",
            listing.items.len(),
            first.as_millis(),
            acknowledged.deleted.len()
        );
        let mut problems = check_against_engine(&listing, &instance);
        let found = states(&listing);
        for id in &acknowledged.created {
            if found.get(id) != Some(&SandboxState::Running) {
                problems.push(format!("acknowledged create {id} is {:?}", found.get(id)));
            }
        }
        for id in &acknowledged.deleted {
            if found.contains_key(id) || engine_status(id).is_some() {
                problems.push(format!("acknowledged delete {id} is back"));
            }
        }
        assert!(
            problems.is_empty(),
            "after the first restart:\n{}\n--- log tail ---\n{}",
            problems.join("\n"),
            control.log_tail(40)
        );

        control.kill_hard().unwrap();
        restart_measured(&mut control).await.unwrap();
        let again = settled(&control.api()).await.unwrap();
        assert_eq!(states(&again), found, "a second restart changed states");
        let problems = check_against_engine(&again, &instance);
        assert!(problems.is_empty(), "after the second restart:\n{}", problems.join("\n"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_answered_while_recovery_is_still_running() {
    const SANDBOXES: usize = 24;
    bounded(Duration::from_secs(300), async {
        // Every engine call but provisioning takes 3 s: recovering 24
        // sandboxes (8 at a time) takes at least 9 s, for a reason the
        // test controls.
        let mut control = ControlProcess::start(ControlOptions {
            operation_latency_ms: 3_000,
            ..ControlOptions::default()
        })
        .await
        .unwrap();
        let api = control.api();
        for _ in 0..SANDBOXES {
            api.create_sandbox(&create_body(1800, &BTreeMap::new()))
                .await
                .unwrap();
        }
        poll_until("every sandbox to run", LONG, || async {
            let listing = api.list_all("").await?;
            Ok((listing.count_in(SandboxState::Running) == SANDBOXES).then_some(()))
        })
        .await
        .unwrap();
        control.kill_hard().unwrap();
        // While Sandgate is down, every sandbox's process exits with code 3.
        let path = control.engine_state_path();
        let mut engine: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for sandbox in engine.as_object_mut().unwrap().values_mut() {
            sandbox["state"] = json!({"Exited": {"code": 3, "oom_killed": false}});
        }
        std::fs::write(&path, engine.to_string()).unwrap();

        control.restart().await.unwrap();
        let api = control.api();
        let first = api.list_all("").await.unwrap();
        let not_yet_recovered = first.count_in(SandboxState::Running);
        assert!(
            not_yet_recovered > 0,
            "the first answered list already shows every sandbox recovered: the API was not serving during recovery ({:?})",
            states(&first)
        );
        poll_until("every sandbox to be recorded as exited", LONG, || async {
            let listing = api.list_all("").await?;
            Ok((listing.count_in(SandboxState::Failed) == SANDBOXES).then_some(()))
        })
        .await
        .unwrap();
    })
    .await;
}
