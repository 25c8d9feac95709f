//! Credentials checked before a request may reach a sandbox: the optional
//! edge API key, then OSEP-0011 secure access for sandboxes that require it.

use sandgate_shared::route_key::RouteKey;
use sandgate_shared::signing;
use sha2::{Digest, Sha256};

use crate::config::SecureAccessConfig;
use crate::error::Reject;
use crate::routes::{RouteEntry, SecureAccess};

/// Checks the configured edge key against the one `sent` (constant time).
pub(crate) fn check_edge_key(
    expected: &str,
    header_name: &str,
    sent: Option<&[u8]>,
) -> Result<(), Reject> {
    match sent {
        None => Err(Reject::missing_edge_key(header_name)),
        Some(value) if signing::constant_time_eq(value, expected.as_bytes()) => Ok(()),
        Some(_) => Err(Reject::invalid_edge_key(header_name)),
    }
}

/// OSEP-0011: a present `OpenSandbox-Secure-Access` header decides alone
/// (even when empty, and even if the route is also signed); without it a
/// valid signed route is required. Open sandboxes accept anything.
pub(crate) fn check_secure_access(
    entry: &RouteEntry,
    key: &RouteKey<'_>,
    header: Option<&[u8]>,
    keys: &SecureAccessConfig,
    now_unix: u64,
) -> Result<(), Reject> {
    let SecureAccess::Required { digest } = entry.secure else {
        return Ok(());
    };
    if let Some(value) = header {
        let token = value.trim_ascii();
        let sent: [u8; 32] = Sha256::digest(token).into();
        return match digest {
            Some(expected) if signing::constant_time_eq(&sent, &expected) => Ok(()),
            _ => Err(Reject::secure_access_mismatch(&entry.id)),
        };
    }
    let Some(signed) = key.signed.as_ref() else {
        return Err(Reject::signature_required(&entry.id));
    };
    if keys.keys.is_empty() {
        return Err(Reject::verifier_not_configured());
    }
    let lookup = |id: char| keys.secret(id);
    signing::verify(&lookup, key.sandbox_id, key.port, signed, now_unix)
        .map_err(|error| Reject::signature(&entry.id, &error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VerificationKey;
    use sandgate_shared::api::SandboxState;
    use sandgate_shared::route_key::parse_token;
    use sandgate_shared::routes::SandboxRoute;

    const NOW: u64 = 1_800_000_000;

    fn entry(token: Option<&str>) -> RouteEntry {
        let route = SandboxRoute {
            state: SandboxState::Running,
            message: None,
            address: Some("10.0.0.1".into()),
            secure_access_sha256: token.map(|t| signing::sha256_hex(t.as_bytes())),
        };
        RouteEntry::new("sec", &route)
    }

    fn keys() -> SecureAccessConfig {
        SecureAccessConfig {
            keys: vec![VerificationKey {
                id: 'k',
                secret: b"secret".to_vec(),
            }],
        }
    }

    fn signed_token(expires: u64) -> String {
        let (b36, sig) = signing::mint(b"secret", 'k', "sec", 8080, expires);
        format!("sec-8080-{b36}-{sig}")
    }

    fn check(
        entry: &RouteEntry,
        token: &str,
        header: Option<&str>,
        keys: &SecureAccessConfig,
    ) -> Result<(), &'static str> {
        let key = parse_token(token).unwrap();
        let header = header.map(str::as_bytes);
        check_secure_access(entry, &key, header, keys, NOW).map_err(|r| r.code)
    }

    #[test]
    fn open_sandboxes_accept_anything() {
        let open = entry(None);
        assert_eq!(check(&open, "sec-8080", None, &keys()), Ok(()));
        assert_eq!(
            check(&open, "sec-8080-0-abcdef12k", Some("whatever"), &keys()),
            Ok(())
        );
    }

    #[test]
    fn header_decides_alone_when_present() {
        let secured = entry(Some("annot-token"));
        assert_eq!(
            check(&secured, "sec-8080", Some("annot-token"), &keys()),
            Ok(())
        );
        assert_eq!(
            check(&secured, "sec-8080", Some(" annot-token "), &keys()),
            Ok(()),
            "trimmed"
        );
        assert_eq!(
            check(&secured, "sec-8080", Some("wrong"), &keys()),
            Err("PROXY::SECURE_ACCESS_DENIED")
        );
        assert_eq!(
            check(&secured, "sec-8080", Some(""), &keys()),
            Err("PROXY::SECURE_ACCESS_DENIED"),
            "empty counts as present"
        );
        let valid = signed_token(NOW + 60);
        assert_eq!(
            check(&secured, &valid, Some("wrong"), &keys()),
            Err("PROXY::SECURE_ACCESS_DENIED"),
            "no fallback"
        );
        assert_eq!(
            check(
                &secured,
                "sec-8080-0-abcdef12k",
                Some("annot-token"),
                &keys()
            ),
            Ok(()),
            "bad signature ignored"
        );
    }

    #[test]
    fn signed_routes_without_header() {
        let secured = entry(Some("annot-token"));
        assert_eq!(
            check(&secured, "sec-8080", None, &keys()),
            Err("PROXY::SIGNATURE_REQUIRED")
        );
        assert_eq!(
            check(&secured, &signed_token(NOW + 60), None, &keys()),
            Ok(())
        );
        assert_eq!(
            check(&secured, &signed_token(NOW - 1), None, &keys()),
            Err("PROXY::SIGNATURE_EXPIRED")
        );
        assert_eq!(
            check(&secured, "sec-8080-zzzz-abcdef12k", None, &keys()),
            Err("PROXY::SIGNATURE_INVALID")
        );
        assert_eq!(
            check(&secured, "sec-8080-zzzz-abcdef12q", None, &keys()),
            Err("PROXY::SIGNATURE_INVALID"),
            "unknown key"
        );
        let none = SecureAccessConfig::default();
        assert_eq!(
            check(&secured, &signed_token(NOW + 60), None, &none),
            Err("PROXY::VERIFIER_NOT_CONFIGURED")
        );
    }

    #[test]
    fn malformed_digest_fails_closed_for_headers() {
        let route = SandboxRoute {
            state: SandboxState::Running,
            message: None,
            address: Some("10.0.0.1".into()),
            secure_access_sha256: Some("not-hex".into()),
        };
        let broken = RouteEntry::new("sec", &route);
        assert_eq!(
            check(&broken, "sec-8080", Some(""), &keys()),
            Err("PROXY::SECURE_ACCESS_DENIED")
        );
        assert_eq!(
            check(&broken, &signed_token(NOW + 60), None, &keys()),
            Ok(())
        );
    }

    #[test]
    fn edge_key() {
        assert!(check_edge_key("k1", "x", Some(b"k1")).is_ok());
        assert_eq!(
            check_edge_key("k1", "x", None).unwrap_err().code,
            "PROXY::MISSING_EDGE_KEY"
        );
        assert_eq!(
            check_edge_key("k1", "x", Some(b"k1k1")).unwrap_err().code,
            "PROXY::INVALID_EDGE_KEY"
        );
        assert_eq!(
            check_edge_key("k1", "x", Some(b"k2")).unwrap_err().code,
            "PROXY::INVALID_EDGE_KEY"
        );
    }
}
