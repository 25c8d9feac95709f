//! Pools (`/pools`) and templates (`/templates`): OpenSandbox resources
//! that only its Kubernetes runtime offers. Their request bodies are
//! checked with OpenSandbox 1.1.1's rules first, as FastAPI does before
//! any handler runs, so a bad body is a 400 naming the field and a good
//! one gets the "not on this runtime" answer ([`CatalogError`]).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::sandbox::rules::FieldProblem;

/// Why a pool or template request cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// Pools need the Kubernetes runtime.
    #[error("Pool management is only available when runtime.type is 'kubernetes'.")]
    PoolsNeedKubernetes,
    /// Templates need the Kubernetes runtime.
    #[error("Template management requires the kubernetes runtime.")]
    TemplatesNeedKubernetes,
}

/// `capacitySpec` of a pool.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolCapacity {
    /// Most nodes kept warm.
    pub buffer_max: u64,
    /// Fewest nodes kept warm.
    pub buffer_min: u64,
    /// Most nodes in the pool.
    pub pool_max: u64,
    /// Fewest nodes in the pool.
    pub pool_min: u64,
}

/// The body of `POST /pools`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatePoolBody {
    /// A Kubernetes resource name (DNS-1123 subdomain label form, ≤ 253 characters).
    #[schema(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length = 253)]
    pub name: String,
    /// A Kubernetes PodTemplateSpec.
    #[schema(value_type = Object)]
    pub template: serde_json::Map<String, serde_json::Value>,
    /// Pool sizing.
    pub capacity_spec: PoolCapacity,
}

/// The body of `PUT /pools/{poolName}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdatePoolBody {
    /// New pool sizing.
    pub capacity_spec: PoolCapacity,
}

/// `readiness` of a template.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateReadiness {
    /// `tcp://host:port` or `cmd://command`.
    pub probe: Option<String>,
    /// Fallback warm-up window.
    pub warmup_seconds: Option<u64>,
}

/// `format` of a template's snapshot set.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TemplateFormat {
    /// Plain files.
    Native,
    /// overlaybd block images (the default).
    #[default]
    Overlaybd,
}

/// The body of `POST /templates`. Unknown fields are refused, as OpenSandbox does.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTemplateBody {
    /// Source OCI image.
    #[schema(min_length = 1)]
    pub image: String,
    /// Guest sizing (`cpu`, `memory`, `disk`).
    pub resource_limits: Option<BTreeMap<String, String>>,
    /// Guest command.
    #[schema(min_items = 1)]
    pub entrypoint: Option<Vec<String>>,
    /// Environment baked into the image.
    pub env: Option<BTreeMap<String, String>>,
    /// User metadata.
    pub metadata: Option<BTreeMap<String, String>>,
    /// Build-side readiness gate.
    pub readiness: Option<TemplateReadiness>,
    /// S3-compatible publish target.
    #[schema(min_length = 1)]
    pub publish: String,
    /// Snapshot encoding.
    #[serde(default)]
    pub format: TemplateFormat,
}

/// The longest pool name.
const MAX_POOL_NAME: usize = 253;

/// Checks a pool create body.
pub fn check_create_pool(body: &CreatePoolBody) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    let name = &body.name;
    if name.len() > MAX_POOL_NAME || !is_resource_name(name) {
        problems.push(FieldProblem::param(format!(
            "name: {name:?} must be lowercase letters, digits and '-', start and end with a letter or digit, at most {MAX_POOL_NAME} characters"
        )));
    }
    problems
}

/// Checks a template create body.
pub fn check_create_template(body: &CreateTemplateBody) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    if body.image.is_empty() {
        problems.push(FieldProblem::param("image: must not be empty"));
    }
    if body.publish.is_empty() {
        problems.push(FieldProblem::param(
            "publish: must not be empty, e.g. \"s3://bucket/publish\"",
        ));
    }
    if body.entrypoint.as_ref().is_some_and(Vec::is_empty) {
        problems.push(FieldProblem::param(
            "entrypoint: must have at least one element, or be omitted",
        ));
    }
    problems
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`.
fn is_resource_name(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    name.starts_with(alnum) && name.ends_with(alnum) && name.chars().all(|c| alnum(c) || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_names_follow_the_kubernetes_pattern() {
        for good in ["a", "pool-1", "0a"] {
            assert!(is_resource_name(good), "{good}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b"] {
            assert!(!is_resource_name(bad), "{bad}");
        }
    }
}
