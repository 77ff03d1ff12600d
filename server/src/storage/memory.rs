//! In-memory backend: multi-version, so pagination snapshots and watch resumption behave as they
//! do on etcd, but nothing survives a restart. The versions, history and watch fan-out live in
//! the shared `mvcc` core; this backend makes a write final by applying it there
//! under the lock.

use super::mvcc::{deleted, put_value, Shared, State, Write};
use super::{Event, KeyValue, ListOptions, ListResult, Result, Revision, Storage, WatchStream};
use async_trait::async_trait;
use bytes::Bytes;

/// How many past events (and revisions of history) are kept by default.
pub const DEFAULT_HISTORY: usize = 10_000;

/// The in-memory store.
pub struct MemoryStorage {
    shared: Shared,
    history: usize,
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self::with_history(DEFAULT_HISTORY)
    }
}

impl MemoryStorage {
    /// A store that keeps about `history` past revisions for snapshots and watches.
    pub fn with_history(history: usize) -> Self {
        MemoryStorage { shared: Shared::new(State::default()), history: history.max(1) }
    }

    /// Checks and applies one write, then compacts history that has grown past the window.
    fn write(&self, write: Write) -> Result<Event> {
        let mut state = self.shared.lock();
        let revision = state.revision() + 1;
        let current = state.latest(write.key());
        let event = write.check(current.as_ref(), revision)?;
        self.shared.publish_locked(&mut state, event.clone());
        if let Some(point) = state.compaction_due(self.history) {
            state.compact(point);
        }
        Ok(event)
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(self.shared.get(key))
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        self.shared.list(prefix, &options)
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        self.write(Write::Create { key: key.to_string(), value }).map(put_value)
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        self.write(Write::Update { key: key.to_string(), value, expected }).map(put_value)
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)> {
        self.write(Write::Delete { key: key.to_string(), expected }).map(deleted)
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        self.shared.watch(prefix, after)
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.shared.current_revision())
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.shared.lock().compact(revision);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    super::super::conformance::suite!(super::MemoryStorage::with_history(1_000));
}
