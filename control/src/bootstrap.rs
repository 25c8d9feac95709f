//! Turns a validated [`Config`] into a runtime and [`AppOptions`].

use std::sync::Arc;

use crate::app::AppOptions;
use crate::clock::Clock;
use crate::config::{Config, OrphanPolicy as ConfigOrphanPolicy, RouteMode, RuntimeType};
use crate::ingress::{GatewayRoute, Ingress, Signing};
use crate::runtime::docker::{DockerRuntime, DockerSettings};
use crate::runtime::fake::{FakeRuntime, FakeSettings};
use crate::runtime::{Runtime, RuntimeError};
use crate::sandbox::model::OrphanPolicy;
use crate::sandbox::request::CreateRules;
use crate::sandbox::service::ServiceSettings;

/// The application options the configuration describes.
pub fn app_options(config: &Config) -> AppOptions {
    let service = ServiceSettings {
        rules: CreateRules {
            max_timeout_seconds: config.server.max_sandbox_timeout_seconds,
            allowed_host_paths: config.storage.allowed_host_paths.clone(),
        },
        pending_failure_ttl: config.sandgate.pending_failure_ttl,
        ingress: ingress(config),
        orphan_policy: match config.sandgate.orphan_policy {
            ConfigOrphanPolicy::Adopt => OrphanPolicy::Adopt,
            ConfigOrphanPolicy::Remove => OrphanPolicy::Remove,
        },
        ..ServiceSettings::default()
    };
    AppOptions {
        store_path: config.store.path.clone(),
        api_key: config.server.api_key.clone(),
        service,
        clock: Clock::System,
        shutdown_grace: config.sandgate.shutdown_grace,
        routes_token: config.sandgate.routes_token.clone(),
        edge_proxy: config.sandgate.edge_proxy_url.clone(),
        forward: Default::default(),
        web: config.sandgate.web.clone(),
    }
}

/// Builds the configured runtime.
pub async fn runtime(config: &Config) -> Result<Arc<dyn Runtime>, RuntimeError> {
    match config.runtime.kind {
        RuntimeType::Fake => {
            let fake = &config.sandgate.fake;
            let settings = FakeSettings {
                provision_latency: fake.provision_latency,
                operation_latency: fake.operation_latency,
                endpoint_host: fake.endpoint_host.clone(),
                state_file: fake.state_file.clone(),
            };
            Ok(Arc::new(FakeRuntime::new(settings)?))
        }
        RuntimeType::Docker => Ok(Arc::new(
            DockerRuntime::connect(docker_settings(config)).await?,
        )),
        RuntimeType::Kubernetes => Err(RuntimeError::Unsupported(
            "runtime.type = \"kubernetes\" is not available in this build yet".to_owned(),
        )),
    }
}

/// The Docker runtime settings the configuration describes.
pub fn docker_settings(config: &Config) -> DockerSettings {
    let docker = &config.docker;
    let endpoint_host = match config.server.host.as_str() {
        "0.0.0.0" | "::" | "" => docker
            .host_ip
            .clone()
            .unwrap_or_else(|| "127.0.0.1".to_owned()),
        host => host.to_owned(),
    };
    DockerSettings {
        network_mode: docker.network_mode.clone(),
        api_timeout: docker.api_timeout,
        endpoint_host,
        drop_capabilities: docker.drop_capabilities.clone(),
        apparmor_profile: docker.apparmor_profile.clone(),
        no_new_privileges: docker.no_new_privileges,
        seccomp_profile: docker.seccomp_profile.clone(),
        pids_limit: docker.pids_limit,
        execd_image: config.runtime.execd_image.clone(),
        execd_run_as_init: config.runtime.execd_run_as_init,
        sandbox_env: docker.sandbox_env.clone(),
        sandbox_binds: docker.sandbox_binds.clone(),
        allowed_host_paths: config.storage.allowed_host_paths.clone(),
        allowed_pvc_names: config.sandgate.allowed_pvc_names.clone(),
        bind_staging_dir: DockerSettings::default().bind_staging_dir,
        stop_grace: config.sandgate.docker_stop_grace,
        instance: config.sandgate.instance.clone(),
    }
}

/// The ingress the configuration describes (gateway route and signing keys).
pub fn ingress(config: &Config) -> Ingress {
    let gateway = config.ingress.gateway.as_ref().map(|g| match g.route_mode {
        RouteMode::Wildcard => GatewayRoute::Wildcard {
            suffix: g.address.trim_start_matches("*.").to_owned(),
        },
        RouteMode::Header => GatewayRoute::Header {
            address: g.address.clone(),
        },
        RouteMode::Uri => GatewayRoute::Uri {
            address: g.address.clone(),
        },
    });
    let signing = config.ingress.secure_access.as_ref().map(|s| Signing {
        active: s.active_key,
        keys: s.keys.iter().map(|k| (k.key_id, k.key.clone())).collect(),
    });
    Ingress {
        gateway,
        signing,
        eip: config.server.eip.clone(),
    }
}
