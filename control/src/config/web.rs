//! `sandgate.cors_allowed_origins` and `sandgate.allowed_hosts`: which web
//! pages may call the API from a browser, and which `Host` names are
//! accepted while authentication is off (a DNS-rebinding defence).

use sandgate_shared::problems::Problems;

/// The browser-facing rules, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebConfig {
    /// Origins (`scheme://host[:port]`, lower case) allowed by CORS, with
    /// credentials. Empty: no CORS headers at all.
    pub cors_allowed_origins: Vec<String>,
    /// Host names (lower case, no port) accepted in `Host` while
    /// authentication is off, besides IP addresses and `localhost`.
    pub allowed_hosts: Vec<String>,
}

/// Validates both lists, naming each bad entry.
pub(crate) fn validate(
    origins: Option<Vec<String>>,
    hosts: Option<Vec<String>>,
    p: &mut Problems,
) -> WebConfig {
    let mut web = WebConfig::default();
    for (i, origin) in origins.unwrap_or_default().iter().enumerate() {
        match check_origin(origin) {
            Ok(origin) => web.cors_allowed_origins.push(origin),
            Err(rule) => p.push(
                format!("sandgate.cors_allowed_origins[{i}]"),
                format!("{rule} (got {origin:?})"),
            ),
        }
    }
    for (i, host) in hosts.unwrap_or_default().iter().enumerate() {
        if is_host_name(host) {
            web.allowed_hosts.push(host.to_ascii_lowercase());
        } else {
            p.push(
                format!("sandgate.allowed_hosts[{i}]"),
                format!("must be a host name: letters, digits, '-' and '.', without port or wildcard (got {host:?})"),
            );
        }
    }
    web
}

const ORIGIN_RULE: &str =
    "must be scheme://host[:port] with scheme http or https, without path, user or wildcard";

fn check_origin(origin: &str) -> Result<String, &'static str> {
    let (scheme, rest) = origin.split_once("://").ok_or(ORIGIN_RULE)?;
    if !matches!(scheme, "http" | "https") {
        return Err(ORIGIN_RULE);
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || rest.starts_with('[') => (host, Some(port)),
        _ => (rest, None),
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    let host_ok = is_host_name(host) || is_ip_literal(host);
    if port_ok && host_ok {
        Ok(origin.to_ascii_lowercase())
    } else {
        Err(ORIGIN_RULE)
    }
}

fn is_ip_literal(host: &str) -> bool {
    host.parse::<std::net::Ipv4Addr>().is_ok()
        || host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
}

/// A DNS name: labels of letters, digits and '-', joined by '.'.
pub(crate) fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(origins: &[&str], hosts: &[&str]) -> (WebConfig, Vec<String>) {
        let mut p = Problems::default();
        let owned = |list: &[&str]| Some(list.iter().map(|s| (*s).to_owned()).collect());
        let web = validate(owned(origins), owned(hosts), &mut p);
        let keys = match p.finish(()) {
            Ok(()) => Vec::new(),
            Err(errors) => errors.problems.into_iter().map(|p| p.to_string()).collect(),
        };
        (web, keys)
    }

    #[test]
    fn accepts_plain_origins_and_host_names() {
        let (web, errors) = problems(
            &[
                "https://App.example",
                "http://127.0.0.1:3000",
                "http://[::1]:8080",
            ],
            &["sandgate.internal"],
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(web.cors_allowed_origins[0], "https://app.example");
        assert_eq!(web.allowed_hosts, ["sandgate.internal"]);
    }

    #[test]
    fn rejects_wildcards_paths_and_other_schemes_naming_each_entry() {
        let (_, errors) = problems(
            &[
                "*",
                "https://app.example/",
                "ftp://x",
                "https://*.example",
                "https://a:0",
            ],
            &["*.example", "host:8080", ""],
        );
        assert_eq!(errors.len(), 8, "{errors:?}");
        assert!(
            errors[0].starts_with("sandgate.cors_allowed_origins[0]: must be scheme://host[:port]")
        );
        assert!(errors[5].starts_with("sandgate.allowed_hosts[0]: must be a host name"));
    }
}
