//! The validated configuration: typed values with defaults applied and every rule checked.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The whole validated configuration of `sandgate-proxy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `[server]`.
    pub server: ServerConfig,
    /// `[tls]`; `None` when the HTTPS listener is off.
    pub tls: Option<TlsConfig>,
    /// `[admin]`.
    pub admin: AdminConfig,
    /// `[routing]`.
    pub routing: RoutingConfig,
    /// `[timeouts]`.
    pub timeouts: TimeoutConfig,
    /// `[control]`.
    pub control: ControlConfig,
    /// `[auth]`.
    pub auth: AuthConfig,
    /// `[secure_access]`.
    pub secure_access: SecureAccessConfig,
    /// `[log]`.
    pub log: LogConfig,
    /// Settings that are valid but probably not what was meant, as `"key: why"`.
    /// The binary logs them at startup and `--check-config` prints them.
    pub warnings: Vec<String>,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Plain-HTTP listen addresses; at least one, no duplicates.
    pub listen: Vec<SocketAddr>,
    /// Worker threads of the proxy service.
    pub threads: usize,
    /// How long open requests may finish after SIGTERM.
    pub grace_period: Duration,
    /// Whether a plain connection that opens with the HTTP/2 preface is
    /// served as HTTP/2 (h2c, prior knowledge).
    pub h2c: bool,
}

/// `[tls]` when enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// HTTPS listen addresses; at least one, none shared with other listeners.
    pub listen: Vec<SocketAddr>,
    /// PEM certificate chain; the file existed and was readable at validation.
    pub cert_file: PathBuf,
    /// PEM private key; the file existed and was readable at validation.
    pub key_file: PathBuf,
    /// Whether the listeners offer `h2` then `http/1.1` by ALPN; when false
    /// they offer no ALPN protocol and every client speaks HTTP/1.x.
    pub http2: bool,
}

/// `[admin]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// Listen address of `/health`, `/ready` and `/metrics`.
    pub listen: SocketAddr,
}

/// One way a request can name its sandbox and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteMode {
    /// `OpenSandbox-Ingress-To: <id>-<port>` (or the legacy `OPEN-SANDBOX-INGRESS`).
    Header,
    /// `/<id>/<port>/rest`: the prefix is stripped.
    Uri,
    /// `Host: <id>-<port>.<domain>`.
    Wildcard,
    /// `(/v1)?/sandboxes/<id>/proxy/<port>/rest`: the prefix is stripped.
    ServerProxy,
}

impl RouteMode {
    /// Every mode, in the order a request is examined.
    pub const ALL: [RouteMode; 4] = [Self::Header, Self::ServerProxy, Self::Wildcard, Self::Uri];

    /// The config spelling, also used as the access-log field value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Header => "header",
            Self::Uri => "uri",
            Self::Wildcard => "wildcard",
            Self::ServerProxy => "server_proxy",
        }
    }
}

/// Which `Host` the sandbox sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPolicy {
    /// The client's `Host` header, unchanged (the default).
    Preserve,
    /// `ip:port` of the sandbox, as OpenSandbox's ingress sends.
    Upstream,
}

/// `[routing]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingConfig {
    /// Enabled modes; never empty. Requests are examined in [`RouteMode::ALL`] order.
    pub modes: Vec<RouteMode>,
    /// Lowercase host suffixes for wildcard routing, without a leading dot.
    pub wildcard_domains: Vec<String>,
    /// How long a request to a Pending sandbox is held; zero answers 503 at once.
    pub pending_wait: Duration,
    /// How long a request for an unknown, well-formed id waits for its route
    /// (a sandbox created a moment ago may not have reached this proxy yet);
    /// zero answers 404 at once.
    pub unknown_wait: Duration,
    /// Which `Host` goes upstream.
    pub host_policy: HostPolicy,
}

impl RoutingConfig {
    /// Whether `mode` is enabled.
    pub fn enabled(&self, mode: RouteMode) -> bool {
        self.modes.contains(&mode)
    }
}

/// `[timeouts]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutConfig {
    /// Upstream TCP connect timeout.
    pub connect: Duration,
    /// Read/write idle timeout on both legs; `None` means none.
    pub idle: Option<Duration>,
    /// Upper bound on a whole request, checked at every header and body
    /// event; `None` means none.
    pub total: Option<Duration>,
}

/// `[control]`.
#[derive(Clone, PartialEq, Eq)]
pub struct ControlConfig {
    /// Host and port of the control plane (`http://` only), e.g. `127.0.0.1:8080`.
    pub authority: String,
    /// The base URL as written, without a trailing slash (for messages).
    pub url: String,
    /// Bearer token of the route stream; `None` sends no `Authorization`.
    pub token: Option<String>,
    /// Longest wait between reconnect attempts.
    pub reconnect_max: Duration,
}

impl fmt::Debug for ControlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlConfig")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("reconnect_max", &self.reconnect_max)
            .finish()
    }
}

/// `[auth]`.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// The edge API key; `None` means no check.
    pub edge_api_key: Option<String>,
    /// Name of the header carrying it.
    pub edge_api_key_header: http::HeaderName,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field(
                "edge_api_key",
                &self.edge_api_key.as_ref().map(|_| "<redacted>"),
            )
            .field("edge_api_key_header", &self.edge_api_key_header)
            .finish()
    }
}

/// `[secure_access]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecureAccessConfig {
    /// Verification keys with unique ids; empty means signed routes cannot be verified.
    pub keys: Vec<VerificationKey>,
}

impl SecureAccessConfig {
    /// The secret of key `id`, in the shape `sandgate_shared::signing::verify` wants.
    pub fn secret(&self, id: char) -> Option<Vec<u8>> {
        self.keys
            .iter()
            .find(|key| key.id == id)
            .map(|key| key.secret.clone())
    }
}

/// One OSEP-0011 verification key.
#[derive(Clone, PartialEq, Eq)]
pub struct VerificationKey {
    /// One character in `[0-9a-z]`.
    pub id: char,
    /// The decoded secret, at least one byte.
    pub secret: Vec<u8>,
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// A `tracing` level name: `trace`, `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// Whether each request writes one access-log line.
    pub access_log: bool,
}
