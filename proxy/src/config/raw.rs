//! The configuration file as written: serde structs with every key optional.
//!
//! Every table denies unknown keys, so a typo fails with the key's name
//! instead of being ignored. Values stay `Option` (absent is not the same as
//! the default) and numbers stay `i64`, so out-of-range values reach
//! [`validate`](super::validate()) and are reported together with every
//! other problem instead of aborting the parse.

use serde::Deserialize;

/// The whole file. Every table is optional; an empty file is a valid config.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[server]`: the plain-HTTP listeners and process settings.
    #[serde(default)]
    pub server: RawServer,
    /// `[tls]`: an optional HTTPS listener.
    #[serde(default)]
    pub tls: RawTls,
    /// `[admin]`: health, readiness and metrics.
    #[serde(default)]
    pub admin: RawAdmin,
    /// `[routing]`: how a request names its sandbox and port.
    #[serde(default)]
    pub routing: RawRouting,
    /// `[timeouts]`: upstream connect and idle limits.
    #[serde(default)]
    pub timeouts: RawTimeouts,
    /// `[control]`: where the route table comes from.
    #[serde(default)]
    pub control: RawControl,
    /// `[auth]`: the optional edge API key.
    #[serde(default)]
    pub auth: RawAuth,
    /// `[secure_access]`: OSEP-0011 signed-route verification keys.
    #[serde(default)]
    pub secure_access: RawSecureAccess,
    /// `[log]`: log level and the access log.
    #[serde(default)]
    pub log: RawLog,
}

/// A value written either as one string or as a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// `key = "a"`.
    One(String),
    /// `key = ["a", "b"]`.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values as a list.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        }
    }
}

/// `[server]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Plain-HTTP listen addresses, `ip:port`; one string or a list (default `["127.0.0.1:28888"]`).
    pub listen: Option<OneOrMany>,
    /// Worker threads of the proxy service, 1..=1024 (default 2).
    pub threads: Option<i64>,
    /// Seconds to keep serving open requests after SIGTERM, 0..=3600 (default 10).
    pub grace_period_seconds: Option<i64>,
    /// HTTP/2 with prior knowledge (h2c) on the plain listeners (default true).
    pub h2c: Option<bool>,
}

/// `[tls]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// Turns the HTTPS listener on or off; absent means on when `listen`, `cert_file` or `key_file` is set.
    pub enabled: Option<bool>,
    /// HTTPS listen addresses, `ip:port`; one string or a list.
    pub listen: Option<OneOrMany>,
    /// PEM certificate chain (a wildcard certificate covers `*.<domain>`).
    pub cert_file: Option<String>,
    /// PEM private key of the certificate.
    pub key_file: Option<String>,
    /// Offer HTTP/2 by ALPN (`h2`, then `http/1.1`) on the HTTPS listener (default true).
    pub http2: Option<bool>,
}

/// `[admin]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// Listen address of `/health`, `/ready` and `/metrics` (default `127.0.0.1:28889`).
    pub listen: Option<String>,
}

/// `[routing]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouting {
    /// Enabled route sources: `header`, `uri`, `wildcard`, `server_proxy` (default all four).
    pub modes: Option<Vec<String>>,
    /// Host suffixes for `<id>-<port>.<domain>` (default `["sandbox.localhost"]`).
    pub wildcard_domains: Option<Vec<String>>,
    /// How long a request to a Pending sandbox is held, 0..=3600 seconds (default 30).
    pub pending_wait_seconds: Option<i64>,
    /// How long a request for an id not (yet) in the table waits for it to arrive, 0..=60000 ms (default 1000).
    pub unknown_wait_ms: Option<i64>,
    /// `preserve` (client's Host goes upstream, default) or `upstream` (`ip:port`).
    pub host_policy: Option<String>,
}

/// `[timeouts]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    /// Upstream TCP connect timeout, 1..=600000 ms (default 5000).
    pub connect_ms: Option<i64>,
    /// Read/write idle timeout on both legs, 0..=86400 seconds, 0 = none (default 300).
    pub idle_seconds: Option<i64>,
    /// Upper bound on a whole request, 0..=604800 seconds, 0 = none (default 0).
    pub total_seconds: Option<i64>,
}

/// `[control]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawControl {
    /// Base URL of the control plane, `http://host:port` (default `http://127.0.0.1:8080`).
    pub url: Option<String>,
    /// Shared secret for the route stream; env `SANDGATE_ROUTES_TOKEN` overrides.
    pub token: Option<String>,
    /// Longest wait between reconnect attempts, 1..=3600 seconds (default 10).
    pub reconnect_max_seconds: Option<i64>,
}

/// `[auth]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// Key every request must carry; env `SANDGATE_EDGE_API_KEY` overrides (default none).
    pub edge_api_key: Option<String>,
    /// Header that carries the edge key (default `OpenSandbox-Edge-Key`).
    pub edge_api_key_header: Option<String>,
}

/// `[secure_access]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecureAccess {
    /// Verification keys; several allow rotation (default none).
    pub keys: Option<Vec<RawKey>>,
}

/// One `[[secure_access.keys]]` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    /// One character in `[0-9a-z]`, unique.
    pub key_id: Option<String>,
    /// The secret, standard base64 with or without padding, at least one byte.
    pub key: Option<String>,
}

/// `[log]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// `trace`, `debug`, `info`, `warn` or `error` (default `info`); `RUST_LOG` wins.
    pub level: Option<String>,
    /// One line per request at target `sandgate_proxy::access` (default true).
    pub access_log: Option<bool>,
}
