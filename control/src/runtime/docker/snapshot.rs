//! Snapshots on Docker: `docker commit` of a sandbox's container to
//! `opensandbox-snapshots:<snapshotId>` (OpenSandbox's naming), labelled with
//! the owning control plane and the source sandbox, and removal of that image.
//!
//! A committed image keeps the container's labels, so a sandbox restored
//! from it would inherit its source's Sandgate labels (its managed volumes,
//! its metadata); [`mask_inherited_labels`] blanks every one the new
//! container does not set itself.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{ContainerConfig, ContainerCreateBody};
use bollard::query_parameters::{CommitContainerOptions, RemoveImageOptions};
use sandgate_shared::ids::SandboxId;

use super::{errors, labels, spec};
use crate::runtime::{RuntimeError, SnapshotImage};

/// The repository of snapshot images; the tag is the snapshot id.
pub(super) const REPOSITORY: &str = "opensandbox-snapshots";
/// The snapshot id, on the image.
const SNAPSHOT_ID: &str = "sandgate.io/snapshot-id";
/// The sandbox the snapshot was taken from, on the image.
const SOURCE_SANDBOX: &str = "sandgate.io/snapshot-of";

/// The image reference of snapshot `snapshot_id`.
fn image_of(snapshot_id: &str) -> String {
    format!("{REPOSITORY}:{snapshot_id}")
}

/// Commits the sandbox's container, frozen meanwhile (as `docker commit` does).
pub(super) async fn commit(
    docker: &Docker,
    instance: &str,
    id: &SandboxId,
    snapshot_id: &str,
) -> Result<SnapshotImage, RuntimeError> {
    let options = CommitContainerOptions {
        container: Some(spec::container_name(id)),
        repo: Some(REPOSITORY.to_owned()),
        tag: Some(snapshot_id.to_owned()),
        comment: Some(format!("Sandgate snapshot of sandbox {id}")),
        pause: true,
        ..CommitContainerOptions::default()
    };
    let config = ContainerConfig {
        labels: Some(HashMap::from([
            (labels::INSTANCE.to_owned(), instance.to_owned()),
            (SNAPSHOT_ID.to_owned(), snapshot_id.to_owned()),
            (SOURCE_SANDBOX.to_owned(), id.to_string()),
        ])),
        ..ContainerConfig::default()
    };
    docker
        .commit_container(options, config)
        .await
        .map_err(|e| errors::classify(id, e))?;
    Ok(SnapshotImage {
        image: image_of(snapshot_id),
    })
}

/// The snapshot's image, when the engine holds one this instance made.
pub(super) async fn find(
    docker: &Docker,
    instance: &str,
    snapshot_id: &str,
) -> Result<Option<SnapshotImage>, RuntimeError> {
    let image = image_of(snapshot_id);
    let inspected = match docker.inspect_image(&image).await {
        Ok(inspected) => inspected,
        Err(error) if errors::is_not_found(&error) => return Ok(None),
        Err(error) => return Err(errors::general(error)),
    };
    let image_labels = inspected.config.and_then(|c| c.labels).unwrap_or_default();
    let ours = image_labels.get(labels::INSTANCE).map(String::as_str) == Some(instance)
        && image_labels.get(SNAPSHOT_ID).map(String::as_str) == Some(snapshot_id);
    Ok(ours.then_some(SnapshotImage { image }))
}

/// Removes the snapshot's image; absent (or not this instance's) is fine,
/// in use by a container is a conflict.
pub(super) async fn remove(
    docker: &Docker,
    instance: &str,
    snapshot_id: &str,
) -> Result<(), RuntimeError> {
    let Some(SnapshotImage { image }) = find(docker, instance, snapshot_id).await? else {
        return Ok(());
    };
    match docker
        .remove_image(&image, None::<RemoveImageOptions>, None)
        .await
    {
        Ok(_) => Ok(()),
        Err(error) if errors::is_not_found(&error) => Ok(()),
        Err(error) if errors::is_conflict(&error) => Err(RuntimeError::conflict(error.to_string())),
        Err(error) => Err(errors::general(error)),
    }
}

/// Blanks the Sandgate and OpenSandbox labels the container would inherit
/// from its snapshot image without setting them itself.
pub(super) async fn mask_inherited_labels(
    docker: &Docker,
    image: &str,
    body: &mut ContainerCreateBody,
) -> Result<(), RuntimeError> {
    let inherited = match docker.inspect_image(image).await {
        Ok(inspected) => inspected.config.and_then(|c| c.labels).unwrap_or_default(),
        Err(error) if errors::is_not_found(&error) => return Ok(()),
        Err(error) => return Err(errors::general(error)),
    };
    let own = body.labels.get_or_insert_with(HashMap::new);
    for key in inherited.into_keys() {
        if is_sandgate_label(&key) && !own.contains_key(&key) {
            own.insert(key, String::new());
        }
    }
    Ok(())
}

fn is_sandgate_label(key: &str) -> bool {
    key.starts_with("sandgate.io/") || key.starts_with("opensandbox.io/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_images_use_opensandbox_naming() {
        assert_eq!(image_of("abc"), "opensandbox-snapshots:abc");
        assert!(is_sandgate_label("sandgate.io/metadata.team"));
        assert!(is_sandgate_label("opensandbox.io/volume-managed-by"));
        assert!(!is_sandgate_label("org.opencontainers.image.title"));
    }
}
