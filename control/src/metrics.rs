//! Prometheus metrics of the control plane, rendered at `GET /metrics`.

use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sandgate_shared::api::SandboxState;
use sandgate_shared::snapshots::SnapshotState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    from: &'static str,
    to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SdkCreateLabels {
    sdk: &'static str,
    success: &'static str,
}

/// Every metric the control plane exports.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    sandboxes: Family<StateLabels, Gauge>,
    transitions: Family<TransitionLabels, Counter>,
    expiry_lag: Histogram,
    provision_seconds: Histogram,
    deleted: Family<StateLabels, Counter>,
    timers: Gauge,
    sdk_creates: Family<SdkCreateLabels, Counter>,
    sdk_create_seconds: Family<SdkCreateLabels, Histogram>,
    snapshots: Family<StateLabels, Gauge>,
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

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
        });
        let metrics = Self {
            registry: Mutex::new(Registry::default()),
            requests: Family::default(),
            latency,
            sandboxes: Family::default(),
            transitions: Family::default(),
            expiry_lag: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            provision_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            deleted: Family::default(),
            timers: Gauge::default(),
            sdk_creates: Family::default(),
            sdk_create_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.05, 2.0, 14))
            }),
            snapshots: Family::default(),
        };
        metrics.register();
        metrics
    }

    fn register(&self) {
        let mut registry = self.registry.lock();
        registry.register(
            "sandgate_http_requests",
            "HTTP requests by route, method and status",
            self.requests.clone(),
        );
        registry.register(
            "sandgate_http_request_duration_seconds",
            "HTTP request latency by route",
            self.latency.clone(),
        );
        registry.register(
            "sandgate_sandboxes",
            "Sandboxes by state",
            self.sandboxes.clone(),
        );
        registry.register(
            "sandgate_sandbox_transitions",
            "State transitions by from and to state",
            self.transitions.clone(),
        );
        registry.register(
            "sandgate_expiry_lag_seconds",
            "Time from a TTL deadline to the start of its deletion",
            self.expiry_lag.clone(),
        );
        registry.register(
            "sandgate_provision_duration_seconds",
            "Time from accepting a sandbox to it running",
            self.provision_seconds.clone(),
        );
        registry.register(
            "sandgate_sandboxes_deleted",
            "Sandboxes removed, by the state they were in",
            self.deleted.clone(),
        );
        registry.register(
            "sandgate_expiry_timers",
            "Armed expiry and cleanup deadlines",
            self.timers.clone(),
        );
        registry.register(
            "sandgate_sdk_create_events",
            "Sandbox creates reported by SDKs (POST /v1/metrics/events), by SDK language and outcome",
            self.sdk_creates.clone(),
        );
        registry.register(
            "sandgate_sdk_create_duration_seconds",
            "Create-to-ready time as SDKs measured it, by SDK language and outcome",
            self.sdk_create_seconds.clone(),
        );
        registry.register(
            "sandgate_snapshots",
            "Snapshots by state",
            self.snapshots.clone(),
        );
    }

    /// Records one SDK-reported create: `sdk` is a bounded language label.
    pub fn sdk_create(&self, sdk: &'static str, success: bool, duration: Duration) {
        let labels = SdkCreateLabels {
            sdk,
            success: if success { "true" } else { "false" },
        };
        self.sdk_creates.get_or_create(&labels).inc();
        self.sdk_create_seconds
            .get_or_create(&labels)
            .observe(duration.as_secs_f64());
    }

    /// Records one HTTP request.
    pub fn request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let labels = RequestLabels {
            route: route.to_owned(),
            method: method.to_owned(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        let route = RouteLabels {
            route: labels.route,
        };
        self.latency
            .get_or_create(&route)
            .observe(elapsed.as_secs_f64());
    }

    /// Records a state transition.
    pub fn transition(&self, from: SandboxState, to: SandboxState) {
        self.transitions
            .get_or_create(&TransitionLabels {
                from: from.as_str(),
                to: to.as_str(),
            })
            .inc();
    }

    /// Records how late an expiry started.
    pub fn expiry_lag(&self, lag: Duration) {
        self.expiry_lag.observe(lag.as_secs_f64());
    }

    /// Records a completed provisioning.
    pub fn provisioned(&self, elapsed: Duration) {
        self.provision_seconds.observe(elapsed.as_secs_f64());
    }

    /// Records a deletion.
    pub fn deleted(&self, from: SandboxState) {
        self.deleted
            .get_or_create(&StateLabels {
                state: from.as_str(),
            })
            .inc();
    }

    /// Sets the snapshot gauges from `count` (snapshots in a state), before [`Metrics::render`].
    pub fn snapshots(&self, count: impl Fn(SnapshotState) -> usize) {
        for state in SnapshotState::ALL {
            self.snapshots
                .get_or_create(&StateLabels {
                    state: state.as_str(),
                })
                .set(count(state) as i64);
        }
    }

    /// Renders the text exposition format, with `counts` as the current
    /// number of sandboxes per state and `timers` the armed deadlines.
    pub fn render(
        &self,
        counts: &std::collections::HashMap<SandboxState, usize>,
        timers: usize,
    ) -> String {
        self.timers.set(timers as i64);
        for state in SandboxState::ALL {
            let value = counts.get(&state).copied().unwrap_or(0);
            self.sandboxes
                .get_or_create(&StateLabels {
                    state: state.as_str(),
                })
                .set(value as i64);
        }
        let mut text = String::new();
        if let Err(error) =
            prometheus_client::encoding::text::encode(&mut text, &self.registry.lock())
        {
            tracing::warn!(%error, "cannot encode metrics");
        }
        text
    }
}
