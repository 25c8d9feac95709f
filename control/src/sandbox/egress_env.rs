//! The create request's `env` rules for names the server owns: the
//! `OPENSANDBOX_EGRESS_` keys an egress sidecar reads, and the reserved
//! `OPENSANDBOX_LIFECYCLE`. OpenSandbox 1.1.1 rules: an egress key outside
//! its allow-list (the server-injected `OPENSANDBOX_EGRESS_SANDBOX_ID`
//! included) is refused; an allowed one goes to the sidecar, not into the
//! sandbox, and with no sidecar it is dropped.

use std::collections::BTreeMap;

use super::rules::FieldProblem;

/// The prefix of the egress sidecar's variables.
pub const EGRESS_ENV_PREFIX: &str = "OPENSANDBOX_EGRESS_";

/// Reserved for lifecycle hooks (carried to execd by the server).
pub const LIFECYCLE_ENV: &str = "OPENSANDBOX_LIFECYCLE";

/// The one egress variable that also stays in the sandbox's own environment.
const MITMPROXY_TRANSPARENT: &str = "OPENSANDBOX_EGRESS_MITMPROXY_TRANSPARENT";

/// The egress variables a request may set (OpenSandbox's allow-list).
pub const ALLOWED_EGRESS_ENV: [&str; 11] = [
    "OPENSANDBOX_EGRESS_CREDENTIAL_VAULT_REQUIRE_SCOPED_MATCH",
    "OPENSANDBOX_EGRESS_CREDENTIAL_VAULT_REQUIRE_TLS",
    "OPENSANDBOX_EGRESS_CREDENTIAL_VAULT_TRUSTED_PROXY_CIDRS",
    "OPENSANDBOX_EGRESS_DENY_WEBHOOK",
    "OPENSANDBOX_EGRESS_DNS_UPSTREAM_TIMEOUT",
    "OPENSANDBOX_EGRESS_LOG_LEVEL",
    "OPENSANDBOX_EGRESS_METRICS_EXTRA_ATTRS",
    "OPENSANDBOX_EGRESS_MITMPROXY_EXTRA_PORTS",
    "OPENSANDBOX_EGRESS_MITMPROXY_SSL_INSECURE",
    MITMPROXY_TRANSPARENT,
    "OPENSANDBOX_EGRESS_POLICY_FILE",
];

/// `env` split into what the sandbox gets and what an egress sidecar would.
#[derive(Debug, PartialEq, Eq)]
pub struct SplitEnv<V> {
    /// The sandbox's environment.
    pub sandbox: BTreeMap<String, V>,
    /// Allowed egress variables (dropped while there is no sidecar).
    pub egress: BTreeMap<String, V>,
}

/// Splits `env`, pushing a problem for every server-owned name.
pub fn split<V: Clone>(env: BTreeMap<String, V>, problems: &mut Vec<FieldProblem>) -> SplitEnv<V> {
    let mut out = SplitEnv {
        sandbox: BTreeMap::new(),
        egress: BTreeMap::new(),
    };
    for (key, value) in env {
        if key == LIFECYCLE_ENV {
            problems.push(FieldProblem::param(format!(
                "env.{LIFECYCLE_ENV}: the name is reserved; use the lifecycle request field instead"
            )));
        } else if !key.starts_with(EGRESS_ENV_PREFIX) {
            out.sandbox.insert(key, value);
        } else if !ALLOWED_EGRESS_ENV.contains(&key.as_str()) {
            problems.push(FieldProblem::param(format!(
                "env.{key}: not allowed; the server sets the other OPENSANDBOX_EGRESS_ variables. Permitted: {}",
                ALLOWED_EGRESS_ENV.join(", ")
            )));
        } else {
            if key == MITMPROXY_TRANSPARENT {
                out.sandbox.insert(key.clone(), value.clone());
            }
            out.egress.insert(key, value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn server_owned_egress_names_are_refused_by_name() {
        let mut problems = Vec::new();
        split(
            env(&[
                ("OPENSANDBOX_EGRESS_SANDBOX_ID", "x"),
                ("OPENSANDBOX_EGRESS_FOO", "y"),
            ]),
            &mut problems,
        );
        assert_eq!(problems.len(), 2);
        assert!(
            problems[0]
                .message
                .starts_with("env.OPENSANDBOX_EGRESS_FOO: not allowed")
        );
        assert!(
            problems[1]
                .message
                .starts_with("env.OPENSANDBOX_EGRESS_SANDBOX_ID: not allowed")
        );
    }

    #[test]
    fn allowed_egress_names_leave_the_sandbox_env_except_transparent() {
        let mut problems = Vec::new();
        let out = split(
            env(&[
                ("OPENSANDBOX_EGRESS_LOG_LEVEL", "debug"),
                (MITMPROXY_TRANSPARENT, "true"),
                ("PATH_EXTRA", "1"),
            ]),
            &mut problems,
        );
        assert!(problems.is_empty());
        assert_eq!(
            out.sandbox,
            env(&[(MITMPROXY_TRANSPARENT, "true"), ("PATH_EXTRA", "1")])
        );
        assert_eq!(
            out.egress,
            env(&[
                ("OPENSANDBOX_EGRESS_LOG_LEVEL", "debug"),
                (MITMPROXY_TRANSPARENT, "true")
            ])
        );
    }

    #[test]
    fn the_lifecycle_name_is_reserved() {
        let mut problems = Vec::new();
        let out = split(env(&[(LIFECYCLE_ENV, "x")]), &mut problems);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("reserved"));
        assert!(out.sandbox.is_empty());
    }
}
