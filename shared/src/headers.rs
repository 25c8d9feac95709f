//! Header names that mean something to Sandgate itself (credentials and
//! routing), and which of them each hop strips: one list, used by the edge
//! proxy and by the control plane's server-proxy relay, so the two cannot
//! diverge.
//!
//! Names are lowercase (as `http::HeaderName` spells them); compare them
//! case-insensitively.

/// The lifecycle API key (`OPEN-SANDBOX-API-KEY`): the control plane's credential.
pub const LIFECYCLE_API_KEY: &str = "open-sandbox-api-key";
/// Header route mode: `OpenSandbox-Ingress-To: <sandbox-id>-<port>`.
pub const INGRESS_TO: &str = "opensandbox-ingress-to";
/// The deprecated spelling of [`INGRESS_TO`], `OPEN-SANDBOX-INGRESS`.
pub const LEGACY_INGRESS: &str = "open-sandbox-ingress";
/// A sandbox's OSEP-0011 secure-access token, `OpenSandbox-Secure-Access`.
pub const SECURE_ACCESS: &str = "opensandbox-secure-access";

/// [`INGRESS_TO`] as OpenSandbox writes it (endpoint headers in API answers).
pub const INGRESS_TO_DISPLAY: &str = "OpenSandbox-Ingress-To";
/// [`SECURE_ACCESS`] as OpenSandbox writes it.
pub const SECURE_ACCESS_DISPLAY: &str = "OpenSandbox-Secure-Access";

/// Headers that never reach a sandbox: the edge proxy removes them (and its
/// configured edge-key header) from every request, in every route mode.
pub const NEVER_TO_SANDBOX: [&str; 4] =
    [LIFECYCLE_API_KEY, INGRESS_TO, LEGACY_INGRESS, SECURE_ACCESS];

/// Headers the control plane's server-proxy relay removes before passing a
/// request to the edge: its own credential, and the routing headers (the
/// relayed path names the sandbox; a header must not redirect it). The
/// secure-access token stays: the edge checks it (and then removes it).
pub const RELAY_STRIPPED: [&str; 3] = [LIFECYCLE_API_KEY, INGRESS_TO, LEGACY_INGRESS];

/// Whether the header `name` (any case) is in [`NEVER_TO_SANDBOX`].
pub fn never_to_sandbox(name: &str) -> bool {
    NEVER_TO_SANDBOX
        .iter()
        .any(|known| name.eq_ignore_ascii_case(known))
}

/// Fields that describe one connection (RFC 9110 §7.6.1, and what pingora's
/// standard upstream policy strips): no hop forwards them as sent.
pub const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_lowercase_and_the_relay_list_is_a_subset() {
        for name in NEVER_TO_SANDBOX {
            assert_eq!(name, name.to_ascii_lowercase());
        }
        for name in RELAY_STRIPPED {
            assert!(NEVER_TO_SANDBOX.contains(&name), "{name}");
        }
        assert!(never_to_sandbox("OPEN-SANDBOX-API-KEY"));
        assert!(never_to_sandbox("OpenSandbox-Secure-Access"));
        assert!(!never_to_sandbox("authorization"));
        assert_eq!(INGRESS_TO_DISPLAY.to_ascii_lowercase(), INGRESS_TO);
        assert_eq!(SECURE_ACCESS_DISPLAY.to_ascii_lowercase(), SECURE_ACCESS);
    }
}
