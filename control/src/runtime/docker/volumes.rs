//! Volume binds on Docker: host directories under the allow-list, named
//! volumes (`pvc`) that Sandgate created or the operator allowed, and their
//! `subPath`s.
//!
//! # Why host directories reach Docker through a staging bind
//! Docker takes a bind's source as a path string and resolves it again, in
//! runc, when the container starts. Checking the string first (even
//! canonicalised) leaves a window: whatever can write inside an allowed
//! directory (sandbox code that has it mounted read-write, a host user) can
//! swap a checked directory for a symlink before the start, and the engine
//! then mounts whatever the link names. Re-checking after the start is too
//! late: the sandbox's code already runs with the mount. So Sandgate never
//! hands Docker a path that anyone but itself can change:
//!
//! 1. It opens the allowed prefix that contains the path, the outermost one,
//!    so that no component above it lies inside any allowed directory (the
//!    prefix is the operator's; symlinks in it are followed).
//! 2. It opens every component below the prefix (the rest of `host.path`,
//!    then `subPath`) one name at a time with `openat2` and
//!    `RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH`, creating missing directories
//!    with `mkdirat` in the directory it just opened. A symlink anywhere below
//!    the prefix, or a component that is not a directory, is refused. What it
//!    holds at the end is a descriptor of the very directory it checked.
//! 3. It bind-mounts that descriptor (`/proc/self/fd/N`, which the kernel
//!    resolves to the open directory itself, not to a path) onto a directory
//!    of its own under `DockerSettings::bind_staging_dir` (root-only, outside
//!    every allowed prefix), and gives Docker the staging path. Nothing in that
//!    path can be swapped by a sandbox, so runc mounts what step 2 checked.
//! 4. Once the container started (its mounts exist by then), the staging
//!    mount is detached and its directory removed ([`Staged`]'s `Drop`). A
//!    later `docker start` by hand finds nothing there (Docker creates an
//!    empty directory), never the host path.
//!
//! `pvc` volumes with a `subPath` take the same walk, rooted at the volume's
//! mountpoint: sandboxes write into named volumes too. This is the scheme
//! moby uses for its own volume sub-paths (`internal/safepath`, API 1.45),
//! which not every supported engine has. It needs Sandgate to run as root in
//! the engine's mount namespace; without that, host volumes and `subPath`s
//! fail with a clear error rather than falling back to the racy string.
//!
//! Rejected alternatives: giving Docker `/proc/self/fd/N` itself (dockerd
//! and runc resolve it in their own processes, where it names something else
//! or nothing), and checking the mount after the start and removing the
//! container on a mismatch (the sandbox's code runs with the wrong mount until
//! then). The staging mount is still compared (device and inode) with the
//! descriptor before Docker sees it.
//!
//! Tests: the race itself (a thread swapping the directory and a symlink
//! while 30 creates run; the old string check mounted the outside directory in
//! 8 of 30) and the static cases (final-component, inward and `subPath`
//! symlinks, files, a link planted in a named volume by a sandbox) are in
//! `control/tests/docker.rs`; the walk's rules are unit-tested below.
//!
//! What it trusts: the allowed prefixes and their ancestors (the operator's
//! paths; no sandbox may be able to write there, so an allowed prefix must not
//! lie inside a named volume), and the staging directory, which it checks is
//! a real directory that only its own user (or root) can change, below
//! ancestors nobody else can rename entries in.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::models::VolumeCreateRequest;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::mount::UnmountFlags;
use sandgate_shared::ids::SandboxId;

use super::{DockerSettings, errors, labels};
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
    /// Staging mounts, detached when this is dropped (after the start).
    staged: Vec<Staged>,
}

fn rejected(rule: SpecRule, message: String) -> RuntimeError {
    RuntimeError::invalid_spec(rule, message)
}

/// Where execd is installed when it is injected: a volume there (or on
/// `/opt`) would hide it, and the install would write into the volume.
const EXECD_DIR: &str = "/opt/opensandbox";

/// Checks every volume without changing anything (used before accepting).
pub(super) fn check(volumes: &[VolumeSpec], settings: &DockerSettings) -> Result<(), RuntimeError> {
    for (index, volume) in volumes.iter().enumerate() {
        let target = volume.mount_path.as_str();
        let shadows_execd = target == EXECD_DIR
            || target.starts_with(&format!("{EXECD_DIR}/"))
            || EXECD_DIR.starts_with(&format!("{target}/"));
        if settings.execd_image.is_some() && shadows_execd {
            return Err(rejected(
                SpecRule::MountPathReserved,
                format!(
                    "volumes[{index}].mountPath: {target:?} would hide {EXECD_DIR}, where the execd bootstrap is installed"
                ),
            ));
        }
        match &volume.backend {
            VolumeBackend::Host { path } => {
                let below = Below::host(index, path, volume, &settings.allowed_host_paths)?;
                below.walk(false)?;
            }
            VolumeBackend::Pvc { .. } => {}
            VolumeBackend::Ossfs { .. } => {
                return Err(rejected(
                    SpecRule::Unsupported,
                    format!(
                        "volumes[{index}].ossfs: the Docker runtime does not support ossfs; use host or pvc"
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
    id: &SandboxId,
    volumes: &[VolumeSpec],
    settings: &DockerSettings,
) -> Result<Prepared, RuntimeError> {
    let mut prepared = Prepared::default();
    for (index, volume) in volumes.iter().enumerate() {
        let mode = if volume.read_only { "ro" } else { "rw" };
        let source = match &volume.backend {
            VolumeBackend::Host { path } => {
                let below = Below::host(index, path, volume, &settings.allowed_host_paths)?;
                let dir = below.open()?;
                prepared.stage(&dir, settings, id, index)?
            }
            VolumeBackend::Pvc {
                claim_name,
                create_if_not_exists,
                delete_on_sandbox_termination,
                ..
            } => {
                let wanted = Claim {
                    index,
                    name: claim_name,
                    create: *create_if_not_exists,
                    delete_with_sandbox: *delete_on_sandbox_termination,
                };
                named_volume(docker, &wanted, &mut prepared, &settings.allowed_pvc_names).await?;
                match &volume.sub_path {
                    Some(sub) => {
                        let root = volume_root(docker, index, claim_name).await?;
                        let dir = Below::sub_path(index, root, sub)?.open()?;
                        prepared.stage(&dir, settings, id, index)?
                    }
                    None => claim_name.clone(),
                }
            }
            VolumeBackend::Ossfs { .. } => {
                return Err(rejected(
                    SpecRule::Unsupported,
                    format!("volumes[{index}].ossfs: not supported on Docker"),
                ));
            }
        };
        prepared
            .binds
            .push(format!("{source}:{}:{mode}", volume.mount_path));
    }
    Ok(prepared)
}

/// A directory given as a trusted root and the names below it, which are
/// walked without following symlinks.
#[derive(Debug)]
struct Below {
    /// What the messages call it (`volumes[0].host.path`).
    field: String,
    /// The allowed prefix or the volume's mountpoint.
    root: PathBuf,
    /// The components below `root`.
    names: Vec<String>,
}

impl Below {
    /// `host.path` (and `subPath`) split at the outermost allowed prefix that
    /// contains it.
    fn host(
        index: usize,
        path: &str,
        volume: &VolumeSpec,
        allowed: &[String],
    ) -> Result<Self, RuntimeError> {
        let field = format!("volumes[{index}].host.path");
        let contains = |prefix: &&str| {
            prefix.is_empty() || path == *prefix || path.starts_with(&format!("{prefix}/"))
        };
        let Some(prefix) = allowed
            .iter()
            .map(|p| p.trim_end_matches('/'))
            .filter(contains)
            .min_by_key(|p| p.len())
        else {
            return Err(rejected(
                SpecRule::HostPathNotAllowed,
                format!("{field}: {path:?} is outside storage.allowed_host_paths"),
            ));
        };
        let rest = path[prefix.len()..].split('/');
        let sub = volume.sub_path.as_deref().unwrap_or_default().split('/');
        let root = PathBuf::from(if prefix.is_empty() { "/" } else { prefix });
        Self::new(field, root, rest.chain(sub))
    }

    /// A named volume's `subPath`, below its mountpoint.
    fn sub_path(index: usize, root: PathBuf, sub: &str) -> Result<Self, RuntimeError> {
        Self::new(format!("volumes[{index}].subPath"), root, sub.split('/'))
    }

    fn new<'a>(
        field: String,
        root: PathBuf,
        names: impl Iterator<Item = &'a str>,
    ) -> Result<Self, RuntimeError> {
        let names: Vec<String> = names
            .filter(|n| !n.is_empty() && *n != ".")
            .map(str::to_owned)
            .collect();
        if names.iter().any(|n| n == "..") {
            return Err(rejected(
                SpecRule::SubPathOutsideVolume,
                format!("{field}: '..' segments are not allowed"),
            ));
        }
        Ok(Self { field, root, names })
    }

    fn shown(&self) -> String {
        let mut path = self.root.clone();
        path.extend(&self.names);
        path.display().to_string()
    }

    /// The checked directory, creating what is missing.
    fn open(&self) -> Result<OwnedFd, RuntimeError> {
        self.walk(true)?.ok_or_else(|| {
            RuntimeError::backend(format!(
                "{}: {} vanished while it was created",
                self.field,
                self.shown()
            ))
        })
    }

    /// Walks down from the root; `None` when something is missing and
    /// `create` is false (it will be created, so it holds no symlink).
    fn walk(&self, create: bool) -> Result<Option<OwnedFd>, RuntimeError> {
        let Some(mut dir) = self.open_root(create)? else {
            return Ok(None);
        };
        for name in &self.names {
            dir = match open_child(&dir, name) {
                Ok(child) => child,
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&dir, name.as_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(error) => return Err(self.cannot("create", name, error)),
                    }
                    open_child(&dir, name).map_err(|e| self.refusal(name, e))?
                }
                Err(Errno::NOENT) => return Ok(None),
                Err(error) => return Err(self.refusal(name, error)),
            };
        }
        Ok(Some(dir))
    }

    fn open_root(&self, create: bool) -> Result<Option<OwnedFd>, RuntimeError> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        match rustix::fs::open(&self.root, flags, Mode::empty()) {
            Ok(fd) => Ok(Some(fd)),
            Err(Errno::NOENT) if create => {
                std::fs::create_dir_all(&self.root).map_err(|e| {
                    RuntimeError::backend(format!(
                        "{}: cannot create {}: {e}",
                        self.field,
                        self.root.display()
                    ))
                })?;
                rustix::fs::open(&self.root, flags, Mode::empty())
                    .map(Some)
                    .map_err(|e| self.cannot("open", &self.root.display().to_string(), e))
            }
            Err(Errno::NOENT) => Ok(None),
            Err(Errno::NOTDIR) => Err(rejected(
                SpecRule::NotADirectory,
                format!("{}: {} is not a directory", self.field, self.root.display()),
            )),
            Err(error) => Err(self.cannot("open", &self.root.display().to_string(), error)),
        }
    }

    fn refusal(&self, name: &str, error: Errno) -> RuntimeError {
        match error {
            Errno::LOOP => rejected(
                SpecRule::HostPathNotAllowed,
                format!(
                    "{}: {} has a symbolic link at {name:?}; volumes do not follow symbolic links below their root",
                    self.field,
                    self.shown()
                ),
            ),
            Errno::NOTDIR => rejected(
                SpecRule::NotADirectory,
                format!(
                    "{}: {} is not a directory at {name:?}",
                    self.field,
                    self.shown()
                ),
            ),
            other => self.cannot("open", name, other),
        }
    }

    fn cannot(&self, what: &str, name: &str, error: Errno) -> RuntimeError {
        RuntimeError::backend(format!(
            "{}: cannot {what} {name:?} in {}: {error}",
            self.field,
            self.shown()
        ))
    }
}

/// Opens one name below `dir`: a directory, reached without any symlink.
fn open_child(dir: &OwnedFd, name: &str) -> Result<OwnedFd, Errno> {
    rustix::fs::openat2(
        dir,
        name,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )
}

/// A bind mount of a checked directory at a path only Sandgate writes.
#[derive(Debug)]
struct Staged {
    target: PathBuf,
}

impl Drop for Staged {
    fn drop(&mut self) {
        unstage(&self.target);
    }
}

fn unstage(target: &Path) {
    match rustix::mount::unmount(target, UnmountFlags::DETACH) {
        Ok(()) | Err(Errno::INVAL | Errno::NOENT) => {}
        Err(error) => {
            tracing::warn!(path = %target.display(), %error, "cannot detach a volume staging mount");
        }
    }
    if let Err(error) = std::fs::remove_dir(target)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %target.display(), %error, "cannot remove a volume staging directory");
    }
}

impl Prepared {
    /// Bind-mounts `dir` at this sandbox's staging path for volume `index`
    /// and returns that path, for Docker.
    fn stage(
        &mut self,
        dir: &OwnedFd,
        settings: &DockerSettings,
        id: &SandboxId,
        index: usize,
    ) -> Result<String, RuntimeError> {
        let target = staging_dir(settings)?.join(format!("{id}-{index}"));
        unstage(&target);
        let failed = |what: &str, error: &dyn std::fmt::Display| {
            RuntimeError::backend(format!(
                "volumes[{index}]: cannot {what} the staging bind {} ({error}); host volumes and subPaths need Sandgate to run as root in the engine's mount namespace",
                target.display()
            ))
        };
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&target)
            .map_err(|e| failed("create", &e))?;
        let staged = Staged {
            target: target.clone(),
        };
        let source = format!("/proc/self/fd/{}", dir.as_raw_fd());
        rustix::mount::mount_bind_recursive(source.as_str(), &target)
            .map_err(|e| failed("mount", &e))?;
        let same =
            |a: rustix::fs::Stat, b: rustix::fs::Stat| (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino);
        let checked = rustix::fs::fstat(dir).map_err(|e| failed("inspect", &e))?;
        let mounted = rustix::fs::stat(&target).map_err(|e| failed("inspect", &e))?;
        if !same(checked, mounted) {
            return Err(failed("verify", &"it shows another directory"));
        }
        self.staged.push(staged);
        Ok(target.to_string_lossy().into_owned())
    }
}

/// This instance's staging directory: created root-only, and never inside an
/// allowed prefix (a sandbox could otherwise swap it).
fn staging_dir(settings: &DockerSettings) -> Result<PathBuf, RuntimeError> {
    let dir = settings.bind_staging_dir.join(&settings.instance);
    let inside_allowed = settings
        .allowed_host_paths
        .iter()
        .any(|prefix| dir.starts_with(prefix));
    if inside_allowed || !dir.is_absolute() {
        return Err(RuntimeError::backend(format!(
            "the volume staging directory {} must be absolute and outside storage.allowed_host_paths",
            dir.display()
        )));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| {
            RuntimeError::backend(format!(
                "cannot create the volume staging directory {}: {e}",
                dir.display()
            ))
        })?;
    match dir.ancestors().find(|path| !only_we_change(path)) {
        Some(unsafe_dir) => Err(RuntimeError::backend(format!(
            "the volume staging directory {} is not private: {} is a symbolic link, or others can rename entries in it",
            dir.display(),
            unsafe_dir.display()
        ))),
        None => Ok(dir),
    }
}

/// Whether `path` is a directory (not a link) owned by root or this user that
/// nobody else can rename entries in (not group/world-writable, or sticky).
fn only_we_change(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let owner_ok = meta.uid() == 0 || meta.uid() == rustix::process::geteuid().as_raw();
    let sticky = meta.mode() & 0o1000 != 0;
    meta.is_dir() && owner_ok && (meta.mode() & 0o022 == 0 || sticky)
}

/// Detaches what a crash left in this instance's staging directory.
pub(super) fn sweep_staging(settings: &DockerSettings) {
    let dir = settings.bind_staging_dir.join(&settings.instance);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        unstage(&entry.path());
    }
}

/// A `pvc` volume as a create asks for it.
struct Claim<'a> {
    index: usize,
    name: &'a str,
    create: bool,
    delete_with_sandbox: bool,
}

/// Whether a named volume may be mounted: Sandgate (or OpenSandbox) created
/// it, or the operator listed it in `sandgate.allowed_pvc_names`.
fn may_mount(volume: &bollard::models::Volume, allowed: &[String]) -> bool {
    let ours = volume.labels.get(labels::VOLUME_OWNER).map(String::as_str) == Some("server");
    ours || allowed.contains(&volume.name)
}

fn not_allowed(claim: &Claim<'_>) -> RuntimeError {
    rejected(
        SpecRule::VolumeNotAllowed,
        format!(
            "volumes[{}].pvc.claimName: {:?} names a volume Sandgate did not create; only its own volumes and those in sandgate.allowed_pvc_names may be mounted",
            claim.index, claim.name
        ),
    )
}

async fn named_volume(
    docker: &Docker,
    claim: &Claim<'_>,
    prepared: &mut Prepared,
    allowed: &[String],
) -> Result<(), RuntimeError> {
    match docker.inspect_volume(claim.name).await {
        Ok(volume) if may_mount(&volume, allowed) => return Ok(()),
        Ok(_) => return Err(not_allowed(claim)),
        Err(error) if errors::is_not_found(&error) => {}
        Err(error) => return Err(errors::general(error)),
    }
    if !claim.create {
        return Err(rejected(
            SpecRule::VolumeNotFound,
            format!(
                "volumes[{}].pvc.claimName: named volume {:?} does not exist and createIfNotExists is false",
                claim.index, claim.name
            ),
        ));
    }
    let request = VolumeCreateRequest {
        name: Some(claim.name.to_owned()),
        labels: Some([(labels::VOLUME_OWNER.to_owned(), "server".to_owned())].into()),
        ..VolumeCreateRequest::default()
    };
    // Creating an existing volume returns it as it is: someone may have made
    // one without the label in the meantime.
    let volume = docker
        .create_volume(request)
        .await
        .map_err(errors::general)?;
    if !may_mount(&volume, allowed) {
        return Err(not_allowed(claim));
    }
    prepared.created.push(claim.name.to_owned());
    if claim.delete_with_sandbox {
        prepared.managed.push(claim.name.to_owned());
    }
    Ok(())
}

async fn volume_root(docker: &Docker, index: usize, name: &str) -> Result<PathBuf, RuntimeError> {
    let volume = docker.inspect_volume(name).await.map_err(errors::general)?;
    if volume.driver != "local" || volume.mountpoint.is_empty() {
        return Err(rejected(
            SpecRule::SubPathUnsupportedDriver,
            format!(
                "volumes[{index}].subPath: needs a local-driver volume; {name:?} uses {:?}",
                volume.driver
            ),
        ));
    }
    Ok(PathBuf::from(volume.mountpoint))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(sub_path: Option<&str>) -> VolumeSpec {
        VolumeSpec {
            name: "data".to_owned(),
            mount_path: "/data".to_owned(),
            read_only: false,
            sub_path: sub_path.map(str::to_owned),
            backend: VolumeBackend::Host {
                path: String::new(),
            },
        }
    }

    fn walk(path: &Path, sub: Option<&str>, allowed: &Path, create: bool) -> Result<bool, String> {
        let allowed = vec![allowed.to_string_lossy().into_owned()];
        Below::host(0, path.to_str().unwrap(), &spec(sub), &allowed)
            .and_then(|b| b.walk(create))
            .map(|fd| fd.is_some())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn symlinks_and_files_below_the_prefix_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let allowed = root.path().join("allowed");
        let outside = root.path().join("outside");
        std::fs::create_dir_all(allowed.join("inner")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(allowed.join("file"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, allowed.join("link")).unwrap();
        std::os::unix::fs::symlink(allowed.join("inner"), allowed.join("inward")).unwrap();

        assert_eq!(
            walk(&allowed.join("new/deeper"), None, &allowed, false),
            Ok(false)
        );
        assert_eq!(
            walk(&allowed.join("new/deeper"), None, &allowed, true),
            Ok(true)
        );
        assert!(allowed.join("new/deeper").is_dir(), "created on the way");
        for (path, sub) in [
            (allowed.join("link"), None),
            (allowed.join("link/x"), None),
            (allowed.clone(), Some("link")),
            (allowed.clone(), Some("inner/../link")),
            (allowed.join("inward"), None),
        ] {
            let error = walk(&path, sub, &allowed, true).unwrap_err();
            assert!(
                error.contains("symbolic link") || error.contains("'..'"),
                "{path:?} {sub:?}: {error}"
            );
        }
        let error = walk(&allowed.join("file"), None, &allowed, true).unwrap_err();
        assert!(error.contains("is not a directory"), "{error}");
        assert!(
            !outside.join("x").exists(),
            "nothing created through the link"
        );
    }

    #[test]
    fn a_staging_directory_others_can_change_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let settings = |dir: PathBuf| DockerSettings {
            bind_staging_dir: dir,
            ..DockerSettings::default()
        };
        assert!(staging_dir(&settings(root.path().join("binds"))).is_ok());
        let open = root.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let error = staging_dir(&settings(open.join("binds"))).unwrap_err();
        let error = crate::error::error_chain(&error);
        assert!(error.contains("not private"), "{error}");
        std::os::unix::fs::symlink(root.path().join("binds"), root.path().join("link")).unwrap();
        assert!(staging_dir(&settings(root.path().join("link"))).is_err());
    }

    #[test]
    fn volumes_may_not_hide_the_execd_bootstrap() {
        let settings = DockerSettings {
            execd_image: Some("execd".to_owned()),
            ..DockerSettings::default()
        };
        let at = |path: &str| VolumeSpec {
            mount_path: path.to_owned(),
            backend: VolumeBackend::Pvc {
                claim_name: "c".to_owned(),
                create_if_not_exists: true,
                delete_on_sandbox_termination: false,
                storage_class: None,
                storage: None,
                access_modes: vec![],
            },
            ..spec(None)
        };
        for hidden in ["/opt", "/opt/opensandbox", "/opt/opensandbox/x"] {
            let error = check(&[at(hidden)], &settings).unwrap_err().to_string();
            assert!(error.contains("execd bootstrap"), "{hidden}: {error}");
        }
        assert!(check(&[at("/opt/other")], &settings).is_ok());
        assert!(
            check(&[at("/opt")], &DockerSettings::default()).is_ok(),
            "no execd"
        );
    }

    #[test]
    fn the_outermost_allowed_prefix_is_the_root() {
        let spec = spec(Some("c"));
        let allowed = vec!["/srv/data/inner".to_owned(), "/srv/data/".to_owned()];
        let below = Below::host(0, "/srv/data/inner/b", &spec, &allowed).unwrap();
        assert_eq!(below.root, PathBuf::from("/srv/data"));
        assert_eq!(below.names, vec!["inner", "b", "c"]);
        assert!(Below::host(0, "/srv/database", &spec, &allowed).is_err());
    }
}
