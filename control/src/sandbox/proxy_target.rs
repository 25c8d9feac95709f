//! Where the control plane's own server proxy sends a request: the runtime
//! address of a Running sandbox's port (the address the edge proxy routes
//! to), after a bounded wait for a sandbox still starting.

use std::net::Ipv6Addr;

use sandgate_shared::api::SandboxState;

use super::error::{Conflict, Operation, SandboxError};
use super::service::SandboxService;
use crate::runtime::RuntimeError;

/// A sandbox port the server proxy may forward to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyTarget {
    /// `host:port` (IPv6 hosts in brackets).
    pub authority: String,
    /// The secure-access token callers must present, if the sandbox has one.
    pub secure_access_token: Option<String>,
}

impl SandboxService {
    /// The address of `port` of sandbox `id` when it is Running. A Pending
    /// or Resuming sandbox (or a Running one without an address yet) is
    /// waited for, up to the endpoint wait; any other state is refused.
    pub async fn proxy_target(&self, id: &str, port: u16) -> Result<ProxyTarget, SandboxError> {
        let mut changes = self.registry().subscribe();
        let deadline = tokio::time::Instant::now() + self.inner.settings.endpoint_wait;
        loop {
            let record = self.get(id)?;
            match record.status.state {
                SandboxState::Running => {
                    if let Some(host) = record.address.as_deref().filter(|h| !h.is_empty()) {
                        return Ok(ProxyTarget {
                            authority: authority(host, port),
                            secure_access_token: record.secure_access_token.clone(),
                        });
                    }
                }
                SandboxState::Pending | SandboxState::Resuming => {}
                state => {
                    return Err(SandboxError::Conflict {
                        reason: Conflict::NotRunning,
                        engine: self.engine(),
                        message: format!(
                            "Sandbox {id} is {state:?}; the server proxy reaches running sandboxes only."
                        ),
                    });
                }
            }
            let woke = tokio::time::timeout_at(deadline, changes.changed()).await;
            if !matches!(woke, Ok(Ok(()))) {
                return Err(self.runtime_failed(
                    Operation::ResolveEndpoint,
                    format!("resolving an endpoint of sandbox {id}"),
                    RuntimeError::NotReady("still starting".to_owned()),
                ));
            }
        }
    }
}

/// `host:port`, bracketing an IPv6 host.
fn authority(host: &str, port: u16) -> String {
    if host.parse::<Ipv6Addr>().is_ok() {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::authority;

    #[test]
    fn brackets_ipv6_hosts_only() {
        assert_eq!(authority("172.17.0.2", 44772), "172.17.0.2:44772");
        assert_eq!(authority("fd00::2", 8080), "[fd00::2]:8080");
        assert_eq!(authority("sandbox.local", 80), "sandbox.local:80");
    }
}
