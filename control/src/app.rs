//! Assembles the control plane from its parts and serves it.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::http::route_stream::RouteStreamAccess;
use crate::http::server_proxy::ServerProxy;
use crate::http::{self, AppState, auth::ApiKeyAuth};
use crate::metrics::Metrics;
use crate::routes::RoutePublisher;
use crate::runtime::{Runtime, RuntimeError, RuntimeEvent};
use crate::sandbox::reconcile::{ReconcileReport, Recovery};
use crate::sandbox::service::{SandboxService, ServiceParts, ServiceSettings};
use crate::sandbox::snapshot::SnapshotService;
use crate::store::{Store, StoreError};
use crate::ttl::{Due, Scheduler};

/// Everything needed to start the control plane, independent of how it was
/// configured (tests build it directly).
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// The SQLite state file.
    pub store_path: PathBuf,
    /// The API key; `None` turns auth off.
    pub api_key: Option<String>,
    /// Domain settings.
    pub service: ServiceSettings,
    /// Time source.
    pub clock: Clock,
    /// How long in-flight requests may finish after a shutdown signal.
    pub shutdown_grace: Duration,
    /// The token edge proxies present to stream routes; `None` disables it.
    pub routes_token: Option<String>,
    /// The edge proxy that serves server-proxy paths (`http://host:port`);
    /// without one the control plane forwards them itself.
    pub edge_proxy: Option<axum::http::Uri>,
    /// Bounds of the control plane's own forwarding to sandboxes.
    pub forward: crate::http::forward::ForwardSettings,
    /// Allowed CORS origins and `Host` names.
    pub web: crate::config::WebConfig,
}

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The state store cannot be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The runtime cannot be set up or does not answer.
    #[error("runtime: {0}")]
    Runtime(#[from] RuntimeError),
    /// The listener failed.
    #[error("serving HTTP: {0}")]
    Serve(#[from] std::io::Error),
}

/// A started control plane: background tasks run; call [`App::serve`].
pub struct App {
    /// The domain service (tests drive it directly).
    pub service: SandboxService,
    /// The HTTP router.
    pub router: Router,
    /// What startup recovery did ([`App::start`] only; [`App::launch`]
    /// leaves it empty and hands the running [`Recovery`] back instead).
    pub reconciled: ReconcileReport,
    shutdown: CancellationToken,
    grace: Duration,
}

impl App {
    /// [`App::launch`], then waits until every stored sandbox is recovered
    /// (tests that drive the service directly).
    pub async fn start(
        options: AppOptions,
        runtime: Arc<dyn Runtime>,
    ) -> Result<Self, StartupError> {
        let (mut app, recovery) = Self::launch(options, runtime).await?;
        app.reconciled = recovery.finished().await;
        Ok(app)
    }

    /// Opens the store, publishes its records, re-arms timers, starts the
    /// background tasks and the recovery of every stored sandbox, and
    /// returns without waiting for it: reads are served at once, and a write
    /// to a sandbox waits until that sandbox is recovered.
    pub async fn launch(
        options: AppOptions,
        runtime: Arc<dyn Runtime>,
    ) -> Result<(Self, Recovery), StartupError> {
        let (store, records) = Store::open(&options.store_path)?;
        let shutdown = CancellationToken::new();
        let (scheduler, due) = Scheduler::start(options.clock, shutdown.child_token());
        let metrics = Arc::new(Metrics::new());
        let (events_tx, events) = mpsc::unbounded_channel();
        runtime.watch(events_tx);
        let service = SandboxService::new(ServiceParts {
            runtime,
            store: store.clone(),
            scheduler,
            clock: options.clock,
            settings: options.service,
            metrics: metrics.clone(),
        });
        let snapshots = SnapshotService::new(service.clone());
        snapshots.recover().await?;
        let recovery = service.restore(records);
        spawn_due_loop(service.clone(), due, shutdown.child_token());
        spawn_event_loop(service.clone(), events, shutdown.child_token());
        let auth = Arc::new(ApiKeyAuth::new(options.api_key.as_deref()));
        let routes = RoutePublisher::start(service.clone(), shutdown.child_token());
        let route_access = RouteStreamAccess {
            token: options.routes_token.clone(),
            stop: shutdown.child_token(),
        };
        let router = http::router(AppState {
            service: service.clone(),
            snapshots,
            auth,
            metrics,
            routes,
            route_access,
            server_proxy: Arc::new(ServerProxy::new(
                options.edge_proxy.clone(),
                options.forward,
            )),
            web: Arc::new(options.web.clone()),
            store,
        });
        let app = Self {
            service,
            router,
            reconciled: ReconcileReport::default(),
            shutdown,
            grace: options.shutdown_grace,
        };
        Ok((app, recovery))
    }

    /// Serves until `signal` resolves, then lets in-flight requests finish
    /// (up to the grace period) and stops the background tasks.
    pub async fn serve(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let stop = CancellationToken::new();
        let stop_server = stop.clone();
        let router = self
            .router
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let server = axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop_server.cancelled().await });
        let mut server = std::pin::pin!(server.into_future());
        tokio::select! {
            result = &mut server => result?,
            () = signal => {
                tracing::info!(grace_s = self.grace.as_secs(), "shutting down; finishing in-flight requests");
                self.shutdown.cancel();
                stop.cancel();
                if tokio::time::timeout(self.grace, &mut server).await.is_err() {
                    tracing::warn!("grace period over; exiting with requests still in flight");
                }
            }
        }
        self.shutdown.cancel();
        Ok(())
    }

    /// Stops the background tasks without serving (tests).
    pub fn stop(&self) {
        self.shutdown.cancel();
    }
}

/// Runs `handle` on every message until the channel closes or `stop` fires.
fn spawn_consumer<T, F, Fut>(
    mut messages: mpsc::UnboundedReceiver<T>,
    stop: CancellationToken,
    handle: F,
) where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                next = messages.recv() => next,
                () = stop.cancelled() => None,
            };
            let Some(message) = next else { return };
            handle(message).await;
        }
    });
}

/// Deadlines are handled concurrently: one slow deletion delays no other.
fn spawn_due_loop(
    service: SandboxService,
    due: mpsc::UnboundedReceiver<Due>,
    stop: CancellationToken,
) {
    spawn_consumer(due, stop, move |deadline| {
        let service = service.clone();
        async move {
            tokio::spawn(async move { service.on_due(deadline).await });
        }
    });
}

/// Engine events are queued in stream order; each queued look-up re-reads
/// its sandbox from the engine under that sandbox's lock, so a sandbox busy
/// with a slow operation delays no other.
fn spawn_event_loop(
    service: SandboxService,
    events: mpsc::UnboundedReceiver<RuntimeEvent>,
    stop: CancellationToken,
) {
    spawn_consumer(events, stop, move |event| {
        service.on_runtime_event(event);
        std::future::ready(())
    });
}
