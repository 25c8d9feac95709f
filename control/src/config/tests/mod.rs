//! Tests for the configuration: defaults and environment here, rules and loading in children.

mod loading;
mod rules;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use super::raw::RawConfig;
use super::{
    Config, ConfigErrors, DEFAULT_DROP_CAPABILITIES, IngressMode, OrphanPolicy, RuntimeType,
    validate,
};

/// An environment with only `HOME` set.
fn env() -> HashMap<String, String> {
    env_with(&[("HOME", "/home/test")])
}

fn env_with(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn parse(text: &str) -> RawConfig {
    match toml::from_str(text) {
        Ok(raw) => raw,
        Err(error) => panic!("test TOML does not parse: {error}\n{text}"),
    }
}

fn valid(text: &str) -> Config {
    validate(parse(text), &env()).unwrap()
}

fn invalid_with(text: &str, env: &HashMap<String, String>) -> ConfigErrors {
    match validate(parse(text), env) {
        Ok(_) => panic!("expected a validation error for:\n{text}"),
        Err(errors) => errors,
    }
}

fn invalid(text: &str) -> ConfigErrors {
    invalid_with(text, &env())
}

/// Asserts `text` fails with a problem on exactly `key`, and that the message names it.
fn assert_rejects(text: &str, key: &str) {
    let errors = invalid(text);
    assert!(
        errors.problems.iter().any(|p| p.key == key),
        "expected a problem on {key} for:\n{text}\ngot:\n{errors}"
    );
    assert!(errors.to_string().contains(&format!("{key}: ")), "{errors}");
}

/// A valid gateway-mode `[ingress]` to build variations on.
const GATEWAY: &str = "[ingress]\nmode = \"gateway\"\n[ingress.gateway]\naddress = \"*.sandbox.example.com\"\n[ingress.gateway.route]\nmode = \"wildcard\"\n";

// === defaults ===

#[test]
fn empty_file_gives_documented_defaults() {
    let c = valid("");
    assert_eq!((c.server.host.as_str(), c.server.port), ("127.0.0.1", 8080));
    assert_eq!(
        (c.server.api_key.clone(), c.server.eip.clone()),
        (None, None)
    );
    assert_eq!(c.server.max_sandbox_timeout_seconds, None);
    assert_eq!(c.log.level, "info");
    assert_eq!(
        (c.runtime.kind, c.runtime.execd_image.clone()),
        (RuntimeType::Docker, None)
    );
    assert_eq!(c.docker.network_mode, "bridge");
    assert_eq!(c.docker.api_timeout, Duration::from_secs(180));
    assert_eq!(
        c.docker.drop_capabilities,
        DEFAULT_DROP_CAPABILITIES.map(str::to_owned).to_vec()
    );
    assert!(c.docker.no_new_privileges);
    assert_eq!(
        (
            c.docker.apparmor_profile.clone(),
            c.docker.seccomp_profile.clone()
        ),
        (None, None)
    );
    assert_eq!(c.docker.pids_limit, Some(4096));
    assert_eq!(c.ingress.mode, IngressMode::Direct);
    assert!(c.ingress.gateway.is_none() && c.ingress.secure_access.is_none());
    assert_eq!(
        (
            c.egress.image.clone(),
            c.egress.mode.as_str(),
            c.egress.disable_ipv6
        ),
        (None, "dns", true)
    );
    assert!(c.storage.allowed_host_paths.is_empty());
    assert_eq!(
        (
            c.storage.volume_default_size.as_str(),
            c.storage.ossfs_mount_root.as_str()
        ),
        ("1Gi", "/mnt/ossfs")
    );
    assert_eq!(
        c.store.path,
        PathBuf::from("/home/test/.sandgate/sandgate.db")
    );
    assert_eq!(c.sandgate.pending_failure_ttl, Duration::from_secs(3600));
    assert_eq!(c.sandgate.orphan_policy, OrphanPolicy::Adopt);
    assert_eq!(c.sandgate.shutdown_grace, Duration::from_secs(30));
    assert_eq!(c.sandgate.fake.provision_latency, Duration::ZERO);
    assert_eq!(c.sandgate.fake.operation_latency, Duration::ZERO);
    assert_eq!(
        (
            c.sandgate.fake.endpoint_host.as_str(),
            c.sandgate.fake.state_file.clone()
        ),
        ("127.0.0.1", None)
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn empty_tables_equal_absent_tables() {
    let text = "[server]\n[log]\n[runtime]\n[docker]\n[ingress]\n[egress]\n[storage]\n[store]\n[secure_runtime]\n[renew_intent]\n[sandgate]\n[sandgate.fake]\n";
    assert_eq!(valid(text), valid(""));
}

#[test]
fn values_are_carried_through() {
    let c = valid(
        "[server]\nhost = \"0.0.0.0\"\nport = 9000\neip = \"sandbox.example.com\"\nmax_sandbox_timeout_seconds = 86400\n\
         [log]\nlevel = \"WARNING\"\n[runtime]\ntype = \"fake\"\nexecd_image = \"opensandbox/execd:v1.0.18\"\n\
         [docker]\nnetwork_mode = \"host\"\napi_timeout = 5\npids_limit = 0\napparmor_profile = \"\"\nseccomp_profile = \"/etc/seccomp.json\"\n\
         [storage]\nallowed_host_paths = [\"/data\", \"/srv/shared\"]\n[store]\ntype = \"sqlite\"\npath = \"~/db/s.db\"\n\
         [sandgate]\norphan_policy = \"remove\"\nshutdown_grace_seconds = 0\nallowed_pvc_names = [\"shared-models\"]\n\
         [sandgate.fake]\nprovision_latency_ms = 250\noperation_latency_ms = 5\nendpoint_host = \"fake.local\"\nstate_file = \"~/fake.json\"\n",
    );
    assert_eq!(
        (
            c.server.host.as_str(),
            c.server.port,
            c.server.eip.as_deref()
        ),
        ("0.0.0.0", 9000, Some("sandbox.example.com"))
    );
    assert_eq!(c.server.max_sandbox_timeout_seconds, Some(86400));
    assert_eq!(c.log.level, "warn");
    assert_eq!(c.runtime.kind, RuntimeType::Fake);
    assert_eq!(
        c.runtime.execd_image.as_deref(),
        Some("opensandbox/execd:v1.0.18")
    );
    assert_eq!(
        (c.docker.network_mode.as_str(), c.docker.api_timeout),
        ("host", Duration::from_secs(5))
    );
    assert_eq!(
        (c.docker.pids_limit, c.docker.apparmor_profile.clone()),
        (None, None)
    );
    assert_eq!(
        c.docker.seccomp_profile.as_deref(),
        Some("/etc/seccomp.json")
    );
    assert_eq!(c.storage.allowed_host_paths, ["/data", "/srv/shared"]);
    assert_eq!(c.sandgate.allowed_pvc_names, ["shared-models"]);
    assert_eq!(c.store.path, PathBuf::from("/home/test/db/s.db"));
    assert_eq!(
        (c.sandgate.orphan_policy, c.sandgate.shutdown_grace),
        (OrphanPolicy::Remove, Duration::ZERO)
    );
    let fake = &c.sandgate.fake;
    assert_eq!(
        (fake.provision_latency, fake.operation_latency),
        (Duration::from_millis(250), Duration::from_millis(5))
    );
    assert_eq!(fake.endpoint_host, "fake.local");
    assert_eq!(fake.state_file, Some(PathBuf::from("/home/test/fake.json")));
}

#[test]
fn log_levels_accept_opensandbox_spellings() {
    let cases = [
        ("INFO", "info"),
        ("Debug", "debug"),
        ("trace", "trace"),
        ("warn", "warn"),
        ("CRITICAL", "error"),
        ("ERROR", "error"),
    ];
    for (given, expected) in cases {
        assert_eq!(
            valid(&format!("[log]\nlevel = \"{given}\"")).log.level,
            expected,
            "{given}"
        );
    }
}

// === environment ===

#[test]
fn api_key_env_overrides_the_file() {
    let file = "[server]\napi_key = \"from-file\"";
    let key = |text: &str, env: &HashMap<String, String>| {
        validate(parse(text), env).unwrap().server.api_key
    };
    assert_eq!(key(file, &env()).as_deref(), Some("from-file"));
    let from_env = env_with(&[("HOME", "/h"), ("OPENSANDBOX_SERVER_API_KEY", "from-env")]);
    assert_eq!(key(file, &from_env).as_deref(), Some("from-env"));
    assert_eq!(key("", &from_env).as_deref(), Some("from-env"));
    let empty_env = env_with(&[("HOME", "/h"), ("OPENSANDBOX_SERVER_API_KEY", "")]);
    assert_eq!(
        key(file, &empty_env),
        None,
        "an empty env var turns the key off"
    );
    let blank_env = env_with(&[("HOME", "/h"), ("OPENSANDBOX_SERVER_API_KEY", "  ")]);
    assert_eq!(key(file, &blank_env), None);
    assert_eq!(
        key("[server]\napi_key = \" \"", &env()),
        None,
        "a blank file key means no key"
    );
}

#[test]
fn api_key_is_redacted_in_debug_output() {
    let c = valid("[server]\napi_key = \"hunter2\"");
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn pending_failure_ttl_env_overrides_the_file() {
    let file = "[sandgate]\npending_failure_ttl_seconds = 60";
    assert_eq!(
        valid(file).sandgate.pending_failure_ttl,
        Duration::from_secs(60)
    );
    let overridden = env_with(&[("HOME", "/h"), ("PENDING_FAILURE_TTL", "120")]);
    let c = validate(parse(file), &overridden).unwrap();
    assert_eq!(c.sandgate.pending_failure_ttl, Duration::from_secs(120));
    for bad in ["soon", "-5", "0", "1.5"] {
        let env = env_with(&[("HOME", "/h"), ("PENDING_FAILURE_TTL", bad)]);
        let errors = invalid_with(file, &env);
        assert_eq!(errors.problems.len(), 1, "{errors}");
        assert_eq!(errors.problems[0].key, "PENDING_FAILURE_TTL", "{errors}");
        assert!(
            errors.to_string().starts_with("PENDING_FAILURE_TTL: "),
            "{errors}"
        );
    }
}

#[test]
fn home_is_needed_only_for_home_relative_paths() {
    let no_home = HashMap::new();
    let errors = invalid_with("", &no_home);
    assert_eq!(errors.problems[0].key, "store.path", "{errors}");
    let errors = invalid_with("[store]\npath = \"~/s.db\"", &no_home);
    assert_eq!(errors.problems[0].key, "store.path", "{errors}");
    let c = validate(
        parse("[store]\npath = \"/var/lib/sandgate/s.db\""),
        &no_home,
    )
    .unwrap();
    assert_eq!(c.store.path, PathBuf::from("/var/lib/sandgate/s.db"));
    let c = valid("[store]\npath = \"~other/s.db\"");
    assert_eq!(
        c.store.path,
        PathBuf::from("~other/s.db"),
        "only ~ and ~/ are expanded"
    );
}
