//! Volume binds on Docker: host directories under the allow-list (checked
//! after resolving symlinks) and named volumes (created when asked).

use std::path::{Component, Path, PathBuf};

use bollard::Docker;
use bollard::models::VolumeCreateRequest;

use super::{errors, labels};
use crate::runtime::{RuntimeError, SpecRule};
use crate::sandbox::model::{VolumeBackend, VolumeSpec};

/// Binds for the container, and what was created for it.
#[derive(Debug, Default)]
pub(super) struct Prepared {
    /// `source:target:mode` strings.
    pub(super) binds: Vec<String>,
    /// Named volumes to remove when the sandbox goes.
    pub(super) managed: Vec<String>,
    /// Named volumes created by this call (removed again if creation fails).
    pub(super) created: Vec<String>,
}

fn rejected(rule: SpecRule, message: String) -> RuntimeError {
    RuntimeError::invalid_spec(rule, message)
}

/// Checks every volume without changing anything (used before accepting).
pub(super) fn check(volumes: &[VolumeSpec], allowed: &[String]) -> Result<(), RuntimeError> {
    for volume in volumes {
        match &volume.backend {
            VolumeBackend::Host { path } => {
                resolve_host(path, volume.sub_path.as_deref(), allowed)?;
            }
            VolumeBackend::Pvc { .. } => {}
            VolumeBackend::Ossfs { .. } => {
                return Err(rejected(
                    SpecRule::Unsupported,
                    format!(
                        "volumes: {:?} uses ossfs, which the Docker runtime does not support; use host or pvc",
                        volume.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Creates what is missing and returns the binds.
pub(super) async fn prepare(
    docker: &Docker,
    volumes: &[VolumeSpec],
    allowed: &[String],
) -> Result<Prepared, RuntimeError> {
    let mut prepared = Prepared::default();
    for volume in volumes {
        let mode = if volume.read_only { "ro" } else { "rw" };
        let source = match &volume.backend {
            VolumeBackend::Host { path } => host_source(path, volume, allowed)?,
            VolumeBackend::Pvc {
                claim_name,
                create_if_not_exists,
                delete_on_sandbox_termination,
                ..
            } => {
                named_volume(
                    docker,
                    claim_name,
                    *create_if_not_exists,
                    &mut prepared,
                    *delete_on_sandbox_termination,
                )
                .await?;
                match &volume.sub_path {
                    Some(sub) => volume_sub_path(docker, claim_name, sub).await?,
                    None => claim_name.clone(),
                }
            }
            VolumeBackend::Ossfs { .. } => {
                return Err(rejected(
                    SpecRule::Unsupported,
                    "ossfs is not supported on Docker".to_owned(),
                ));
            }
        };
        prepared
            .binds
            .push(format!("{source}:{}:{mode}", volume.mount_path));
    }
    Ok(prepared)
}

fn host_source(
    path: &str,
    volume: &VolumeSpec,
    allowed: &[String],
) -> Result<String, RuntimeError> {
    let resolved = resolve_host(path, volume.sub_path.as_deref(), allowed)?;
    if !resolved.exists() {
        std::fs::create_dir_all(&resolved).map_err(|e| {
            RuntimeError::backend(format!(
                "volumes: cannot create host directory {}: {e}",
                resolved.display()
            ))
        })?;
    }
    // Re-check after creation: nothing may have swapped a symlink in meanwhile.
    let real = resolve_host(path, volume.sub_path.as_deref(), allowed)?;
    Ok(real.to_string_lossy().into_owned())
}

/// `path/sub_path` with symlinks resolved as far as the path exists; it must
/// stay under an allowed prefix (also resolved).
pub(super) fn resolve_host(
    path: &str,
    sub_path: Option<&str>,
    allowed: &[String],
) -> Result<PathBuf, RuntimeError> {
    let joined = match sub_path {
        Some(sub) => Path::new(path).join(sub),
        None => PathBuf::from(path),
    };
    let real = real_path(&joined);
    let inside = allowed
        .iter()
        .any(|prefix| real.starts_with(real_path(Path::new(prefix))));
    if inside {
        Ok(real)
    } else {
        Err(rejected(
            SpecRule::HostPathNotAllowed,
            format!(
                "volumes: host path {} resolves to {}, which is outside storage.allowed_host_paths",
                joined.display(),
                real.display()
            ),
        ))
    }
}

/// Canonicalizes the longest existing ancestor and appends the rest
/// lexically (the rest does not exist, so it holds no symlinks).
fn real_path(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest: Vec<PathBuf> = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest
                .into_iter()
                .rev()
                .fold(real, |acc: PathBuf, part| normalize_push(acc, &part));
        }
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(PathBuf::from(name));
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

fn normalize_push(mut base: PathBuf, part: &Path) -> PathBuf {
    for component in part.components() {
        match component {
            Component::ParentDir => {
                base.pop();
            }
            Component::Normal(name) => base.push(name),
            _ => {}
        }
    }
    base
}

async fn named_volume(
    docker: &Docker,
    name: &str,
    create: bool,
    prepared: &mut Prepared,
    delete_with_sandbox: bool,
) -> Result<(), RuntimeError> {
    match docker.inspect_volume(name).await {
        Ok(_) => return Ok(()),
        Err(error) if errors::is_not_found(&error) => {}
        Err(error) => return Err(errors::general(error)),
    }
    if !create {
        return Err(rejected(
            SpecRule::VolumeNotFound,
            format!("volumes: named volume {name:?} does not exist and createIfNotExists is false"),
        ));
    }
    let request = VolumeCreateRequest {
        name: Some(name.to_owned()),
        labels: Some([(labels::VOLUME_OWNER.to_owned(), "server".to_owned())].into()),
        ..VolumeCreateRequest::default()
    };
    docker
        .create_volume(request)
        .await
        .map_err(errors::general)?;
    prepared.created.push(name.to_owned());
    if delete_with_sandbox {
        prepared.managed.push(name.to_owned());
    }
    Ok(())
}

async fn volume_sub_path(docker: &Docker, name: &str, sub: &str) -> Result<String, RuntimeError> {
    let volume = docker.inspect_volume(name).await.map_err(errors::general)?;
    if volume.driver != "local" || volume.mountpoint.is_empty() {
        return Err(rejected(
            SpecRule::SubPathUnsupportedDriver,
            format!(
                "volumes: subPath needs a local-driver volume; {name:?} uses {:?}",
                volume.driver
            ),
        ));
    }
    let root = PathBuf::from(&volume.mountpoint);
    let target = normalize_push(root.clone(), Path::new(sub));
    if !target.starts_with(&root) {
        return Err(rejected(
            SpecRule::SubPathOutsideVolume,
            format!("volumes: subPath {sub:?} leaves volume {name:?}"),
        ));
    }
    Ok(target.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_escapes_are_rejected() {
        let root = tempfile::tempdir().unwrap();
        let allowed_dir = root.path().join("allowed");
        let outside = root.path().join("outside");
        std::fs::create_dir_all(&allowed_dir).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, allowed_dir.join("link")).unwrap();
        let allowed = vec![allowed_dir.to_string_lossy().into_owned()];
        let inside = allowed_dir.join("new/deeper");
        assert!(resolve_host(inside.to_str().unwrap(), None, &allowed).is_ok());
        let escape = allowed_dir.join("link/x");
        let error = resolve_host(escape.to_str().unwrap(), None, &allowed).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("outside storage.allowed_host_paths"),
            "{error}"
        );
        assert!(resolve_host(allowed_dir.to_str().unwrap(), Some("link"), &allowed).is_err());
    }
}
