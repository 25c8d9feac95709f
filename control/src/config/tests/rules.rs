//! Tests that every validation rule reports its key.

use super::{GATEWAY, assert_rejects, invalid, valid};
use crate::config::{IngressMode, RouteMode, RuntimeType};

// === every rule ===

#[test]
fn each_rule_names_its_key() {
    let cases: &[(&str, &str)] = &[
        ("[server]\nport = 0", "server.port"),
        ("[server]\nport = 70000", "server.port"),
        ("[server]\nhost = \" \"", "server.host"),
        (
            "[server]\nmax_sandbox_timeout_seconds = 59",
            "server.max_sandbox_timeout_seconds",
        ),
        (
            "[server]\ntimeout_keep_alive = 0",
            "server.timeout_keep_alive",
        ),
        (
            "[server]\nlimit_concurrency = -1",
            "server.limit_concurrency",
        ),
        ("[server]\nbacklog = 0", "server.backlog"),
        ("[server]\nthread_pool_size = 0", "server.thread_pool_size"),
        ("[server]\nloop = \"tokio\"", "server.loop"),
        ("[server]\nhttp = \"h2\"", "server.http"),
        ("[log]\nlevel = \"loud\"", "log.level"),
        ("[log]\nfile_max_bytes = 0", "log.file_max_bytes"),
        ("[log]\nfile_backup_count = -1", "log.file_backup_count"),
        ("[runtime]\ntype = \"podman\"", "runtime.type"),
        ("[runtime]\nexecd_image = \"\"", "runtime.execd_image"),
        ("[docker]\nnetwork_mode = \"\"", "docker.network_mode"),
        ("[docker]\napi_timeout = 0", "docker.api_timeout"),
        (
            "[docker]\ndrop_capabilities = [\"NET_RAW\", \"\"]",
            "docker.drop_capabilities[1]",
        ),
        ("[docker]\npids_limit = -1", "docker.pids_limit"),
        ("[kubernetes]\nnamespace = \"x\"", "kubernetes"),
        ("[runtime]\ntype = \"fake\"\n[kubernetes]", "kubernetes"),
        ("[agent_sandbox]", "agent_sandbox"),
        (
            "[runtime]\ntype = \"kubernetes\"\n[agent_sandbox]",
            "agent_sandbox",
        ),
        (
            "[runtime]\ntype = \"kubernetes\"\n[kubernetes]\nworkload_provider = \"batchsandbox\"\n[agent_sandbox]",
            "agent_sandbox",
        ),
        (
            "[runtime]\ntype = \"kubernetes\"\n[kubernetes]\nworkload_provider = \"agent-sandbox\"\n[agent_sandbox]\nshutdown_policy = \"Keep\"",
            "agent_sandbox.shutdown_policy",
        ),
        (
            "[runtime]\ntype = \"kubernetes\"\n[kubernetes]\nworkload_provider = \"\"",
            "kubernetes.workload_provider",
        ),
        (
            "[runtime]\ntype = \"kubernetes\"\n[kubernetes]\nimage_pull_policy = \"Sometimes\"",
            "kubernetes.image_pull_policy",
        ),
        (
            "[runtime]\ntype = \"kubernetes\"\n[kubernetes]\nsandbox_create_timeout_seconds = 0",
            "kubernetes.sandbox_create_timeout_seconds",
        ),
        (
            "[runtime]\ntype = \"kubernetes\"\n[kubernetes]\nsandbox_create_poll_interval_seconds = 0.0",
            "kubernetes.sandbox_create_poll_interval_seconds",
        ),
        (
            "[runtime]\ntype = \"kubernetes\"\n[kubernetes]\nsnapshot_create_timeout_seconds = 0",
            "kubernetes.snapshot_create_timeout_seconds",
        ),
        (
            "[runtime]\ntype = \"kubernetes\"\n[kubernetes]\ninformer_resync_seconds = -1",
            "kubernetes.informer_resync_seconds",
        ),
        (
            "[runtime]\ntype = \"kubernetes\"\n[kubernetes]\ninformer_watch_timeout_seconds = -1",
            "kubernetes.informer_watch_timeout_seconds",
        ),
        (
            "[runtime]\ntype = \"kubernetes\"\n[kubernetes]\nread_qps = -1.5",
            "kubernetes.read_qps",
        ),
        (
            "[runtime]\ntype = \"kubernetes\"\n[kubernetes]\nwrite_qps = -1",
            "kubernetes.write_qps",
        ),
        (
            "[runtime]\ntype = \"kubernetes\"\n[kubernetes]\nread_burst = -1",
            "kubernetes.read_burst",
        ),
        (
            "[runtime]\ntype = \"kubernetes\"\n[kubernetes]\nwrite_burst = -1",
            "kubernetes.write_burst",
        ),
        ("[egress]\nmode = \"nft\"", "egress.mode"),
        ("[egress]\nimage = \"\"", "egress.image"),
        (
            "[storage]\nallowed_host_paths = [\"/ok\", \"data\"]",
            "storage.allowed_host_paths[1]",
        ),
        (
            "[storage]\nossfs_mount_root = \"mnt/ossfs\"",
            "storage.ossfs_mount_root",
        ),
        (
            "[storage]\nvolume_default_size = \"\"",
            "storage.volume_default_size",
        ),
        ("[store]\ntype = \"postgres\"", "store.type"),
        ("[store]\npath = \"\"", "store.path"),
        ("[secure_runtime]\ntype = \"runc\"", "secure_runtime.type"),
        (
            "[secure_runtime]\ndocker_runtime = \"runsc\"",
            "secure_runtime.docker_runtime",
        ),
        (
            "[secure_runtime]\ntype = \"\"\nk8s_runtime_class = \"gvisor\"",
            "secure_runtime.k8s_runtime_class",
        ),
        ("[secure_runtime]\ntype = \"gvisor\"", "secure_runtime.type"),
        (
            "[secure_runtime]\ntype = \"firecracker\"\nk8s_runtime_class = \"fc\"",
            "secure_runtime.type",
        ),
        (
            "[runtime]\ntype = \"kubernetes\"\n[secure_runtime]\ntype = \"firecracker\"",
            "secure_runtime.k8s_runtime_class",
        ),
        (
            "[renew_intent]\nmin_interval_seconds = 0",
            "renew_intent.min_interval_seconds",
        ),
        (
            "[renew_intent]\nredis.enabled = true",
            "renew_intent.redis.dsn",
        ),
        (
            "[renew_intent.redis]\nqueue_key = \"\"",
            "renew_intent.redis.queue_key",
        ),
        (
            "[renew_intent.redis]\nconsumer_concurrency = 0",
            "renew_intent.redis.consumer_concurrency",
        ),
        (
            "[sandgate]\npending_failure_ttl_seconds = 0",
            "sandgate.pending_failure_ttl_seconds",
        ),
        (
            "[sandgate]\norphan_policy = \"keep\"",
            "sandgate.orphan_policy",
        ),
        (
            "[sandgate]\nshutdown_grace_seconds = -1",
            "sandgate.shutdown_grace_seconds",
        ),
        (
            "[sandgate]\nallowed_pvc_names = [\"ok\", \"Not_A_Claim\"]",
            "sandgate.allowed_pvc_names[1]",
        ),
        (
            "[sandgate.fake]\nprovision_latency_ms = -1",
            "sandgate.fake.provision_latency_ms",
        ),
        (
            "[sandgate.fake]\noperation_latency_ms = -1",
            "sandgate.fake.operation_latency_ms",
        ),
        (
            "[sandgate.fake]\nendpoint_host = \"\"",
            "sandgate.fake.endpoint_host",
        ),
        (
            "[sandgate.fake]\nstate_file = \" \"",
            "sandgate.fake.state_file",
        ),
    ];
    for (text, key) in cases {
        assert_rejects(text, key);
    }
}

#[test]
fn each_ingress_rule_names_its_key() {
    let with_keys =
        |keys: &str| format!("{GATEWAY}[ingress.secure_access]\nactive_key = \"a\"\n{keys}");
    let key_a = "[[ingress.secure_access.keys]]\nkey_id = \"a\"\nkey = \"c2VjcmV0\"\n";
    let cases: Vec<(String, &str)> = vec![
        ("[ingress]\nmode = \"mesh\"".into(), "ingress.mode"),
        (
            "[ingress.gateway]\naddress = \"gw.example.com\"".into(),
            "ingress.gateway",
        ),
        ("[ingress]\nmode = \"gateway\"".into(), "ingress.gateway"),
        (
            "[ingress]\nmode = \"gateway\"\n[ingress.gateway]\naddress = \"*.a.b\"".into(),
            "ingress.gateway.route.mode",
        ),
        (
            GATEWAY.replace("\"wildcard\"", "\"path\""),
            "ingress.gateway.route.mode",
        ),
        (
            "[ingress]\nmode = \"gateway\"\n[ingress.gateway.route]\nmode = \"uri\"".into(),
            "ingress.gateway.address",
        ),
        (
            GATEWAY.replace("*.sandbox", "https://*.sandbox"),
            "ingress.gateway.address",
        ),
        (
            GATEWAY.replace("*.sandbox.example.com", "*.com"),
            "ingress.gateway.address",
        ),
        (
            GATEWAY.replace("\"wildcard\"", "\"header\""),
            "ingress.gateway.address",
        ),
        (
            GATEWAY
                .replace("*.sandbox.example.com", "gw.local:0")
                .replace("\"wildcard\"", "\"header\""),
            "ingress.gateway.address",
        ),
        (
            GATEWAY
                .replace("*.sandbox.example.com", "")
                .replace("\"wildcard\"", "\"uri\""),
            "ingress.gateway.address",
        ),
        (
            GATEWAY
                .replace("*.sandbox.example.com", "gw/*")
                .replace("\"wildcard\"", "\"uri\""),
            "ingress.gateway.address",
        ),
        (
            format!("[ingress.secure_access]\nactive_key = \"a\"\n{key_a}"),
            "ingress.secure_access",
        ),
        (with_keys(""), "ingress.secure_access.keys"),
        (
            with_keys(&key_a.replace("key_id = \"a\"", "key_id = \"ab\"")),
            "ingress.secure_access.keys[0].key_id",
        ),
        (
            with_keys(&key_a.replace("key_id = \"a\"", "key_id = \"A\"")),
            "ingress.secure_access.keys[0].key_id",
        ),
        (
            with_keys(&key_a.replace("key_id = \"a\"\n", "")),
            "ingress.secure_access.keys[0].key_id",
        ),
        (
            with_keys(&format!("{key_a}{key_a}")),
            "ingress.secure_access.keys[1].key_id",
        ),
        (
            with_keys(&key_a.replace("c2VjcmV0", "not base64!")),
            "ingress.secure_access.keys[0].key",
        ),
        (
            with_keys(&key_a.replace("c2VjcmV0", "")),
            "ingress.secure_access.keys[0].key",
        ),
        (
            with_keys(&key_a.replace("key = \"c2VjcmV0\"\n", "")),
            "ingress.secure_access.keys[0].key",
        ),
        (
            with_keys(key_a).replace("active_key = \"a\"\n", ""),
            "ingress.secure_access.active_key",
        ),
        (
            with_keys(key_a).replace("active_key = \"a\"", "active_key = \"b\""),
            "ingress.secure_access.active_key",
        ),
    ];
    for (text, key) in &cases {
        assert_rejects(text, key);
    }
}

#[test]
fn gateway_and_signing_keys_validate() {
    let text = format!(
        "{GATEWAY}[ingress.secure_access]\nactive_key = \"k\"\n\
         [[ingress.secure_access.keys]]\nkey_id = \"k\"\nkey = \"c2VjcmV0\"\n\
         [[ingress.secure_access.keys]]\nkey_id = \"0\"\nkey = \"c2VjcmV0LTI\"\n"
    );
    let c = valid(&text);
    assert_eq!(c.ingress.mode, IngressMode::Gateway);
    let gateway = c.ingress.gateway.clone().unwrap();
    assert_eq!(
        (gateway.address.as_str(), gateway.route_mode),
        ("*.sandbox.example.com", RouteMode::Wildcard)
    );
    let access = c.ingress.secure_access.clone().unwrap();
    assert_eq!(access.active_key, 'k');
    assert_eq!(access.keys[0].key, b"secret");
    assert_eq!(
        (access.keys[1].key_id, access.keys[1].key.as_slice()),
        ('0', b"secret-2".as_slice())
    );
    assert!(
        !format!("{c:?}").contains("115, 101"),
        "key bytes must not appear in Debug output"
    );
}

#[test]
fn gateway_is_allowed_with_docker() {
    let c = valid(&format!("[runtime]\ntype = \"docker\"\n{GATEWAY}"));
    assert_eq!(
        (c.runtime.kind, c.ingress.mode),
        (RuntimeType::Docker, IngressMode::Gateway)
    );
}

#[test]
fn agent_sandbox_is_allowed_with_its_provider() {
    let text = "[runtime]\ntype = \"kubernetes\"\n[kubernetes]\nworkload_provider = \"Agent-Sandbox\"\n[agent_sandbox]\nshutdown_policy = \"Retain\"";
    assert_eq!(valid(text).runtime.kind, RuntimeType::Kubernetes);
}

#[test]
fn every_problem_is_reported_at_once() {
    let errors = invalid(
        "[server]\nport = 0\n[log]\nlevel = \"loud\"\n[docker]\napi_timeout = 0\n[store]\ntype = \"x\"\n[kubernetes]\n",
    );
    let keys: Vec<&str> = errors.problems.iter().map(|p| p.key.as_str()).collect();
    for key in [
        "server.port",
        "log.level",
        "docker.api_timeout",
        "store.type",
        "kubernetes",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    assert_eq!(errors.to_string().lines().count(), errors.problems.len());
    assert!(
        errors
            .to_string()
            .contains("server.port: 0 is out of range 1..=65535"),
        "{errors}"
    );
}

#[test]
fn unknown_values_list_the_allowed_ones() {
    let errors = invalid("[runtime]\ntype = \"podman\"");
    assert_eq!(
        errors.to_string(),
        "runtime.type: \"podman\" is not supported; expected one of \"docker\", \"kubernetes\", \"fake\""
    );
}
