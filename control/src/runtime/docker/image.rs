//! Images: use the local copy when present, else pull (with registry
//! credentials when given), reporting progress into `status.message`.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::models::CreateImageInfo;
use bollard::query_parameters::CreateImageOptions;
use futures_util::StreamExt;
use tokio::time::Instant;

use super::errors;
use crate::runtime::{Detail, Progress, PullProblem, RegistryAuth, RuntimeError};

/// How often pull progress is reported.
const REPORT_EVERY: Duration = Duration::from_millis(250);

/// Makes `uri` available locally.
pub(super) async fn ensure(
    docker: &Docker,
    uri: &str,
    auth: Option<&RegistryAuth>,
    platform: Option<String>,
    progress: &Progress,
) -> Result<(), RuntimeError> {
    match docker.inspect_image(uri).await {
        Ok(_) => return Ok(()),
        Err(error) if errors::is_not_found(&error) => {}
        Err(error) => return Err(errors::general(error)),
    }
    progress.report(format!("Pulling image {uri}."));
    pull(docker, uri, auth, platform, progress).await
}

async fn pull(
    docker: &Docker,
    uri: &str,
    auth: Option<&RegistryAuth>,
    platform: Option<String>,
    progress: &Progress,
) -> Result<(), RuntimeError> {
    let (repository, tag) = split_reference(uri);
    let options = CreateImageOptions {
        from_image: Some(repository.to_owned()),
        tag: Some(tag.to_owned()),
        platform: platform.unwrap_or_default(),
        ..CreateImageOptions::default()
    };
    let credentials = auth.map(|a| DockerCredentials {
        username: Some(a.username.clone()),
        password: Some(a.password.clone()),
        serveraddress: Some(registry_of(uri).to_owned()),
        ..DockerCredentials::default()
    });
    let mut stream = docker.create_image(Some(options), None, credentials);
    let mut layers = LayerProgress::default();
    let mut last_report = Instant::now();
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| pull_error(uri, &e.to_string()))?;
        if let Some(detail) = info.error_detail.as_ref().and_then(|d| d.message.clone()) {
            return Err(pull_error(uri, &detail));
        }
        layers.update(&info);
        if last_report.elapsed() >= REPORT_EVERY {
            progress.report(layers.summary(uri));
            last_report = Instant::now();
        }
    }
    progress.report(format!("Pulled image {uri}."));
    Ok(())
}

fn pull_error(uri: &str, detail: &str) -> RuntimeError {
    let problem = if detail.contains("unauthorized") || detail.contains("no basic auth credentials")
    {
        PullProblem::Unauthorized
    } else if detail.contains("not found") || detail.contains("manifest unknown") {
        PullProblem::NotFound
    } else {
        PullProblem::Other
    };
    RuntimeError::ImagePull {
        image: uri.to_owned(),
        problem,
        detail: Detail(detail.to_owned()),
    }
}

/// Rewrites `X-Registry-Auth` to URL-safe base64.
///
/// The engine decodes the header as URL-safe base64, but bollard 0.21
/// encodes it with the standard alphabet; credentials whose encoding
/// contains `+` or `/` would be silently dropped and the pull would fail
/// with "no basic auth credentials". The two alphabets differ only in
/// those two characters.
pub(super) fn url_safe_registry_auth(
    mut request: bollard::BollardRequest,
) -> bollard::BollardRequest {
    let fixed = request
        .headers()
        .get("x-registry-auth")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.replace('+', "-").replace('/', "_"));
    if let Some(value) = fixed.and_then(|v| http::HeaderValue::from_str(&v).ok()) {
        request.headers_mut().insert("x-registry-auth", value);
    }
    request
}

/// `repo[:tag]` or `repo@digest` → (repository, tag or digest). The tag
/// defaults to `latest`; without it the engine would pull every tag.
pub(super) fn split_reference(uri: &str) -> (&str, &str) {
    if let Some((repository, digest)) = uri.split_once('@') {
        return (repository, digest);
    }
    let name_start = uri.rfind('/').map_or(0, |i| i + 1);
    match uri[name_start..].rfind(':') {
        Some(i) => (&uri[..name_start + i], &uri[name_start + i + 1..]),
        None => (uri, "latest"),
    }
}

/// The registry host of a reference (`docker.io` when it names none).
pub(super) fn registry_of(uri: &str) -> &str {
    match uri.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "https://index.docker.io/v1/",
    }
}

#[derive(Default)]
struct LayerProgress {
    layers: HashMap<String, (i64, i64, bool)>,
}

impl LayerProgress {
    fn update(&mut self, info: &CreateImageInfo) {
        let Some(id) = info.id.clone() else { return };
        let status = info.status.as_deref().unwrap_or_default();
        let entry = self.layers.entry(id).or_default();
        if let Some(detail) = &info.progress_detail {
            entry.0 = detail.current.unwrap_or(entry.0);
            entry.1 = detail.total.unwrap_or(entry.1);
        }
        entry.2 |= matches!(status, "Pull complete" | "Already exists");
    }

    fn summary(&self, uri: &str) -> String {
        let done = self.layers.values().filter(|l| l.2).count();
        let (current, total) = self
            .layers
            .values()
            .filter(|l| !l.2)
            .fold((0, 0), |(c, t), l| (c + l.0, t + l.1));
        let mib = |b: i64| b as f64 / 1_048_576.0;
        format!(
            "Pulling image {uri}: {done}/{} layers done, {:.1}/{:.1} MiB of the rest downloaded.",
            self.layers.len(),
            mib(current),
            mib(total)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_references() {
        assert_eq!(split_reference("python"), ("python", "latest"));
        assert_eq!(split_reference("python:3.12"), ("python", "3.12"));
        assert_eq!(
            split_reference("127.0.0.1:5000/a/b"),
            ("127.0.0.1:5000/a/b", "latest")
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/a/b:v1"),
            ("127.0.0.1:5000/a/b", "v1")
        );
        assert_eq!(split_reference("repo@sha256:abc"), ("repo", "sha256:abc"));
    }

    #[test]
    fn finds_the_registry() {
        assert_eq!(registry_of("127.0.0.1:5000/a:b"), "127.0.0.1:5000");
        assert_eq!(registry_of("ghcr.io/x/y"), "ghcr.io");
        assert_eq!(registry_of("library/python"), "https://index.docker.io/v1/");
        assert_eq!(registry_of("python"), "https://index.docker.io/v1/");
    }
}
