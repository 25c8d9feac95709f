//! Finding the route key in a request, by the enabled modes in a fixed
//! order: routing header, server-proxy path, wildcard host, URI path.
//!
//! Pure and allocation-free: the key borrows from the request header.

use http::HeaderName;
use pingora::http::RequestHeader;
use sandgate_shared::headers;
use sandgate_shared::route_key::{self, RouteKey, RouteParseError};

use crate::config::{RouteMode, RoutingConfig};
use crate::error::Reject;

/// `OpenSandbox-Ingress-To: <id>-<port>`.
pub(crate) const INGRESS_TO: HeaderName = HeaderName::from_static(headers::INGRESS_TO);
/// The deprecated spelling `OPEN-SANDBOX-INGRESS`.
pub(crate) const LEGACY_INGRESS: HeaderName = HeaderName::from_static(headers::LEGACY_INGRESS);
/// `OpenSandbox-Secure-Access: <token>`.
pub(crate) const SECURE_ACCESS: HeaderName = HeaderName::from_static(headers::SECURE_ACCESS);

/// What routing reads from a request: implemented by pingora's parsed
/// header and by the HTTP/1.1 fast path's borrowed head.
pub(crate) trait RequestView {
    /// The path of the request target (no query).
    fn path(&self) -> &str;
    /// The query, without the `?`.
    fn query(&self) -> Option<&str>;
    /// The first value of the header `name`.
    fn header(&self, name: &HeaderName) -> Option<&[u8]>;
    /// The authority of an absolute request target (HTTP/2 `:authority`).
    fn authority(&self) -> Option<&str>;
}

impl RequestView for RequestHeader {
    fn path(&self) -> &str {
        self.uri.path()
    }

    fn query(&self) -> Option<&str> {
        self.uri.query()
    }

    fn header(&self, name: &HeaderName) -> Option<&[u8]> {
        self.headers.get(name).map(http::HeaderValue::as_bytes)
    }

    fn authority(&self) -> Option<&str> {
        self.uri.authority().map(http::uri::Authority::as_str)
    }
}

/// A header value as text, by the rule of `HeaderValue::to_str`: visible
/// ASCII, spaces and tabs only.
pub(crate) fn header_text(value: &[u8]) -> Option<&str> {
    value
        .iter()
        .all(|b| *b == b'\t' || (0x20..0x7f).contains(b))
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
}

/// How the forwarded path is derived from the request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rewrite<'a> {
    /// Forward the path unchanged.
    Keep,
    /// URI mode: `rest` after the (possibly signed) prefix of `path`.
    Uri {
        /// The raw request path.
        path: &'a str,
        /// What follows the prefix, signed segments included in the prefix.
        rest: &'a str,
    },
    /// Server-proxy mode: forward `rest`.
    Strip(&'a str),
}

/// A route found in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found<'a> {
    /// Which mode matched.
    pub mode: RouteMode,
    /// Sandbox, port and any signature.
    pub key: RouteKey<'a>,
    /// How to rewrite the path.
    pub rewrite: Rewrite<'a>,
}

impl<'a> Found<'a> {
    /// The path to forward for a sandbox with (`secure`) or without secure
    /// access. For open sandboxes, URI segments shaped like a signature are
    /// part of the application path (OpenSandbox's legacy rule).
    pub(crate) fn forwarded_path(&self, secure: bool) -> Option<&'a str> {
        match self.rewrite {
            Rewrite::Keep => None,
            Rewrite::Strip(rest) => Some(rest),
            Rewrite::Uri { rest, .. } if secure || self.key.signed.is_none() => Some(rest),
            Rewrite::Uri { path, rest } => Some(
                route_key::parse_uri_path_unsigned(path).map_or(rest, |(_, unsigned)| unsigned),
            ),
        }
    }
}

/// Finds the route key in `req` using the modes enabled in `routing`.
pub(crate) fn find<'a, R: RequestView>(
    req: &'a R,
    routing: &RoutingConfig,
) -> Result<Found<'a>, Reject> {
    let path = req.path();
    if routing.enabled(RouteMode::Header) {
        for name in [&INGRESS_TO, &LEGACY_INGRESS] {
            if let Some(value) = req.header(name) {
                let text =
                    header_text(value).ok_or_else(|| Reject::unreadable_header(name.as_str()))?;
                let key = route_key::parse_token(text.trim())
                    .map_err(|e| Reject::invalid_route("the OpenSandbox-Ingress-To header", &e))?;
                return Ok(Found {
                    mode: RouteMode::Header,
                    key,
                    rewrite: Rewrite::Keep,
                });
            }
        }
    }
    if routing.enabled(RouteMode::ServerProxy) {
        match route_key::parse_server_proxy_path(path) {
            Ok((key, rest)) => {
                return Ok(Found {
                    mode: RouteMode::ServerProxy,
                    key,
                    rewrite: Rewrite::Strip(rest),
                });
            }
            Err(RouteParseError::NotARoutePath) => {}
            Err(e) => return Err(Reject::invalid_route("the server-proxy path", &e)),
        }
    }
    let wildcard_host = routing
        .enabled(RouteMode::Wildcard)
        .then(|| host(req))
        .flatten();
    if let Some(host) = wildcard_host {
        for domain in &routing.wildcard_domains {
            match route_key::parse_host(host, domain) {
                Ok(key) => {
                    return Ok(Found {
                        mode: RouteMode::Wildcard,
                        key,
                        rewrite: Rewrite::Keep,
                    });
                }
                Err(RouteParseError::NotThisDomain) => {}
                Err(e) => return Err(Reject::invalid_route("the Host header", &e)),
            }
        }
    }
    if routing.enabled(RouteMode::Uri) {
        return match route_key::parse_uri_path(path) {
            Ok((key, rest)) => Ok(Found {
                mode: RouteMode::Uri,
                key,
                rewrite: Rewrite::Uri { path, rest },
            }),
            Err(
                RouteParseError::Empty
                | RouteParseError::NotARoutePath
                | RouteParseError::MissingPort,
            ) => Err(Reject::no_route(&hint(routing))),
            Err(e) => Err(Reject::invalid_route("the path", &e)),
        };
    }
    Err(Reject::no_route(&hint(routing)))
}

/// The request's host: the `Host` header, else the URI authority (HTTP/2).
pub(crate) fn host<R: RequestView>(req: &R) -> Option<&str> {
    req.header(&http::header::HOST)
        .and_then(header_text)
        .or_else(|| req.authority())
}

/// Which routing forms this proxy accepts, for the no-route message.
fn hint(routing: &RoutingConfig) -> String {
    let forms: Vec<String> = RouteMode::ALL
        .iter()
        .filter(|mode| routing.enabled(**mode))
        .map(|mode| match mode {
            RouteMode::Header => "send OpenSandbox-Ingress-To: <sandbox-id>-<port>".to_owned(),
            RouteMode::ServerProxy => "use /sandboxes/<sandbox-id>/proxy/<port>/<path>".to_owned(),
            RouteMode::Wildcard => match routing.wildcard_domains.first() {
                Some(domain) => format!("use the host <sandbox-id>-<port>.{domain}"),
                None => "use a wildcard host".to_owned(),
            },
            RouteMode::Uri => "use /<sandbox-id>/<port>/<path>".to_owned(),
        })
        .collect();
    forms.join(", or ")
}

/// The request target with the path replaced by `path`, query kept verbatim.
pub(crate) fn rewritten_target<R: RequestView>(req: &R, path: &str) -> String {
    let query = req.query();
    let mut target = String::with_capacity(path.len() + query.map_or(0, |q| q.len() + 1));
    target.push_str(path);
    if let Some(query) = query {
        target.push('?');
        target.push_str(query);
    }
    target
}

#[cfg(test)]
mod tests;
