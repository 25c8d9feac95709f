//! The per-request lookup structure, built once per route-table update.
//!
//! Everything a request needs is parsed here, off the hot path: the upstream
//! address (`IpAddr`), the secure-access digest (`[u8; 32]`), and, lazily
//! per port, the peer address, the upstream `Host` value and the metric
//! handles. Entries whose route did not change are carried over from the
//! previous index, so their per-port caches survive updates.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::HeaderValue;
use parking_lot::RwLock;
use sandgate_shared::api::SandboxState;
use sandgate_shared::routes::{RouteTable, SandboxRoute};

use crate::metrics::{MAX_PORTS_PER_SANDBOX, Metrics, OVERFLOW_PORT, PortMetrics};

/// Where a sandbox's ports are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// An IP address, parsed once.
    Ip(IpAddr),
    /// A DNS name, resolved when a connection is made.
    Name(Box<str>),
    /// Not known yet (the runtime has not reported it).
    Unknown,
}

/// Whether a sandbox requires OSEP-0011 credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecureAccess {
    /// Anyone who can reach the proxy may reach the sandbox.
    Open,
    /// A token header matching `digest`, or a valid signed route, is required.
    /// `digest` is `None` when the table carried a malformed one: then only
    /// signed routes work (fail closed).
    Required {
        /// SHA-256 of the access token.
        digest: Option<[u8; 32]>,
    },
}

/// One sandbox's route, ready for requests.
#[derive(Debug)]
pub struct RouteEntry {
    /// The sandbox id (also the metrics label).
    pub id: Arc<str>,
    /// Lifecycle state.
    pub state: SandboxState,
    /// Why the sandbox is in that state, if the control plane said.
    pub message: Option<Box<str>>,
    /// Where its ports are.
    pub upstream: Upstream,
    /// Credentials it requires.
    pub secure: SecureAccess,
    source: SandboxRoute,
    ports: RwLock<Vec<(u16, Arc<PortState>)>>,
}

/// What a request to one port of one sandbox needs, computed once.
#[derive(Debug)]
pub struct PortState {
    /// The port.
    pub port: u16,
    /// The socket address, when the upstream is an IP address.
    pub peer: Option<SocketAddr>,
    /// `ip:port` (IPv6 bracketed), for `host_policy = "upstream"`.
    pub upstream_host: HeaderValue,
    /// Metric handles.
    pub metrics: PortMetrics,
}

impl RouteEntry {
    /// Builds an entry from the table's route.
    pub fn new(id: &str, route: &SandboxRoute) -> Self {
        Self {
            id: Arc::from(id),
            state: route.state,
            message: route.message.as_deref().map(Box::from),
            upstream: parse_upstream(route.address.as_deref()),
            secure: parse_secure(route.secure_access_sha256.as_deref()),
            source: route.clone(),
            ports: RwLock::new(Vec::new()),
        }
    }

    /// The state of `port`, created (with its metric handles) on first use.
    pub fn port(&self, port: u16, metrics: &Metrics) -> Arc<PortState> {
        if let Some((_, state)) = self.ports.read().iter().find(|(p, _)| *p == port) {
            return Arc::clone(state);
        }
        let mut ports = self.ports.write();
        if let Some((_, state)) = ports.iter().find(|(p, _)| *p == port) {
            return Arc::clone(state);
        }
        let label = if ports.len() < MAX_PORTS_PER_SANDBOX {
            port
        } else {
            OVERFLOW_PORT
        };
        let state = Arc::new(PortState {
            port,
            peer: match self.upstream {
                Upstream::Ip(ip) => Some(SocketAddr::new(ip, port)),
                _ => None,
            },
            upstream_host: upstream_host(&self.upstream, port),
            metrics: metrics.port(&self.id, label),
        });
        if label != OVERFLOW_PORT {
            ports.push((port, Arc::clone(&state)));
        }
        state
    }

    /// Ports that have metric series.
    pub fn ports_seen(&self) -> Vec<u16> {
        self.ports.read().iter().map(|(port, _)| *port).collect()
    }
}

/// `ip:port` / `[v6]:port` / `name:port` as a header value.
pub fn upstream_host(upstream: &Upstream, port: u16) -> HeaderValue {
    let text = match upstream {
        Upstream::Ip(ip) => SocketAddr::new(*ip, port).to_string(),
        Upstream::Name(name) => format!("{name}:{port}"),
        Upstream::Unknown => String::new(),
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn parse_upstream(address: Option<&str>) -> Upstream {
    let Some(text) = address.map(str::trim).filter(|text| !text.is_empty()) else {
        return Upstream::Unknown;
    };
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    match bare.parse::<IpAddr>() {
        Ok(ip) => Upstream::Ip(ip),
        Err(_) if is_dns_name(text) => Upstream::Name(Box::from(text)),
        Err(_) => Upstream::Unknown,
    }
}

fn is_dns_name(text: &str) -> bool {
    text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn parse_secure(digest: Option<&str>) -> SecureAccess {
    match digest.map(str::trim) {
        None | Some("") => SecureAccess::Open,
        Some(hex) => SecureAccess::Required {
            digest: decode_digest(hex),
        },
    }
}

/// 64 hex characters (either case) to 32 bytes.
pub fn decode_digest(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *slot = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// The whole table, indexed by sandbox id.
#[derive(Debug, Default)]
pub struct RouteIndex {
    loaded: bool,
    version: u64,
    routes: HashMap<Box<str>, Arc<RouteEntry>>,
}

/// What changed between two indexes (for logs and metric clean-up).
#[derive(Debug, Default)]
pub struct BuildReport {
    /// Entries dropped from the table (their metric series should go).
    pub removed: Vec<Arc<RouteEntry>>,
    /// Routes whose address could not be understood.
    pub bad_addresses: Vec<Arc<str>>,
    /// Routes whose secure-access digest was not 64 hex characters.
    pub bad_digests: Vec<Arc<str>>,
}

impl RouteIndex {
    /// The index before any table arrived: nothing routes.
    pub fn unloaded() -> Self {
        Self::default()
    }

    /// Indexes `table`, reusing unchanged entries of `previous`.
    pub fn build(table: &RouteTable, previous: &RouteIndex) -> (Self, BuildReport) {
        let mut report = BuildReport::default();
        let mut routes = HashMap::with_capacity(table.routes.len());
        for (id, route) in &table.routes {
            let id = id.as_str();
            let entry = match previous.routes.get(id) {
                Some(old) if old.source == *route => Arc::clone(old),
                _ => {
                    let entry = Arc::new(RouteEntry::new(id, route));
                    if route.address.is_some() && entry.upstream == Upstream::Unknown {
                        report.bad_addresses.push(Arc::clone(&entry.id));
                    }
                    if entry.secure == (SecureAccess::Required { digest: None }) {
                        report.bad_digests.push(Arc::clone(&entry.id));
                    }
                    entry
                }
            };
            routes.insert(Box::from(id), entry);
        }
        report.removed = previous
            .routes
            .iter()
            .filter(|(id, _)| !routes.contains_key(id.as_ref()))
            .map(|(_, entry)| Arc::clone(entry))
            .collect();
        let index = Self {
            loaded: true,
            version: table.version,
            routes,
        };
        (index, report)
    }

    /// Whether a table has arrived.
    pub fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// The table version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// How many routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether there are no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The route of sandbox `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<RouteEntry>> {
        self.routes.get(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(state: SandboxState, address: Option<&str>, digest: Option<&str>) -> SandboxRoute {
        SandboxRoute {
            state,
            message: None,
            address: address.map(str::to_owned),
            secure_access_sha256: digest.map(str::to_owned),
        }
    }

    fn table(version: u64, routes: &[(&str, SandboxRoute)]) -> RouteTable {
        RouteTable {
            version,
            routes: routes
                .iter()
                .map(|(id, r)| (id.parse().unwrap(), r.clone()))
                .collect(),
        }
    }

    #[test]
    fn parses_addresses_once() {
        assert_eq!(
            parse_upstream(Some("10.0.0.1")),
            Upstream::Ip("10.0.0.1".parse().unwrap())
        );
        assert_eq!(
            parse_upstream(Some("fd00::1")),
            Upstream::Ip("fd00::1".parse().unwrap())
        );
        assert_eq!(
            parse_upstream(Some("[fd00::1]")),
            Upstream::Ip("fd00::1".parse().unwrap())
        );
        assert_eq!(
            parse_upstream(Some("pod.ns.svc")),
            Upstream::Name("pod.ns.svc".into())
        );
        assert_eq!(parse_upstream(Some("")), Upstream::Unknown);
        assert_eq!(parse_upstream(Some("not an address")), Upstream::Unknown);
        assert_eq!(parse_upstream(None), Upstream::Unknown);
    }

    #[test]
    fn formats_upstream_hosts_with_ipv6_brackets() {
        let v6 = Upstream::Ip("fd00::1".parse().unwrap());
        assert_eq!(upstream_host(&v6, 8080), "[fd00::1]:8080");
        let v4 = Upstream::Ip("10.0.0.1".parse().unwrap());
        assert_eq!(upstream_host(&v4, 80), "10.0.0.1:80");
        assert_eq!(
            upstream_host(&Upstream::Name("a.b".into()), 3000),
            "a.b:3000"
        );
    }

    #[test]
    fn decodes_digests_and_fails_closed_on_bad_ones() {
        let hex = sandgate_shared::signing::sha256_hex(b"token");
        let digest = decode_digest(&hex).unwrap();
        assert_eq!(
            digest.to_vec(),
            <sha2::Sha256 as sha2::Digest>::digest(b"token").to_vec()
        );
        assert_eq!(decode_digest(&hex.to_uppercase()), Some(digest));
        assert_eq!(decode_digest("abc"), None);
        assert_eq!(decode_digest(&"zz".repeat(32)), None);
        assert_eq!(parse_secure(None), SecureAccess::Open);
        assert_eq!(
            parse_secure(Some("nope")),
            SecureAccess::Required { digest: None }
        );
    }

    #[test]
    fn builds_reuses_unchanged_entries_and_reports_removals() {
        let metrics = Metrics::new();
        let running = route(SandboxState::Running, Some("10.0.0.1"), None);
        let first = table(1, &[("a", running.clone()), ("b", running.clone())]);
        let (one, _) = RouteIndex::build(&first, &RouteIndex::unloaded());
        assert!(one.is_loaded());
        let a = one.get("a").unwrap();
        let port = a.port(8080, &metrics);
        assert_eq!(port.peer, Some("10.0.0.1:8080".parse().unwrap()));
        assert!(
            Arc::ptr_eq(&port, &a.port(8080, &metrics)),
            "cached per port"
        );

        let paused = route(SandboxState::Paused, Some("10.0.0.1"), None);
        let second = table(2, &[("a", running), ("c", paused)]);
        let (two, report) = RouteIndex::build(&second, &one);
        assert_eq!(two.version(), 2);
        assert!(
            Arc::ptr_eq(one.get("a").unwrap(), two.get("a").unwrap()),
            "unchanged entry reused"
        );
        assert_eq!(two.get("c").unwrap().state, SandboxState::Paused);
        assert!(two.get("b").is_none());
        let removed: Vec<&str> = report.removed.iter().map(|e| &*e.id).collect();
        assert_eq!(removed, ["b"]);
    }

    #[test]
    fn reports_bad_addresses_and_digests() {
        let bad = route(SandboxState::Running, Some("::zz"), Some("xyz"));
        let (_, report) = RouteIndex::build(&table(1, &[("a", bad)]), &RouteIndex::unloaded());
        assert_eq!(report.bad_addresses.len(), 1);
        assert_eq!(report.bad_digests.len(), 1);
    }

    #[test]
    fn caps_ports_per_sandbox() {
        let metrics = Metrics::new();
        let entry = RouteEntry::new("a", &route(SandboxState::Running, Some("10.0.0.1"), None));
        for port in 1..=(MAX_PORTS_PER_SANDBOX as u16 + 5) {
            assert_eq!(entry.port(port, &metrics).port, port);
        }
        assert_eq!(entry.ports_seen().len(), MAX_PORTS_PER_SANDBOX);
    }
}
