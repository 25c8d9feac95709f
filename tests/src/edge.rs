//! The edge proxy as a child process, and the whole stack around it.
//!
//! - [`ProxyProcess`]: the real `sandgate-proxy` binary with a generated
//!   configuration (listener, admin listener, control plane URL and route
//!   token, plus any extra tables), killed on drop.
//! - [`EdgeStack`]: a control plane configured like `scripts/stack.sh` does
//!   (gateway ingress with URI routes pointing at the proxy, a routes token,
//!   `edge_proxy_url` for the server-proxy paths) and one proxy subscribed
//!   to it; on the Docker runtime with a unique `[sandgate] instance`, whose
//!   containers are removed on drop ([`DockerInstance`]).
//!
//! The proxy binary is `$SANDGATE_PROXY_BIN`, else `sandgate-proxy` next to
//! the control binary ([`crate::control_binary`]), so CI's
//! `SANDGATE_CONTROL_BIN` (and its `CARGO_TARGET_DIR`) is followed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::BytesMut;
use http_body_util::BodyExt;
use sandgate_shared::api::SandboxState;
use sandgate_shared::routes::RouteUpdate;
use tempfile::TempDir;
use tokio::time::Instant;

use crate::client::Api;
use crate::http::{Http, empty};
use crate::poll::{POLL_INTERVAL, poll_until};
use crate::process::{
    ControlOptions, ControlProcess, RuntimeKind, control_binary, free_port, toml_string,
};
use crate::sandboxes::create_body;

/// How long the proxy may take to become ready (`/ready` 200) after spawning.
pub const PROXY_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Environment variables that would change the proxy's configuration.
const PROXY_SCRUBBED_ENV: [&str; 4] = [
    "SANDGATE_ROUTES_TOKEN",
    "SANDGATE_EDGE_API_KEY",
    "SANDGATE_LOG_FORMAT",
    "RUST_LOG",
];

/// The proxy under test: `$SANDGATE_PROXY_BIN`, else `sandgate-proxy` in
/// the directory of the control binary.
pub fn proxy_binary() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os("SANDGATE_PROXY_BIN") {
        Some(path) => PathBuf::from(path),
        None => control_binary()?.with_file_name("sandgate-proxy"),
    };
    if !path.is_file() {
        bail!(
            "{} does not exist: run `cargo build --workspace` before these tests, or set SANDGATE_PROXY_BIN",
            path.display()
        );
    }
    Ok(path)
}

/// What to put in the proxy's generated configuration.
#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {
    /// `control.url`, `http://127.0.0.1:PORT`.
    pub control_url: String,
    /// `control.token`.
    pub token: Option<String>,
    /// The listener port; `None` picks a free one.
    pub port: Option<u16>,
    /// Extra TOML appended verbatim (`[routing]`, `[auth]`,
    /// `[secure_access]`, `[timeouts]`; not `[server]`, `[admin]`,
    /// `[control]` or `[log]`, which are generated).
    pub extra_toml: String,
    /// Extra keys of the generated `[server]` table (e.g. `h2c = false`).
    pub server_toml: String,
}

/// A running (or killed) `sandgate-proxy`; killed on drop.
#[derive(Debug)]
pub struct ProxyProcess {
    dir: TempDir,
    binary: PathBuf,
    port: u16,
    admin_port: u16,
    child: Option<Child>,
}

impl ProxyProcess {
    /// Writes the config, spawns the binary and waits until `/ready`
    /// answers 200 (a route table arrived from the control plane).
    pub async fn start(options: ProxyOptions) -> anyhow::Result<Self> {
        let binary = proxy_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("sandgate-e2e-proxy-")
            .tempdir()?;
        let mut process = Self {
            dir,
            binary,
            port: match options.port {
                Some(port) => port,
                None => free_port()?,
            },
            admin_port: free_port()?,
            child: None,
        };
        process.write_config(&options)?;
        process.spawn()?;
        process.wait_ready().await?;
        Ok(process)
    }

    /// The listener port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` of the listener.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` of the admin listener.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    /// A client for the admin listener (`/health`, `/ready`, `/metrics`).
    pub fn admin(&self) -> Api {
        Api::new(self.admin_url())
    }

    /// The process log (stdout and stderr).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("proxy.log")
    }

    /// The generated configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("proxy.toml")
    }

    /// The child's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The last `lines` lines of the process log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// One sample of the admin `/metrics`.
    pub async fn metric(&self, series: &str) -> anyhow::Result<f64> {
        self.admin().metric(series).await
    }

    /// `sandgate_proxy_routes_version`: the route-table version in use.
    pub async fn routes_version(&self) -> anyhow::Result<u64> {
        let value = self.metric("sandgate_proxy_routes_version").await?;
        Ok(value as u64)
    }

    /// The peak resident set size (`VmHWM`) of the process, in bytes.
    pub fn peak_rss_bytes(&self) -> anyhow::Result<u64> {
        let pid = self.pid().context("the proxy is not running")?;
        peak_rss_bytes(pid)
    }

    fn write_config(&self, options: &ProxyOptions) -> anyhow::Result<()> {
        let token = match &options.token {
            Some(token) => format!("token = {}\n", toml_string(token)?),
            None => String::new(),
        };
        let text = format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\nthreads = 2\ngrace_period_seconds = 0\n{server}\n\
             [admin]\nlisten = \"127.0.0.1:{admin}\"\n\n\
             [control]\nurl = {url}\n{token}reconnect_max_seconds = 1\n\n\
             [log]\nlevel = \"info\"\n\n{extra}\n",
            port = self.port,
            admin = self.admin_port,
            url = toml_string(&options.control_url)?,
            extra = options.extra_toml,
            server = options.server_toml,
        );
        std::fs::write(self.config_path(), text).context("writing the proxy config")
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let config = self.config_path();
        let child = crate::process::spawn_logged(
            &self.binary,
            &config,
            &self.log_path(),
            &PROXY_SCRUBBED_ENV,
        )?;
        self.child = Some(child);
        Ok(())
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let admin = self.admin();
        let deadline = Instant::now() + PROXY_STARTUP_TIMEOUT;
        loop {
            let child = self.child.as_mut().context("the proxy is not running")?;
            if let Some(status) = child.try_wait()? {
                self.child = None;
                bail!(
                    "sandgate-proxy exited during startup ({status}); log:\n{}",
                    self.log_tail(40)
                );
            }
            if matches!(admin.get_text("/ready").await, Ok((200, _))) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{}/ready did not answer 200 within {PROXY_STARTUP_TIMEOUT:?}; log:\n{}",
                    self.admin_url(),
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let exited = crate::process::reap(self.child.take());
        if std::thread::panicking() {
            let state = exited.map_or("running".to_owned(), |s| format!("had exited: {s}"));
            eprintln!(
                "--- sandgate-proxy on port {} ({state}), log tail ---\n{}",
                self.port,
                self.log_tail(40)
            );
        }
    }
}

/// `VmHWM` of process `pid`, in bytes.
pub fn peak_rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .context("no VmHWM line in /proc/<pid>/status")?;
    let kib: u64 = line
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("VmHWM {line:?} is not a number of kB"))?;
    Ok(kib * 1024)
}

/// A unique name for `[sandgate] instance` (and anything else per test).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{nanos:09}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The containers of one `[sandgate] instance`; removed (`docker rm -f`)
/// on drop, whatever the test did.
#[derive(Debug)]
pub struct DockerInstance {
    name: String,
}

impl DockerInstance {
    /// A fresh instance name; fails when no Docker engine answers.
    pub fn new() -> anyhow::Result<Self> {
        let status = Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running `docker info` (is the docker CLI installed?)")?;
        if !status.success() {
            bail!(
                "no Docker engine answers (`docker info` failed): these tests need one, and the images from scripts/build-test-images.sh"
            );
        }
        Ok(Self {
            name: unique_name("e2e-edge"),
        })
    }

    /// The instance name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Ids of every container labelled with this instance.
    pub fn containers(&self) -> anyhow::Result<Vec<String>> {
        let output = Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label=sandgate.io/instance={}", self.name),
            ])
            .output()
            .context("running docker ps")?;
        if !output.status.success() {
            bail!(
                "docker ps failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect())
    }

    /// Removes every container of this instance.
    pub fn remove_all(&self) -> anyhow::Result<()> {
        let ids = self.containers()?;
        if ids.is_empty() {
            return Ok(());
        }
        let status = Command::new("docker")
            .args(["rm", "-f"])
            .args(&ids)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running docker rm -f")?;
        if !status.success() {
            bail!("docker rm -f {ids:?} failed");
        }
        Ok(())
    }
}

impl Drop for DockerInstance {
    fn drop(&mut self) {
        if let Err(error) = self.remove_all() {
            eprintln!("cleaning up instance {}: {error:#}", self.name);
        }
    }
}

/// How to start an [`EdgeStack`].
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// The control plane's runtime.
    pub runtime: RuntimeKind,
    /// `sandgate.fake.provision_latency_ms` (fake runtime).
    pub provision_latency_ms: u64,
    /// Extra control-plane TOML (e.g. `[ingress.secure_access]`).
    pub control_extra: String,
    /// Extra proxy TOML (e.g. `[auth]`, `[routing]`, `[secure_access]`).
    pub proxy_extra: String,
    /// Extra keys of the proxy's `[server]` table (e.g. `h2c = false`).
    pub proxy_server: String,
}

/// A control plane and one edge proxy wired together as `scripts/stack.sh`
/// does. Fields drop in order: control plane, proxy, then the containers.
#[derive(Debug)]
pub struct EdgeStack {
    /// The control plane.
    pub control: ControlProcess,
    /// The edge proxy.
    pub proxy: ProxyProcess,
    /// The shared route-stream token.
    pub token: String,
    /// The Docker instance (Docker runtime only).
    pub docker: Option<DockerInstance>,
}

impl EdgeStack {
    /// Starts the control plane (gateway ingress pointing at the proxy's
    /// port), then the proxy, and waits until the proxy has a route table.
    pub async fn start(options: StackOptions) -> anyhow::Result<Self> {
        let docker = match options.runtime {
            RuntimeKind::Docker => Some(DockerInstance::new()?),
            RuntimeKind::Fake => None,
        };
        let token = unique_name("routes-token");
        let proxy_port = free_port()?;
        let proxy_address = format!("127.0.0.1:{proxy_port}");
        let control = ControlProcess::start(ControlOptions {
            runtime: options.runtime,
            provision_latency_ms: options.provision_latency_ms,
            instance: Some(match &docker {
                Some(docker) => docker.name().to_owned(),
                None => unique_name("e2e-edge-fake"),
            }),
            gateway_address: Some(proxy_address.clone()),
            routes_token: Some(token.clone()),
            edge_proxy_url: Some(format!("http://{proxy_address}")),
            extra_toml: options.control_extra.clone(),
            ..ControlOptions::default()
        })
        .await?;
        let proxy = ProxyProcess::start(ProxyOptions {
            control_url: control.base_url(),
            token: Some(token.clone()),
            port: Some(proxy_port),
            extra_toml: options.proxy_extra.clone(),
            server_toml: options.proxy_server.clone(),
        })
        .await?;
        Ok(Self {
            control,
            proxy,
            token,
            docker,
        })
    }

    /// Creates a fake-runtime sandbox and waits (each step within `within`)
    /// until it runs and the proxy routes `GET /probe` to its `port`, with
    /// `headers` besides the routing header, answering 200 `body`. Returns
    /// its id; panics with the stack's logs when a step times out.
    pub async fn routed_fake_sandbox(
        &self,
        port: u16,
        headers: &[(&str, &str)],
        body: &str,
        within: Duration,
    ) -> String {
        let api = self.control.api();
        let created = api
            .create_sandbox(&create_body(1800, &BTreeMap::new()))
            .await
            .unwrap_or_else(|e| panic!("create: {e:#}\n{}", self.logs()));
        let id = created.id.to_string();
        let running = poll_until("the sandbox to run", within, || async {
            let sandbox = api.sandbox(&id).await?;
            Ok(sandbox
                .filter(|s| s.status.state == SandboxState::Running)
                .map(|_| ()))
        })
        .await;
        running.unwrap_or_else(|e| panic!("{e:#}\n{}", self.logs()));
        let http = Http::new();
        let route = format!("{id}-{port}");
        let mut all = vec![("OpenSandbox-Ingress-To", route.as_str())];
        all.extend_from_slice(headers);
        let url = format!("{}/probe", self.proxy.base_url());
        let routed = poll_until("the proxy to route to the sandbox", within, || async {
            let reply = http.get(&url, &all).await?;
            Ok((reply.status == 200 && reply.text() == body).then_some(()))
        })
        .await;
        routed.unwrap_or_else(|e| panic!("{e:#}\n{}", self.logs()));
        id
    }

    /// Another proxy subscribed to the same control plane (its own port).
    pub async fn another_proxy(&self, extra_toml: &str) -> anyhow::Result<ProxyProcess> {
        ProxyProcess::start(ProxyOptions {
            control_url: self.control.base_url(),
            token: Some(self.token.clone()),
            port: None,
            extra_toml: extra_toml.to_owned(),
            ..ProxyOptions::default()
        })
        .await
    }

    /// The control plane's current route-table version, read from the
    /// first message (the snapshot) of its route stream.
    pub async fn control_routes_version(&self) -> anyhow::Result<u64> {
        control_routes_version(&self.control.base_url(), &self.token).await
    }

    /// Waits until the proxy has applied every route change the control
    /// plane had published when this was called.
    pub async fn wait_proxy_synced(&self) -> anyhow::Result<u64> {
        let want = self.control_routes_version().await?;
        let deadline = Instant::now() + PROXY_STARTUP_TIMEOUT;
        loop {
            let have = self.proxy.routes_version().await?;
            if have >= want {
                return Ok(have);
            }
            if Instant::now() >= deadline {
                bail!("the proxy is at route version {have}, the control plane at {want}");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Logs of both processes, for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "--- control log ---\n{}\n--- proxy log ---\n{}",
            self.control.log_tail(25),
            self.proxy.log_tail(25)
        )
    }
}

/// The route-table version `GET /internal/v1/routes` starts with.
pub async fn control_routes_version(control_url: &str, token: &str) -> anyhow::Result<u64> {
    let request = Http::request(
        hyper::Method::GET,
        &format!("{control_url}/internal/v1/routes"),
        &[("authorization", &format!("Bearer {token}"))],
        empty(),
    )?;
    let response = Http::new().open(request, Duration::from_secs(30)).await?;
    if response.status() != 200 {
        bail!("GET /internal/v1/routes → {}", response.status());
    }
    let mut body = response.into_body();
    let mut buffer = BytesMut::new();
    let line = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                return anyhow::Ok(buffer.split_to(end));
            }
            match body.frame().await {
                Some(frame) => {
                    if let Ok(data) = frame?.into_data() {
                        buffer.extend_from_slice(&data);
                    }
                }
                None => bail!("the route stream ended before its first line"),
            }
        }
    })
    .await
    .context("no first line on the route stream within 30 s")??;
    match serde_json::from_slice::<RouteUpdate>(&line)? {
        RouteUpdate::Snapshot { table } => Ok(table.version),
        other => bail!("the route stream did not start with a snapshot: {other:?}"),
    }
}
