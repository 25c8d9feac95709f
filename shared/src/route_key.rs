//! Route keys: which sandbox and port a request is for, read from an
//! `OpenSandbox-Ingress-To` header, a wildcard host, a URI prefix or the
//! control plane's server-proxy path. Pure functions, fuzzed and
//! property-tested, shared by the proxy and the control plane.
//!
//! Forms: `<id>-<port>` and, for OSEP-0011 signed routes,
//! `<id>-<port>-<expires_b36>-<signature>`. Ids contain dashes, so keys are
//! split from the right. Ports are strict: 1..=65535, decimal, no leading
//! zeros (OpenSandbox's ingress falls back to a lenient parse that accepted
//! `0080` and `70000`; Sandgate does not).

use std::fmt;

pub use crate::signing::SignedPart;
use crate::signing::{decode_b36, is_signature_shaped};

/// A parsed route key. Borrowed from the input; nothing is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteKey<'a> {
    /// The sandbox id as written (not yet validated against the table).
    pub sandbox_id: &'a str,
    /// The sandbox port.
    pub port: u16,
    /// The signature part of a signed route.
    pub signed: Option<SignedPart<'a>>,
}

/// Why a request does not name a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteParseError {
    /// Nothing to parse.
    Empty,
    /// No `-<port>` (or `/<port>`) after the id.
    MissingPort,
    /// The port is not 1..=65535 without leading zeros.
    BadPort,
    /// The id part is empty.
    EmptyId,
    /// The host is not `<id>-<port>.<domain>` for the configured domain.
    NotThisDomain,
    /// The path is not a route path of the expected form.
    NotARoutePath,
}

impl fmt::Display for RouteParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "the route key is empty",
            Self::MissingPort => "the route key has no port: expected <sandbox-id>-<port>",
            Self::BadPort => "the port must be a number from 1 to 65535 without leading zeros",
            Self::EmptyId => "the route key has no sandbox id",
            Self::NotThisDomain => {
                "the host is not <sandbox-id>-<port>.<domain> for a configured domain"
            }
            Self::NotARoutePath => "the path is not /<sandbox-id>/<port>/...",
        })
    }
}

impl std::error::Error for RouteParseError {}

/// Parses `<id>-<port>` or `<id>-<port>-<expires_b36>-<signature>`.
pub fn parse_token(token: &str) -> Result<RouteKey<'_>, RouteParseError> {
    if token.is_empty() {
        return Err(RouteParseError::Empty);
    }
    if let Some(key) = parse_signed_token(token) {
        return Ok(key);
    }
    let (id, port) = token.rsplit_once('-').ok_or(RouteParseError::MissingPort)?;
    let port = parse_port(port).ok_or(RouteParseError::BadPort)?;
    if id.is_empty() {
        return Err(RouteParseError::EmptyId);
    }
    Ok(RouteKey {
        sandbox_id: id,
        port,
        signed: None,
    })
}

fn parse_signed_token(token: &str) -> Option<RouteKey<'_>> {
    let (rest, signature) = token.rsplit_once('-')?;
    let (rest, expires_b36) = rest.rsplit_once('-')?;
    let (id, port) = rest.rsplit_once('-')?;
    let signed = signed_part(expires_b36, signature)?;
    let port = parse_port(port)?;
    (!id.is_empty()).then_some(RouteKey {
        sandbox_id: id,
        port,
        signed: Some(signed),
    })
}

fn signed_part<'a>(expires_b36: &'a str, signature: &'a str) -> Option<SignedPart<'a>> {
    let expires = decode_b36(expires_b36).ok()?;
    is_signature_shaped(signature).then_some(SignedPart {
        expires_b36,
        expires,
        signature,
    })
}

/// A strict port: 1..=65535, ASCII digits, no leading zeros.
pub fn parse_port(text: &str) -> Option<u16> {
    let digits_only =
        !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || text.starts_with('0') {
        return None;
    }
    text.parse::<u16>().ok().filter(|p| *p >= 1)
}

/// Parses a `Host` header of the form `<token>.<domain>[:port]`; the
/// domain matches case-insensitively.
pub fn parse_host<'a>(host: &'a str, domain: &str) -> Result<RouteKey<'a>, RouteParseError> {
    let name = strip_host_port(host);
    let cut = name
        .len()
        .checked_sub(domain.len() + 1)
        .ok_or(RouteParseError::NotThisDomain)?;
    let (label, suffix) = name
        .split_at_checked(cut)
        .ok_or(RouteParseError::NotThisDomain)?;
    let matches = suffix.as_bytes().first() == Some(&b'.')
        && suffix
            .get(1..)
            .is_some_and(|d| d.eq_ignore_ascii_case(domain));
    if !matches || label.is_empty() || label.contains('.') {
        return Err(RouteParseError::NotThisDomain);
    }
    parse_token(label)
}

fn strip_host_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// Parses a URI-mode path `/<id>/<port>[/<expires_b36>/<signature>][/rest]`
/// (raw, still percent-encoded) into the key and the path to forward
/// (`/rest`, or `/`). The signed shape is recognised only when both of its
/// segments are well-formed.
pub fn parse_uri_path(path: &str) -> Result<(RouteKey<'_>, &str), RouteParseError> {
    let (mut key, rest) = parse_uri_path_unsigned(path)?;
    let Some(after) = rest.strip_prefix('/') else {
        return Ok((key, rest));
    };
    let mut segments = after.splitn(3, '/');
    let (Some(expires_b36), Some(signature)) = (segments.next(), segments.next()) else {
        return Ok((key, rest));
    };
    match signed_part(expires_b36, signature) {
        Some(signed) => {
            key.signed = Some(signed);
            let consumed = 1 + expires_b36.len() + 1 + signature.len();
            Ok((key, forwarded(&rest[consumed..])))
        }
        None => Ok((key, rest)),
    }
}

/// Parses `/<id>/<port>[/rest]` only; for sandboxes without secure access,
/// segments that look like a signature stay part of the forwarded path.
pub fn parse_uri_path_unsigned(path: &str) -> Result<(RouteKey<'_>, &str), RouteParseError> {
    let after = path
        .strip_prefix('/')
        .ok_or(RouteParseError::NotARoutePath)?;
    let (id, after_id) = after.split_once('/').ok_or(RouteParseError::MissingPort)?;
    if id.is_empty() {
        return Err(RouteParseError::EmptyId);
    }
    let (port, rest) = split_port(after_id)?;
    Ok((
        RouteKey {
            sandbox_id: id,
            port,
            signed: None,
        },
        rest,
    ))
}

/// `..`, also percent-encoded (`%2e%2e`, `.%2E`, …).
fn is_dot_dot(segment: &str) -> bool {
    let lower = segment.to_ascii_lowercase();
    matches!(lower.as_str(), ".." | "%2e%2e" | ".%2e" | "%2e.")
}

/// `<port>[/rest]` → the port and the path to forward (`/` when empty).
fn split_port(text: &str) -> Result<(u16, &str), RouteParseError> {
    let (port, rest) = match text.find('/') {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let port = parse_port(port).ok_or(RouteParseError::BadPort)?;
    Ok((port, forwarded(rest)))
}

fn forwarded(rest: &str) -> &str {
    if rest.is_empty() { "/" } else { rest }
}

/// Parses the control plane's server-proxy path
/// `(/v1)?/sandboxes/<id>/proxy/<port>[/rest]`. Paths with a `..` segment
/// (literal or percent-encoded) are refused, so they can never be mistaken for (unauthenticated) proxy
/// paths by the control plane.
pub fn parse_server_proxy_path(path: &str) -> Result<(RouteKey<'_>, &str), RouteParseError> {
    if path.split('/').any(is_dot_dot) {
        return Err(RouteParseError::NotARoutePath);
    }
    let path = path.strip_prefix("/v1").unwrap_or(path);
    let after = path
        .strip_prefix("/sandboxes/")
        .ok_or(RouteParseError::NotARoutePath)?;
    let (id, after_id) = after
        .split_once('/')
        .ok_or(RouteParseError::NotARoutePath)?;
    let after_proxy = after_id
        .strip_prefix("proxy/")
        .ok_or(RouteParseError::NotARoutePath)?;
    if id.is_empty() {
        return Err(RouteParseError::EmptyId);
    }
    let (port, rest) = split_port(after_proxy)?;
    Ok((
        RouteKey {
            sandbox_id: id,
            port,
            signed: None,
        },
        rest,
    ))
}

#[cfg(test)]
mod tests;
