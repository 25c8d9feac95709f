//! Validation of the sections that carry credentials: `[control]`, `[auth]`
//! and `[secure_access]`. Secret values never appear in problem messages.

use std::time::Duration;

use super::env::{EnvSource, vars};
use super::model::{AuthConfig, ControlConfig, SecureAccessConfig, VerificationKey};
use super::problems::{Problems, ProxyChecks};
use super::raw::{RawAuth, RawControl, RawKey, RawSecureAccess};

/// The default control-plane URL.
pub const DEFAULT_CONTROL_URL: &str = "http://127.0.0.1:8080";
/// The default edge-key header.
pub const DEFAULT_EDGE_KEY_HEADER: &str = "OpenSandbox-Edge-Key";

/// Headers the proxy itself reads for routing or secure access; the edge
/// key cannot share a name with them.
const RESERVED_HEADERS: [&str; 5] = [
    "opensandbox-ingress-to",
    "open-sandbox-ingress",
    "opensandbox-secure-access",
    "host",
    "authorization",
];

pub(crate) fn control(
    raw: RawControl,
    env: &dyn EnvSource,
    p: &mut Problems,
    warnings: &mut Vec<String>,
) -> ControlConfig {
    let url = raw.url.unwrap_or_else(|| DEFAULT_CONTROL_URL.to_owned());
    let authority = match control_authority(&url) {
        Ok(authority) => authority,
        Err(why) => {
            p.push("control.url", format!("{url:?} {why}"));
            String::new()
        }
    };
    // The variable wins whenever it is set, even empty: that is how an
    // operator removes a token written in a shared file.
    let from_env = env.var(vars::ROUTES_TOKEN);
    let key = if from_env.is_some() {
        vars::ROUTES_TOKEN
    } else {
        "control.token"
    };
    let token = secret(key, from_env.or(raw.token), p);
    if token.is_none() {
        warnings.push(format!(
            "control.token: not set (nor {}); the route stream is requested without credentials",
            vars::ROUTES_TOKEN
        ));
    }
    let max = p.in_range_or(
        "control.reconnect_max_seconds",
        raw.reconnect_max_seconds,
        1..=3600,
        10,
    );
    ControlConfig {
        authority,
        url: url.trim_end_matches('/').to_owned(),
        token,
        reconnect_max: Duration::from_secs(max),
    }
}

/// `host:port` of an `http://host[:port][/]` URL; the error completes "`<url>` ...".
fn control_authority(url: &str) -> Result<String, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| "is not a URL such as \"http://127.0.0.1:8080\"".to_owned())?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => return Err("uses https, which the route-stream client does not speak; use http:// on a trusted network".to_owned()),
        _ => return Err("must start with \"http://\"".to_owned()),
    }
    let Some(authority) = uri.authority() else {
        return Err("has no host".to_owned());
    };
    if authority.as_str().contains('@') {
        return Err("must not contain user information; use control.token".to_owned());
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err("must be a base URL without a path or query".to_owned());
    }
    let port = authority.port_u16().unwrap_or(80);
    Ok(format!("{}:{port}", authority.host()))
}

/// A credential that travels in a header: `None` when absent or blank,
/// a problem when it holds characters a header value cannot carry.
fn secret(key: &str, value: Option<String>, p: &mut Problems) -> Option<String> {
    let text = value?.trim().to_owned();
    if text.is_empty() {
        return None;
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        p.push(
            key,
            "must be printable ASCII without spaces (it is sent in a header)",
        );
        return None;
    }
    Some(text)
}

pub(crate) fn auth(raw: RawAuth, env: &dyn EnvSource, p: &mut Problems) -> AuthConfig {
    let from_env = env.var(vars::EDGE_API_KEY);
    let key = if from_env.is_some() {
        vars::EDGE_API_KEY
    } else {
        "auth.edge_api_key"
    };
    let edge_api_key = secret(key, from_env.or(raw.edge_api_key), p);
    let header = raw
        .edge_api_key_header
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|| DEFAULT_EDGE_KEY_HEADER.to_owned());
    let lower = header.to_ascii_lowercase();
    let name = match http::HeaderName::from_bytes(lower.as_bytes()) {
        Err(_) => {
            p.push(
                "auth.edge_api_key_header",
                format!("{header:?} is not a valid header name"),
            );
            None
        }
        Ok(_) if RESERVED_HEADERS.contains(&lower.as_str()) => {
            p.push(
                "auth.edge_api_key_header",
                format!("{header:?} is used for routing or secure access; pick another name"),
            );
            None
        }
        Ok(name) => Some(name),
    };
    AuthConfig {
        edge_api_key,
        // (Only read when there were no problems.)
        edge_api_key_header: name
            .unwrap_or_else(|| http::HeaderName::from_static("opensandbox-edge-key")),
    }
}

pub(crate) fn secure_access(raw: RawSecureAccess, p: &mut Problems) -> SecureAccessConfig {
    let mut keys: Vec<VerificationKey> = Vec::new();
    for (index, entry) in raw.keys.unwrap_or_default().into_iter().enumerate() {
        let prefix = format!("secure_access.keys[{index}]");
        let id = key_id(&prefix, entry.key_id.as_deref(), p);
        let secret = key_secret(&prefix, &entry, p);
        if let Some(id) = id {
            if keys.iter().any(|key| key.id == id) {
                p.push(
                    format!("{prefix}.key_id"),
                    format!("{id:?} is used by an earlier key"),
                );
                continue;
            }
            if let Some(secret) = secret {
                keys.push(VerificationKey { id, secret });
            }
        }
    }
    SecureAccessConfig { keys }
}

fn key_id(prefix: &str, value: Option<&str>, p: &mut Problems) -> Option<char> {
    let key = format!("{prefix}.key_id");
    let Some(text) = value else {
        p.push(key, "required: one character in [0-9a-z]");
        return None;
    };
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_digit() || c.is_ascii_lowercase() => Some(c),
        _ => {
            p.push(
                key,
                format!("{text:?} must be exactly one character in [0-9a-z]"),
            );
            None
        }
    }
}

fn key_secret(prefix: &str, entry: &RawKey, p: &mut Problems) -> Option<Vec<u8>> {
    let key = format!("{prefix}.key");
    let Some(text) = entry.key.as_deref() else {
        p.push(key, "required: the secret in base64");
        return None;
    };
    match sandgate_shared::base64::decode(text.trim()) {
        Ok(bytes) if bytes.is_empty() => {
            p.push(key, "must decode to at least one byte");
            None
        }
        Ok(bytes) => Some(bytes),
        Err(why) => {
            // The value is a secret: say what is wrong, never echo it.
            p.push(key, format!("is not base64: it {why}"));
            None
        }
    }
}
