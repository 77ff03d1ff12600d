//! In-memory backend: multi-version, so pagination snapshots and watch resumption behave as they
//! do on etcd, but nothing survives a restart.

use super::{Error, Event, KeyValue, ListOptions, ListResult, Result, Revision, Storage, WatchStream};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::Mutex;
use tokio::sync::broadcast;

/// How many past events (and revisions of history) are kept by default.
pub const DEFAULT_HISTORY: usize = 10_000;
/// Events buffered for each watcher before it counts as too slow.
const WATCH_BUFFER: usize = 8192;

/// One version of a key; `value: None` marks a deletion.
#[derive(Debug, Clone)]
struct Version {
    mod_revision: Revision,
    create_revision: Revision,
    value: Option<Bytes>,
}

struct Inner {
    revision: Revision,
    /// Reads and watches must be at or after this revision.
    oldest: Revision,
    keys: BTreeMap<String, Vec<Version>>,
    events: VecDeque<Event>,
}

/// The in-memory store.
pub struct MemoryStorage {
    inner: Mutex<Inner>,
    history: usize,
    sender: broadcast::Sender<Event>,
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self::with_history(DEFAULT_HISTORY)
    }
}

impl MemoryStorage {
    /// A store that keeps about `history` past revisions for snapshots and watches.
    pub fn with_history(history: usize) -> Self {
        let (sender, _) = broadcast::channel(WATCH_BUFFER);
        MemoryStorage {
            inner: Mutex::new(Inner { revision: 0, oldest: 0, keys: BTreeMap::new(), events: VecDeque::new() }),
            history: history.max(1),
            sender,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated (each write is a
        // single push), so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a write: appends to history, notifies watchers, compacts old history.
    fn publish(&self, inner: &mut Inner, event: Event) {
        inner.events.push_back(event.clone());
        let _ = self.sender.send(event);
        if inner.events.len() > self.history + self.history / 4 {
            let keep_from = inner.revision.saturating_sub(self.history as u64 - 1);
            compact_locked(inner, keep_from);
        }
    }
}

fn latest(versions: &[Version]) -> Option<&Version> {
    versions.last().filter(|v| v.value.is_some())
}

fn at_revision(versions: &[Version], revision: Revision) -> Option<&Version> {
    versions.iter().rev().find(|v| v.mod_revision <= revision).filter(|v| v.value.is_some())
}

fn key_value(key: &str, v: &Version) -> KeyValue {
    KeyValue { key: key.to_string(), value: v.value.clone().unwrap_or_default(), create_revision: v.create_revision, mod_revision: v.mod_revision }
}

fn compact_locked(inner: &mut Inner, revision: Revision) {
    if revision <= inner.oldest {
        return;
    }
    inner.oldest = revision;
    while inner.events.front().is_some_and(|e| e.revision() < revision) {
        inner.events.pop_front();
    }
    inner.keys.retain(|_, versions| {
        // Keep the newest version at or before the compaction point, and everything after.
        let keep_from = versions.iter().rposition(|v| v.mod_revision <= revision).unwrap_or(0);
        versions.drain(..keep_from);
        !(versions.len() == 1 && versions[0].value.is_none())
    });
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let inner = self.lock();
        Ok(inner.keys.get(key).and_then(|vs| latest(vs)).map(|v| key_value(key, v)))
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        let inner = self.lock();
        let revision = match options.revision {
            None | Some(0) => inner.revision,
            Some(r) if r < inner.oldest => return Err(Error::Compacted { oldest: inner.oldest }),
            Some(r) if r > inner.revision => return Err(Error::FutureRevision { current: inner.revision }),
            Some(r) => r,
        };
        let start = match &options.start_after {
            Some(after) if after.as_str() >= prefix => Bound::Excluded(after.clone()),
            _ => Bound::Included(prefix.to_string()),
        };
        let limit = options.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut remaining = 0;
        for (key, versions) in inner.keys.range((start, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            if let Some(v) = at_revision(versions, revision) {
                if items.len() < limit {
                    items.push(key_value(key, v));
                } else {
                    remaining += 1;
                }
            }
        }
        Ok(ListResult { items, revision, remaining })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        let mut inner = self.lock();
        if inner.keys.get(key).and_then(|vs| latest(vs)).is_some() {
            return Err(Error::AlreadyExists);
        }
        inner.revision += 1;
        let rev = inner.revision;
        let version = Version { mod_revision: rev, create_revision: rev, value: Some(value) };
        let kv = key_value(key, &version);
        inner.keys.entry(key.to_string()).or_default().push(version);
        self.publish(&mut inner, Event::Put { current: kv.clone(), prev: None });
        Ok(kv)
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        let mut inner = self.lock();
        let prev = match inner.keys.get(key).and_then(|vs| latest(vs)) {
            None => return Err(Error::NotFound),
            Some(v) if v.mod_revision != expected => return Err(Error::Conflict { current: v.mod_revision }),
            Some(v) => key_value(key, v),
        };
        inner.revision += 1;
        let rev = inner.revision;
        let version = Version { mod_revision: rev, create_revision: prev.create_revision, value: Some(value) };
        let kv = key_value(key, &version);
        inner.keys.entry(key.to_string()).or_default().push(version);
        self.publish(&mut inner, Event::Put { current: kv.clone(), prev: Some(prev) });
        Ok(kv)
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)> {
        let mut inner = self.lock();
        let prev = match inner.keys.get(key).and_then(|vs| latest(vs)) {
            None => return Err(Error::NotFound),
            Some(v) if expected.is_some_and(|e| e != v.mod_revision) => return Err(Error::Conflict { current: v.mod_revision }),
            Some(v) => key_value(key, v),
        };
        inner.revision += 1;
        let rev = inner.revision;
        inner.keys.entry(key.to_string()).or_default().push(Version { mod_revision: rev, create_revision: 0, value: None });
        self.publish(&mut inner, Event::Delete { prev: prev.clone(), revision: rev });
        Ok((prev, rev))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let inner = self.lock();
        // Events after `after` must all still be in history: the first one kept is `oldest`.
        if after + 1 < inner.oldest {
            return Err(Error::Compacted { oldest: inner.oldest });
        }
        if after > inner.revision {
            return Err(Error::FutureRevision { current: inner.revision });
        }
        let prefix = prefix.to_string();
        let backlog: Vec<Result<Event>> =
            inner.events.iter().filter(|e| e.revision() > after && e.key().starts_with(&prefix)).cloned().map(Ok).collect();
        let last_sent = inner.revision.max(after);
        // Subscribing under the lock means no write can fall between backlog and live events.
        let receiver = self.sender.subscribe();
        drop(inner);
        let live = futures::stream::unfold(Some(receiver), move |state| {
            let prefix = prefix.clone();
            async move {
                let mut receiver = state?;
                loop {
                    match receiver.recv().await {
                        Ok(event) if event.revision() > last_sent && event.key().starts_with(&prefix) => return Some((Ok(event), Some(receiver))),
                        Ok(_) => continue,
                        // The watcher fell behind the buffer: end its stream with an error, as
                        // kube-apiserver closes slow watchers.
                        Err(broadcast::error::RecvError::Lagged(_)) => return Some((Err(Error::Compacted { oldest: last_sent }), None)),
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        });
        Ok(futures::stream::iter(backlog).chain(live).boxed())
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.lock().revision)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut inner = self.lock();
        let revision = revision.min(inner.revision);
        compact_locked(&mut inner, revision);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    super::super::conformance::suite!(super::MemoryStorage::with_history(1_000));
}
