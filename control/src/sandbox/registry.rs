//! The in-memory index of live sandboxes: what every read is served from.
//!
//! Records are immutable `Arc`s, replaced whole on each change. Each sandbox
//! also has an async lock that serializes its mutating operations. A watch
//! channel carries a change counter so waiters (endpoint queries on pending
//! sandboxes, route publication) learn about changes without polling.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use sandgate_shared::api::SandboxState;
use sandgate_shared::ids::SandboxId;
use tokio::sync::{Mutex, watch};

use super::model::SandboxRecord;

struct Slot {
    record: Arc<SandboxRecord>,
    lock: Arc<Mutex<()>>,
}

/// Live sandboxes by id.
pub struct Registry {
    slots: RwLock<HashMap<SandboxId, Slot>>,
    changes: watch::Sender<u64>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("len", &self.slots.read().len())
            .finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            slots: RwLock::default(),
            changes: watch::Sender::new(0),
        }
    }
}

impl Registry {
    /// The current record.
    pub fn get(&self, id: &SandboxId) -> Option<Arc<SandboxRecord>> {
        self.slots.read().get(id).map(|slot| slot.record.clone())
    }

    /// The sandbox's operation lock.
    pub fn lock_of(&self, id: &SandboxId) -> Option<Arc<Mutex<()>>> {
        self.slots.read().get(id).map(|slot| slot.lock.clone())
    }

    /// Inserts or replaces a record (keeping its lock).
    pub fn put(&self, record: Arc<SandboxRecord>) {
        let mut slots = self.slots.write();
        match slots.get_mut(&record.id) {
            Some(slot) => slot.record = record,
            None => {
                let slot = Slot {
                    record: record.clone(),
                    lock: Arc::default(),
                };
                slots.insert(record.id.clone(), slot);
            }
        }
        drop(slots);
        self.changes.send_modify(|n| *n += 1);
    }

    /// Replaces the record with `update(record)` if `applies(record)`; atomic
    /// with respect to other writers. Used for progress messages.
    pub fn update_if(
        &self,
        id: &SandboxId,
        applies: impl FnOnce(&SandboxRecord) -> bool,
        update: impl FnOnce(&mut SandboxRecord),
    ) {
        let mut slots = self.slots.write();
        if let Some(slot) = slots.get_mut(id).filter(|slot| applies(&slot.record)) {
            let mut next = SandboxRecord::clone(&slot.record);
            update(&mut next);
            slot.record = Arc::new(next);
            drop(slots);
            self.changes.send_modify(|n| *n += 1);
        }
    }

    /// Removes a sandbox.
    pub fn remove(&self, id: &SandboxId) {
        self.slots.write().remove(id);
        self.changes.send_modify(|n| *n += 1);
    }

    /// The records matching `keep` (unordered). Only matches are cloned,
    /// under one read lock.
    pub fn select(&self, keep: impl Fn(&SandboxRecord) -> bool) -> Vec<Arc<SandboxRecord>> {
        self.slots
            .read()
            .values()
            .filter(|slot| keep(&slot.record))
            .map(|slot| slot.record.clone())
            .collect()
    }

    /// Every record (unordered).
    pub fn all(&self) -> Vec<Arc<SandboxRecord>> {
        self.slots
            .read()
            .values()
            .map(|slot| slot.record.clone())
            .collect()
    }

    /// How many sandboxes are in each state.
    pub fn count_by_state(&self) -> HashMap<SandboxState, usize> {
        let mut counts = HashMap::new();
        for slot in self.slots.read().values() {
            *counts.entry(slot.record.status.state).or_default() += 1;
        }
        counts
    }

    /// Number of sandboxes.
    pub fn len(&self) -> usize {
        self.slots.read().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A receiver that wakes on every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}
