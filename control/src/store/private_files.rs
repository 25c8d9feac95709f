//! The store's files are private to the owner from their creation: the
//! directory 0700, the database and every file SQLite derives from it
//! (`-wal`, `-shm`, `-journal`) 0600. SQLite gives those files the main
//! database file's mode, so the database is created here, 0600, before
//! SQLite opens it.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::StoreError;

/// The directory's mode.
pub(super) const DIR_MODE: u32 = 0o700;
/// Every file's mode.
pub(super) const FILE_MODE: u32 = 0o600;
/// What SQLite may write next to the database.
const DERIVED: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Makes `db`'s directory and files private, creating what is missing.
pub(super) fn prepare(db: &Path) -> Result<(), StoreError> {
    let dir = db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    private_dir(dir, db)?;
    create_db(db)?;
    for path in std::iter::once(db.to_owned()).chain(derived(db)) {
        tighten(&path, FILE_MODE)?;
    }
    Ok(())
}

/// The files SQLite derives from `db`.
pub(super) fn derived(db: &Path) -> impl Iterator<Item = PathBuf> + '_ {
    DERIVED.iter().map(move |suffix| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    })
}

/// An existing directory is tightened only when it is the store's own
/// (nothing in it but the database and its derived files): a store placed in
/// a shared directory (`/var/lib`, a project folder) must not change who can
/// use that directory. The files themselves are private either way.
fn private_dir(dir: &Path, db: &Path) -> Result<(), StoreError> {
    let permissions = |source| StoreError::Permissions {
        path: dir.to_owned(),
        source,
    };
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => Err(StoreError::Directory {
            path: dir.to_owned(),
            source: std::io::Error::new(ErrorKind::NotADirectory, "not a directory"),
        }),
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o1002 != 0 {
                return Err(StoreError::SharedDirectory {
                    path: dir.to_owned(),
                    mode,
                });
            }
            if holds_only_store_files(dir, db)? {
                tighten(dir, DIR_MODE)
            } else {
                warn_if_listable(dir, mode);
                Ok(())
            }
        }
        Err(error) if error.kind() == ErrorKind::NotFound => DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(|source| StoreError::Directory {
                path: dir.to_owned(),
                source,
            }),
        Err(source) => Err(permissions(source)),
    }
}

/// Whether `dir` holds nothing but `db` and the files SQLite derives from it.
fn holds_only_store_files(dir: &Path, db: &Path) -> Result<bool, StoreError> {
    let ours: Vec<PathBuf> = std::iter::once(db.to_owned()).chain(derived(db)).collect();
    let names = |path: &Path| path.file_name().map(ToOwned::to_owned);
    let entries = std::fs::read_dir(dir).map_err(|source| StoreError::Permissions {
        path: dir.to_owned(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| StoreError::Permissions {
            path: dir.to_owned(),
            source,
        })?;
        let name = Some(entry.file_name());
        if !ours.iter().any(|path| names(path) == name) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Says so when others can list a shared directory the store lives in.
fn warn_if_listable(dir: &Path, mode: u32) {
    if mode & 0o077 != 0 {
        tracing::warn!(
            store.path = %dir.display(),
            mode = format!("{mode:o}"),
            "the state store's directory holds other files and is left as it is; others can see the store's file names (the files themselves are 0600)"
        );
    }
}

/// Creates the database file, empty and 0600, unless it exists.
fn create_db(db: &Path) -> Result<(), StoreError> {
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(db);
    match created {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Permissions {
            path: db.to_owned(),
            source,
        }),
    }
}

/// Removes group and other bits from an existing `path`, logging the change.
fn tighten(path: &Path, private: u32) -> Result<(), StoreError> {
    let mode = match std::fs::metadata(path) {
        Ok(meta) => meta.permissions().mode() & 0o7777,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StoreError::Permissions {
                path: path.to_owned(),
                source,
            });
        }
    };
    if mode & 0o077 == 0 {
        return Ok(());
    }
    std::fs::set_permissions(path, Permissions::from_mode(private)).map_err(|source| {
        StoreError::Permissions {
            path: path.to_owned(),
            source,
        }
    })?;
    tracing::warn!(
        store.path = %path.display(),
        from = format!("{mode:o}"),
        to = format!("{private:o}"),
        "tightened the state store's permissions: it holds sandbox env values"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn creates_the_directory_and_database_private() {
        let root = tempfile::tempdir().unwrap();
        let db = root.path().join("a/b/state.db");
        prepare(&db).unwrap();
        assert_eq!(mode(&root.path().join("a/b")), DIR_MODE);
        assert_eq!(mode(&db), FILE_MODE);
    }

    #[test]
    fn tightens_an_existing_directory_and_files() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("store");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        let db = dir.join("state.db");
        for path in std::iter::once(db.clone()).chain(derived(&db)) {
            std::fs::write(&path, b"").unwrap();
            std::fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        }
        prepare(&db).unwrap();
        assert_eq!(mode(&dir), DIR_MODE);
        for path in std::iter::once(db.clone()).chain(derived(&db)) {
            assert_eq!(mode(&path), FILE_MODE, "{}", path.display());
        }
    }

    #[test]
    fn leaves_a_directory_holding_other_files_as_it_is() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("var-lib");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(dir.join("another-service")).unwrap();
        let db = dir.join("state.db");
        prepare(&db).unwrap();
        assert_eq!(mode(&dir), 0o755, "a shared directory keeps its mode");
        assert_eq!(mode(&db), FILE_MODE);
    }

    #[test]
    fn refuses_a_shared_directory() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("shared");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, Permissions::from_mode(0o1777)).unwrap();
        let error = prepare(&dir.join("state.db")).unwrap_err();
        assert!(
            matches!(error, StoreError::SharedDirectory { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("shared"), "{error}");
    }
}
