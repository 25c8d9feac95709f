//! The raw-byte suites' fixture: a control plane and proxy on the fake
//! runtime, with one running sandbox the proxy routes to.

use std::time::Duration;

use crate::edge::{EdgeStack, StackOptions};
use crate::process::RuntimeKind;
use crate::raw::RawConn;
use crate::upstream::{self, Upstream};

/// A stack with one routed sandbox whose port serves `hello /…`.
pub struct RoutedSandbox {
    /// The control plane and proxy.
    pub stack: EdgeStack,
    /// The sandbox's id.
    pub id: String,
    _hello: Upstream,
}

impl RoutedSandbox {
    /// Starts the stack with `proxy_extra` TOML and waits (up to `within`)
    /// until a request carrying `probe` headers reaches the sandbox.
    pub async fn start(proxy_extra: String, probe: &[(&str, &str)], within: Duration) -> Self {
        let hello = upstream::hello()
            .await
            .unwrap_or_else(|e| panic!("hello upstream: {e:#}"));
        let stack = EdgeStack::start(StackOptions {
            runtime: RuntimeKind::Fake,
            proxy_extra,
            ..StackOptions::default()
        })
        .await
        .unwrap_or_else(|e| panic!("edge stack: {e:#}"));
        let id = stack
            .routed_fake_sandbox(hello.port(), probe, "hello /probe", within)
            .await;
        Self {
            stack,
            id,
            _hello: hello,
        }
    }

    /// `<id>-<port>` for the routing header.
    pub fn route(&self, port: u16) -> String {
        format!("{}-{port}", self.id)
    }

    /// A new raw client connection to the proxy.
    pub async fn client(&self) -> RawConn {
        RawConn::connect(self.stack.proxy.port())
            .await
            .unwrap_or_else(|e| panic!("connect to the proxy: {e:#}"))
    }
}
