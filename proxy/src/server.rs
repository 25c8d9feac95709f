//! Assembling the pingora server: our own `ServerConf`, the proxy service
//! (plain and TLS listeners), the admin service and the route sync.

use std::sync::Arc;

use pingora::listeners::tls::TlsSettings;
use pingora::server::Server;
use pingora::server::configuration::ServerConf;
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use pingora::{Error, ErrorType, OrErr};

use crate::admin::Admin;
use crate::config::{Config, TlsConfig};
use crate::metrics::Metrics;
use crate::routes::{RouteStore, RouteSync};
use crate::service::{EdgeApp, EdgeProxy};

/// Why the server could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A listen address cannot be bound (in use, or not an address of this host).
    #[error("cannot listen on {addr} ({key}): {error}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The config key naming it.
        key: &'static str,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// The TLS certificate or key could not be loaded.
    #[error("cannot set up the TLS listener {addr}: {error}")]
    Tls {
        /// The listener (every `tls.listen` address, comma-separated).
        addr: String,
        /// pingora's error.
        error: Box<pingora::Error>,
    },
}

fn check_bindable(config: &Config) -> Result<(), BuildError> {
    let plain = config.server.listen.iter().map(|a| ("server.listen", a));
    let tls = config
        .tls
        .iter()
        .flat_map(|t| t.listen.iter().map(|a| ("tls.listen", a)));
    let admin = std::iter::once(("admin.listen", &config.admin.listen));
    for (key, addr) in plain.chain(tls).chain(admin) {
        std::net::TcpListener::bind(addr).map_err(|error| BuildError::Bind {
            addr: *addr,
            key,
            error,
        })?;
    }
    Ok(())
}

/// Loads the certificate chain and private key exactly as pingora's rustls
/// listener will, and builds a rustls server configuration from them.
///
/// pingora only stores the paths and reads the files when the listener
/// starts, inside its service thread, where a missing certificate, an
/// unusable key or a key that does not match the certificate is a panic
/// (and the process would keep running without its HTTPS listener). Doing
/// the same work here first turns each of those into a startup error.
fn check_tls_files(tls: &TlsConfig) -> pingora::Result<()> {
    let cert = tls.cert_file.to_string_lossy();
    let key = tls.key_file.to_string_lossy();
    let Some((certs, private_key)) = pingora::tls::load_certs_and_key_files(&cert, &key)? else {
        return Error::e_explain(
            ErrorType::InvalidCert,
            format!(
                "no certificate in {cert}, or no private key (PKCS#1, PKCS#8 or SEC1) in {key}"
            ),
        );
    };
    pingora::tls::install_default_crypto_provider();
    pingora::tls::ServerConfig::builder_with_protocol_versions(&[
        &pingora::tls::version::TLS12,
        &pingora::tls::version::TLS13,
    ])
    .with_no_client_auth()
    .with_single_cert(certs, private_key)
    .or_err_with(ErrorType::InvalidCert, || {
        format!("the key in {key} cannot serve the certificate in {cert}")
    })?;
    Ok(())
}

/// Loads the HTTPS listeners' certificate and key as the listeners will,
/// so that `--check-config` and startup refuse what would not serve.
pub fn check_tls(config: &Config) -> Result<(), BuildError> {
    let Some(tls) = &config.tls else {
        return Ok(());
    };
    check_tls_files(tls).map_err(|error| BuildError::Tls {
        addr: tls
            .listen
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        error,
    })
}

/// The settings of one HTTPS listener: the certificate and key, and with
/// `tls.http2` ALPN offering `h2` then `http/1.1` (without it no ALPN
/// protocol is offered, so every client speaks HTTP/1.x). A connection
/// that negotiated `h2` is served by pingora's HTTP/2 pipeline
/// ([`EdgeApp`]).
fn tls_settings(tls: &TlsConfig) -> pingora::Result<TlsSettings> {
    let cert = tls.cert_file.to_string_lossy();
    let key = tls.key_file.to_string_lossy();
    let mut settings = TlsSettings::intermediate(&cert, &key)?;
    if tls.http2 {
        settings.enable_h2();
    }
    Ok(settings)
}

/// The pingora process settings derived from `config` (pingora's YAML file is not used).
pub fn server_conf(config: &Config) -> ServerConf {
    let grace = config.server.grace_period.as_secs();
    ServerConf {
        threads: config.server.threads,
        // After SIGTERM the listeners close and open requests get `grace`
        // seconds; pingora's default would wait five minutes.
        grace_period_seconds: Some(grace),
        graceful_shutdown_timeout_seconds: Some(1),
        upstream_keepalive_pool_size: 1024,
        // Performance: one single-threaded tokio runtime per worker thread
        // (pingora's "no steal" mode; new connections are spread over them)
        // instead of one work-stealing runtime. Every wake-up of a request
        // task then skips the multi-thread scheduler's atomics and queues:
        // measured -14% CPU per proxied request and +17% requests/s with
        // `threads = 1` (bench/results/proxy.md).
        work_stealing: false,
        ..ServerConf::default()
    }
}

/// Builds the server: call `run` (or `run_forever`) on the result.
///
/// Every listen address is bound once up front: pingora binds inside its
/// service threads, where a failure would leave a running process that
/// listens on nothing.
pub fn build_server(config: &Config) -> Result<Server, BuildError> {
    check_bindable(config)?;
    let mut server = Server::new_with_opt_and_conf(None, server_conf(config));
    server.bootstrap();
    let store = Arc::new(RouteStore::new());
    let metrics = Arc::new(Metrics::new());

    let edge = EdgeProxy::new(config, Arc::clone(&store), Arc::clone(&metrics));
    let app = EdgeApp::new(&server.configuration, edge, config.server.h2c);
    let mut proxy = Service::new("sandgate proxy".to_owned(), app);
    proxy.threads = Some(config.server.threads);
    for addr in &config.server.listen {
        proxy.add_tcp(&addr.to_string());
    }
    check_tls(config)?;
    if let Some(tls) = &config.tls {
        for addr in tls.listen.iter().map(ToString::to_string) {
            let settings = tls_settings(tls).map_err(|error| BuildError::Tls {
                addr: addr.clone(),
                error,
            })?;
            proxy.add_tls_with_settings(&addr, None, settings);
        }
    }
    server.add_service(proxy);

    let mut admin = Service::new(
        "sandgate admin".to_owned(),
        Admin::new(Arc::clone(&store), Arc::clone(&metrics)),
    );
    admin.threads = Some(1);
    admin.add_tcp(&config.admin.listen.to_string());
    server.add_service(admin);

    let sync = RouteSync::new(store, metrics, config.control.clone());
    server.add_service(background_service("route sync", sync));
    Ok(server)
}
