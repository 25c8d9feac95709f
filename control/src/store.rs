//! Durable sandbox and snapshot state in one SQLite file, written by one thread.
//!
//! Every write is acknowledged only after its transaction committed with
//! `synchronous = FULL` in WAL mode, so an acknowledged change survives a
//! crash of the process or the machine. Writes that arrive while a commit is
//! running are grouped into the next transaction (group commit), so a burst
//! of creates costs one fsync, not one each. Reads happen once, at startup;
//! afterwards the in-memory registry serves them.
//!
//! The files hold sandbox env values: they are private to the owner from
//! their creation ([`private_files`]), and a store that cannot be written
//! refuses to open rather than serve read-only.

mod private_files;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;

use rusqlite::{Connection, params};
use sandgate_shared::ids::SandboxId;
use sandgate_shared::time::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::sandbox::model::SandboxRecord;
use crate::sandbox::snapshot_model::SnapshotRecord;

/// How many status changes are kept per sandbox.
const HISTORY_LIMIT: i64 = 200;
/// The most writes grouped into one transaction.
const MAX_BATCH: usize = 512;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("state store {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored record does not decode.
    #[error("state store {path}: record {id} is corrupt: {source}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The record's key.
        id: String,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// The data directory cannot be created.
    #[error("cannot create the state directory {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A grouped transaction failed; every write in it is reported failed.
    #[error("state store {path}: commit failed: {message}")]
    Commit {
        /// The database file.
        path: PathBuf,
        /// The SQLite error, as text (one error is shared by the whole group).
        message: String,
    },
    /// The store's directory is shared with other users (sticky or world-writable).
    #[error(
        "state directory {path} is shared with other users (mode {mode:o}); store.path must be in a directory of its own"
    )]
    SharedDirectory {
        /// The directory.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// A file or directory of the store cannot be made private to its owner.
    #[error("cannot make {path} private to its owner: {source}")]
    Permissions {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The database opens but cannot be written.
    #[error("state store {path} cannot be written: {source}")]
    ReadOnly {
        /// The database file.
        path: PathBuf,
        /// The SQLite error of the test write.
        #[source]
        source: rusqlite::Error,
    },
    /// The writer thread is gone (the process is shutting down).
    #[error("state store writer has stopped")]
    Closed,
}

/// One entry of a sandbox's status history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusEvent {
    /// When it happened.
    pub at: Timestamp,
    /// The new state.
    pub state: String,
    /// Reason code.
    pub reason: String,
    /// Message.
    pub message: String,
}

enum Command {
    Put {
        id: String,
        json: String,
        event: Option<StatusEvent>,
        ack: oneshot::Sender<Result<(), StoreError>>,
    },
    Remove {
        id: String,
        ack: oneshot::Sender<Result<(), StoreError>>,
    },
    History {
        id: String,
        reply: oneshot::Sender<Result<Vec<StatusEvent>, StoreError>>,
    },
    PutSnapshot {
        id: String,
        json: String,
        ack: oneshot::Sender<Result<(), StoreError>>,
    },
    RemoveSnapshot {
        id: String,
        ack: oneshot::Sender<Result<(), StoreError>>,
    },
    Snapshots {
        reply: oneshot::Sender<Result<Vec<SnapshotRecord>, StoreError>>,
    },
}

impl Command {
    /// Whether the command only reads (answered after the batch's writes).
    fn is_read(&self) -> bool {
        matches!(self, Self::History { .. } | Self::Snapshots { .. })
    }
}

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    commands: mpsc::Sender<Command>,
    failing: Arc<AtomicBool>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and returns the
    /// handle plus every stored record. Fails when the store cannot be
    /// written.
    pub fn open(path: &Path) -> Result<(Self, Vec<SandboxRecord>), StoreError> {
        private_files::prepare(path)?;
        let conn = open_connection(path)?;
        probe_write(&conn, path)?;
        migrate(&conn, path)?;
        let records = load_all(&conn, path)?;
        let (commands, receiver) = mpsc::channel();
        let failing = Arc::new(AtomicBool::new(false));
        let owned_path = path.to_owned();
        thread::Builder::new()
            .name("sandgate-store".to_owned())
            .spawn({
                let failing = failing.clone();
                move || writer_loop(conn, owned_path, receiver, &failing)
            })
            .map_err(|source| StoreError::Directory {
                path: path.to_owned(),
                source,
            })?;
        Ok((Self { commands, failing }, records))
    }

    /// Whether the last grouped write failed (the store has become
    /// unwritable since startup); `/health` reports it.
    pub fn writes_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Durably writes `record` (and appends `event` to its history).
    pub async fn put(
        &self,
        record: &SandboxRecord,
        event: Option<StatusEvent>,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(record).map_err(|source| StoreError::Corrupt {
            path: PathBuf::new(),
            id: record.id.to_string(),
            source,
        })?;
        let id = record.id.to_string();
        self.request(move |ack| Command::Put {
            id,
            json,
            event,
            ack,
        })
        .await
    }

    /// Durably removes a sandbox and its history.
    pub async fn remove(&self, id: &SandboxId) -> Result<(), StoreError> {
        let id = id.to_string();
        self.request(move |ack| Command::Remove { id, ack }).await
    }

    /// The sandbox's status history, oldest first.
    pub async fn history(&self, id: &SandboxId) -> Result<Vec<StatusEvent>, StoreError> {
        let id = id.to_string();
        self.request(move |reply| Command::History { id, reply })
            .await
    }

    /// Durably writes a snapshot record.
    pub async fn put_snapshot(&self, record: &SnapshotRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(record).map_err(|source| StoreError::Corrupt {
            path: PathBuf::new(),
            id: record.id.clone(),
            source,
        })?;
        let id = record.id.clone();
        self.request(move |ack| Command::PutSnapshot { id, json, ack })
            .await
    }

    /// Durably removes a snapshot record.
    pub async fn remove_snapshot(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.request(move |ack| Command::RemoveSnapshot { id, ack })
            .await
    }

    /// Every stored snapshot record (read once, at startup).
    pub async fn snapshots(&self) -> Result<Vec<SnapshotRecord>, StoreError> {
        self.request(|reply| Command::Snapshots { reply }).await
    }

    /// Sends a command and waits for the writer's answer.
    ///
    /// The wait runs on tokio's blocking pool rather than as an async await:
    /// it costs no async worker, and tokio does not auto-advance a paused
    /// test clock while blocking work is in flight, so time-based tests see
    /// the commit happen "instantly", as it does relative to the timers.
    async fn request<T: Send + 'static>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Command,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let commands = self.commands.clone();
        let command = command(reply);
        tokio::task::spawn_blocking(move || {
            commands.send(command).map_err(|_| StoreError::Closed)?;
            answer.blocking_recv().map_err(|_| StoreError::Closed)?
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(sqlite(path))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA busy_timeout = 5000;
         CREATE TABLE IF NOT EXISTS sandboxes (
             id TEXT PRIMARY KEY,
             record TEXT NOT NULL
         );
         CREATE TABLE IF NOT EXISTS sandbox_events (
             seq INTEGER PRIMARY KEY AUTOINCREMENT,
             sandbox_id TEXT NOT NULL,
             event TEXT NOT NULL
         );
         CREATE INDEX IF NOT EXISTS sandbox_events_by_id ON sandbox_events (sandbox_id, seq);",
    )
    .map_err(sqlite(path))?;
    Ok(conn)
}

/// One committed write, so a store SQLite opened read-only (file mode,
/// read-only filesystem, full disk, a database from a newer format) fails
/// now rather than on the first acknowledged change.
fn probe_write(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.execute_batch(
        "BEGIN IMMEDIATE;
         CREATE TABLE IF NOT EXISTS store_probe (id INTEGER PRIMARY KEY, opened INTEGER NOT NULL);
         INSERT INTO store_probe (id, opened) VALUES (1, 1)
             ON CONFLICT (id) DO UPDATE SET opened = opened + 1;
         COMMIT;",
    )
    .map_err(|source| StoreError::ReadOnly {
        path: path.to_owned(),
        source,
    })
}

/// Tables added after the first release; run once the store is known to be
/// writable, so a read-only store of an older release is reported as such.
fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS snapshots (
             id TEXT PRIMARY KEY,
             record TEXT NOT NULL
         );",
    )
    .map_err(sqlite(path))
}

fn load_all(conn: &Connection, path: &Path) -> Result<Vec<SandboxRecord>, StoreError> {
    read_records(conn, path, "SELECT id, record FROM sandboxes")
}

/// Every row of `query` (`SELECT id, record ...`), its JSON record parsed.
fn read_records<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    path: &Path,
    query: &'static str,
) -> Result<Vec<T>, StoreError> {
    let mut statement = conn.prepare(query).map_err(sqlite(path))?;
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(sqlite(path))?;
    let mut records = Vec::new();
    for row in rows {
        let (id, json) = row.map_err(sqlite(path))?;
        let record = serde_json::from_str(&json).map_err(|source| StoreError::Corrupt {
            path: path.to_owned(),
            id,
            source,
        })?;
        records.push(record);
    }
    Ok(records)
}

fn writer_loop(
    mut conn: Connection,
    path: PathBuf,
    commands: mpsc::Receiver<Command>,
    failing: &AtomicBool,
) {
    while let Ok(first) = commands.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match commands.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, &path, batch, failing);
    }
}

/// Commits the writes in `batch`, records in `failing` whether they failed
/// (before anyone is answered), and answers the reads.
fn commit_batch(conn: &mut Connection, path: &Path, batch: Vec<Command>, failing: &AtomicBool) {
    let (writes, reads): (Vec<_>, Vec<_>) = batch.into_iter().partition(|c| !c.is_read());
    let result = apply_writes(conn, &writes).map_err(|e| e.to_string());
    if !writes.is_empty() {
        record_outcome(failing, path, result.is_ok());
    }
    for command in writes {
        let outcome = result.clone().map_err(|message| StoreError::Commit {
            path: path.to_owned(),
            message,
        });
        match command {
            Command::Put { ack, .. }
            | Command::Remove { ack, .. }
            | Command::PutSnapshot { ack, .. }
            | Command::RemoveSnapshot { ack, .. } => {
                let _ = ack.send(outcome);
            }
            Command::History { .. } | Command::Snapshots { .. } => {}
        }
    }
    for command in reads {
        match command {
            Command::History { id, reply } => {
                let _ = reply.send(read_history(conn, path, &id));
            }
            Command::Snapshots { reply } => {
                let _ = reply.send(read_snapshots(conn, path));
            }
            _ => {}
        }
    }
}

/// Flips the health flag, logging each change.
fn record_outcome(failing: &AtomicBool, path: &Path, ok: bool) {
    let was_failing = failing.swap(!ok, Ordering::Relaxed);
    if was_failing == ok {
        let now = if ok { "succeed again" } else { "are failing" };
        tracing::warn!(store.path = %path.display(), "state store writes {now}");
    }
}

fn apply_writes(conn: &mut Connection, writes: &[Command]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for command in writes {
        match command {
            Command::Put {
                id, json, event, ..
            } => {
                tx.execute(
                    "INSERT INTO sandboxes (id, record) VALUES (?1, ?2)
                     ON CONFLICT (id) DO UPDATE SET record = excluded.record",
                    params![id, json],
                )?;
                if let Some(event) = event {
                    append_event(&tx, id, event)?;
                }
            }
            Command::Remove { id, .. } => {
                tx.execute("DELETE FROM sandboxes WHERE id = ?1", params![id])?;
                tx.execute(
                    "DELETE FROM sandbox_events WHERE sandbox_id = ?1",
                    params![id],
                )?;
            }
            Command::PutSnapshot { id, json, .. } => {
                tx.execute(
                    "INSERT INTO snapshots (id, record) VALUES (?1, ?2)
                     ON CONFLICT (id) DO UPDATE SET record = excluded.record",
                    params![id, json],
                )?;
            }
            Command::RemoveSnapshot { id, .. } => {
                tx.execute("DELETE FROM snapshots WHERE id = ?1", params![id])?;
            }
            Command::History { .. } | Command::Snapshots { .. } => {}
        }
    }
    tx.commit()
}

fn append_event(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    event: &StatusEvent,
) -> rusqlite::Result<()> {
    let json = serde_json::to_string(event).unwrap_or_default();
    tx.execute(
        "INSERT INTO sandbox_events (sandbox_id, event) VALUES (?1, ?2)",
        params![id, json],
    )?;
    tx.execute(
        "DELETE FROM sandbox_events WHERE sandbox_id = ?1 AND seq <=
           (SELECT seq FROM sandbox_events WHERE sandbox_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
        params![id, HISTORY_LIMIT],
    )?;
    Ok(())
}

fn read_snapshots(conn: &Connection, path: &Path) -> Result<Vec<SnapshotRecord>, StoreError> {
    read_records(conn, path, "SELECT id, record FROM snapshots")
}

fn read_history(conn: &Connection, path: &Path, id: &str) -> Result<Vec<StatusEvent>, StoreError> {
    let mut statement = conn
        .prepare_cached("SELECT event FROM sandbox_events WHERE sandbox_id = ?1 ORDER BY seq")
        .map_err(sqlite(path))?;
    let rows = statement
        .query_map(params![id], |row| row.get::<_, String>(0))
        .map_err(sqlite(path))?;
    let mut events = Vec::new();
    for row in rows {
        let json = row.map_err(sqlite(path))?;
        let event = serde_json::from_str(&json).map_err(|source| StoreError::Corrupt {
            path: path.to_owned(),
            id: id.to_owned(),
            source,
        })?;
        events.push(event);
    }
    Ok(events)
}
