//! The `POST /sandboxes` body as it arrives, and its validation into a
//! [`SandboxSpec`].
//!
//! Unknown fields are ignored (newer SDKs send more). Every rule violation is
//! collected, so one response names every problem; each names its field.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::hooks::{self, LifecycleBody};
use super::model::{
    EgressRule, NetworkPolicy, PlatformSpec, PolicyAction, Resources, SandboxSpec, Source,
};
use super::quantity;
use super::rules::no_nul;
pub use super::rules::{CreateRules, FieldProblem};
use super::volumes::{self, VolumeBody};
use super::{egress_env, labels};
use crate::error::codes;
use crate::runtime::RegistryAuth;

/// The body of `POST /sandboxes`, before validation.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(
    description = "The body of `POST /sandboxes`. Exactly one of `image` and `snapshotId` is \
                   required; `entrypoint` is required with `image`. Unknown fields are ignored."
)]
pub struct CreateSandboxBody {
    /// Image to run.
    #[serde(default, deserialize_with = "object_only")]
    pub image: Option<ImageBody>,
    /// Snapshot to restore.
    #[schema(min_length = 1)]
    pub snapshot_id: Option<String>,
    /// Platform constraint.
    #[serde(default, deserialize_with = "object_only")]
    pub platform: Option<PlatformBody>,
    /// TTL seconds; integer ≥ 60, or null/absent for manual cleanup.
    #[serde(default)]
    #[schema(value_type = Option<u64>, minimum = 60)]
    pub timeout: Option<serde_json::Value>,
    /// Resource limits.
    #[schema(required = true, nullable = false)]
    pub resource_limits: Option<BTreeMap<String, String>>,
    /// Resource reservations (Kubernetes requests); accepted and ignored on Docker.
    pub resource_requests: Option<BTreeMap<String, String>>,
    /// Environment; null values are dropped.
    pub env: Option<BTreeMap<String, Option<String>>>,
    /// User metadata (label rules).
    pub metadata: Option<BTreeMap<String, String>>,
    /// Entry process.
    #[schema(min_items = 1)]
    pub entrypoint: Option<Vec<String>>,
    /// Outbound network policy.
    #[serde(default, deserialize_with = "object_only")]
    pub network_policy: Option<NetworkPolicyBody>,
    /// Credential-vault proxy.
    #[serde(default, deserialize_with = "object_only")]
    pub credential_proxy: Option<CredentialProxyBody>,
    /// Require the secure-access token at the edge.
    pub secure_access: Option<bool>,
    /// Storage mounts.
    pub volumes: Option<Vec<VolumeBody>>,
    /// Opaque extensions.
    pub extensions: Option<BTreeMap<String, String>>,
    /// Lifecycle hooks; refused on Docker (after the shape checks).
    #[serde(default, deserialize_with = "object_only")]
    pub lifecycle: Option<LifecycleBody>,
    /// A fast-sandbox template; refused on Docker. Excludes the workload
    /// fields and requires `timeout`.
    #[schema(min_length = 1)]
    pub template_id: Option<String>,
}

/// `image`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ImageBody {
    /// Image reference.
    #[schema(min_length = 1)]
    pub uri: String,
    /// Registry credentials.
    pub auth: Option<AuthBody>,
}

/// `image.auth`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AuthBody {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// `platform`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PlatformBody {
    /// `linux` or `windows`.
    pub os: String,
    /// `amd64` or `arm64`.
    pub arch: String,
}

/// `networkPolicy`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicyBody {
    /// `allow` or `deny`.
    pub default_action: Option<String>,
    /// Rules.
    pub egress: Option<Vec<EgressRuleBody>>,
}

/// One `networkPolicy.egress` rule.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EgressRuleBody {
    /// `allow` or `deny`.
    pub action: String,
    /// Domain, wildcard, IP or CIDR.
    pub target: String,
}

/// `credentialProxy`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CredentialProxyBody {
    /// Enable the transparent credential proxy.
    #[serde(default)]
    pub enabled: bool,
}

/// A create request that passed validation.
#[derive(Debug)]
pub struct ValidCreate {
    /// What to provision.
    pub spec: SandboxSpec,
    /// Initial metadata.
    pub metadata: BTreeMap<String, String>,
    /// Pull credentials (memory only).
    pub image_auth: Option<RegistryAuth>,
}

/// Accepts only a JSON object (or null) for a nested struct: serde would
/// also take an array as the struct's fields in order, so
/// `"networkPolicy": [null, null]` would silently become an empty policy.
fn object_only<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error;
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Null => Ok(None),
        value @ serde_json::Value::Object(_) => serde_json::from_value(value)
            .map(Some)
            .map_err(D::Error::custom),
        other => Err(D::Error::custom(format!(
            "invalid type: {}, expected an object",
            kind_of(&other)
        ))),
    }
}

fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// The largest TTL any timestamp can hold (until 9999-12-31).
const MAX_REPRESENTABLE_TIMEOUT: u64 = 250_000_000_000;

/// The entrypoint used for snapshot restores that do not name one.
pub const DEFAULT_ENTRYPOINT: [&str; 3] = ["tail", "-f", "/dev/null"];

/// The renew-on-access extension key and its bounds.
pub const RENEW_EXTEND_KEY: &str = "access.renew.extend.seconds";

impl CreateSandboxBody {
    /// Validates every field; returns all problems, or the spec.
    pub fn validate(self, rules: &CreateRules) -> Result<ValidCreate, Vec<FieldProblem>> {
        if let Some(problems) = template_mode(&self) {
            return Err(problems);
        }
        let mut problems = Vec::new();
        if self.template_id.as_deref() == Some("") {
            problems.push(FieldProblem::param(
                "templateId: must not be empty; omit it to create from an image",
            ));
        }
        if let Some(lifecycle) = &self.lifecycle {
            hooks::check(lifecycle, &mut problems);
        }
        check_nul_bytes(&self, &mut problems);
        let extensions = self.extensions.unwrap_or_default();
        check_extensions(&extensions, &mut problems);
        let (source, image_auth) = source(self.image, self.snapshot_id, &mut problems);
        let entrypoint = entrypoint(self.entrypoint, &source, &mut problems);
        let timeout_seconds = timeout(self.timeout.as_ref(), rules, &mut problems);
        let resources = resources(self.resource_limits, &mut problems);
        let split = egress_env::split(self.env.unwrap_or_default(), &mut problems);
        drop_egress_env(&split.egress);
        let env = env(split.sandbox, &mut problems);
        let metadata = metadata(self.metadata.unwrap_or_default(), &mut problems);
        let platform = self.platform.and_then(|p| platform(p, &mut problems));
        let network_policy = self
            .network_policy
            .and_then(|p| network_policy(p, &mut problems));
        if self.credential_proxy.is_some_and(|c| c.enabled) && network_policy.is_none() {
            problems.push(FieldProblem::param(
                "credentialProxy.enabled requires networkPolicy: the credential proxy runs in the egress sidecar",
            ));
        }
        let volumes = volumes::validate(self.volumes.unwrap_or_default(), rules, &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        let spec = SandboxSpec {
            source: source.unwrap_or(Source::Image { uri: String::new() }),
            entrypoint,
            env,
            resources,
            platform,
            volumes,
            network_policy,
            secure_access: self.secure_access.unwrap_or(false),
            extensions,
            timeout_seconds,
            needs_registry_auth: image_auth.is_some(),
        };
        Ok(ValidCreate {
            spec,
            metadata,
            image_auth,
        })
    }
}

/// The names of the fields a template fixes, with whether the body sets them.
fn template_conflicts(body: &CreateSandboxBody) -> [(&'static str, bool); 11] {
    let snapshot = body
        .snapshot_id
        .as_deref()
        .is_some_and(|s| !s.trim().is_empty());
    [
        ("credentialProxy", body.credential_proxy.is_some()),
        ("entrypoint", body.entrypoint.is_some()),
        ("env", body.env.is_some()),
        ("image", body.image.is_some()),
        ("lifecycle", body.lifecycle.is_some()),
        ("platform", body.platform.is_some()),
        ("resourceLimits", body.resource_limits.is_some()),
        ("resourceRequests", body.resource_requests.is_some()),
        ("secureAccess", body.secure_access == Some(true)),
        ("snapshotId", snapshot),
        ("volumes", body.volumes.is_some()),
    ]
}

/// A non-blank `templateId` selects template mode (a blank one is ignored,
/// as OpenSandbox does): its own rules, then a refusal, since no runtime
/// here builds templates.
fn template_mode(body: &CreateSandboxBody) -> Option<Vec<FieldProblem>> {
    body.template_id
        .as_deref()
        .filter(|id| !id.trim().is_empty())?;
    let mut problems = Vec::new();
    let present: Vec<&str> = template_conflicts(body)
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
    if !present.is_empty() {
        problems.push(FieldProblem::param(format!(
            "templateId: cannot be combined with {}; the template's golden image fixes the workload",
            present.join(", ")
        )));
    }
    if body.timeout.as_ref().is_none_or(serde_json::Value::is_null) {
        problems.push(FieldProblem::param(
            "timeout: required when templateId is given",
        ));
    }
    if problems.is_empty() {
        problems.push(FieldProblem::param(
            "templateId: templates (fast-sandbox golden images) are not supported by the Docker runtime; create from an image instead",
        ));
    }
    Some(problems)
}

/// Allowed `OPENSANDBOX_EGRESS_` variables configure an egress sidecar; no
/// sandbox here has one, so they are dropped, as OpenSandbox does without
/// `networkPolicy`.
fn drop_egress_env<V>(egress: &BTreeMap<String, V>) {
    if !egress.is_empty() {
        let keys: Vec<&str> = egress.keys().map(String::as_str).collect();
        tracing::warn!(
            env.keys = ?keys,
            "OPENSANDBOX_EGRESS_ variables ignored: the sandbox has no egress sidecar"
        );
    }
}

/// NUL bytes in the strings that reach the engine as they are (the other
/// fields have rules that exclude them already).
fn check_nul_bytes(body: &CreateSandboxBody, problems: &mut Vec<FieldProblem>) {
    if let Some(image) = &body.image {
        no_nul("image.uri", &image.uri, problems);
    }
    if let Some(id) = &body.snapshot_id {
        no_nul("snapshotId", id, problems);
    }
    for (i, arg) in body.entrypoint.iter().flatten().enumerate() {
        no_nul(&format!("entrypoint[{i}]"), arg, problems);
    }
    for (key, value) in body.extensions.iter().flatten() {
        if no_nul(&format!("extensions key {key:?}"), key, problems) {
            no_nul(&format!("extensions[{key:?}]"), value, problems);
        }
    }
}

fn check_extensions(extensions: &BTreeMap<String, String>, problems: &mut Vec<FieldProblem>) {
    if extensions
        .get("poolRef")
        .is_some_and(|p| !p.trim().is_empty())
    {
        problems.push(FieldProblem::new(
            codes::UNSUPPORTED_POOL_REF,
            "extensions.poolRef: pools are not supported by this runtime; create from an image instead",
        ));
    }
    if let Some(value) = extensions.get(RENEW_EXTEND_KEY) {
        let ok = value
            .trim()
            .parse::<u64>()
            .is_ok_and(|s| (300..=86_400).contains(&s));
        if !ok {
            problems.push(FieldProblem::param(format!(
                "extensions[{RENEW_EXTEND_KEY:?}]: {value:?} must be a whole number of seconds from 300 to 86400"
            )));
        }
    }
}

fn source(
    image: Option<ImageBody>,
    snapshot_id: Option<String>,
    problems: &mut Vec<FieldProblem>,
) -> (Option<Source>, Option<RegistryAuth>) {
    let image = image.filter(|i| !i.uri.trim().is_empty());
    let snapshot_id = snapshot_id.filter(|s| !s.trim().is_empty());
    match (image, snapshot_id) {
        (Some(image), None) => {
            let auth = image.auth.map(|a| RegistryAuth {
                username: a.username,
                password: a.password,
            });
            (
                Some(Source::Image {
                    uri: image.uri.trim().to_owned(),
                }),
                auth,
            )
        }
        (None, Some(id)) => (
            Some(Source::Snapshot {
                id: id.trim().to_owned(),
                image: None,
            }),
            None,
        ),
        (Some(_), Some(_)) => {
            problems.push(FieldProblem::param(
                "image and snapshotId: exactly one must be given, not both",
            ));
            (None, None)
        }
        (None, None) => {
            problems.push(FieldProblem::param(
                "image: exactly one of image (with a non-empty uri) or snapshotId must be given",
            ));
            (None, None)
        }
    }
}

fn entrypoint(
    entrypoint: Option<Vec<String>>,
    source: &Option<Source>,
    problems: &mut Vec<FieldProblem>,
) -> Vec<String> {
    match (entrypoint, source) {
        (Some(list), _) if list.is_empty() || list[0].trim().is_empty() => {
            problems.push(FieldProblem::param(
                "entrypoint: must be a non-empty list whose first element names the program",
            ));
            Vec::new()
        }
        (Some(list), _) => list,
        (None, Some(Source::Snapshot { .. })) => {
            DEFAULT_ENTRYPOINT.iter().map(|s| (*s).to_owned()).collect()
        }
        (None, _) => {
            problems.push(FieldProblem::param(
                "entrypoint: required when image is given, e.g. [\"python\", \"app.py\"]",
            ));
            Vec::new()
        }
    }
}

fn timeout(
    value: Option<&serde_json::Value>,
    rules: &CreateRules,
    problems: &mut Vec<FieldProblem>,
) -> Option<u64> {
    let seconds = match value {
        None | Some(serde_json::Value::Null) => return None,
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f.min(u64::MAX as f64) as u64)
            })
            .ok_or_else(|| format!("timeout: {n} is not a whole, non-negative number of seconds")),
        Some(other) => Err(format!(
            "timeout: must be an integer number of seconds (at least 60) or null for manual cleanup, not {other}"
        )),
    };
    let result = seconds.and_then(|s| {
        if s < 60 {
            Err(format!("timeout: must be at least 60 seconds, or null for manual cleanup (got {s})"))
        } else if s > MAX_REPRESENTABLE_TIMEOUT {
            Err(format!("timeout: {s}s is too large to represent safely"))
        } else if let Some(max) = rules.max_timeout_seconds.filter(|max| s > *max) {
            Err(format!("timeout: {s}s exceeds the configured maximum of {max}s (server.max_sandbox_timeout_seconds)"))
        } else {
            Ok(s)
        }
    });
    result
        .map_err(|m| problems.push(FieldProblem::param(m)))
        .ok()
}

fn resources(
    limits: Option<BTreeMap<String, String>>,
    problems: &mut Vec<FieldProblem>,
) -> Resources {
    let Some(raw) = limits else {
        problems.push(FieldProblem::param(
            "resourceLimits: required, e.g. {\"cpu\": \"1\", \"memory\": \"2Gi\"} ({} means no limits)",
        ));
        return Resources::default();
    };
    let mut resources = Resources {
        raw,
        ..Resources::default()
    };
    let mut check = |key: &str, result: Result<(), String>| {
        if let Err(message) = result {
            problems.push(FieldProblem::param(format!(
                "resourceLimits.{key}: {message}"
            )));
        }
    };
    if let Some(cpu) = resources.raw.get("cpu") {
        check(
            "cpu",
            quantity::parse_cpu_millis(cpu).map(|m| resources.cpu_millis = Some(m)),
        );
    }
    if let Some(memory) = resources.raw.get("memory") {
        check(
            "memory",
            quantity::parse_memory_bytes(memory).map(|b| resources.memory_bytes = Some(b)),
        );
    }
    if let Some(gpu) = resources.raw.get("gpu") {
        check("gpu", quantity::parse_gpu(gpu).map(|g| resources.gpu = g));
    }
    resources
}

fn env(
    env: BTreeMap<String, Option<String>>,
    problems: &mut Vec<FieldProblem>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (key, value) in env {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            problems.push(FieldProblem::param(format!(
                "env: variable name {key:?} must be non-empty and contain neither '=' nor NUL"
            )));
        } else if let Some(value) = value {
            if value.contains('\0') {
                problems.push(FieldProblem::param(format!(
                    "env.{key}: the value contains a NUL byte"
                )));
            } else {
                out.insert(key, value);
            }
        }
    }
    out
}

fn metadata(
    metadata: BTreeMap<String, String>,
    problems: &mut Vec<FieldProblem>,
) -> BTreeMap<String, String> {
    for (key, value) in &metadata {
        let result = if let Some(prefix) = labels::reserved_prefix(key) {
            Err(format!(
                "metadata key {key:?} uses the reserved prefix {prefix:?}"
            ))
        } else {
            labels::check_key(key).and_then(|()| labels::check_value(key, value))
        };
        if let Err(message) = result {
            problems.push(FieldProblem::new(codes::INVALID_METADATA_LABEL, message));
        }
    }
    metadata
}

fn platform(body: PlatformBody, problems: &mut Vec<FieldProblem>) -> Option<PlatformSpec> {
    let os = body.os.trim().to_ascii_lowercase();
    let arch = body.arch.trim().to_ascii_lowercase();
    let mut ok = true;
    if !matches!(os.as_str(), "linux" | "windows") {
        problems.push(FieldProblem::param(format!(
            "platform.os: unsupported value {:?}; supported: linux, windows",
            body.os
        )));
        ok = false;
    }
    if !matches!(arch.as_str(), "amd64" | "arm64") {
        problems.push(FieldProblem::param(format!(
            "platform.arch: unsupported value {:?}; supported: amd64, arm64",
            body.arch
        )));
        ok = false;
    }
    ok.then_some(PlatformSpec { os, arch })
}

fn policy_action(
    field: &str,
    value: &str,
    problems: &mut Vec<FieldProblem>,
) -> Option<PolicyAction> {
    match value.trim().to_ascii_lowercase().as_str() {
        "allow" => Some(PolicyAction::Allow),
        "deny" => Some(PolicyAction::Deny),
        _ => {
            problems.push(FieldProblem::param(format!(
                "{field}: {value:?} is not an action; use \"allow\" or \"deny\""
            )));
            None
        }
    }
}

fn network_policy(
    body: NetworkPolicyBody,
    problems: &mut Vec<FieldProblem>,
) -> Option<NetworkPolicy> {
    let before = problems.len();
    let default_action = body
        .default_action
        .as_deref()
        .and_then(|a| policy_action("networkPolicy.defaultAction", a, problems));
    let mut egress = Vec::new();
    for (i, rule) in body.egress.unwrap_or_default().into_iter().enumerate() {
        let action = policy_action(
            &format!("networkPolicy.egress[{i}].action"),
            &rule.action,
            problems,
        );
        let target = rule.target.trim();
        if target.is_empty() || target.contains(|c: char| c.is_whitespace() || c == '\0') {
            problems.push(FieldProblem::param(format!(
                "networkPolicy.egress[{i}].target: must be a domain, wildcard domain, IP or CIDR without spaces (got {:?})",
                rule.target
            )));
        } else if let Some(action) = action {
            egress.push(EgressRule {
                action,
                target: target.to_owned(),
            });
        }
    }
    (problems.len() == before).then_some(NetworkPolicy {
        default_action,
        egress,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(json: serde_json::Value) -> ValidCreate {
        let body: CreateSandboxBody = serde_json::from_value(json).unwrap();
        body.validate(&CreateRules::default()).unwrap()
    }

    #[test]
    fn allowed_egress_variables_stay_out_of_the_sandbox_except_transparent() {
        let created = valid(serde_json::json!({
            "image": {"uri": "busybox"},
            "entrypoint": ["sleep", "60"],
            "resourceLimits": {},
            "env": {
                "APP": "1",
                "GONE": null,
                "OPENSANDBOX_EGRESS_LOG_LEVEL": "debug",
                "OPENSANDBOX_EGRESS_MITMPROXY_TRANSPARENT": "true",
            },
        }));
        let names: Vec<&str> = created.spec.env.keys().map(String::as_str).collect();
        assert_eq!(names, ["APP", "OPENSANDBOX_EGRESS_MITMPROXY_TRANSPARENT"]);
    }
}
