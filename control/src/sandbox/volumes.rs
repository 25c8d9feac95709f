//! Volume validation shared by every runtime (names, paths, backends,
//! the host-path allow-list). Runtimes add engine checks on top, such as
//! resolving symlinks on the host.

use super::labels::{is_dns_label, matches_dns_label_pattern};
use super::model::{VolumeBackend, VolumeSpec};
use super::request::{self, CreateRules, Problem, SeenNames, VolumeBody};
use crate::error::codes;

/// Validates `volumes[]`; pushes one problem per violation.
pub fn validate(
    bodies: Vec<VolumeBody>,
    rules: &CreateRules,
    problems: &mut Vec<Problem>,
) -> Vec<VolumeSpec> {
    let mut seen = SeenNames::new();
    let mut out = Vec::new();
    for (i, body) in bodies.into_iter().enumerate() {
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
    problems: &mut Vec<Problem>,
) -> Option<VolumeSpec> {
    let before = problems.len();
    let field = format!("volumes[{i}]");
    if !seen.insert(body.name.clone()) {
        problems.push(Problem::new(
            codes::VOLUME_DUPLICATE_NAME,
            format!(
                "{field}.name: {:?} is used by an earlier volume; names must be unique",
                body.name
            ),
        ));
    } else if !is_dns_label(&body.name) {
        problems.push(Problem::new(
            codes::VOLUME_INVALID_NAME,
            format!(
                "{field}.name: {:?} must be a DNS label: 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit",
                body.name
            ),
        ));
    }
    if !body.mount_path.starts_with('/') {
        problems.push(Problem::new(
            codes::VOLUME_INVALID_MOUNT_PATH,
            format!(
                "{field}.mountPath: {:?} must be an absolute path",
                body.mount_path
            ),
        ));
    }
    if let Some(sub) = body.sub_path.as_deref() {
        check_sub_path(&field, sub, problems);
    }
    let backend = backend(&field, body.host, body.pvc, body.ossfs, rules, problems);
    let backend = backend.filter(|_| problems.len() == before)?;
    Some(request::volume(
        body.name,
        body.mount_path,
        body.read_only,
        body.sub_path,
        backend,
    ))
}

fn check_sub_path(field: &str, sub: &str, problems: &mut Vec<Problem>) {
    if sub.starts_with('/') || sub.split('/').any(|segment| segment == "..") {
        problems.push(Problem::new(
            codes::VOLUME_INVALID_SUB_PATH,
            format!("{field}.subPath: {sub:?} must be a relative path without '..' segments"),
        ));
    }
}

fn backend(
    field: &str,
    host: Option<request::HostBody>,
    pvc: Option<request::PvcBody>,
    ossfs: Option<request::OssfsBody>,
    rules: &CreateRules,
    problems: &mut Vec<Problem>,
) -> Option<VolumeBackend> {
    let count =
        usize::from(host.is_some()) + usize::from(pvc.is_some()) + usize::from(ossfs.is_some());
    if count != 1 {
        let given = if count == 0 {
            "none was given"
        } else {
            "several were given"
        };
        problems.push(Problem::new(
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
            problems.push(Problem::new(
                codes::VOLUME_INVALID_PVC_NAME,
                format!("{field}.pvc.claimName: {name:?} must be 1-253 lowercase letters, digits or '-', starting and ending with a letter or digit"),
            ));
            return None;
        }
        return Some(request::pvc_backend(pvc));
    }
    ossfs.and_then(|o| check_ossfs(field, o, problems))
}

/// Lexical host-path rules and the allow-list (exact entry or below it).
/// An empty allow-list rejects every host path.
fn check_host_path(
    field: &str,
    path: &str,
    allowed: &[String],
    problems: &mut Vec<Problem>,
) -> bool {
    let lexical_ok = path.starts_with('/')
        && !path.contains("//")
        && !path.split('/').any(|s| s == ".." || s == ".")
        && (path == "/" || !path.ends_with('/'));
    if !lexical_ok {
        problems.push(Problem::new(
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
        problems.push(Problem::new(
            codes::VOLUME_HOST_PATH_NOT_ALLOWED,
            format!("{field}.host.path: {path:?} is not under an allowed prefix; {hint}"),
        ));
        return false;
    }
    true
}

fn check_ossfs(
    field: &str,
    o: request::OssfsBody,
    problems: &mut Vec<Problem>,
) -> Option<VolumeBackend> {
    let before = problems.len();
    let bucket_ok = (3..=63).contains(&o.bucket.len()) && is_dns_label(&o.bucket);
    if !bucket_ok {
        problems.push(Problem::new(
            codes::VOLUME_INVALID_OSSFS_BUCKET,
            format!(
                "{field}.ossfs.bucket: {:?} must be 3-63 lowercase letters, digits or '-'",
                o.bucket
            ),
        ));
    }
    if o.endpoint.trim().is_empty() || o.endpoint.contains(char::is_whitespace) {
        problems.push(Problem::new(
            codes::VOLUME_INVALID_OSSFS_ENDPOINT,
            format!("{field}.ossfs.endpoint: must be a non-empty host name without spaces"),
        ));
    }
    let version = o.version.unwrap_or_else(|| "2.0".to_owned());
    if version != "1.0" && version != "2.0" {
        problems.push(Problem::new(
            codes::VOLUME_INVALID_OSSFS_VERSION,
            format!("{field}.ossfs.version: {version:?} must be \"1.0\" or \"2.0\""),
        ));
    }
    let options = o.options.unwrap_or_default();
    if options.iter().any(|opt| {
        opt.is_empty()
            || opt.starts_with('-')
            || opt.contains([';', '&', '|', '`', '$', '(', ')', '<', '>', '\n', '\r'])
    }) {
        problems.push(Problem::new(codes::VOLUME_INVALID_OSSFS_OPTION, format!("{field}.ossfs.options: each option must be non-empty, must not start with '-' and must not contain shell metacharacters")));
    }
    let has = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    if !has(&o.access_key_id) || !has(&o.access_key_secret) {
        problems.push(Problem::new(
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
