//! The Docker runtime: real sandboxes on a Docker Engine, through bollard.
//!
//! # Layout
//! - [`spec`]: the container definition (pure).
//! - [`labels`]: the labels Sandgate writes and reads back.
//! - [`image`]: local-first image resolution and authenticated pulls.
//! - [`execd`]: OpenSandbox-compatible execd injection.
//! - [`volumes`]: host binds under the allow-list, named volumes.
//! - [`observe`]: container state, identity and addresses.
//! - [`events`]: the engine's event stream.
//! - [`snapshot`]: `docker commit` snapshots and their images.
//! - [`diagnostics`]: container output, process events, the inspect text.
//! - [`errors`]: engine errors classified by meaning.

mod diagnostics;
mod errors;
mod events;
mod execd;
mod image;
mod labels;
mod observe;
mod snapshot;
mod spec;
mod volumes;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, ListContainersOptions, RemoveContainerOptions,
    RemoveVolumeOptions, StopContainerOptions, UploadToContainerOptions,
};
use sandgate_shared::ids::SandboxId;
use tokio_util::sync::CancellationToken;

use super::{
    EventSink, LogWindow, ProcessEvent, Progress, ProvisionRequest, Provisioned, ResolvedEndpoint,
    Runtime, RuntimeError, RuntimeKind, RuntimeSandbox, SnapshotImage, SpecRule,
};
use crate::config::{DEFAULT_DROP_CAPABILITIES, SandboxEnv};
use crate::sandbox::model::{SandboxSpec, Source};

/// Settings of the Docker runtime.
#[derive(Debug, Clone)]
pub struct DockerSettings {
    /// `bridge`, `host`, or the name of a user-defined network.
    pub network_mode: String,
    /// Timeout of each engine call.
    pub api_timeout: Duration,
    /// Host put in endpoints in host network mode.
    pub endpoint_host: String,
    /// Capabilities dropped from every sandbox.
    pub drop_capabilities: Vec<String>,
    /// AppArmor profile.
    pub apparmor_profile: Option<String>,
    /// Set `no-new-privileges`.
    pub no_new_privileges: bool,
    /// Seccomp profile.
    pub seccomp_profile: Option<String>,
    /// PIDs limit; `None` is unlimited.
    pub pids_limit: Option<i64>,
    /// The execd image to inject, if any.
    pub execd_image: Option<String>,
    /// `runtime.execd_run_as_init`: with execd injected, sets `EXECD_INIT=1`.
    pub execd_run_as_init: bool,
    /// `docker.sandbox_env`: given to every sandbox; the request's variables win.
    pub sandbox_env: SandboxEnv,
    /// `docker.sandbox_binds`: operator binds put before the request's.
    pub sandbox_binds: Vec<String>,
    /// `storage.allowed_host_paths`.
    pub allowed_host_paths: Vec<String>,
    /// `sandgate.allowed_pvc_names`: named volumes Sandgate did not create
    /// that `pvc` volumes may still mount.
    pub allowed_pvc_names: Vec<String>,
    /// Root-only directory where checked host directories are bind-mounted
    /// for Docker (see [`volumes`]); must lie outside the allowed prefixes.
    pub bind_staging_dir: std::path::PathBuf,
    /// How long a deleted sandbox gets between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// This control plane's name: only containers labelled with it are seen.
    pub instance: String,
}

impl Default for DockerSettings {
    fn default() -> Self {
        Self {
            network_mode: "bridge".to_owned(),
            api_timeout: Duration::from_secs(180),
            endpoint_host: "127.0.0.1".to_owned(),
            drop_capabilities: DEFAULT_DROP_CAPABILITIES
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
            apparmor_profile: None,
            no_new_privileges: true,
            seccomp_profile: None,
            pids_limit: Some(4096),
            execd_image: None,
            execd_run_as_init: false,
            sandbox_env: SandboxEnv::default(),
            sandbox_binds: Vec::new(),
            allowed_host_paths: Vec::new(),
            allowed_pvc_names: Vec::new(),
            bind_staging_dir: "/run/sandgate/binds".into(),
            stop_grace: Duration::from_secs(3),
            instance: "default".to_owned(),
        }
    }
}

/// Sandboxes as Docker containers.
pub struct DockerRuntime {
    docker: Docker,
    settings: DockerSettings,
    execd: Option<execd::Execd>,
    /// The engine's CPU count, the ceiling of a sandbox's `cpu`.
    host_cpus: Option<i64>,
}

impl std::fmt::Debug for DockerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerRuntime")
            .field("settings", &self.settings)
            .finish()
    }
}

impl DockerRuntime {
    /// Connects to the engine at `DOCKER_HOST` (or the local socket) and
    /// checks that it answers.
    pub async fn connect(settings: DockerSettings) -> Result<Self, RuntimeError> {
        let timeout = settings.api_timeout.as_secs();
        let docker = Docker::connect_with_defaults()
            .map(|d| {
                d.with_timeout(Duration::from_secs(timeout))
                    .with_request_modifier(image::url_safe_registry_auth)
            })
            .map_err(|e| {
                RuntimeError::unavailable(format!("cannot set up a Docker client: {e}"))
            })?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        let execd = settings.execd_image.clone().map(execd::Execd::new);
        let host_cpus = docker.info().await.ok().and_then(|info| info.ncpu);
        volumes::sweep_staging(&settings);
        Ok(Self {
            docker,
            settings,
            execd,
            host_cpus,
        })
    }

    async fn inspect_container(
        &self,
        id: &SandboxId,
    ) -> Result<bollard::models::ContainerInspectResponse, RuntimeError> {
        self.docker
            .inspect_container(&spec::container_name(id), None::<InspectContainerOptions>)
            .await
            .map_err(|e| errors::classify(id, e))
    }

    async fn create_container(
        &self,
        request: &ProvisionRequest,
        progress: &Progress,
    ) -> Result<volumes::Prepared, RuntimeError> {
        let prepared = volumes::prepare(
            &self.docker,
            &request.id,
            &request.spec.volumes,
            &self.settings,
        )
        .await?;
        let install = match &self.execd {
            Some(execd) => Some(execd.install_archive(&self.docker, progress).await?),
            None => None,
        };
        let mut body = spec::container_body(
            request,
            &self.settings,
            prepared.binds.clone(),
            &prepared.managed,
            install.is_some(),
        );
        if let Source::Snapshot {
            image: Some(image), ..
        } = &request.spec.source
        {
            snapshot::mask_inherited_labels(&self.docker, image, &mut body).await?;
        }
        let name = spec::container_name(&request.id);
        let options = CreateContainerOptions {
            name: Some(name.clone()),
            platform: platform(&request.spec).unwrap_or_default(),
        };
        progress.report("Creating the container.");
        self.docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| errors::classify(&request.id, e))?;
        if let Some(archive) = install {
            let options = UploadToContainerOptions {
                path: "/".to_owned(),
                ..UploadToContainerOptions::default()
            };
            self.docker
                .upload_to_container(&name, Some(options), bollard::body_full(archive))
                .await
                .map_err(|e| {
                    RuntimeError::backend(format!("installing execd into the sandbox: {e}"))
                })?;
        }
        Ok(prepared)
    }

    async fn start(
        &self,
        id: &SandboxId,
        progress: &Progress,
    ) -> Result<Provisioned, RuntimeError> {
        progress.report("Starting the container.");
        let name = spec::container_name(id);
        self.docker
            .start_container(&name, None)
            .await
            .map_err(|e| errors::classify(id, e))?;
        let container = self.inspect_container(id).await?;
        Ok(Provisioned {
            state: observe::inspected_state(&container),
            address: self.address_of(&container),
        })
    }

    /// The host where the container's ports are reached (no port).
    fn address_of(&self, container: &bollard::models::ContainerInspectResponse) -> Option<String> {
        if self.settings.network_mode == "host" {
            return Some(self.settings.endpoint_host.clone());
        }
        observe::ip_address(container, &self.settings.network_mode)
    }

    /// Removes the container and what was created for it; absent is fine.
    async fn remove(&self, id: &SandboxId, extra_volumes: &[String]) -> Result<(), RuntimeError> {
        let name = spec::container_name(id);
        let managed = match self.inspect_container(id).await {
            Ok(container) => container
                .config
                .and_then(|c| c.labels)
                .map(|l| labels::read(&l).managed_volumes)
                .unwrap_or_default(),
            Err(RuntimeError::NotFound { .. }) => Vec::new(),
            Err(error) => return Err(error),
        };
        self.stop(id, &name).await?;
        let options = RemoveContainerOptions {
            force: true,
            ..RemoveContainerOptions::default()
        };
        match self.docker.remove_container(&name, Some(options)).await {
            Ok(()) => {}
            Err(error) if errors::is_not_found(&error) => {}
            Err(error) => return Err(errors::classify(id, error)),
        }
        for volume in managed.iter().chain(extra_volumes) {
            self.remove_volume(volume).await;
        }
        Ok(())
    }

    async fn stop(&self, id: &SandboxId, name: &str) -> Result<(), RuntimeError> {
        let grace = i32::try_from(self.settings.stop_grace.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptions {
            t: Some(grace),
            ..StopContainerOptions::default()
        };
        match self.docker.stop_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(error) if errors::is_not_found(&error) || errors::is_not_modified(&error) => Ok(()),
            // A paused container cannot be stopped; the forced removal kills it.
            Err(error) if errors::is_conflict(&error) => Ok(()),
            Err(error) => Err(errors::classify(id, error)),
        }
    }

    async fn remove_volume(&self, name: &str) {
        match self
            .docker
            .remove_volume(name, None::<RemoveVolumeOptions>)
            .await
        {
            Ok(()) => {}
            Err(error) if errors::is_not_found(&error) => {}
            Err(error) => {
                tracing::warn!(volume = name, %error, "cannot remove a volume created for a sandbox")
            }
        }
    }

    async fn list_containers(
        &self,
    ) -> Result<Vec<bollard::models::ContainerSummary>, RuntimeError> {
        let filters = HashMap::from([(
            "label".to_owned(),
            labels::instance_filter(&self.settings.instance),
        )]);
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..ListContainersOptions::default()
        };
        self.docker
            .list_containers(Some(options))
            .await
            .map_err(errors::general)
    }

    fn endpoint_of(
        &self,
        container: &bollard::models::ContainerInspectResponse,
        id: &SandboxId,
        port: u16,
    ) -> Result<String, RuntimeError> {
        if self.settings.network_mode == "host" {
            return Ok(format!("{}:{port}", self.settings.endpoint_host));
        }
        match observe::ip_address(container, &self.settings.network_mode) {
            Some(ip) if ip.contains(':') => Ok(format!("[{ip}]:{port}")),
            Some(ip) => Ok(format!("{ip}:{port}")),
            None => Err(RuntimeError::NotReady(format!(
                "sandbox {id} has no IP address yet"
            ))),
        }
    }
}

fn unreachable(error: bollard::errors::Error) -> RuntimeError {
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_owned());
    RuntimeError::unavailable(format!(
        "no Docker engine answers at {host} ({error}); start dockerd or point DOCKER_HOST at a running engine"
    ))
}

fn platform(spec: &SandboxSpec) -> Option<String> {
    spec.platform
        .as_ref()
        .map(|p| format!("{}/{}", p.os, p.arch))
}

#[async_trait]
impl Runtime for DockerRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Docker
    }

    fn check_spec(&self, spec: &SandboxSpec) -> Result<(), RuntimeError> {
        let unsupported = |field: &str, why: &str| {
            RuntimeError::invalid_spec(SpecRule::Unsupported, format!("{field}: {why}"))
        };
        if spec.network_policy.is_some() {
            return Err(unsupported(
                "networkPolicy",
                "egress sidecars are not available on the Docker runtime yet",
            ));
        }
        spec::check_resources(&spec.resources, self.host_cpus)?;
        volumes::check(&spec.volumes, &self.settings)
    }

    async fn provision(
        &self,
        request: &ProvisionRequest,
        progress: &Progress,
        cancel: &CancellationToken,
    ) -> Result<Provisioned, RuntimeError> {
        let cancelled = || RuntimeError::backend("provisioning was cancelled");
        if let Source::Image { uri } = &request.spec.source {
            progress.report(format!("Resolving image {uri}."));
            // Only the pull (nothing exists yet, and it can take minutes) is
            // abandoned on cancellation; the calls that create objects below
            // run to their end, so the deletion finds what they made.
            let pull = image::ensure(
                &self.docker,
                uri,
                request.image_auth.as_ref(),
                platform(&request.spec),
                progress,
            );
            tokio::select! {
                pulled = pull => pulled?,
                () = cancel.cancelled() => return Err(cancelled()),
            }
        }
        if cancel.is_cancelled() {
            return Err(cancelled());
        }
        let created = match self.create_container(request, progress).await {
            Ok(prepared) => prepared,
            Err(error) => {
                let _ = self.remove(&request.id, &[]).await;
                return Err(error);
            }
        };
        if cancel.is_cancelled() {
            return Err(cancelled());
        }
        let started = match self.start(&request.id, progress).await {
            Ok(state) => Ok(state),
            Err(error) => {
                if let Err(cleanup) = self.remove(&request.id, &created.created).await {
                    tracing::warn!(sandbox.id = %request.id, error = %cleanup, "cannot clean up after a failed start");
                }
                Err(error)
            }
        };
        // Only now, with the container's own mounts made, may the volume
        // staging mounts go (see `volumes`).
        drop(created);
        started
    }

    async fn pause(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        let name = spec::container_name(id);
        self.docker
            .pause_container(&name)
            .await
            .map_err(|e| errors::classify(id, e))
    }

    async fn resume(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        let name = spec::container_name(id);
        self.docker
            .unpause_container(&name)
            .await
            .map_err(|e| errors::classify(id, e))
    }

    async fn delete(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        self.remove(id, &[]).await
    }

    async fn list(&self) -> Result<Vec<RuntimeSandbox>, RuntimeError> {
        let mut sandboxes = Vec::new();
        for summary in self.list_containers().await? {
            let observed = if observe::summary_is_settled(&summary) {
                observe::from_summary(&summary, &self.settings)
            } else {
                // Exit code and OOM kill are only in the full inspect.
                let id = summary.id.clone().unwrap_or_default();
                match self
                    .docker
                    .inspect_container(&id, None::<InspectContainerOptions>)
                    .await
                {
                    Ok(container) => observe::from_inspect(&container),
                    Err(error) if errors::is_not_found(&error) => None,
                    Err(error) => return Err(errors::general(error)),
                }
            };
            sandboxes.extend(observed);
        }
        Ok(sandboxes)
    }

    async fn observe(&self, id: &SandboxId) -> Result<Option<RuntimeSandbox>, RuntimeError> {
        let container = match self.inspect_container(id).await {
            Ok(container) => container,
            Err(RuntimeError::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(error),
        };
        let address = self.address_of(&container);
        Ok(observe::from_inspect(&container).map(|sandbox| RuntimeSandbox { address, ..sandbox }))
    }

    async fn resolve_endpoint(
        &self,
        id: &SandboxId,
        port: u16,
    ) -> Result<ResolvedEndpoint, RuntimeError> {
        let container = match self.inspect_container(id).await {
            Ok(container) => container,
            Err(RuntimeError::NotFound { .. }) => {
                return Err(RuntimeError::NotReady(format!(
                    "sandbox {id} has no container yet"
                )));
            }
            Err(error) => return Err(error),
        };
        let endpoint = self.endpoint_of(&container, id, port)?;
        Ok(ResolvedEndpoint {
            endpoint,
            headers: BTreeMap::new(),
        })
    }

    async fn logs(
        &self,
        id: &SandboxId,
        window: LogWindow,
    ) -> Result<(String, bool), RuntimeError> {
        diagnostics::logs(&self.docker, id, window).await
    }

    async fn process_events(&self, id: &SandboxId) -> Result<Vec<ProcessEvent>, RuntimeError> {
        Ok(diagnostics::process_events(
            &self.inspect_container(id).await?,
        ))
    }

    async fn inspect(&self, id: &SandboxId) -> Result<String, RuntimeError> {
        Ok(diagnostics::render_inspect(
            &self.inspect_container(id).await?,
        ))
    }

    async fn snapshot(
        &self,
        id: &SandboxId,
        snapshot_id: &str,
    ) -> Result<SnapshotImage, RuntimeError> {
        snapshot::commit(&self.docker, &self.settings.instance, id, snapshot_id).await
    }

    async fn find_snapshot(
        &self,
        snapshot_id: &str,
    ) -> Result<Option<SnapshotImage>, RuntimeError> {
        snapshot::find(&self.docker, &self.settings.instance, snapshot_id).await
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), RuntimeError> {
        snapshot::remove(&self.docker, &self.settings.instance, snapshot_id).await
    }

    async fn health(&self) -> Result<(), RuntimeError> {
        self.docker.ping().await.map(|_| ()).map_err(unreachable)
    }

    fn watch(&self, sink: EventSink) {
        tokio::spawn(events::follow(
            self.docker.clone(),
            self.settings.instance.clone(),
            sink,
        ));
    }
}
