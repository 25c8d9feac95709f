//! How clients reach sandbox ports: directly at the runtime's address, or
//! through the edge proxy (`ingress.mode = "gateway"`) with OpenSandbox's
//! endpoint formats, optionally signed (OSEP-0011) until an expiry.

use std::collections::{BTreeMap, HashMap};

use sandgate_shared::api::Endpoint;
use sandgate_shared::signing;

/// The header that names the sandbox in header route mode.
pub const INGRESS_TO_HEADER: &str = sandgate_shared::headers::INGRESS_TO_DISPLAY;
/// The header that carries a sandbox's secure-access token.
pub const SECURE_ACCESS_HEADER: &str = sandgate_shared::headers::SECURE_ACCESS_DISPLAY;

/// How the gateway finds the sandbox in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayRoute {
    /// `<id>-<port>.<domain>[:port]`; `suffix` is what follows the `*.`.
    Wildcard {
        /// `domain[:port]`.
        suffix: String,
    },
    /// `OpenSandbox-Ingress-To: <id>-<port>` sent to `address`.
    Header {
        /// `host[:port]`.
        address: String,
    },
    /// `<address>/<id>/<port>/...`.
    Uri {
        /// `host[:port][/path]`.
        address: String,
    },
}

/// Keys that sign endpoint routes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Signing {
    /// The key id that signs new routes.
    pub active: char,
    /// Every key by id.
    pub keys: BTreeMap<char, Vec<u8>>,
}

impl std::fmt::Debug for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signing")
            .field("active", &self.active)
            .field("keys", &self.keys.len())
            .finish()
    }
}

/// The ingress configuration the service needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ingress {
    /// The edge proxy route, in gateway mode.
    pub gateway: Option<GatewayRoute>,
    /// Route signing keys, when configured.
    pub signing: Option<Signing>,
    /// `server.eip`: the public base for server-proxy endpoints.
    pub eip: Option<String>,
}

impl Ingress {
    /// The endpoint of `port` through the gateway, or `None` in direct mode.
    /// `signed` is `(expires_b36, signature)` for signed routes.
    pub fn gateway_endpoint(
        &self,
        id: &str,
        port: u16,
        signed: Option<&(String, String)>,
    ) -> Option<Endpoint> {
        let token = match signed {
            Some((b36, signature)) => format!("{id}-{port}-{b36}-{signature}"),
            None => format!("{id}-{port}"),
        };
        let (endpoint, headers) = match self.gateway.as_ref()? {
            GatewayRoute::Wildcard { suffix } => (format!("{token}.{suffix}"), BTreeMap::new()),
            GatewayRoute::Header { address } => (
                address.clone(),
                BTreeMap::from([(INGRESS_TO_HEADER.to_owned(), token)]),
            ),
            GatewayRoute::Uri { address } => {
                let path = match signed {
                    Some((b36, signature)) => format!("{id}/{port}/{b36}/{signature}"),
                    None => format!("{id}/{port}"),
                };
                (
                    format!("{}/{path}", address.trim_end_matches('/')),
                    BTreeMap::new(),
                )
            }
        };
        Some(Endpoint {
            endpoint,
            headers: (!headers.is_empty()).then_some(headers),
        })
    }

    /// Signs a route until `expires` (Unix seconds) with the active key.
    pub fn sign(&self, id: &str, port: u16, expires: u64) -> Result<(String, String), String> {
        if self.gateway.is_none() {
            return Err(
                "Signed routes require ingress.mode = 'gateway': the edge proxy verifies them."
                    .to_owned(),
            );
        }
        let keys = self.signing.as_ref().ok_or_else(|| {
            "Signed routes require [ingress.secure_access] with signing keys.".to_owned()
        })?;
        let secret = keys
            .keys
            .get(&keys.active)
            .ok_or("the active signing key is missing")?;
        Ok(signing::mint(secret, keys.active, id, port, expires))
    }

    /// The server-proxy endpoint `{base}/sandboxes/{id}/proxy/{port}`, with
    /// `server.eip` (or the request's own host) as the base, scheme removed.
    pub fn server_proxy_endpoint(
        &self,
        request_host: Option<&str>,
        id: &str,
        port: u16,
    ) -> Option<String> {
        let base = self.eip.as_deref().or(request_host)?;
        let base = base
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        Some(format!("{base}/sandboxes/{id}/proxy/{port}"))
    }
}

/// Headers every endpoint of a secured sandbox carries.
pub fn secure_access_headers(token: Option<&str>) -> HashMap<String, String> {
    token
        .map(|t| HashMap::from([(SECURE_ACCESS_HEADER.to_owned(), t.to_owned())]))
        .unwrap_or_default()
}

/// A fresh secure-access token: 32 random bytes as lowercase hex.
pub fn new_secure_access_token() -> String {
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    format!("{}{}", a.simple(), b.simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingress(route: GatewayRoute) -> Ingress {
        let signing = Signing {
            active: 'a',
            keys: BTreeMap::from([('a', b"secret".to_vec())]),
        };
        Ingress {
            gateway: Some(route),
            signing: Some(signing),
            eip: None,
        }
    }

    #[test]
    fn formats_the_three_gateway_modes() {
        let wildcard = ingress(GatewayRoute::Wildcard {
            suffix: "sandbox.example.com".into(),
        });
        assert_eq!(
            wildcard
                .gateway_endpoint("sbx-001", 8080, None)
                .unwrap()
                .endpoint,
            "sbx-001-8080.sandbox.example.com"
        );
        let uri = ingress(GatewayRoute::Uri {
            address: "gw.example.com/prefix/".into(),
        });
        assert_eq!(
            uri.gateway_endpoint("sbx-001", 8080, None)
                .unwrap()
                .endpoint,
            "gw.example.com/prefix/sbx-001/8080"
        );
        let header = ingress(GatewayRoute::Header {
            address: "gw.example.com:80".into(),
        });
        let endpoint = header.gateway_endpoint("sbx-001", 8080, None).unwrap();
        assert_eq!(endpoint.endpoint, "gw.example.com:80");
        assert_eq!(endpoint.headers.unwrap()[INGRESS_TO_HEADER], "sbx-001-8080");
        assert_eq!(
            Ingress::default().gateway_endpoint("sbx-001", 1, None),
            None
        );
    }

    #[test]
    fn signed_routes_use_the_active_key() {
        let uri = ingress(GatewayRoute::Uri {
            address: "gw".into(),
        });
        let signed = uri.sign("sbx-001", 8080, 2_000_000_000).unwrap();
        assert_eq!(signed.0, "x2qxvk");
        assert!(signed.1.ends_with('a') && signed.1.len() == 9);
        let endpoint = uri
            .gateway_endpoint("sbx-001", 8080, Some(&signed))
            .unwrap();
        assert_eq!(
            endpoint.endpoint,
            format!("gw/sbx-001/8080/x2qxvk/{}", signed.1)
        );
        assert!(
            Ingress::default()
                .sign("s", 1, 5)
                .unwrap_err()
                .contains("gateway")
        );
    }

    #[test]
    fn server_proxy_endpoints_drop_the_scheme() {
        let direct = Ingress {
            eip: Some("https://sandbox.example.com/opensandbox/".into()),
            ..Ingress::default()
        };
        assert_eq!(
            direct
                .server_proxy_endpoint(Some("ignored:8080"), "sbx-001", 44772)
                .unwrap(),
            "sandbox.example.com/opensandbox/sandboxes/sbx-001/proxy/44772"
        );
        assert_eq!(
            Ingress::default()
                .server_proxy_endpoint(Some("testserver"), "s", 1)
                .unwrap(),
            "testserver/sandboxes/s/proxy/1"
        );
    }
}
