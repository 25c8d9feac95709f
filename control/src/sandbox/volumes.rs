//! `volumes[]`: the wire types and the validation shared by every runtime
//! (names, mount paths, backends, the host-path allow-list). Runtimes add
//! engine checks on top, such as walking the host path without symlinks.
//!
//! Paths are checked here for what only fails inside the engine otherwise:
//! NUL bytes, `:` (the separator of Docker's `source:target:mode` binds),
//! non-normalized mount paths (Docker cleans `/tmp/..` into `/`), the root
//! `/`, the kernel-managed `/proc`, `/sys` and `/dev` trees (runc refuses
//! mounts there or they would mask its own), and two volumes on one path.

use serde::Deserialize;

use super::labels::{is_dns_label, matches_dns_label_pattern};
use super::model::{VolumeBackend, VolumeSpec};
use super::rules::{CreateRules, FieldProblem, SeenNames, no_nul};
use crate::error::codes;

/// Mount paths no volume may use, nor anything below them.
const RESERVED_MOUNT_ROOTS: [&str; 3] = ["/proc", "/sys", "/dev"];

/// One `volumes[]` entry.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeBody {
    /// DNS-label name.
    pub name: String,
    /// Absolute mount path.
    pub mount_path: String,
    /// Read-only mount.
    #[serde(default)]
    pub read_only: bool,
    /// Path inside the backend.
    pub sub_path: Option<String>,
    /// Host directory backend.
    pub host: Option<HostBody>,
    /// Named volume / PVC backend.
    pub pvc: Option<PvcBody>,
    /// OSS bucket backend.
    pub ossfs: Option<OssfsBody>,
}

/// `volumes[].host`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct HostBody {
    /// Absolute host path.
    pub path: String,
}

/// `volumes[].pvc`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PvcBody {
    /// Claim or volume name.
    pub claim_name: String,
    /// Create when missing (default true).
    pub create_if_not_exists: Option<bool>,
    /// Remove with the sandbox when Sandgate created it.
    #[serde(default)]
    pub delete_on_sandbox_termination: bool,
    /// Kubernetes storage class.
    pub storage_class: Option<String>,
    /// Kubernetes size.
    pub storage: Option<String>,
    /// Kubernetes access modes.
    pub access_modes: Option<Vec<String>>,
}

/// `volumes[].ossfs`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OssfsBody {
    /// Bucket.
    pub bucket: String,
    /// Endpoint.
    pub endpoint: String,
    /// `1.0` or `2.0`.
    pub version: Option<String>,
    /// Mount options.
    pub options: Option<Vec<String>>,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Access key secret.
    pub access_key_secret: Option<String>,
}

/// Validates `volumes[]`; pushes one problem per violation.
pub fn validate(
    bodies: Vec<VolumeBody>,
    rules: &CreateRules,
    problems: &mut Vec<FieldProblem>,
) -> Vec<VolumeSpec> {
    let mut seen = SeenNames::new();
    let mut targets = SeenNames::new();
    let mut out = Vec::new();
    for (i, body) in bodies.into_iter().enumerate() {
        if !targets.insert(body.mount_path.clone()) {
            problems.push(FieldProblem::new(
                codes::VOLUME_INVALID_MOUNT_PATH,
                format!(
                    "volumes[{i}].mountPath: {:?} is used by an earlier volume; mount paths must be unique",
                    body.mount_path
                ),
            ));
        }
        if let Some(volume) = validate_one(i, body, rules, &mut seen, problems) {
            out.push(volume);
        }
    }
    out
}

fn validate_one(
    i: usize,
    body: VolumeBody,
    rules: &CreateRules,
    seen: &mut SeenNames,
    problems: &mut Vec<FieldProblem>,
) -> Option<VolumeSpec> {
    let before = problems.len();
    let field = format!("volumes[{i}]");
    if !seen.insert(body.name.clone()) {
        problems.push(FieldProblem::new(
            codes::VOLUME_DUPLICATE_NAME,
            format!(
                "{field}.name: {:?} is used by an earlier volume; names must be unique",
                body.name
            ),
        ));
    } else if !is_dns_label(&body.name) {
        problems.push(FieldProblem::new(
            codes::VOLUME_INVALID_NAME,
            format!(
                "{field}.name: {:?} must be a DNS label: 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit",
                body.name
            ),
        ));
    }
    if let Err(rule) = mount_path_rule(&body.mount_path) {
        problems.push(FieldProblem::new(
            codes::VOLUME_INVALID_MOUNT_PATH,
            format!("{field}.mountPath: {rule} (got {:?})", body.mount_path),
        ));
    }
    if let Some(sub) = body.sub_path.as_deref() {
        check_sub_path(&field, sub, problems);
    }
    let backend = backend(&field, body.host, body.pvc, body.ossfs, rules, problems);
    let backend = backend.filter(|_| problems.len() == before)?;
    Some(VolumeSpec {
        name: body.name,
        mount_path: body.mount_path,
        read_only: body.read_only,
        sub_path: body.sub_path.filter(|s| !s.is_empty()),
        backend,
    })
}

/// Why `path` cannot be a mount path inside the sandbox, if it cannot.
fn mount_path_rule(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("must be an absolute path".to_owned());
    }
    if path.contains(['\0', ':']) {
        return Err("must not contain ':' or a NUL byte".to_owned());
    }
    if !is_normalized(path) {
        return Err("must be normalized (no '..', '.', '//' or trailing '/')".to_owned());
    }
    if path == "/" {
        return Err("must not be '/': a volume cannot replace the sandbox's root".to_owned());
    }
    let reserved = RESERVED_MOUNT_ROOTS
        .iter()
        .find(|root| path == **root || path.starts_with(&format!("{root}/")));
    match reserved {
        Some(root) => Err(format!(
            "must not be {root} or below it: the kernel and the engine manage that tree"
        )),
        None => Ok(()),
    }
}

/// Absolute, without `.`/`..` segments, `//` or a trailing `/` (except `/`).
fn is_normalized(path: &str) -> bool {
    path.starts_with('/')
        && !path.contains("//")
        && !path.split('/').any(|s| s == ".." || s == ".")
        && (path == "/" || !path.ends_with('/'))
}

fn check_sub_path(field: &str, sub: &str, problems: &mut Vec<FieldProblem>) {
    if sub.starts_with('/') || sub.split('/').any(|segment| segment == "..") {
        problems.push(FieldProblem::new(
            codes::VOLUME_INVALID_SUB_PATH,
            format!("{field}.subPath: {sub:?} must be a relative path without '..' segments"),
        ));
    } else if sub.contains(['\0', ':']) {
        problems.push(FieldProblem::new(
            codes::VOLUME_INVALID_SUB_PATH,
            format!("{field}.subPath: must not contain ':' or a NUL byte (got {sub:?})"),
        ));
    }
}

fn backend(
    field: &str,
    host: Option<HostBody>,
    pvc: Option<PvcBody>,
    ossfs: Option<OssfsBody>,
    rules: &CreateRules,
    problems: &mut Vec<FieldProblem>,
) -> Option<VolumeBackend> {
    let count =
        usize::from(host.is_some()) + usize::from(pvc.is_some()) + usize::from(ossfs.is_some());
    if count != 1 {
        let given = if count == 0 {
            "none was given"
        } else {
            "several were given"
        };
        problems.push(FieldProblem::new(
            codes::VOLUME_INVALID_BACKEND,
            format!("{field}: exactly one backend (host, pvc, ossfs) must be given, but {given}"),
        ));
        return None;
    }
    if let Some(host) = host {
        return check_host_path(field, &host.path, &rules.allowed_host_paths, problems)
            .then_some(VolumeBackend::Host { path: host.path });
    }
    if let Some(pvc) = pvc {
        let name = &pvc.claim_name;
        if !matches_dns_label_pattern(name, 253) {
            problems.push(FieldProblem::new(
                codes::VOLUME_INVALID_PVC_NAME,
                format!("{field}.pvc.claimName: {name:?} must be 1-253 lowercase letters, digits or '-', starting and ending with a letter or digit"),
            ));
            return None;
        }
        return Some(pvc_backend(pvc));
    }
    ossfs.and_then(|o| check_ossfs(field, o, problems))
}

/// Lexical host-path rules and the allow-list (exact entry or below it).
/// An empty allow-list rejects every host path.
fn check_host_path(
    field: &str,
    path: &str,
    allowed: &[String],
    problems: &mut Vec<FieldProblem>,
) -> bool {
    if path.contains(['\0', ':']) {
        problems.push(FieldProblem::new(
            codes::VOLUME_INVALID_HOST_PATH,
            format!("{field}.host.path: must not contain ':' or a NUL byte (got {path:?})"),
        ));
        return false;
    }
    if !is_normalized(path) {
        problems.push(FieldProblem::new(
            codes::VOLUME_INVALID_HOST_PATH,
            format!("{field}.host.path: {path:?} must be an absolute, normalized path (no '..', '.', '//' or trailing '/')"),
        ));
        return false;
    }
    let under = |prefix: &String| {
        let prefix = prefix.trim_end_matches('/');
        path == prefix || prefix.is_empty() || path.starts_with(&format!("{prefix}/"))
    };
    if !allowed.iter().any(under) {
        let hint = if allowed.is_empty() {
            "storage.allowed_host_paths is empty, so host mounts are disabled".to_owned()
        } else {
            format!("allowed prefixes: {}", allowed.join(", "))
        };
        problems.push(FieldProblem::new(
            codes::VOLUME_HOST_PATH_NOT_ALLOWED,
            format!("{field}.host.path: {path:?} is not under an allowed prefix; {hint}"),
        ));
        return false;
    }
    true
}

fn check_ossfs(
    field: &str,
    o: OssfsBody,
    problems: &mut Vec<FieldProblem>,
) -> Option<VolumeBackend> {
    let before = problems.len();
    let bucket_ok = (3..=63).contains(&o.bucket.len()) && is_dns_label(&o.bucket);
    if !bucket_ok {
        problems.push(FieldProblem::new(
            codes::VOLUME_INVALID_OSSFS_BUCKET,
            format!(
                "{field}.ossfs.bucket: {:?} must be 3-63 lowercase letters, digits or '-'",
                o.bucket
            ),
        ));
    }
    if o.endpoint.trim().is_empty()
        || o.endpoint
            .contains(|c: char| c.is_whitespace() || c == '\0')
    {
        problems.push(FieldProblem::new(
            codes::VOLUME_INVALID_OSSFS_ENDPOINT,
            format!("{field}.ossfs.endpoint: must be a non-empty host name without spaces"),
        ));
    }
    let version = o.version.unwrap_or_else(|| "2.0".to_owned());
    if version != "1.0" && version != "2.0" {
        problems.push(FieldProblem::new(
            codes::VOLUME_INVALID_OSSFS_VERSION,
            format!("{field}.ossfs.version: {version:?} must be \"1.0\" or \"2.0\""),
        ));
    }
    let options = o.options.unwrap_or_default();
    if options.iter().any(|opt| {
        opt.is_empty()
            || opt.starts_with('-')
            || opt.contains([
                ';', '&', '|', '`', '$', '(', ')', '<', '>', '\n', '\r', '\0',
            ])
    }) {
        problems.push(FieldProblem::new(codes::VOLUME_INVALID_OSSFS_OPTION, format!("{field}.ossfs.options: each option must be non-empty, must not start with '-' and must not contain shell metacharacters")));
    }
    for (name, value) in [
        ("accessKeyId", &o.access_key_id),
        ("accessKeySecret", &o.access_key_secret),
    ] {
        no_nul(
            &format!("{field}.ossfs.{name}"),
            value.as_deref().unwrap_or_default(),
            problems,
        );
    }
    let has = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    if !has(&o.access_key_id) || !has(&o.access_key_secret) {
        problems.push(FieldProblem::new(
            codes::VOLUME_INVALID_OSSFS_CREDENTIALS,
            format!("{field}.ossfs: accessKeyId and accessKeySecret are both required"),
        ));
    }
    (problems.len() == before).then_some(VolumeBackend::Ossfs {
        bucket: o.bucket,
        endpoint: o.endpoint,
        version,
        options,
    })
}

/// Builds the backend of a volume that already passed its checks.
fn pvc_backend(pvc: PvcBody) -> VolumeBackend {
    VolumeBackend::Pvc {
        claim_name: pvc.claim_name,
        create_if_not_exists: pvc.create_if_not_exists.unwrap_or(true),
        delete_on_sandbox_termination: pvc.delete_on_sandbox_termination,
        storage_class: pvc.storage_class,
        storage: pvc.storage,
        access_modes: pvc.access_modes.unwrap_or_default(),
    }
}
