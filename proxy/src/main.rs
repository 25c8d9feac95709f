//! `sandgate-proxy`: parse the command line, load the configuration, and run
//! the edge proxy until SIGTERM (graceful) or SIGINT (immediate).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use pingora::server::RunArgs;
use sandgate_proxy::config::{self, Config, ProcessEnv};
use sandgate_proxy::logging;

/// Performance: pingora allocates and frees dozens of small objects per
/// proxied request (headers, tasks, channels, boxed futures); with mimalloc
/// instead of glibc malloc a request costs about 10% less CPU
/// (bench/results/proxy.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The Sandgate edge proxy (routes requests to sandbox ports).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (default: built-in defaults; see config/proxy.toml).
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
    let config = match config::load(cli.config.as_deref(), &ProcessEnv) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("sandgate-proxy: {error}");
            return ExitCode::FAILURE;
        }
    };
    let format = match cli.log_format {
        LogFormat::Text => logging::Format::Text,
        LogFormat::Json => logging::Format::Json,
    };
    let log_guard = logging::init(&config.log, format);
    for warning in &config.warnings {
        tracing::warn!("config: {warning}");
    }
    announce(&config);
    let server = match sandgate_proxy::build_server(&config) {
        Ok(server) => server,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            drop(log_guard);
            return ExitCode::FAILURE;
        }
    };
    server.run(RunArgs::default());
    tracing::info!("sandgate-proxy stopped");
    drop(log_guard);
    ExitCode::SUCCESS
}

fn check_config(path: &Path) -> ExitCode {
    match config::load_file(path, &ProcessEnv) {
        Ok(config) => {
            if let Err(error) = sandgate_proxy::check_tls(&config) {
                eprintln!("{}: invalid\n{error}", path.display());
                return ExitCode::FAILURE;
            }
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

fn announce(config: &Config) {
    let listen: Vec<String> = config
        .server
        .listen
        .iter()
        .map(ToString::to_string)
        .collect();
    let tls: Vec<String> = config
        .tls
        .iter()
        .flat_map(|t| t.listen.iter().map(ToString::to_string))
        .collect();
    let modes: Vec<&str> = config.routing.modes.iter().map(|m| m.as_str()).collect();
    tracing::info!(
        listen = %listen.join(","),
        tls.listen = %tls.join(","),
        admin.listen = %config.admin.listen,
        control.url = %config.control.url,
        routing.modes = %modes.join(","),
        threads = config.server.threads,
        "sandgate-proxy starting"
    );
    if config.auth.edge_api_key.is_none() {
        tracing::info!(
            "no edge API key: sandboxes are reachable by anyone who can reach the proxy (secure access still applies per sandbox)"
        );
    }
}
