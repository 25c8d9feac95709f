//! Assembling the pingora server: our own `ServerConf`, the proxy service
//! (plain and TLS listeners), the admin service and the route sync.

use std::sync::Arc;

use pingora::server::Server;
use pingora::server::configuration::ServerConf;
use pingora::services::background::background_service;
use pingora::services::listening::Service;

use crate::admin::Admin;
use crate::config::Config;
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
        /// The listener.
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
    let app = EdgeApp::new(&server.configuration, edge);
    let mut proxy = Service::new("sandgate proxy".to_owned(), app);
    proxy.threads = Some(config.server.threads);
    for addr in &config.server.listen {
        proxy.add_tcp(&addr.to_string());
    }
    if let Some(tls) = &config.tls {
        let cert = tls.cert_file.to_string_lossy();
        let key = tls.key_file.to_string_lossy();
        for addr in &tls.listen {
            let addr = addr.to_string();
            proxy
                .add_tls(&addr, &cert, &key)
                .map_err(|error| BuildError::Tls {
                    addr: addr.clone(),
                    error,
                })?;
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
