//! Prometheus metrics of the proxy, rendered by the admin listener at `GET /metrics`.
//!
//! Per-request cost is kept to atomic adds: the handles of one
//! (sandbox, port) pair are looked up once and cached in the route entry
//! ([`crate::routes::RouteEntry::port`]), so the hot path never builds a
//! label set or takes a family lock. Series of a sandbox are removed when
//! its route leaves the table.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The port label used once a sandbox has more than [`MAX_PORTS_PER_SANDBOX`]
/// distinct ports with traffic (real ports are never 0).
pub const OVERFLOW_PORT: u16 = 0;
/// How many ports per sandbox get their own series; later ones share port `0`.
pub const MAX_PORTS_PER_SANDBOX: usize = 32;

/// Status classes, indexed by `status / 100 - 1`.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PortLabels {
    sandbox: Arc<str>,
    port: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    sandbox: Arc<str>,
    port: u16,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: &'static str,
}

/// Every metric the proxy exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    bytes_received: Family<PortLabels, Counter>,
    bytes_sent: Family<PortLabels, Counter>,
    duration: Family<PortLabels, Histogram>,
    open: Family<PortLabels, Gauge>,
    rejected: Family<CodeLabels, Counter>,
    /// Version of the route table in use.
    pub routes_version: Gauge,
    /// Seconds since the last message from the control plane (set at scrape time).
    pub routes_age_seconds: Gauge<f64, AtomicU64>,
    /// Routes in the table in use.
    pub routes: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The cached handles of one (sandbox, port) pair.
#[derive(Debug)]
pub struct PortMetrics {
    requests: [Counter; 5],
    bytes_received: Counter,
    bytes_sent: Counter,
    duration: Histogram,
    open: Gauge,
}

impl PortMetrics {
    /// A request was routed to this port and is now open.
    pub fn opened(&self) {
        self.open.inc();
    }

    /// A routed request finished with `status` (0 when no response was sent).
    pub fn closed(&self, status: u16, seconds: f64, received: u64, sent: u64) {
        self.open.dec();
        if let Some(counter) = class_index(status).and_then(|i| self.requests.get(i)) {
            counter.inc();
        }
        self.bytes_received.inc_by(received);
        self.bytes_sent.inc_by(sent);
        self.duration.observe(seconds);
    }
}

fn class_index(status: u16) -> Option<usize> {
    matches!(status, 100..=599).then(|| usize::from(status / 100 - 1))
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let duration = Family::<PortLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_25, 2.0, 18))
        });
        let mut metrics = Self {
            registry: Registry::default(),
            requests: Family::default(),
            bytes_received: Family::default(),
            bytes_sent: Family::default(),
            duration,
            open: Family::default(),
            rejected: Family::default(),
            routes_version: Gauge::default(),
            routes_age_seconds: Gauge::default(),
            routes: Gauge::default(),
        };
        metrics.register();
        metrics
    }

    fn register(&mut self) {
        let r = &mut self.registry;
        r.register(
            "sandgate_proxy_requests",
            "Routed requests by sandbox, port and status class",
            self.requests.clone(),
        );
        r.register(
            "sandgate_proxy_request_bytes",
            "Request body bytes received from clients",
            self.bytes_received.clone(),
        );
        r.register(
            "sandgate_proxy_response_bytes",
            "Response body bytes sent to clients",
            self.bytes_sent.clone(),
        );
        r.register(
            "sandgate_proxy_request_duration_seconds",
            "Time from routing to the end of the response",
            self.duration.clone(),
        );
        r.register(
            "sandgate_proxy_open_connections",
            "Routed requests in progress (WebSocket and SSE streams included)",
            self.open.clone(),
        );
        r.register(
            "sandgate_proxy_rejected",
            "Requests answered by the proxy itself, by error code",
            self.rejected.clone(),
        );
        r.register(
            "sandgate_proxy_routes_version",
            "Version of the route table in use",
            self.routes_version.clone(),
        );
        r.register(
            "sandgate_proxy_routes_age_seconds",
            "Seconds since the last message from the control plane",
            self.routes_age_seconds.clone(),
        );
        r.register(
            "sandgate_proxy_routes",
            "Routes in the table in use",
            self.routes.clone(),
        );
    }

    /// The handles for `(sandbox, port)`, created on first use.
    pub fn port(&self, sandbox: &Arc<str>, port: u16) -> PortMetrics {
        let labels = PortLabels {
            sandbox: Arc::clone(sandbox),
            port,
        };
        let requests = CLASSES.map(|class| {
            self.requests.get_or_create_owned(&RequestLabels {
                sandbox: Arc::clone(sandbox),
                port,
                class,
            })
        });
        PortMetrics {
            requests,
            bytes_received: self.bytes_received.get_or_create_owned(&labels),
            bytes_sent: self.bytes_sent.get_or_create_owned(&labels),
            duration: self.duration.get_or_create_owned(&labels),
            open: self.open.get_or_create_owned(&labels),
        }
    }

    /// Removes every series of `sandbox` for `ports` (its route was removed).
    pub fn forget(&self, sandbox: &Arc<str>, ports: &[u16]) {
        for &port in ports.iter().chain(std::iter::once(&OVERFLOW_PORT)) {
            let labels = PortLabels {
                sandbox: Arc::clone(sandbox),
                port,
            };
            for class in CLASSES {
                self.requests.remove(&RequestLabels {
                    sandbox: Arc::clone(sandbox),
                    port,
                    class,
                });
            }
            self.bytes_received.remove(&labels);
            self.bytes_sent.remove(&labels);
            self.duration.remove(&labels);
            self.open.remove(&labels);
        }
    }

    /// Counts a request the proxy answered itself with error `code`.
    pub fn rejected(&self, code: &'static str) {
        self.rejected.get_or_create(&CodeLabels { code }).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::with_capacity(4096);
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_class_and_forgets_removed_sandboxes() {
        let metrics = Metrics::new();
        let id: Arc<str> = Arc::from("sb-1");
        let port = metrics.port(&id, 8080);
        port.opened();
        port.closed(204, 0.01, 10, 20);
        port.opened();
        port.closed(0, 0.01, 0, 0);
        let text = metrics.render();
        assert!(
            text.contains(
                r#"sandgate_proxy_requests_total{sandbox="sb-1",port="8080",class="2xx"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"sandgate_proxy_open_connections{sandbox="sb-1",port="8080"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"sandgate_proxy_response_bytes_total{sandbox="sb-1",port="8080"} 20"#),
            "{text}"
        );
        metrics.forget(&id, &[8080]);
        assert!(!metrics.render().contains("sb-1"));
    }

    #[test]
    fn status_classes() {
        assert_eq!(class_index(101), Some(0));
        assert_eq!(class_index(599), Some(4));
        assert_eq!(class_index(0), None);
        assert_eq!(class_index(600), None);
    }
}
