//! Validation of `[ingress]`: the mode, the gateway address per route mode, and signing keys.
//!
//! The rules are OpenSandbox's, except that gateway mode is allowed with
//! Docker: Sandgate's edge proxy serves as the gateway for any runtime.

use std::net::Ipv4Addr;

use super::model::{
    GatewayConfig, IngressConfig, IngressMode, RouteMode, SecureAccessConfig, SigningKey,
};
use super::raw::{RawGateway, RawIngress, RawSecureAccess, RawSigningKey};
use sandgate_shared::problems::Problems;

/// Validates `[ingress]`, recording every problem in `p`.
pub(crate) fn validate(raw: RawIngress, p: &mut Problems) -> IngressConfig {
    let modes = [
        ("direct", IngressMode::Direct),
        ("gateway", IngressMode::Gateway),
    ];
    let mode = p.choice(
        "ingress.mode",
        raw.mode.as_deref(),
        &modes,
        IngressMode::Direct,
    );
    let gateway = mode.and_then(|mode| gateway(mode, raw.gateway, p));
    let secure_access = raw.secure_access.and_then(|sa| secure_access(mode, sa, p));
    IngressConfig {
        mode: mode.unwrap_or(IngressMode::Direct),
        gateway,
        secure_access,
    }
}

/// `[ingress.gateway]`, which must be present exactly in gateway mode.
fn gateway(mode: IngressMode, raw: Option<RawGateway>, p: &mut Problems) -> Option<GatewayConfig> {
    match (mode, raw) {
        (IngressMode::Direct, None) => None,
        (IngressMode::Direct, Some(_)) => {
            p.push(
                "ingress.gateway",
                "only allowed when ingress.mode = \"gateway\"",
            );
            None
        }
        (IngressMode::Gateway, None) => {
            p.push(
                "ingress.gateway",
                "required when ingress.mode = \"gateway\"",
            );
            None
        }
        (IngressMode::Gateway, Some(table)) => gateway_table(table, p),
    }
}

fn gateway_table(raw: RawGateway, p: &mut Problems) -> Option<GatewayConfig> {
    let route_key = "ingress.gateway.route.mode";
    let route_mode = match raw.route.and_then(|route| route.mode) {
        Some(text) => {
            let modes = [
                ("wildcard", RouteMode::Wildcard),
                ("header", RouteMode::Header),
                ("uri", RouteMode::Uri),
            ];
            p.choice(route_key, Some(&text), &modes, RouteMode::Wildcard)
        }
        None => {
            p.push(route_key, "required: \"wildcard\", \"header\" or \"uri\"");
            None
        }
    };
    let Some(address) = raw.address else {
        p.push("ingress.gateway.address", "required in gateway mode");
        return None;
    };
    let route_mode = route_mode?;
    if let Err(message) = check_address(&address, route_mode) {
        p.push("ingress.gateway.address", format!("{address:?} {message}"));
        return None;
    }
    Some(GatewayConfig {
        address,
        route_mode,
    })
}

/// Checks the gateway address shape for `mode`; the error completes "`<address>` ...".
fn check_address(address: &str, mode: RouteMode) -> Result<(), String> {
    if address.contains("://") {
        return Err("must not include a scheme such as \"http://\"".to_owned());
    }
    if mode != RouteMode::Wildcard && address.contains('*') {
        return Err("must not contain '*' unless the route mode is \"wildcard\"".to_owned());
    }
    match mode {
        RouteMode::Wildcard => check_wildcard(address),
        RouteMode::Header => check_host_port(address)
            .map_err(|why| format!("must be host[:port] or IPv4[:port] in header mode ({why})")),
        RouteMode::Uri => check_uri(address),
    }
}

/// `*.a.b[:port]`: a star label followed by at least two hostname labels.
fn check_wildcard(address: &str) -> Result<(), String> {
    let shape = "must look like \"*.example.com\" in wildcard mode";
    let Some(domain) = address.strip_prefix("*.") else {
        return Err(shape.to_owned());
    };
    let host = split_port(domain).map_err(|why| format!("{shape} ({why})"))?;
    if host.split('.').count() < 2 || !is_hostname(host) {
        return Err(shape.to_owned());
    }
    Ok(())
}

/// A hostname or IPv4 address, each optionally followed by `:port`.
fn check_host_port(address: &str) -> Result<(), String> {
    let host = split_port(address)?;
    if host.parse::<Ipv4Addr>().is_ok() || is_hostname(host) {
        return Ok(());
    }
    Err(format!("{host:?} is not a hostname or IPv4 address"))
}

/// Non-empty, no whitespace; a path after the host is allowed.
fn check_uri(address: &str) -> Result<(), String> {
    if address.trim().is_empty() {
        return Err("must not be empty".to_owned());
    }
    if address.chars().any(char::is_whitespace) {
        return Err("must not contain whitespace".to_owned());
    }
    Ok(())
}

/// The host part of `host[:port]`, after checking the port is 1..=65535.
fn split_port(address: &str) -> Result<&str, String> {
    let Some((host, port)) = address.rsplit_once(':') else {
        return Ok(address);
    };
    match port.parse::<u16>() {
        Ok(n) if n >= 1 => Ok(host),
        _ => Err(format!("port {port:?} is not in 1..=65535")),
    }
}

/// RFC 1123 hostname: dot-separated labels of letters, digits and inner hyphens.
fn is_hostname(host: &str) -> bool {
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    !host.is_empty() && host.len() <= 253 && host.split('.').all(label_ok)
}

// === secure access ===

/// `[ingress.secure_access]`; `mode` is `None` when `ingress.mode` itself was invalid.
fn secure_access(
    mode: Option<IngressMode>,
    raw: RawSecureAccess,
    p: &mut Problems,
) -> Option<SecureAccessConfig> {
    if mode == Some(IngressMode::Direct) {
        p.push(
            "ingress.secure_access",
            "requires ingress.mode = \"gateway\"",
        );
    }
    let keys = signing_keys(raw.keys.unwrap_or_default(), p);
    let active_key = active_key(raw.active_key, &keys, p);
    Some(SecureAccessConfig {
        active_key: active_key?,
        keys,
    })
}

fn active_key(raw: Option<String>, keys: &[SigningKey], p: &mut Problems) -> Option<char> {
    let key = "ingress.secure_access.active_key";
    let Some(text) = raw else {
        p.push(key, "required");
        return None;
    };
    let id = key_id(&text).map_err(|why| p.push(key, why)).ok()?;
    if !keys.iter().any(|k| k.key_id == id) {
        p.push(
            key,
            format!("'{id}' is not the key_id of any ingress.secure_access.keys entry"),
        );
        return None;
    }
    Some(id)
}

fn signing_keys(raw: Vec<RawSigningKey>, p: &mut Problems) -> Vec<SigningKey> {
    if raw.is_empty() {
        p.push("ingress.secure_access.keys", "at least one key is required");
    }
    let mut keys: Vec<SigningKey> = Vec::new();
    for (index, entry) in raw.into_iter().enumerate() {
        let prefix = format!("ingress.secure_access.keys[{index}]");
        let id = match entry.key_id.as_deref().map(key_id) {
            Some(Ok(id)) => Some(id),
            Some(Err(why)) => fail(p, format!("{prefix}.key_id"), why),
            None => fail(p, format!("{prefix}.key_id"), "required".to_owned()),
        };
        if let Some(id) = id.filter(|id| keys.iter().any(|k| k.key_id == *id)) {
            p.push(
                format!("{prefix}.key_id"),
                format!("'{id}' is used by an earlier key"),
            );
        }
        let secret = match entry.key.as_deref().map(decode_key) {
            Some(Ok(bytes)) => Some(bytes),
            Some(Err(why)) => fail(p, format!("{prefix}.key"), why),
            None => fail(p, format!("{prefix}.key"), "required".to_owned()),
        };
        if let (Some(key_id), Some(key)) = (id, secret) {
            keys.push(SigningKey { key_id, key });
        }
    }
    keys
}

/// Records a problem and yields `None`, for use in `match` arms.
fn fail<T>(p: &mut Problems, key: String, message: String) -> Option<T> {
    p.push(key, message);
    None
}

/// One character, `0-9` or `a-z`.
fn key_id(text: &str) -> Result<char, String> {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_digit() || c.is_ascii_lowercase() => Ok(c),
        _ => Err(format!(
            "{text:?} must be exactly one character, 0-9 or a-z"
        )),
    }
}

/// Base64 secret of at least one byte.
fn decode_key(text: &str) -> Result<Vec<u8>, String> {
    match sandgate_shared::base64::decode(text.trim()) {
        Ok(bytes) if bytes.is_empty() => Err("must not be empty".to_owned()),
        Ok(bytes) => Ok(bytes),
        Err(why) => Err(format!("is not valid base64: it {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::{RouteMode, check_address};

    #[test]
    fn addresses_per_route_mode() {
        let ok = [
            ("*.sandbox.example.com", RouteMode::Wildcard),
            ("*.example.com:8443", RouteMode::Wildcard),
            ("gateway.local", RouteMode::Header),
            ("gateway.local:8080", RouteMode::Header),
            ("10.0.0.1:80", RouteMode::Header),
            ("localhost", RouteMode::Header),
            ("example.com/sandboxes", RouteMode::Uri),
        ];
        for (address, mode) in ok {
            assert_eq!(
                check_address(address, mode),
                Ok(()),
                "{address} in {mode:?}"
            );
        }
        let bad = [
            ("https://*.example.com", RouteMode::Wildcard),
            ("*.com", RouteMode::Wildcard),
            ("sandbox.example.com", RouteMode::Wildcard),
            ("*.example.com:0", RouteMode::Wildcard),
            ("gateway.local:70000", RouteMode::Header),
            ("*.example.com", RouteMode::Header),
            ("gate way", RouteMode::Header),
            ("-bad.example.com", RouteMode::Header),
            ("example.com/a/*", RouteMode::Uri),
            ("", RouteMode::Uri),
        ];
        for (address, mode) in bad {
            assert!(
                check_address(address, mode).is_err(),
                "{address} in {mode:?}"
            );
        }
    }
}
