//! Tests of configuration loading: defaults, the example file, every rule,
//! and that all problems are reported together.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::*;

fn no_env() -> HashMap<String, String> {
    HashMap::new()
}

fn load(text: &str) -> Result<Config, ConfigError> {
    load_str(text, "test.toml", &no_env())
}

fn load_with(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    load_str(text, "test.toml", &env)
}

/// The problems of an invalid config, as `key: message` lines.
fn problems(text: &str) -> Vec<String> {
    match load(text) {
        Err(ConfigError::Invalid { errors, .. }) => {
            errors.problems.iter().map(ToString::to_string).collect()
        }
        Err(other) => panic!("expected validation problems, got {other}"),
        Ok(_) => panic!("expected validation problems, the config is valid"),
    }
}

/// Asserts that `text` fails with exactly one problem on `key` containing `fragment`.
fn rejects(text: &str, key: &str, fragment: &str) {
    let found = problems(text);
    assert_eq!(found.len(), 1, "{text}\n{found:#?}");
    assert!(
        found[0].starts_with(&format!("{key}: ")) && found[0].contains(fragment),
        "{text}\n{found:#?}"
    );
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

#[test]
fn h2c_can_be_turned_off_and_must_be_a_boolean() {
    assert!(!load("[server]\nh2c = false\n").unwrap().server.h2c);
    let typed = load("[server]\nh2c = \"on\"\n").unwrap_err().to_string();
    assert!(typed.contains("h2c"), "{typed}");
}

#[test]
fn empty_file_gives_the_documented_defaults() {
    let config = load("").unwrap();
    assert_eq!(config.server.listen, [addr("127.0.0.1:28888")]);
    assert_eq!(config.server.threads, 2);
    assert_eq!(config.server.grace_period, Duration::from_secs(10));
    assert!(config.server.h2c, "h2c is served by default");
    assert_eq!(config.tls, None);
    assert_eq!(config.admin.listen, addr("127.0.0.1:28889"));
    assert_eq!(config.routing.modes, RouteMode::ALL);
    assert_eq!(config.routing.wildcard_domains, ["sandbox.localhost"]);
    assert_eq!(config.routing.pending_wait, Duration::from_secs(30));
    assert_eq!(config.routing.host_policy, HostPolicy::Preserve);
    assert_eq!(config.timeouts.connect, Duration::from_millis(5000));
    assert_eq!(config.timeouts.idle, Some(Duration::from_secs(300)));
    assert_eq!(config.timeouts.total, None);
    assert_eq!(config.control.url, "http://127.0.0.1:8080");
    assert_eq!(config.control.authority, "127.0.0.1:8080");
    assert_eq!(config.control.token, None);
    assert_eq!(config.control.reconnect_max, Duration::from_secs(10));
    assert_eq!(config.auth.edge_api_key, None);
    assert_eq!(config.auth.edge_api_key_header, "opensandbox-edge-key");
    assert!(config.secure_access.keys.is_empty());
    assert_eq!(config.log.level, "info");
    assert!(config.log.access_log);
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert!(config.warnings[0].starts_with("control.token: "));
    assert_eq!(super::load(None, &no_env()).unwrap(), config);
}

#[test]
fn the_example_file_is_valid_and_shows_the_defaults() {
    let example = include_str!("../../../config/proxy.toml");
    let config = load_str(example, "config/proxy.toml", &no_env()).unwrap();
    let defaults = load("").unwrap();
    assert_eq!(config.server, defaults.server);
    assert_eq!(config.tls, None);
    assert_eq!(config.admin, defaults.admin);
    assert_eq!(config.routing, defaults.routing);
    assert_eq!(config.timeouts, defaults.timeouts);
    assert_eq!(config.control.url, defaults.control.url);
    assert_eq!(config.control.reconnect_max, defaults.control.reconnect_max);
    assert_eq!(
        config.auth.edge_api_key_header,
        defaults.auth.edge_api_key_header
    );
    assert_eq!(config.log, defaults.log);
    for key in [
        "[server]",
        "[tls]",
        "[admin]",
        "[routing]",
        "[timeouts]",
        "[control]",
        "[auth]",
        "[secure_access]",
        "[log]",
    ] {
        assert!(example.contains(key), "the example documents {key}");
    }
}

#[test]
fn unknown_keys_and_wrong_types_fail_the_parse() {
    let unknown = load("[server]\nlisten_addr = \"x\"\n")
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("listen_addr"), "{unknown}");
    let typed = load("[server]\nthreads = \"two\"\n")
        .unwrap_err()
        .to_string();
    assert!(typed.contains("threads"), "{typed}");
    assert!(load("[nope]\n").is_err());
}

#[test]
fn reports_every_problem_at_once() {
    let text = r#"
        [server]
        listen = ["nowhere", "127.0.0.1:1", "127.0.0.1:1"]
        threads = 0
        grace_period_seconds = -1
        [tls]
        enabled = true
        [admin]
        listen = "127.0.0.1:1"
        [routing]
        modes = ["header", "dns"]
        wildcard_domains = ["*.example.com"]
        pending_wait_seconds = 7200
        host_policy = "client"
        [timeouts]
        connect_ms = 0
        idle_seconds = 90000
        total_seconds = -5
        [control]
        url = "https://control:8080"
        reconnect_max_seconds = 0
        [auth]
        edge_api_key_header = "Host"
        [[secure_access.keys]]
        key_id = "A"
        key = "%%%"
        [log]
        level = "loud"
    "#;
    let found = problems(text);
    let keys: Vec<&str> = found
        .iter()
        .map(|p| p.split(": ").next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "server.listen[0]",
            "server.listen[2]",
            "server.threads",
            "server.grace_period_seconds",
            "tls.listen",
            "tls.cert_file",
            "tls.key_file",
            "admin.listen",
            "routing.modes[1]",
            "routing.wildcard_domains[0]",
            "routing.pending_wait_seconds",
            "routing.host_policy",
            "timeouts.connect_ms",
            "timeouts.idle_seconds",
            "timeouts.total_seconds",
            "control.url",
            "control.reconnect_max_seconds",
            "auth.edge_api_key_header",
            "secure_access.keys[0].key_id",
            "secure_access.keys[0].key",
            "log.level",
        ],
        "{found:#?}"
    );
    let text = load(text).unwrap_err().to_string();
    assert!(
        text.starts_with("test.toml: invalid configuration:\n"),
        "{text}"
    );
}

#[test]
fn server_rules() {
    let config =
        load("[server]\nlisten = \"0.0.0.0:80\"\nthreads = 8\ngrace_period_seconds = 0\n").unwrap();
    assert_eq!(
        config.server.listen,
        [addr("0.0.0.0:80")],
        "one string is accepted"
    );
    assert_eq!(config.server.threads, 8);
    assert_eq!(config.server.grace_period, Duration::ZERO);
    let both = load("[server]\nlisten = [\"127.0.0.1:1\", \"[::1]:1\"]\n").unwrap();
    assert_eq!(both.server.listen, [addr("127.0.0.1:1"), addr("[::1]:1")]);
    rejects("[server]\nlisten = []\n", "server.listen", "at least one");
    rejects(
        "[server]\nlisten = \"localhost:80\"\n",
        "server.listen",
        "not an ip:port",
    );
    rejects(
        "[server]\nlisten = \"::1:80\"\n",
        "server.listen",
        "[::1]:28888",
    );
    rejects(
        "[server]\nlisten = [\"127.0.0.1:1\", \"127.0.0.1:1\"]\n",
        "server.listen[1]",
        "listed twice",
    );
    rejects("[server]\nthreads = 1025\n", "server.threads", "1..=1024");
    rejects(
        "[server]\ngrace_period_seconds = 3601\n",
        "server.grace_period_seconds",
        "0..=3600",
    );
}

#[test]
fn listeners_must_not_collide() {
    rejects(
        "[admin]\nlisten = \"127.0.0.1:28888\"\n",
        "admin.listen",
        "collides with server.listen",
    );
    rejects(
        "[server]\nlisten = \"0.0.0.0:28889\"\n",
        "admin.listen",
        "collides with server.listen 0.0.0.0:28889",
    );
    assert!(
        load("[admin]\nlisten = \"127.0.0.2:28888\"\n").is_ok(),
        "different addresses on one port"
    );
}

#[test]
fn tls_rules() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("cert.pem");
    std::fs::write(
        &pem,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let junk = dir.path().join("junk.txt");
    std::fs::write(&junk, "not pem").unwrap();
    let (pem, junk) = (pem.display(), junk.display());
    let ok = format!(
        "[tls]\nenabled = true\nlisten = \"127.0.0.1:28443\"\ncert_file = \"{pem}\"\nkey_file = \"{pem}\"\n"
    );
    let tls = load(&ok).unwrap().tls.unwrap();
    assert_eq!(tls.listen, [addr("127.0.0.1:28443")]);
    assert!(tls.http2, "HTTP/2 is offered by default");
    let h1 = load(&format!("{ok}http2 = false\n")).unwrap().tls.unwrap();
    assert!(!h1.http2);
    let typed = load(&format!("{ok}http2 = \"yes\"\n"))
        .unwrap_err()
        .to_string();
    assert!(typed.contains("http2"), "{typed}");
    let alone = load("[tls]\nhttp2 = false\n").unwrap();
    assert_eq!(alone.tls, None, "http2 alone does not turn TLS on");
    assert!(
        !alone.warnings.iter().any(|w| w.starts_with("tls.")),
        "{:?}",
        alone.warnings
    );
    let bad = format!(
        "[tls]\nenabled = true\nlisten = \"127.0.0.1:28443\"\ncert_file = \"{junk}\"\nkey_file = \"/nonexistent/key.pem\"\n"
    );
    let found = problems(&bad);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].starts_with("tls.cert_file: ") && found[0].contains("not a PEM file"));
    assert!(found[1].starts_with("tls.key_file: ") && found[1].contains("cannot read"));
    let clash = format!(
        "[tls]\nenabled = true\nlisten = \"127.0.0.1:28888\"\ncert_file = \"{pem}\"\nkey_file = \"{pem}\"\n"
    );
    rejects(&clash, "tls.listen", "collides with server.listen");
    let implicit = format!(
        "[tls]\nlisten = \"127.0.0.1:28443\"\ncert_file = \"{pem}\"\nkey_file = \"{pem}\"\n"
    );
    assert!(
        load(&implicit).unwrap().tls.is_some(),
        "setting the keys enables TLS"
    );
    assert_eq!(load("[tls]\n").unwrap().tls, None, "an empty table is off");
    let off =
        load("[tls]\nenabled = false\nlisten = \"127.0.0.1:443\"\ncert_file = \"x\"\n").unwrap();
    assert_eq!(off.tls, None);
    assert!(
        off.warnings
            .iter()
            .any(|w| w.starts_with("tls.listen: ignored")),
        "{:?}",
        off.warnings
    );
    assert!(
        off.warnings
            .iter()
            .any(|w| w.starts_with("tls.cert_file: ignored"))
    );
}

#[test]
fn routing_rules() {
    let config = load(
        "[routing]\nmodes = [\"uri\", \"header\"]\nwildcard_domains = []\npending_wait_seconds = 0\nhost_policy = \"upstream\"\n",
    )
    .unwrap();
    assert_eq!(
        config.routing.modes,
        [RouteMode::Header, RouteMode::Uri],
        "kept in examination order"
    );
    assert!(config.routing.enabled(RouteMode::Uri) && !config.routing.enabled(RouteMode::Wildcard));
    assert_eq!(config.routing.pending_wait, Duration::ZERO);
    assert_eq!(config.routing.host_policy, HostPolicy::Upstream);
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.starts_with("routing.wildcard_domains: ignored"))
    );
    let domains =
        load("[routing]\nwildcard_domains = [\" Sandbox.Example.COM \", \"a-1.b\"]\n").unwrap();
    assert_eq!(
        domains.routing.wildcard_domains,
        ["sandbox.example.com", "a-1.b"]
    );
    rejects("[routing]\nmodes = []\n", "routing.modes", "at least one");
    rejects(
        "[routing]\nmodes = [\"header\", \"header\"]\n",
        "routing.modes[1]",
        "listed twice",
    );
    rejects(
        "[routing]\nmodes = [\"wild\"]\n",
        "routing.modes[0]",
        "expected one of \"header\", \"server_proxy\", \"wildcard\", \"uri\"",
    );
    rejects(
        "[routing]\nwildcard_domains = []\n",
        "routing.wildcard_domains",
        "at least one domain",
    );
    for bad in [
        "*.example.com",
        ".example.com",
        "example.com:80",
        "exa mple.com",
        "-a.com",
        "a..b",
        "",
    ] {
        let text = format!("[routing]\nmodes = [\"header\"]\nwildcard_domains = [\"{bad}\"]\n");
        let found = problems(&text);
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("routing.wildcard_domains[0]: ")),
            "{bad:?}: {found:?}"
        );
    }
    rejects(
        "[routing]\nwildcard_domains = [\"a.b\", \"A.B\"]\n",
        "routing.wildcard_domains[1]",
        "listed twice",
    );
    rejects(
        "[routing]\npending_wait_seconds = 3601\n",
        "routing.pending_wait_seconds",
        "0..=3600",
    );
    rejects(
        "[routing]\nhost_policy = \"Preserve\"\n",
        "routing.host_policy",
        "\"preserve\", \"upstream\"",
    );
}

#[test]
fn timeout_rules() {
    let config =
        load("[timeouts]\nconnect_ms = 1\nidle_seconds = 0\ntotal_seconds = 60\n").unwrap();
    assert_eq!(config.timeouts.connect, Duration::from_millis(1));
    assert_eq!(config.timeouts.idle, None, "0 means no idle timeout");
    assert_eq!(config.timeouts.total, Some(Duration::from_secs(60)));
    rejects(
        "[timeouts]\nconnect_ms = 600001\n",
        "timeouts.connect_ms",
        "1..=600000",
    );
    rejects(
        "[timeouts]\nidle_seconds = -1\n",
        "timeouts.idle_seconds",
        "0..=86400",
    );
    rejects(
        "[timeouts]\ntotal_seconds = 604801\n",
        "timeouts.total_seconds",
        "0..=604800",
    );
}

#[test]
fn control_rules() {
    let config = load("[control]\nurl = \"http://control.internal/\"\ntoken = \"t0ken\"\nreconnect_max_seconds = 3600\n").unwrap();
    assert_eq!(config.control.authority, "control.internal:80");
    assert_eq!(config.control.url, "http://control.internal");
    assert_eq!(config.control.token.as_deref(), Some("t0ken"));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert!(
        !format!("{:?}", config.control).contains("t0ken"),
        "Debug redacts the token"
    );
    let v6 = load("[control]\nurl = \"http://[::1]:9000\"\n").unwrap();
    assert_eq!(v6.control.authority, "[::1]:9000");
    rejects("[control]\nurl = \"https://c:1\"\n", "control.url", "https");
    rejects("[control]\nurl = \"c:8080\"\n", "control.url", "http://");
    rejects(
        "[control]\nurl = \"http://c:8080/api\"\n",
        "control.url",
        "without a path",
    );
    rejects(
        "[control]\nurl = \"http://u:p@c:8080\"\n",
        "control.url",
        "user information",
    );
    rejects(
        "[control]\ntoken = \"has space\"\n",
        "control.token",
        "printable ASCII",
    );
    rejects(
        "[control]\nreconnect_max_seconds = 0\n",
        "control.reconnect_max_seconds",
        "1..=3600",
    );
}

#[test]
fn environment_overrides_secrets() {
    let file = "[control]\ntoken = \"from-file\"\n[auth]\nedge_api_key = \"file-key\"\n";
    let config = load_with(
        file,
        &[
            (vars::ROUTES_TOKEN, "from-env"),
            (vars::EDGE_API_KEY, "env-key"),
        ],
    )
    .unwrap();
    assert_eq!(config.control.token.as_deref(), Some("from-env"));
    assert_eq!(config.auth.edge_api_key.as_deref(), Some("env-key"));
    let cleared = load_with(file, &[(vars::ROUTES_TOKEN, ""), (vars::EDGE_API_KEY, " ")]).unwrap();
    assert_eq!(
        cleared.control.token, None,
        "an empty variable removes the file's token"
    );
    assert_eq!(cleared.auth.edge_api_key, None);
    let bad = load_with("", &[(vars::EDGE_API_KEY, "two words")])
        .unwrap_err()
        .to_string();
    assert!(
        bad.contains("SANDGATE_EDGE_API_KEY: must be printable ASCII"),
        "{bad}"
    );
    assert!(!bad.contains("two words"), "secrets are never echoed");
}

#[test]
fn auth_rules() {
    let config =
        load("[auth]\nedge_api_key = \"k\"\nedge_api_key_header = \"X-Edge-Key\"\n").unwrap();
    assert_eq!(config.auth.edge_api_key_header, "x-edge-key");
    assert!(
        !format!("{:?}", config.auth).contains("\"k\""),
        "Debug redacts the key"
    );
    rejects(
        "[auth]\nedge_api_key_header = \"bad header\"\n",
        "auth.edge_api_key_header",
        "not a valid header name",
    );
    rejects(
        "[auth]\nedge_api_key_header = \"OpenSandbox-Ingress-To\"\n",
        "auth.edge_api_key_header",
        "routing or secure access",
    );
}

#[test]
fn secure_access_rules() {
    let config = load(
        "[secure_access]\nkeys = [{ key_id = \"a\", key = \"c2VjcmV0\" }, { key_id = \"7\", key = \"YQ\" }]\n",
    )
    .unwrap();
    let ids: Vec<char> = config.secure_access.keys.iter().map(|k| k.id).collect();
    assert_eq!(ids, ['a', '7']);
    assert_eq!(
        config.secure_access.secret('a').as_deref(),
        Some(&b"secret"[..])
    );
    assert_eq!(
        config.secure_access.secret('7').as_deref(),
        Some(&b"a"[..]),
        "unpadded base64"
    );
    assert_eq!(config.secure_access.secret('b'), None);
    assert!(
        !format!("{config:?}").contains("secret\""),
        "Debug redacts keys"
    );
    let key = |id: &str, key: &str| {
        format!("[[secure_access.keys]]\nkey_id = \"{id}\"\nkey = \"{key}\"\n")
    };
    rejects(
        &key("A", "YQ=="),
        "secure_access.keys[0].key_id",
        "[0-9a-z]",
    );
    rejects(
        &key("ab", "YQ=="),
        "secure_access.keys[0].key_id",
        "exactly one character",
    );
    rejects(
        &key("", "YQ=="),
        "secure_access.keys[0].key_id",
        "exactly one character",
    );
    rejects(&key("a", "Y"), "secure_access.keys[0].key", "not base64");
    rejects(
        &key("a", ""),
        "secure_access.keys[0].key",
        "at least one byte",
    );
    rejects(
        &format!("{}{}", key("a", "YQ"), key("a", "Yg")),
        "secure_access.keys[1].key_id",
        "used by an earlier key",
    );
    rejects(
        "[[secure_access.keys]]\nkey = \"YQ\"\n",
        "secure_access.keys[0].key_id",
        "required",
    );
    rejects(
        "[[secure_access.keys]]\nkey_id = \"a\"\n",
        "secure_access.keys[0].key",
        "required",
    );
    let secret_text = problems(&key("a", "c2VjcmV0!")).join("\n");
    assert!(
        !secret_text.contains("c2VjcmV0"),
        "the key is never echoed: {secret_text}"
    );
}

#[test]
fn log_rules() {
    let config = load("[log]\nlevel = \"WARN\"\naccess_log = false\n").unwrap();
    assert_eq!(config.log.level, "warn");
    assert!(!config.log.access_log);
    rejects(
        "[log]\nlevel = \"verbose\"\n",
        "log.level",
        "expected one of",
    );
}
