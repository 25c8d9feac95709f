//! `sandgate-control`: parse the command line, load the configuration, start
//! the control plane, and shut it down gracefully on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use sandgate_control::app::App;
use sandgate_control::config::{self, Config, ProcessEnv};
use sandgate_control::{bootstrap, runtime};
use tracing_subscriber::EnvFilter;

/// The Sandgate control plane (OpenSandbox Lifecycle API).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (default: $SANDBOX_CONFIG_PATH, else ~/.sandbox.toml, else built-in defaults).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Validate FILE, print any warnings, and exit (status 1 when invalid).
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value = "text", env = "SANDGATE_LOG_FORMAT")]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(path) = &cli.check_config {
        return check_config(path);
    }
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sandgate-control: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: &std::path::Path) -> ExitCode {
    match config::check(path, &ProcessEnv) {
        Ok(config) => {
            for warning in &config.warnings {
                println!("warning: {warning}");
            }
            println!("{}: valid", path.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{}: invalid\n{error}", path.display());
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let config =
        config::load(cli.config.as_deref(), &ProcessEnv).context("loading the configuration")?;
    let _log_writer = init_tracing(&config, cli.log_format);
    for warning in &config.warnings {
        tracing::warn!("config: {warning}");
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    warn_if_open(&config);
    let runtime: std::sync::Arc<dyn runtime::Runtime> = bootstrap::runtime(&config)
        .await
        .context("setting up the runtime")?;
    // Recovery of the stored sandboxes runs in the background.
    let (app, _recovery) = App::launch(bootstrap::app_options(&config), runtime)
        .await
        .context("starting the control plane")?;
    let addr: SocketAddr = format!("{}:{}", bracket_v6(&config.server.host), config.server.port)
        .parse()
        .with_context(|| format!("server.host {:?} is not an IP address", config.server.host))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    tracing::info!(listen.addr = %local, runtime.kind = config.runtime.kind.as_str(), sandboxes = app.service.registry().len(), "sandgate-control listening");
    app.serve(listener, shutdown_signal())
        .await
        .context("serving")?;
    tracing::info!("sandgate-control stopped");
    Ok(())
}

fn bracket_v6(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

fn warn_if_open(config: &Config) {
    if config.server.api_key.is_none() {
        tracing::warn!(
            "AUTHENTICATION IS OFF: no server.api_key (or OPENSANDBOX_SERVER_API_KEY) is configured, so anyone who can reach {}:{} can create and delete sandboxes",
            config.server.host,
            config.server.port
        );
    }
}

/// Logs go to stderr through a writer thread, so a request never waits on a
/// log write; colours only when stderr is a terminal. The returned guard
/// flushes what is queued when `main` returns.
fn init_tracing(config: &Config, format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    use std::io::IsTerminal;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(64 * 1024)
        .finish(std::io::stderr());
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.compact().init(),
    }
    guard
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
