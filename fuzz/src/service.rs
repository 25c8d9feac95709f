//! The names around `proxy/src/service/fast/{head,chunked}.rs` that those
//! files refer to, so that they compile here unchanged (see the crate docs).

/// `sandgate_proxy::service::POWERED_BY`, which `head.rs` names as
/// `super::super::POWERED_BY`.
const POWERED_BY: (&str, &str) = ("reverse-proxy-server-powerby", "OpenSandbox-ingress");

pub mod fast;

/// `sandgate_proxy::service::route`: the trait `head.rs` implements.
pub(crate) mod route {
    /// The routing view of a request (same methods as the proxy's trait).
    pub(crate) trait RequestView {
        fn path(&self) -> &str;
        fn query(&self) -> Option<&str>;
        fn header(&self, name: &http::HeaderName) -> Option<&[u8]>;
        #[allow(dead_code)] // implemented by head.rs; routing reads it
        fn authority(&self) -> Option<&str>;
    }
}
