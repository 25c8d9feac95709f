//! What keeps a web page from driving the API: CORS only for configured
//! origins, and, while authentication is off, only `Host` values a
//! DNS-rebinding page cannot produce (IP addresses, `localhost`, configured
//! names). The JSON content-type rule lives in [`super::extract`].

use axum::http::{HeaderValue, Method, StatusCode, header};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use crate::config::WebConfig;
use crate::error::{ApiError, codes};

/// CORS for `web.cors_allowed_origins` only, credentials included; with
/// none configured no response carries CORS headers, so browsers keep
/// other origins out.
pub fn cors(web: &WebConfig) -> CorsLayer {
    let origins: Vec<HeaderValue> = web
        .cors_allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(AllowHeaders::mirror_request())
        .allow_credentials(true)
        .expose_headers([super::middleware::REQUEST_ID.clone()])
        .max_age(std::time::Duration::from_secs(600))
}

/// Accepts a request's `Host` (or HTTP/2 authority) while auth is off.
/// A request without one is not from a browser and passes.
pub fn check_host(
    web: &WebConfig,
    headers: &axum::http::HeaderMap,
    uri: &axum::http::Uri,
) -> Result<(), ApiError> {
    let raw = match headers.get(header::HOST) {
        Some(value) => value.to_str().unwrap_or("\u{fffd}"),
        None => match uri.authority() {
            Some(authority) => authority.as_str(),
            None => return Ok(()),
        },
    };
    if host_allowed(web, raw) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        codes::INVALID_PARAMETER,
        format!(
            "Host: must be an IP address, localhost or a name in sandgate.allowed_hosts while authentication is off (got {raw:?})"
        ),
    ))
}

fn host_allowed(web: &WebConfig, raw: &str) -> bool {
    let host = strip_port(raw.trim())
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let ip = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(&host)
        .parse::<std::net::IpAddr>()
        .is_ok();
    ip || host == "localhost" || host.ends_with(".localhost") || web.allowed_hosts.contains(&host)
}

fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ip_literals_localhost_and_configured_names_only() {
        let web = WebConfig {
            allowed_hosts: vec!["sandgate.internal".to_owned()],
            ..WebConfig::default()
        };
        for ok in [
            "127.0.0.1:8080",
            "10.1.2.3",
            "[::1]:8080",
            "localhost:8080",
            "LOCALHOST",
            "api.localhost",
            "sandgate.internal:80",
            "sandgate.internal.",
        ] {
            assert!(host_allowed(&web, ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "",
            "sandgate.internal.evil",
        ] {
            assert!(!host_allowed(&web, bad), "{bad}");
        }
    }
}
