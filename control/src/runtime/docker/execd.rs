//! execd injection, compatible with OpenSandbox: `/execd` and `/bootstrap.sh`
//! are copied out of `runtime.execd_image` once, then installed under
//! `/opt/opensandbox/` in every sandbox before it starts.

use std::io::Read;

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptions, DownloadFromContainerOptions, RemoveContainerOptions,
};
use bytes::Bytes;
use futures_util::TryStreamExt;
use tokio::sync::OnceCell;

use super::{errors, image};
use crate::runtime::{Progress, RuntimeError};

/// The files taken from the execd image (at its root).
const ARTIFACTS: [&str; 2] = ["/execd", "/bootstrap.sh"];

/// The execd artifacts of one image, extracted on first use.
pub(super) struct Execd {
    image: String,
    install: OnceCell<Bytes>,
}

impl Execd {
    /// Artifacts from `image`, not yet extracted.
    pub(super) fn new(image: String) -> Self {
        Self {
            image,
            install: OnceCell::new(),
        }
    }

    /// A tar archive that, extracted at `/`, installs the artifacts.
    pub(super) async fn install_archive(
        &self,
        docker: &Docker,
        progress: &Progress,
    ) -> Result<Bytes, RuntimeError> {
        self.install
            .get_or_try_init(|| extract(docker, &self.image, progress))
            .await
            .cloned()
    }
}

async fn extract(docker: &Docker, image: &str, progress: &Progress) -> Result<Bytes, RuntimeError> {
    progress.report(format!("Preparing execd from {image}."));
    image::ensure(docker, image, None, None, progress).await?;
    let name = format!("sandbox-execd-{}", uuid::Uuid::new_v4().simple());
    let options = CreateContainerOptions {
        name: Some(name.clone()),
        ..CreateContainerOptions::default()
    };
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        entrypoint: Some(vec!["/execd".to_owned()]),
        labels: Some([("sandgate.io/helper".to_owned(), "execd".to_owned())].into()),
        ..ContainerCreateBody::default()
    };
    docker
        .create_container(Some(options), body)
        .await
        .map_err(|e| {
            RuntimeError::unavailable(format!(
                "cannot create the execd helper container from {image}: {e}"
            ))
        })?;
    let files = download_all(docker, &name).await;
    let removal = RemoveContainerOptions {
        force: true,
        ..RemoveContainerOptions::default()
    };
    if let Err(error) = docker.remove_container(&name, Some(removal)).await {
        tracing::warn!(container = %name, %error, "cannot remove the execd helper container");
    }
    build_install_archive(&files?)
}

async fn download_all(
    docker: &Docker,
    container: &str,
) -> Result<Vec<(String, Vec<u8>)>, RuntimeError> {
    let mut files = Vec::new();
    for path in ARTIFACTS {
        let options = DownloadFromContainerOptions {
            path: path.to_owned(),
        };
        let chunks: Vec<Bytes> = docker
            .download_from_container(container, Some(options))
            .try_collect()
            .await
            .map_err(|e| {
                RuntimeError::backend(format!("execd image lacks {path}: {}", errors::general(e)))
            })?;
        let archive: Vec<u8> = chunks.concat();
        files.extend(read_files(&archive, path)?);
    }
    Ok(files)
}

/// Regular files of a tar archive, as (name relative to the archive root, content).
fn read_files(archive: &[u8], origin: &str) -> Result<Vec<(String, Vec<u8>)>, RuntimeError> {
    let broken = |e: std::io::Error| {
        RuntimeError::backend(format!("reading {origin} from the execd image: {e}"))
    };
    let mut files = Vec::new();
    let mut tar = tar::Archive::new(archive);
    for entry in tar.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(broken)?.to_string_lossy().into_owned();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).map_err(broken)?;
        files.push((name, content));
    }
    Ok(files)
}

/// `opt/opensandbox/<file>` entries (mode 0755) plus their directories.
fn build_install_archive(files: &[(String, Vec<u8>)]) -> Result<Bytes, RuntimeError> {
    let failed = |e: std::io::Error| {
        RuntimeError::backend(format!("building the execd install archive: {e}"))
    };
    let mut builder = tar::Builder::new(Vec::new());
    for dir in ["opt/", "opt/opensandbox/"] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        builder
            .append_data(&mut header, dir, std::io::empty())
            .map_err(failed)?;
    }
    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o755);
        header.set_size(content.len() as u64);
        let path = format!("opt/opensandbox/{}", name.trim_start_matches('/'));
        builder
            .append_data(&mut header, path, content.as_slice())
            .map_err(failed)?;
    }
    builder.into_inner().map(Bytes::from).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_archive_places_files_under_opt_opensandbox() {
        let files = vec![
            ("execd".to_owned(), b"bin".to_vec()),
            ("bootstrap.sh".to_owned(), b"#!/bin/sh".to_vec()),
        ];
        let archive = build_install_archive(&files).unwrap();
        let names: Vec<String> = tar::Archive::new(&archive[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "opt/",
                "opt/opensandbox/",
                "opt/opensandbox/execd",
                "opt/opensandbox/bootstrap.sh"
            ]
        );
        assert_eq!(
            read_files(&archive, "test").unwrap(),
            [
                ("opt/opensandbox/execd".to_owned(), b"bin".to_vec()),
                (
                    "opt/opensandbox/bootstrap.sh".to_owned(),
                    b"#!/bin/sh".to_vec()
                ),
            ]
        );
    }
}
