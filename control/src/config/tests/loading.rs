//! Tests for OpenSandbox compatibility, parsing, and finding and reading the file.

use std::path::Path;

use super::{env, env_with, parse, valid};
use crate::config::{
    ConfigError, PathSource, RuntimeType, check, load, load_file, load_str, resolve_path, validate,
    warnings,
};

// === OpenSandbox compatibility and parsing ===

#[test]
fn an_opensandbox_docker_config_loads_with_warnings() {
    let text = r#"
[server]
host = "0.0.0.0"
port = 8080
api_key = "change-me"
max_sandbox_timeout_seconds = 86400

[log]
level = "INFO"

[runtime]
type = "docker"
execd_image = "opensandbox/execd:v1.0.18"

[docker]
network_mode = "bridge"

[ingress]
mode = "direct"

[storage]
allowed_host_paths = []

[pause]
enabled = true
interval = 30
"#;
    let c = load_str(text, "opensandbox.toml", &env()).unwrap();
    assert_eq!(
        (c.server.host.as_str(), c.server.api_key.as_deref()),
        ("0.0.0.0", Some("change-me"))
    );
    assert_eq!(
        c.runtime.execd_image.as_deref(),
        Some("opensandbox/execd:v1.0.18")
    );
    assert_eq!(c.warnings, ["pause: legacy table, ignored"]);
}

#[test]
fn every_ignored_key_warns() {
    let text = "[server]\ntimeout_keep_alive = 30\nlimit_concurrency = 1024\nbacklog = 2048\nthread_pool_size = 200\nloop = \"auto\"\nhttp = \"auto\"\ntimeout_graceful_shutdown = 5\n\
        [proxy]\nresolve_internal = false\n[tenants]\nprovider = \"file\"\n[otel]\nenabled = true\nendpoint = \"http://otel:4318\"\nservice_name = \"s\"\nexport_interval_millis = 1000\n\
        [log]\nfile_enabled = true\nfile_path = \"/tmp/s.log\"\naccess_file_path = \"/tmp/a.log\"\nfile_max_bytes = 100\nfile_backup_count = 5\n\
        [pause]\n[runtime]\ntype = \"kubernetes\"\nexecd_run_as_init = true\n\
        [docker]\nport_range_min = 40000\nport_range_max = 60000\npublish_host = \"127.0.0.1\"\n\
        [kubernetes]\nnamespace = \"sandboxes\"\nworkload_provider = \"agent-sandbox\"\n[kubernetes.execd_init_resources]\nlimits = { cpu = \"100m\" }\n\
        [agent_sandbox]\n[secure_runtime]\ntype = \"gvisor\"\nk8s_runtime_class = \"gvisor\"\n\
        [renew_intent]\nenabled = true\nredis.enabled = true\nredis.dsn = \"redis://localhost\"\n\
        [store]\ntype = \"postgresql\"\n[store.postgresql]\ndsn = \"postgresql://db/s\"\n\
        [egress]\nimage = \"opensandbox/egress:v1.1.0\"\nmode = \"dns+nft\"\ndisable_ipv6 = true\notlp_endpoint = \"http://otel:4318\"\nreadiness_timeout_seconds = 30\n\
        requests = { cpu = \"25m\" }\nlimits = { cpu = \"250m\" }\n[egress.upstream_proxy]\nurl = \"http://proxy:3128\"\n\
        [sandgate]\nshutdown_grace_seconds = 10\n";
    let warnings = valid(text).warnings;
    for key in warnings::keys() {
        assert!(
            warnings.iter().any(|w| w.starts_with(&format!("{key}: "))),
            "{key} missing from {warnings:#?}"
        );
    }
    for key in [
        "kubernetes.namespace",
        "kubernetes.workload_provider",
        "kubernetes.execd_init_resources",
    ] {
        assert!(
            warnings.iter().any(|w| w.starts_with(&format!("{key}: "))),
            "{key} missing"
        );
    }
    assert!(valid("[log]\nfile_enabled = false").warnings.is_empty());
    assert!(valid("[secure_runtime]\ntype = \"\"").warnings.is_empty());
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    let Err(error) = load_str("[server]\nprot = 1\n", "bad.toml", &env()) else {
        panic!("an unknown key must be rejected");
    };
    assert!(matches!(error, ConfigError::Parse { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.starts_with("bad.toml: "), "{message}");
    assert!(
        message.contains("prot") && message.contains("port"),
        "{message}"
    );
    assert!(message.contains("line 2"), "{message}");
    let Err(error) = load_str("[servre]\nport = 1\n", "bad.toml", &env()) else {
        panic!("an unknown table must be rejected");
    };
    assert!(error.to_string().contains("servre"), "{error}");
}

#[test]
fn renew_intent_redis_dotted_and_table_forms_match() {
    let dotted = "[renew_intent]\nenabled = true\nredis.enabled = true\nredis.dsn = \"redis://r:6379/0\"\nredis.consumer_concurrency = 4\n";
    let table = "[renew_intent]\nenabled = true\n[renew_intent.redis]\nenabled = true\ndsn = \"redis://r:6379/0\"\nconsumer_concurrency = 4\n";
    for text in [dotted, table] {
        let raw = parse(text);
        let redis = raw.renew_intent.redis.as_ref().unwrap();
        assert_eq!(
            (
                redis.enabled,
                redis.dsn.as_deref(),
                redis.consumer_concurrency
            ),
            (Some(true), Some("redis://r:6379/0"), Some(4))
        );
        assert!(validate(raw, &env()).is_ok());
    }
}

#[test]
fn config_directory_files_all_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let control = name.starts_with("control") || name.starts_with("opensandbox");
        if control && name.ends_with(".toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            if let Err(error) = load_str(&text, &path.display().to_string(), &env()) {
                panic!("{error}");
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 4,
        "expected the example configs in {}",
        dir.display()
    );
}

// === finding the file ===

#[test]
fn resolve_path_prefers_flag_then_env_then_home() {
    let home = tempfile::tempdir().unwrap();
    let home_str = home.path().to_str().unwrap();
    let env = env_with(&[
        ("HOME", home_str),
        ("SANDBOX_CONFIG_PATH", "~/from-env.toml"),
    ]);
    let flag = Path::new("/etc/sandgate.toml");
    assert_eq!(
        resolve_path(Some(flag), &env),
        Some(PathSource::Flag(flag.to_owned()))
    );
    let from_env = resolve_path(None, &env).unwrap();
    assert_eq!(from_env, PathSource::Env(home.path().join("from-env.toml")));
    assert_eq!(from_env.origin(), "SANDBOX_CONFIG_PATH");
    let only_home = env_with(&[("HOME", home_str), ("SANDBOX_CONFIG_PATH", "")]);
    assert_eq!(
        resolve_path(None, &only_home),
        None,
        "no ~/.sandbox.toml yet"
    );
    std::fs::write(home.path().join(".sandbox.toml"), "").unwrap();
    assert_eq!(
        resolve_path(None, &only_home),
        Some(PathSource::Home(home.path().join(".sandbox.toml")))
    );
}

#[test]
fn load_uses_defaults_without_a_file_and_rejects_missing_named_files() {
    let home = tempfile::tempdir().unwrap();
    let home_str = home.path().to_str().unwrap();
    let env = env_with(&[("HOME", home_str)]);
    let c = load(None, &env).unwrap();
    assert_eq!(c.runtime.kind, RuntimeType::Docker);
    assert_eq!(c.store.path, home.path().join(".sandgate/sandgate.db"));

    let missing = home.path().join("missing.toml");
    let error = load(Some(&missing), &env).unwrap_err();
    assert!(
        matches!(
            error,
            ConfigError::NotFound {
                origin: "--config",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("missing.toml"), "{error}");

    let env = env_with(&[
        ("HOME", home_str),
        ("SANDBOX_CONFIG_PATH", missing.to_str().unwrap()),
    ]);
    let error = load(None, &env).unwrap_err();
    assert!(
        error.to_string().contains("SANDBOX_CONFIG_PATH")
            && error.to_string().contains("missing.toml"),
        "{error}"
    );
}

#[test]
fn load_and_check_read_files_and_report_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_with(&[("HOME", dir.path().to_str().unwrap())]);
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[runtime]\ntype = \"fake\"\n").unwrap();
    assert_eq!(
        load(Some(&good), &env).unwrap().runtime.kind,
        RuntimeType::Fake
    );
    assert_eq!(check(&good, &env).unwrap().runtime.kind, RuntimeType::Fake);
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nport = 0\n[docker]\napi_timeout = 0\n").unwrap();
    let message = load_file(&bad, &env).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("{}: invalid configuration:\n", bad.display())),
        "{message}"
    );
    assert!(
        message.contains("server.port") && message.contains("docker.api_timeout"),
        "{message}"
    );
    let error = check(&dir.path().join("nope.toml"), &env).unwrap_err();
    assert!(
        matches!(
            error,
            ConfigError::NotFound {
                origin: "--check-config",
                ..
            }
        ),
        "{error:?}"
    );
}
