//! The labels Sandgate writes on its containers, and reading them back.
//!
//! OpenSandbox's `opensandbox.io/*` labels are kept so its tooling still
//! recognises the containers; Sandgate adds `sandgate.io/*` labels with what
//! OpenSandbox loses (the exact requested image and entrypoint, and which
//! metadata keys are the user's, so image labels never leak into metadata).
//!
//! User metadata is written only under [`METADATA_KEY_PREFIX`], never as a
//! label of its own name: a sandbox's creator must not be able to set
//! `traefik.*`, `com.docker.*` or Sandgate's own labels on its container.

use std::collections::{BTreeMap, HashMap};

use sandgate_shared::ids::SandboxId;
use sandgate_shared::time::Timestamp;

use crate::runtime::ProvisionRequest;
use crate::sandbox::model::Source;

/// The control plane instance that owns the object.
pub(super) const INSTANCE: &str = "sandgate.io/instance";
/// The sandbox id (lookup key).
pub(super) const ID: &str = "opensandbox.io/id";
/// The TTL deadline at creation.
pub(super) const EXPIRES_AT: &str = "opensandbox.io/expires-at";
/// `true` for manual-cleanup sandboxes.
pub(super) const MANUAL_CLEANUP: &str = "opensandbox.io/manual-cleanup";
/// Named volumes Sandgate created and must remove with the sandbox (JSON list).
pub(super) const MANAGED_VOLUMES: &str = "opensandbox.io/volume-managed-by";
/// Requested platform.
pub(super) const PLATFORM_OS: &str = "opensandbox.io/platform-os";
/// Requested platform.
pub(super) const PLATFORM_ARCH: &str = "opensandbox.io/platform-arch";
/// The snapshot a restored sandbox was created from (OpenSandbox's label).
pub(super) const SNAPSHOT_ID: &str = "opensandbox.io/snapshot-id";
/// The image reference exactly as requested.
pub(super) const IMAGE: &str = "sandgate.io/image";
/// The user entrypoint (JSON list), without the bootstrap wrapper.
pub(super) const ENTRYPOINT: &str = "sandgate.io/entrypoint";
/// The user metadata (JSON object).
pub(super) const METADATA: &str = "sandgate.io/metadata";
/// The prefix of the label that carries each user metadata key
/// (`sandgate.io/metadata.team=infra`), for filtering with the engine's tools.
pub(super) const METADATA_KEY_PREFIX: &str = "sandgate.io/metadata.";
/// Marks volumes Sandgate created.
pub(super) const VOLUME_OWNER: &str = "opensandbox.io/volume-managed-by";

/// Every label of a new sandbox container.
pub(super) fn for_sandbox(
    request: &ProvisionRequest,
    instance: &str,
    managed_volumes: &[String],
) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = request
        .metadata
        .iter()
        .map(|(k, v)| (format!("{METADATA_KEY_PREFIX}{k}"), v.clone()))
        .collect();
    labels.insert(ID.to_owned(), request.id.to_string());
    labels.insert(INSTANCE.to_owned(), instance.to_owned());
    match request.expires_at {
        Some(at) => labels.insert(EXPIRES_AT.to_owned(), at.to_string()),
        None => labels.insert(MANUAL_CLEANUP.to_owned(), "true".to_owned()),
    };
    match &request.spec.source {
        Source::Image { uri } => labels.insert(IMAGE.to_owned(), uri.clone()),
        Source::Snapshot { id, .. } => labels.insert(SNAPSHOT_ID.to_owned(), id.clone()),
    };
    labels.insert(ENTRYPOINT.to_owned(), json(&request.spec.entrypoint));
    labels.insert(METADATA.to_owned(), json(&request.metadata));
    if !managed_volumes.is_empty() {
        labels.insert(MANAGED_VOLUMES.to_owned(), json(&managed_volumes));
    }
    if let Some(platform) = &request.spec.platform {
        labels.insert(PLATFORM_OS.to_owned(), platform.os.clone());
        labels.insert(PLATFORM_ARCH.to_owned(), platform.arch.clone());
    }
    labels
}

/// The label filter that selects this instance's sandboxes.
pub(super) fn instance_filter(instance: &str) -> Vec<String> {
    vec![ID.to_owned(), format!("{INSTANCE}={instance}")]
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// What the labels of an existing container say.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Recorded {
    pub(super) id: Option<SandboxId>,
    pub(super) image: Option<String>,
    pub(super) entrypoint: Option<Vec<String>>,
    pub(super) metadata: BTreeMap<String, String>,
    pub(super) expires_at: Option<Timestamp>,
    pub(super) managed_volumes: Vec<String>,
}

/// Reads Sandgate's labels back.
pub(super) fn read(labels: &HashMap<String, String>) -> Recorded {
    Recorded {
        id: labels.get(ID).and_then(|v| v.parse().ok()),
        image: labels.get(IMAGE).filter(|v| !v.is_empty()).cloned(),
        entrypoint: parse_json(labels, ENTRYPOINT),
        metadata: parse_json(labels, METADATA).unwrap_or_default(),
        expires_at: labels.get(EXPIRES_AT).and_then(|v| Timestamp::parse(v)),
        managed_volumes: parse_json(labels, MANAGED_VOLUMES).unwrap_or_default(),
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(
    labels: &HashMap<String, String>,
    key: &str,
) -> Option<T> {
    labels.get(key).and_then(|v| serde_json::from_str(v).ok())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::sandbox::model::{Resources, SandboxSpec};

    #[test]
    fn metadata_cannot_set_labels_outside_its_namespace() {
        let metadata = BTreeMap::from([
            ("traefik.enable".to_owned(), "true".to_owned()),
            ("com.docker.compose.project".to_owned(), "x".to_owned()),
            ("team".to_owned(), "infra".to_owned()),
        ]);
        let request = ProvisionRequest {
            id: "sbx-1".parse().unwrap(),
            spec: Arc::new(SandboxSpec {
                source: Source::Image {
                    uri: "busybox".to_owned(),
                },
                entrypoint: vec!["sh".to_owned()],
                env: BTreeMap::new(),
                resources: Resources::default(),
                platform: None,
                volumes: vec![],
                network_policy: None,
                secure_access: false,
                extensions: BTreeMap::new(),
                timeout_seconds: None,
                needs_registry_auth: false,
            }),
            metadata: metadata.clone(),
            image_auth: None,
            created_at: Timestamp::parse("2030-01-01T00:00:00Z").unwrap(),
            expires_at: None,
        };
        let labels = for_sandbox(&request, "default", &[]);
        for key in labels.keys() {
            assert!(
                key.starts_with("sandgate.io/") || key.starts_with("opensandbox.io/"),
                "{key} is outside Sandgate's namespaces"
            );
        }
        assert_eq!(labels["sandgate.io/metadata.traefik.enable"], "true");
        assert_eq!(labels["sandgate.io/metadata.team"], "infra");
        assert_eq!(read(&labels).metadata, metadata, "read back unchanged");
    }
}
