//! What changes in the request on its way to the sandbox: routing headers
//! and credentials are removed, forwarding headers are set, and the `Host`
//! follows the configured policy.

use std::net::IpAddr;

use http::header::HOST;
use http::header::InvalidHeaderValue;
use http::{HeaderName, HeaderValue};
use pingora::http::RequestHeader;
use pingora::{ErrorType, OrErr};

use super::route::{INGRESS_TO, LEGACY_INGRESS, SECURE_ACCESS};

/// Headers that never reach a sandbox (the edge-key header is removed too).
pub(crate) const STRIPPED: [http::HeaderName; 3] = [INGRESS_TO, LEGACY_INGRESS, SECURE_ACCESS];

const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
const X_FORWARDED_HOST: &str = "x-forwarded-host";
/// Performance: looking up a `HeaderName` skips parsing the `&str` name.
const X_FORWARDED_FOR_NAME: HeaderName = HeaderName::from_static(X_FORWARDED_FOR);

/// What the upstream request needs from the downstream connection.
#[derive(Debug)]
pub(crate) struct Forwarding<'a> {
    /// The client's IP address, when known.
    pub client_ip: Option<IpAddr>,
    /// Whether the client connected over TLS.
    pub tls: bool,
    /// Name of the edge-key header (removed whether or not a key is configured).
    pub edge_key_header: &'a str,
    /// The `Host` to send instead of the client's (`host_policy = "upstream"`).
    pub upstream_host: Option<&'a HeaderValue>,
}

/// Rewrites `req` (the copy that goes upstream) in place.
pub(crate) fn prepare_upstream(
    req: &mut RequestHeader,
    fwd: &Forwarding<'_>,
) -> pingora::Result<()> {
    for name in &STRIPPED {
        req.remove_header(name);
    }
    req.remove_header(fwd.edge_key_header);
    if let Some(ip) = fwd.client_ip {
        let chain = match req
            .headers
            .get(&X_FORWARDED_FOR_NAME)
            .and_then(|v| v.to_str().ok())
        {
            Some(prior) if !prior.trim().is_empty() => {
                HeaderValue::try_from(format!("{prior}, {ip}"))
            }
            _ => ip_value(ip),
        };
        let chain = chain.or_err(ErrorType::InvalidHTTPHeader, "invalid value while insert")?;
        req.insert_header(X_FORWARDED_FOR, chain)?;
    }
    // The client's own X-Forwarded-Proto/Host are replaced: only this hop knows them.
    // (Static values: no allocation or validation per request.)
    let proto = if fwd.tls { "https" } else { "http" };
    req.insert_header(X_FORWARDED_PROTO, HeaderValue::from_static(proto))?;
    match req.headers.get(HOST).cloned() {
        Some(host) => req.insert_header(X_FORWARDED_HOST, host)?,
        None => {
            req.remove_header(X_FORWARDED_HOST);
        }
    }
    if let Some(host) = fwd.upstream_host {
        req.insert_header(HOST, host.clone())?;
    }
    Ok(())
}

/// `ip` as a header value, as `Display` writes it (IPv4 by hand: faster).
fn ip_value(ip: IpAddr) -> Result<HeaderValue, InvalidHeaderValue> {
    match ip {
        IpAddr::V4(v4) => {
            let mut buf = [0u8; 15];
            let len = crate::fastfmt::ipv4(v4, &mut buf);
            HeaderValue::from_bytes(&buf[..len])
        }
        IpAddr::V6(_) => HeaderValue::try_from(ip.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> RequestHeader {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        for (name, value) in headers {
            req.append_header(name.to_string(), *value).unwrap();
        }
        req
    }

    fn value(req: &RequestHeader, name: &str) -> Option<String> {
        req.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn strips_routing_headers_and_credentials() {
        let mut req = request(&[
            ("OpenSandbox-Ingress-To", "sb-8080"),
            ("OPEN-SANDBOX-INGRESS", "sb-8080"),
            ("OpenSandbox-Secure-Access", "token"),
            ("OpenSandbox-Edge-Key", "key"),
            ("Authorization", "Bearer app-token"),
            ("X-EXECD-ACCESS-TOKEN", "execd"),
            ("Host", "sb-8080.sandbox.localhost"),
        ]);
        let fwd = Forwarding {
            client_ip: None,
            tls: false,
            edge_key_header: "opensandbox-edge-key",
            upstream_host: None,
        };
        prepare_upstream(&mut req, &fwd).unwrap();
        for gone in [
            "opensandbox-ingress-to",
            "open-sandbox-ingress",
            "opensandbox-secure-access",
            "opensandbox-edge-key",
        ] {
            assert_eq!(value(&req, gone), None, "{gone} must not reach the sandbox");
        }
        assert_eq!(
            value(&req, "authorization").as_deref(),
            Some("Bearer app-token"),
            "application credentials pass"
        );
        assert_eq!(
            value(&req, "x-execd-access-token").as_deref(),
            Some("execd")
        );
        assert_eq!(
            value(&req, "host").as_deref(),
            Some("sb-8080.sandbox.localhost"),
            "preserved by default"
        );
    }

    #[test]
    fn sets_forwarding_headers() {
        let mut req = request(&[
            ("Host", "sb-8080.example.com"),
            ("X-Forwarded-For", "203.0.113.9"),
            ("X-Forwarded-Proto", "gopher"),
            ("X-Forwarded-Host", "spoofed"),
        ]);
        let upstream = HeaderValue::from_static("[fd00::1]:8080");
        let fwd = Forwarding {
            client_ip: Some("198.51.100.2".parse().unwrap()),
            tls: true,
            edge_key_header: "opensandbox-edge-key",
            upstream_host: Some(&upstream),
        };
        prepare_upstream(&mut req, &fwd).unwrap();
        assert_eq!(
            value(&req, "x-forwarded-for").as_deref(),
            Some("203.0.113.9, 198.51.100.2")
        );
        assert_eq!(value(&req, "x-forwarded-proto").as_deref(), Some("https"));
        assert_eq!(
            value(&req, "x-forwarded-host").as_deref(),
            Some("sb-8080.example.com")
        );
        assert_eq!(value(&req, "host").as_deref(), Some("[fd00::1]:8080"));
    }

    #[test]
    fn ip_values_match_display() {
        for text in [
            "192.0.2.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(ip_value(ip).unwrap(), ip.to_string().as_str());
        }
    }

    #[test]
    fn starts_a_forwarded_for_chain() {
        let mut req = request(&[]);
        let fwd = Forwarding {
            client_ip: Some("::1".parse().unwrap()),
            tls: false,
            edge_key_header: "opensandbox-edge-key",
            upstream_host: None,
        };
        prepare_upstream(&mut req, &fwd).unwrap();
        assert_eq!(value(&req, "x-forwarded-for").as_deref(), Some("::1"));
        assert_eq!(value(&req, "x-forwarded-proto").as_deref(), Some("http"));
        assert_eq!(value(&req, "x-forwarded-host"), None);
    }
}
