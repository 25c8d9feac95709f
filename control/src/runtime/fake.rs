//! An in-memory runtime with scripted latency and failures and a call log.
//!
//! It drives the fast tests and the scale benchmark, and lets the whole
//! stack run without a container engine (`runtime.type = "fake"`). With a
//! state file it persists its "containers", simulating an engine that
//! outlives the control plane (used by the crash test).
//!
//! Scripting: an image whose reference starts with `fake/fail` fails to
//! provision, with the rest of the reference as the message; tests can also
//! queue failures with [`FakeRuntime::fail_next`] and report engine-side
//! changes with [`FakeRuntime::exit`], [`FakeRuntime::freeze_behind_back`]
//! and [`FakeRuntime::remove_behind_back`].
//! A sandbox's output is whatever [`FakeRuntime::write_output`] wrote.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use sandgate_shared::ids::SandboxId;
use sandgate_shared::time::Timestamp;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{
    EventSink, LogWindow, ObservedState, ProcessEvent, Progress, ProvisionRequest, Provisioned,
    ResolvedEndpoint, Runtime, RuntimeError, RuntimeEvent, RuntimeKind, RuntimeSandbox,
    SnapshotImage,
};
use crate::sandbox::model::Source;

/// The repository of snapshot images (the tag is the snapshot id), as on Docker.
const SNAPSHOT_REPOSITORY: &str = "opensandbox-snapshots";

/// Settings of the fake runtime.
#[derive(Debug, Clone)]
pub struct FakeSettings {
    /// Time each provisioning takes.
    pub provision_latency: Duration,
    /// Time every other operation takes.
    pub operation_latency: Duration,
    /// Host put in endpoints (`{host}:{port}`).
    pub endpoint_host: String,
    /// Where to persist state, if anywhere.
    pub state_file: Option<PathBuf>,
}

impl Default for FakeSettings {
    fn default() -> Self {
        Self {
            provision_latency: Duration::ZERO,
            operation_latency: Duration::ZERO,
            endpoint_host: "127.0.0.1".to_owned(),
            state_file: None,
        }
    }
}

/// An operation of the runtime, for the call log and scripted failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// `provision`.
    Provision,
    /// `pause`.
    Pause,
    /// `resume`.
    Resume,
    /// `delete`.
    Delete,
    /// `list`.
    List,
    /// `observe`.
    Observe,
    /// `resolve_endpoint`.
    Endpoint,
    /// `logs`.
    Logs,
    /// `process_events`.
    Events,
    /// `inspect`.
    Inspect,
    /// `snapshot`.
    Snapshot,
    /// `delete_snapshot`.
    DeleteSnapshot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum FakeState {
    Running,
    Paused,
    Exited { code: i64, oom_killed: bool },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FakeSandbox {
    state: FakeState,
    created_at: Timestamp,
    image: String,
    entrypoint: Vec<String>,
    metadata: BTreeMap<String, String>,
    expires_at: Option<Timestamp>,
    /// When the main process ended.
    #[serde(default)]
    finished_at: Option<Timestamp>,
    /// Output lines and when they were written.
    #[serde(default)]
    output: Vec<(Timestamp, String)>,
}

#[derive(Default)]
struct World {
    sandboxes: HashMap<SandboxId, FakeSandbox>,
    failures: HashMap<Op, VecDeque<String>>,
    calls: Vec<(Op, Option<SandboxId>)>,
    sink: Option<EventSink>,
    /// Snapshot images by snapshot id.
    snapshots: HashMap<String, String>,
    /// Set: `snapshot` never returns, as if the process crashed meanwhile;
    /// `true`: after the image was committed.
    hang_snapshots: Option<bool>,
}

impl World {
    /// The sandbox `id`, or `NotFound`.
    fn sandbox(&self, id: &SandboxId) -> Result<&FakeSandbox, RuntimeError> {
        self.sandboxes
            .get(id)
            .ok_or_else(|| RuntimeError::NotFound { id: id.clone() })
    }

    /// The sandbox `id` to change, or `NotFound`.
    fn sandbox_mut(&mut self, id: &SandboxId) -> Result<&mut FakeSandbox, RuntimeError> {
        self.sandboxes
            .get_mut(id)
            .ok_or_else(|| RuntimeError::NotFound { id: id.clone() })
    }
}

/// The fake runtime.
pub struct FakeRuntime {
    settings: FakeSettings,
    world: Mutex<World>,
}

impl std::fmt::Debug for FakeRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRuntime")
            .field("settings", &self.settings)
            .finish()
    }
}

impl FakeRuntime {
    /// A fake runtime; loads its state file when one is configured and exists.
    pub fn new(settings: FakeSettings) -> Result<Self, RuntimeError> {
        let sandboxes = match &settings.state_file {
            Some(path) if path.exists() => load(path)?,
            _ => HashMap::new(),
        };
        let world = World {
            sandboxes,
            ..World::default()
        };
        Ok(Self {
            settings,
            world: Mutex::new(world),
        })
    }

    /// Makes the next call of `op` fail with `message`.
    pub fn fail_next(&self, op: Op, message: impl Into<String>) {
        self.world
            .lock()
            .failures
            .entry(op)
            .or_default()
            .push_back(message.into());
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<(Op, Option<SandboxId>)> {
        self.world.lock().calls.clone()
    }

    /// How many sandboxes the fake engine holds.
    pub fn len(&self) -> usize {
        self.world.lock().sandboxes.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the engine holds `id`.
    pub fn contains(&self, id: &SandboxId) -> bool {
        self.world.lock().sandboxes.contains_key(id)
    }

    /// Simulates the sandbox's main process exiting, and reports it.
    pub fn exit(&self, id: &SandboxId, code: i64, oom_killed: bool) {
        let mut world = self.world.lock();
        if let Some(sandbox) = world.sandboxes.get_mut(id) {
            sandbox.state = FakeState::Exited { code, oom_killed };
            sandbox.finished_at = Some(Timestamp::from_utc(chrono::Utc::now()));
            emit(
                &world,
                RuntimeEvent::Exited {
                    id: id.clone(),
                    code,
                    oom_killed,
                },
            );
        }
        self.persist(&world);
    }

    /// Appends a line to the sandbox's output, as written at `at`.
    pub fn write_output(&self, id: &SandboxId, at: Timestamp, line: &str) {
        let mut world = self.world.lock();
        if let Some(sandbox) = world.sandboxes.get_mut(id) {
            sandbox.output.push((at, line.to_owned()));
        }
        self.persist(&world);
    }

    /// Simulates someone removing the sandbox by hand, and reports it.
    pub fn remove_behind_back(&self, id: &SandboxId) {
        let mut world = self.world.lock();
        if world.sandboxes.remove(id).is_some() {
            emit(&world, RuntimeEvent::Removed { id: id.clone() });
        }
        self.persist(&world);
    }

    /// Simulates someone freezing the sandbox by hand, and reports it.
    pub fn freeze_behind_back(&self, id: &SandboxId) {
        let mut world = self.world.lock();
        if let Some(sandbox) = world.sandboxes.get_mut(id) {
            sandbox.state = FakeState::Paused;
            emit(&world, RuntimeEvent::Frozen { id: id.clone() });
        }
        self.persist(&world);
    }

    /// Whether the engine holds an image for snapshot `snapshot_id`.
    pub fn has_snapshot(&self, snapshot_id: &str) -> bool {
        self.world.lock().snapshots.contains_key(snapshot_id)
    }

    /// Makes every later `snapshot` call hang forever, as a control plane
    /// that crashes in the middle of a commit: before the engine made the
    /// image, or (`after_commit`) after.
    pub fn hang_snapshots(&self, after_commit: bool) {
        self.world.lock().hang_snapshots = Some(after_commit);
    }

    async fn enter(&self, op: Op, id: Option<&SandboxId>) -> Result<(), RuntimeError> {
        let latency = if op == Op::Provision {
            self.settings.provision_latency
        } else {
            self.settings.operation_latency
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let mut world = self.world.lock();
        world.calls.push((op, id.cloned()));
        match world.failures.get_mut(&op).and_then(VecDeque::pop_front) {
            Some(message) => Err(RuntimeError::backend(message)),
            None => Ok(()),
        }
    }

    fn persist(&self, world: &World) {
        let Some(path) = &self.settings.state_file else {
            return;
        };
        if let Err(error) = save(path, &world.sandboxes) {
            tracing::error!(path = %path.display(), %error, "fake runtime cannot save its state");
        }
    }

    fn change(
        &self,
        id: &SandboxId,
        from: FakeState,
        to: FakeState,
        what: &str,
    ) -> Result<(), RuntimeError> {
        let mut world = self.world.lock();
        let sandbox = world.sandbox_mut(id)?;
        if sandbox.state != from {
            return Err(RuntimeError::conflict(format!(
                "cannot {what} a sandbox in state {:?}",
                sandbox.state
            )));
        }
        sandbox.state = to;
        self.persist(&world);
        Ok(())
    }
}

fn emit(world: &World, event: RuntimeEvent) {
    if let Some(sink) = &world.sink {
        let _ = sink.send(event);
    }
}

fn load(path: &PathBuf) -> Result<HashMap<SandboxId, FakeSandbox>, RuntimeError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| RuntimeError::backend(format!("reading {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| RuntimeError::backend(format!("parsing {}: {e}", path.display())))
}

fn save(path: &PathBuf, sandboxes: &HashMap<SandboxId, FakeSandbox>) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_vec(sandboxes).map_err(std::io::Error::other)?;
    // Private like the state store it usually sits next to.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    std::io::Write::write_all(&mut file, &text)?;
    std::fs::rename(tmp, path)
}

#[async_trait]
impl Runtime for FakeRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Fake
    }

    async fn provision(
        &self,
        request: &ProvisionRequest,
        progress: &Progress,
        cancel: &CancellationToken,
    ) -> Result<Provisioned, RuntimeError> {
        progress.report("Fake runtime: creating the sandbox.");
        // Nothing exists before the simulated latency is over.
        tokio::select! {
            entered = self.enter(Op::Provision, Some(&request.id)) => entered?,
            () = cancel.cancelled() => {
                return Err(RuntimeError::backend("provisioning was cancelled"));
            }
        }
        let image = match &request.spec.source {
            Source::Image { uri } => uri.clone(),
            Source::Snapshot { id, image } => {
                image.clone().unwrap_or_else(|| format!("snapshot:{id}"))
            }
        };
        if let Some(message) = image.strip_prefix("fake/fail") {
            return Err(RuntimeError::backend(format!("scripted failure{message}")));
        }
        let sandbox = FakeSandbox {
            state: FakeState::Running,
            created_at: request.created_at,
            image,
            entrypoint: request.spec.entrypoint.clone(),
            metadata: request.metadata.clone(),
            expires_at: request.expires_at,
            finished_at: None,
            output: Vec::new(),
        };
        let mut world = self.world.lock();
        world.sandboxes.insert(request.id.clone(), sandbox);
        self.persist(&world);
        Ok(Provisioned {
            state: ObservedState::Running,
            address: Some(self.settings.endpoint_host.clone()),
        })
    }

    async fn pause(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        self.enter(Op::Pause, Some(id)).await?;
        self.change(id, FakeState::Running, FakeState::Paused, "pause")
    }

    async fn resume(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        self.enter(Op::Resume, Some(id)).await?;
        self.change(id, FakeState::Paused, FakeState::Running, "resume")
    }

    async fn delete(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        self.enter(Op::Delete, Some(id)).await?;
        let mut world = self.world.lock();
        world.sandboxes.remove(id);
        self.persist(&world);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<RuntimeSandbox>, RuntimeError> {
        self.enter(Op::List, None).await?;
        let world = self.world.lock();
        Ok(world
            .sandboxes
            .iter()
            .map(|(id, s)| observed(id, s, &self.settings.endpoint_host))
            .collect())
    }

    async fn observe(&self, id: &SandboxId) -> Result<Option<RuntimeSandbox>, RuntimeError> {
        self.enter(Op::Observe, Some(id)).await?;
        let world = self.world.lock();
        Ok(world
            .sandboxes
            .get(id)
            .map(|s| observed(id, s, &self.settings.endpoint_host)))
    }

    async fn resolve_endpoint(
        &self,
        id: &SandboxId,
        port: u16,
    ) -> Result<ResolvedEndpoint, RuntimeError> {
        self.enter(Op::Endpoint, Some(id)).await?;
        if !self.world.lock().sandboxes.contains_key(id) {
            return Err(RuntimeError::NotReady(format!(
                "sandbox {id} is not created yet"
            )));
        }
        let endpoint = format!("{}:{port}", self.settings.endpoint_host);
        Ok(ResolvedEndpoint {
            endpoint,
            headers: BTreeMap::new(),
        })
    }

    async fn logs(
        &self,
        id: &SandboxId,
        window: LogWindow,
    ) -> Result<(String, bool), RuntimeError> {
        self.enter(Op::Logs, Some(id)).await?;
        let world = self.world.lock();
        let sandbox = world.sandbox(id)?;
        let lines: Vec<_> = sandbox
            .output
            .iter()
            .filter(|(at, _)| window.since.is_none_or(|since| *at >= since))
            .collect();
        let skip = lines.len().saturating_sub(window.tail);
        let text = lines
            .iter()
            .skip(skip)
            .map(|(at, line)| format!("{at} {line}\n"))
            .collect();
        Ok((text, skip > 0))
    }

    async fn process_events(&self, id: &SandboxId) -> Result<Vec<ProcessEvent>, RuntimeError> {
        self.enter(Op::Events, Some(id)).await?;
        let world = self.world.lock();
        let sandbox = world.sandbox(id)?;
        let mut events = vec![
            ProcessEvent::at(sandbox.created_at, "container created"),
            ProcessEvent::at(sandbox.created_at, "process started"),
        ];
        match sandbox.state {
            FakeState::Exited { code, oom_killed } => {
                let oom = if oom_killed {
                    ", killed by the OOM killer"
                } else {
                    ""
                };
                let what = format!("process exited with code {code}{oom}");
                events.push(match sandbox.finished_at {
                    Some(at) => ProcessEvent::at(at, what),
                    None => ProcessEvent::undated(what),
                });
            }
            FakeState::Paused => events.push(ProcessEvent::undated("container is paused")),
            FakeState::Running => {}
        }
        Ok(events)
    }

    async fn inspect(&self, id: &SandboxId) -> Result<String, RuntimeError> {
        self.enter(Op::Inspect, Some(id)).await?;
        let world = self.world.lock();
        let sandbox = world.sandbox(id)?;
        Ok(render(id, sandbox))
    }

    async fn snapshot(
        &self,
        id: &SandboxId,
        snapshot_id: &str,
    ) -> Result<SnapshotImage, RuntimeError> {
        self.enter(Op::Snapshot, Some(id)).await?;
        let image = format!("{SNAPSHOT_REPOSITORY}:{snapshot_id}");
        let hang = {
            let mut world = self.world.lock();
            world.sandbox(id)?;
            let hang = world.hang_snapshots;
            if hang != Some(false) {
                world
                    .snapshots
                    .insert(snapshot_id.to_owned(), image.clone());
            }
            hang
        };
        if hang.is_some() {
            std::future::pending::<()>().await;
        }
        Ok(SnapshotImage { image })
    }

    async fn find_snapshot(
        &self,
        snapshot_id: &str,
    ) -> Result<Option<SnapshotImage>, RuntimeError> {
        let world = self.world.lock();
        Ok(world.snapshots.get(snapshot_id).map(|image| SnapshotImage {
            image: image.clone(),
        }))
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), RuntimeError> {
        self.enter(Op::DeleteSnapshot, None).await?;
        let mut world = self.world.lock();
        let Some(image) = world.snapshots.get(snapshot_id) else {
            return Ok(());
        };
        if world.sandboxes.values().any(|s| &s.image == image) {
            return Err(RuntimeError::conflict(format!(
                "image {image} is used by a sandbox"
            )));
        }
        world.snapshots.remove(snapshot_id);
        Ok(())
    }

    async fn health(&self) -> Result<(), RuntimeError> {
        Ok(())
    }

    fn watch(&self, sink: EventSink) {
        self.world.lock().sink = Some(sink);
    }
}

/// The fake's inspect text: a few fixed fields, deterministic for a sandbox.
fn render(id: &SandboxId, sandbox: &FakeSandbox) -> String {
    let (status, exit_code, oom_killed) = match sandbox.state {
        FakeState::Running => ("running", 0, false),
        FakeState::Paused => ("paused", 0, false),
        FakeState::Exited { code, oom_killed } => ("exited", code, oom_killed),
    };
    let expires = sandbox
        .expires_at
        .map_or_else(|| "never (manual cleanup)".to_owned(), |at| at.to_string());
    let mut text = format!(
        "Runtime:        fake (in memory)\n\
         Sandbox:        {id}\n\
         Image:          {}\n\
         Status:         {status}\n\
         Exit code:      {exit_code}\n\
         OOMKilled:      {oom_killed}\n\
         Created:        {}\n\
         Expires:        {expires}\n\
         Command:        {}\n\
         Labels:\n",
        sandbox.image,
        sandbox.created_at,
        sandbox.entrypoint.join(" "),
    );
    if sandbox.metadata.is_empty() {
        text.push_str("  (none)\n");
    }
    for (key, value) in &sandbox.metadata {
        text.push_str(&format!("  {key}={value}\n"));
    }
    text
}

fn observed(id: &SandboxId, sandbox: &FakeSandbox, endpoint_host: &str) -> RuntimeSandbox {
    let state = match sandbox.state {
        FakeState::Running => ObservedState::Running,
        FakeState::Paused => ObservedState::Paused,
        FakeState::Exited { code, oom_killed } => ObservedState::Exited { code, oom_killed },
    };
    RuntimeSandbox {
        id: id.clone(),
        state,
        created_at: Some(sandbox.created_at),
        image: Some(sandbox.image.clone()),
        entrypoint: sandbox.entrypoint.clone(),
        metadata: sandbox.metadata.clone(),
        expires_at: sandbox.expires_at,
        address: Some(endpoint_host.to_owned()),
    }
}
