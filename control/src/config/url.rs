//! Splits `scheme://netloc/path` the way OpenSandbox's validators see URLs (Python's `urlsplit`).

use std::net::Ipv6Addr;

/// The parts of a URL the config rules look at.
pub(crate) struct Authority {
    /// Lower-cased scheme.
    pub scheme: String,
    /// Everything between `//` and the path, query or fragment.
    pub netloc: String,
    /// The path (before `?` or `#`).
    pub path: String,
    /// The host, lower-cased, without brackets; `None` when empty.
    pub host: Option<String>,
    /// The text after the host's `:`, if any (may be empty or not a number).
    pub port: Option<String>,
}

impl Authority {
    /// Whether the URL names a host.
    pub(crate) fn has_host(&self) -> bool {
        self.host.as_deref().is_some_and(|h| !h.is_empty())
    }
}

/// `None` when `text` has no `scheme://` or its brackets do not hold an IPv6 address.
pub(crate) fn authority(text: &str) -> Option<Authority> {
    let (scheme, rest) = text.split_once("://")?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (netloc, tail) = rest.split_at(end);
    let path_end = tail.find(['?', '#']).unwrap_or(tail.len());
    if netloc.contains('[') != netloc.contains(']') {
        return None;
    }
    let hostinfo = netloc.rsplit_once('@').map_or(netloc, |(_, h)| h);
    let (host, port) = match hostinfo.split_once('[') {
        Some((_, bracketed)) => {
            let (host, after) = bracketed.split_once(']').unwrap_or((bracketed, ""));
            let address = host.split_once('%').map_or(host, |(a, _)| a);
            address.parse::<Ipv6Addr>().ok()?;
            (host, after.split_once(':').map(|(_, p)| p))
        }
        None => match hostinfo.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostinfo, None),
        },
    };
    Some(Authority {
        scheme: scheme.to_ascii_lowercase(),
        netloc: netloc.to_owned(),
        path: tail[..path_end].to_owned(),
        host: (!host.is_empty()).then(|| host.to_ascii_lowercase()),
        port: port.filter(|p| !p.is_empty()).map(str::to_owned),
    })
}

/// The host characters Go's `net/url` accepts unescaped; `%` only inside brackets (an IPv6 zone).
pub(crate) fn valid_host(host: &str, bracketed: bool) -> bool {
    if host.contains('%') && !bracketed {
        return false;
    }
    host.chars().all(|c| {
        !c.is_ascii()
            || c == '%'
            || c.is_ascii_alphanumeric()
            || "-._~!$&'()*+,;=:[]<>\"".contains(c)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_urlsplit() {
        let a = authority("HTTP://User@Proxy.Example:3128/?q").unwrap();
        assert_eq!(
            (a.scheme.as_str(), a.netloc.as_str(), a.path.as_str()),
            ("http", "User@Proxy.Example:3128", "/")
        );
        assert_eq!(
            (a.host.as_deref(), a.port.as_deref()),
            (Some("proxy.example"), Some("3128"))
        );
        let v6 = authority("http://[fe80::1%eth0]:8080").unwrap();
        assert_eq!(
            (v6.host.as_deref(), v6.port.as_deref()),
            (Some("fe80::1%eth0"), Some("8080"))
        );
        assert!(authority("http://[not-v6]:1").is_none());
        assert!(authority("http://[::1:1").is_none());
        assert!(authority("no-scheme").is_none());
        assert!(!authority("http://:80").unwrap().has_host());
    }
}
