//! [`ControlProcess`]: the real `sandgate-control` binary as a child process.
//!
//! Each instance owns a temporary directory holding the generated config,
//! the SQLite store, the fake engine's state file and the process log
//! (stdout and stderr, appended across restarts). The port is picked free
//! once and kept, so a restart comes back on the same address.

use std::fs::{File, OpenOptions};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use tempfile::TempDir;
use tokio::time::Instant;

use crate::client::Api;
use crate::poll::POLL_INTERVAL;

/// How long the process may take to answer `GET /health` after spawning.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Environment variables that would change the generated configuration.
const SCRUBBED_ENV: [&str; 5] = [
    "OPENSANDBOX_SERVER_API_KEY",
    "SANDBOX_CONFIG_PATH",
    "PENDING_FAILURE_TTL",
    "RUST_LOG",
    "SANDGATE_ROUTES_TOKEN",
];

/// Which runtime the generated configuration selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuntimeKind {
    /// `runtime.type = "fake"` with a state file in the temporary directory.
    #[default]
    Fake,
    /// `runtime.type = "docker"` on the local engine, bridge network.
    Docker,
}

/// What to put in the generated configuration.
#[derive(Debug, Clone)]
pub struct ControlOptions {
    /// `runtime.type`.
    pub runtime: RuntimeKind,
    /// `sandgate.fake.provision_latency_ms` (fake runtime only).
    pub provision_latency_ms: u64,
    /// `sandgate.fake.operation_latency_ms`: the time of every other engine
    /// call (fake runtime only).
    pub operation_latency_ms: u64,
    /// `sandgate.instance`; `None` keeps the default ("default"). Docker
    /// tests must set a unique one so they never see each other's containers.
    pub instance: Option<String>,
    /// `ingress.mode = "gateway"` with URI routes at this address
    /// (`127.0.0.1:PORT` of the edge proxy); `None` keeps direct ingress.
    pub gateway_address: Option<String>,
    /// `sandgate.routes_token`: enables the route stream for edge proxies.
    pub routes_token: Option<String>,
    /// `sandgate.edge_proxy_url`: where server-proxy paths are relayed.
    pub edge_proxy_url: Option<String>,
    /// Extra TOML appended verbatim (tables not otherwise written).
    pub extra_toml: String,
}

impl Default for ControlOptions {
    fn default() -> Self {
        Self {
            runtime: RuntimeKind::Fake,
            provision_latency_ms: 50,
            operation_latency_ms: 0,
            instance: None,
            gateway_address: None,
            routes_token: None,
            edge_proxy_url: None,
            extra_toml: String::new(),
        }
    }
}

/// A running (or killed) `sandgate-control`; killed on drop.
#[derive(Debug)]
pub struct ControlProcess {
    dir: TempDir,
    binary: PathBuf,
    port: u16,
    child: Option<Child>,
}

/// The binary under test: `$SANDGATE_CONTROL_BIN`, else
/// `<workspace>/target/debug/sandgate-control`. Fails, saying how to build
/// it, when the file does not exist.
pub fn control_binary() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os("SANDGATE_CONTROL_BIN") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/sandgate-control"),
    };
    if !path.is_file() {
        bail!(
            "{} does not exist: run `cargo build -p sandgate-control` (or `cargo build --workspace`) before these tests, or set SANDGATE_CONTROL_BIN",
            path.display()
        );
    }
    Ok(path)
}

pub use crate::ports::free_port;

/// A path as a TOML basic string (JSON string escapes are valid TOML).
pub fn toml_path(path: &Path) -> anyhow::Result<String> {
    let text = path.to_str().context("temporary path is not UTF-8")?;
    toml_string(text)
}

/// Text as a TOML basic string.
pub fn toml_string(text: &str) -> anyhow::Result<String> {
    Ok(serde_json::to_string(text)?)
}

impl ControlProcess {
    /// Writes the config, spawns the binary and waits until `/health` answers.
    pub async fn start(options: ControlOptions) -> anyhow::Result<Self> {
        let binary = control_binary()?;
        let dir = tempfile::Builder::new().prefix("sandgate-e2e-").tempdir()?;
        let mut process = Self {
            dir,
            binary,
            port: free_port()?,
            child: None,
        };
        process.write_config(&options)?;
        process.spawn()?;
        process.wait_healthy().await?;
        Ok(process)
    }

    /// The port it listens on (kept across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A fresh client for this server (its own connection pool).
    pub fn api(&self) -> Api {
        Api::new(self.base_url())
    }

    /// The temporary directory holding config, store, engine state and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The generated configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir().join("control.toml")
    }

    /// The fake engine's state file (a JSON object keyed by sandbox id).
    pub fn engine_state_path(&self) -> PathBuf {
        self.dir().join("fake-engine.json")
    }

    /// The process log (stdout and stderr of every run).
    pub fn log_path(&self) -> PathBuf {
        self.dir().join("control.log")
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

    /// Kills the process with SIGKILL (no graceful shutdown, nothing
    /// flushed) and reaps it. Fails if it had already exited on its own.
    pub fn kill_hard(&mut self) -> anyhow::Result<ExitStatus> {
        let mut child = self.child.take().context("the process is not running")?;
        if let Some(status) = child.try_wait()? {
            bail!(
                "the process had already exited ({status}); log:\n{}",
                self.log_tail(40)
            );
        }
        // `Child::kill` sends SIGKILL on Unix (the workspace forbids `unsafe`,
        // so `libc::kill` cannot be called directly).
        child.kill().context("sending SIGKILL")?;
        let status = child.wait().context("reaping the killed process")?;
        if status.signal() != Some(libc::SIGKILL) {
            bail!("the process ended with {status}, not by SIGKILL");
        }
        Ok(status)
    }

    /// Starts the binary again with the same config, store and port, and
    /// waits until `/health` answers. The process must have been stopped.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            bail!("restart: the process is still running; call kill_hard first");
        }
        self.spawn()?;
        self.wait_healthy().await
    }

    fn write_config(&self, options: &ControlOptions) -> anyhow::Result<()> {
        use std::fmt::Write as _;
        let runtime = match options.runtime {
            RuntimeKind::Fake => "fake",
            RuntimeKind::Docker => "docker",
        };
        let mut text = format!(
            "[server]\nhost = \"127.0.0.1\"\nport = {port}\n\n[runtime]\ntype = \"{runtime}\"\n\n\
             [store]\npath = {store}\n\n[sandgate]\n",
            port = self.port,
            store = toml_path(&self.dir().join("state.db"))?,
        );
        if let Some(instance) = &options.instance {
            writeln!(text, "instance = {}", toml_string(instance)?)?;
        }
        if let Some(token) = &options.routes_token {
            writeln!(text, "routes_token = {}", toml_string(token)?)?;
        }
        if let Some(url) = &options.edge_proxy_url {
            writeln!(text, "edge_proxy_url = {}", toml_string(url)?)?;
        }
        match options.runtime {
            RuntimeKind::Fake => write!(
                text,
                "\n[sandgate.fake]\nprovision_latency_ms = {latency}\n\
                 operation_latency_ms = {operation}\nstate_file = {engine}\n",
                latency = options.provision_latency_ms,
                operation = options.operation_latency_ms,
                engine = toml_path(&self.engine_state_path())?,
            )?,
            // No grace: busybox as PID 1 ignores SIGTERM, deletes would wait.
            RuntimeKind::Docker => text
                .push_str("docker_stop_grace_seconds = 0\n\n[docker]\nnetwork_mode = \"bridge\"\n"),
        }
        if let Some(address) = &options.gateway_address {
            write!(
                text,
                "\n[ingress]\nmode = \"gateway\"\n\n[ingress.gateway]\naddress = {}\n\n\
                 [ingress.gateway.route]\nmode = \"uri\"\n",
                toml_string(address)?
            )?;
        }
        writeln!(text, "\n{}", options.extra_toml)?;
        std::fs::write(self.config_path(), text).context("writing the config")
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let config = self.config_path();
        self.child = Some(spawn_logged(
            &self.binary,
            &config,
            &self.log_path(),
            &SCRUBBED_ENV,
        )?);
        Ok(())
    }

    async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let api = self.api();
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let child = self.child.as_mut().context("the process is not running")?;
            if let Some(status) = child.try_wait()? {
                self.child = None;
                bail!(
                    "sandgate-control exited during startup ({status}); log:\n{}",
                    self.log_tail(40)
                );
            }
            if matches!(api.get("/health").await, Ok((200, _))) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "no answer on {}/health after {STARTUP_TIMEOUT:?}; log:\n{}",
                    self.base_url(),
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

/// Starts `binary --config <config>` with stdout and stderr appended to
/// `log` and the `scrubbed` variables removed from its environment.
pub(crate) fn spawn_logged(
    binary: &std::path::Path,
    config: &std::path::Path,
    log: &std::path::Path,
    scrubbed: &[&str],
) -> anyhow::Result<std::process::Child> {
    let log = OpenOptions::new().create(true).append(true).open(log)?;
    let mut command = Command::new(binary);
    command
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::from(File::try_clone(&log)?))
        .stderr(Stdio::from(log));
    for name in scrubbed {
        command.env_remove(name);
    }
    command
        .spawn()
        .with_context(|| format!("spawning {}", binary.display()))
}

/// Kills and reaps a child; returns its status if it had already exited.
pub(crate) fn reap(child: Option<std::process::Child>) -> Option<std::process::ExitStatus> {
    let mut child = child?;
    let exited = child.try_wait().ok().flatten();
    let _ = child.kill();
    let _ = child.wait();
    exited
}

impl Drop for ControlProcess {
    fn drop(&mut self) {
        let exited = reap(self.child.take());
        // A failing test gets the server's side of the story.
        if std::thread::panicking() {
            let state = exited.map_or("running or stopped by the test".to_owned(), |s| {
                format!("had exited: {s}")
            });
            eprintln!(
                "--- sandgate-control on port {} ({state}), log tail ---\n{}",
                self.port,
                self.log_tail(40)
            );
        }
    }
}
