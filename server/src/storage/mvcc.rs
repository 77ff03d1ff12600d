//! The multi-version core that every local backend serves reads, lists and watches from.
//!
//! [`State`] is plain data with the etcd-like semantics: one global revision, every key a list
//! of versions (a deletion is a tombstone version), and the events of the retained history.
//! [`Shared`] puts it behind a lock next to the broadcast channel that feeds live watchers.
//!
//! A backend decides *how* a write becomes final: [`super::memory::MemoryStorage`] checks and
//! applies it under the lock; [`super::embedded::EmbeddedStorage`] checks a whole batch, makes it
//! durable on disk, and only then applies it here. Both check writes with [`Write::check`] and
//! apply them with [`Shared::publish_locked`], so their semantics cannot drift apart.
//!
//! Compaction keeps, for each key, every version at or after the compaction point plus the
//! newest one before it. So every event that is still in the history has its previous value at
//! hand, and a durable backend can rebuild the history from the versions alone
//! ([`State::restore`]).

use super::{Error, Event, KeyValue, ListOptions, ListResult, Result, Revision, WatchStream};
use bytes::Bytes;
use futures::StreamExt;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::broadcast;

/// Events buffered for each watcher before it counts as too slow.
const WATCH_BUFFER: usize = 8192;

/// One version of a key; `value: None` marks a deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Version {
    pub mod_revision: Revision,
    /// 0 for a deletion.
    pub create_revision: Revision,
    pub value: Option<Bytes>,
}

impl Version {
    fn key_value(&self, key: &str) -> KeyValue {
        KeyValue {
            key: key.to_string(),
            value: self.value.clone().unwrap_or_default(),
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
        }
    }
}

/// A write a client asks for, before it has a revision.
#[derive(Debug, Clone)]
pub(crate) enum Write {
    Create { key: String, value: Bytes },
    Update { key: String, value: Bytes, expected: Revision },
    Delete { key: String, expected: Option<Revision> },
}

impl Write {
    pub fn key(&self) -> &str {
        match self {
            Write::Create { key, .. } | Write::Update { key, .. } | Write::Delete { key, .. } => key,
        }
    }

    /// Checks the write against the key's latest value and, if it may happen, returns the event
    /// it makes at `revision`.
    pub fn check(self, current: Option<&KeyValue>, revision: Revision) -> Result<Event> {
        match (self, current) {
            (Write::Create { .. }, Some(_)) => Err(Error::AlreadyExists),
            (Write::Create { key, value }, None) => {
                Ok(Event::Put { current: KeyValue { key, value, create_revision: revision, mod_revision: revision }, prev: None })
            }
            (Write::Update { .. } | Write::Delete { .. }, None) => Err(Error::NotFound),
            (Write::Update { expected, .. }, Some(prev)) if prev.mod_revision != expected => {
                Err(Error::Conflict { current: prev.mod_revision })
            }
            (Write::Update { key, value, .. }, Some(prev)) => Ok(Event::Put {
                current: KeyValue { key, value, create_revision: prev.create_revision, mod_revision: revision },
                prev: Some(prev.clone()),
            }),
            (Write::Delete { expected: Some(expected), .. }, Some(prev)) if prev.mod_revision != expected => {
                Err(Error::Conflict { current: prev.mod_revision })
            }
            (Write::Delete { .. }, Some(prev)) => Ok(Event::Delete { prev: prev.clone(), revision }),
        }
    }
}

/// The key's latest value after `event`.
pub(crate) fn value_after(event: &Event) -> Option<KeyValue> {
    match event {
        Event::Put { current, .. } => Some(current.clone()),
        Event::Delete { .. } => None,
    }
}

/// The value a successful create or update wrote.
pub(crate) fn put_value(event: Event) -> KeyValue {
    match event {
        Event::Put { current, .. } => current,
        Event::Delete { .. } => unreachable!("a create or update makes a put event"),
    }
}

/// The deleted value and the deletion's revision.
pub(crate) fn deleted(event: Event) -> (KeyValue, Revision) {
    match event {
        Event::Delete { prev, revision } => (prev, revision),
        Event::Put { .. } => unreachable!("a delete makes a delete event"),
    }
}

/// Why a stored history cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RestoreError {
    pub revision: Revision,
    pub key: Option<String>,
    pub detail: String,
}

/// The multi-version state: what reads, lists and watches are served from.
#[derive(Debug, Default)]
pub(crate) struct State {
    revision: Revision,
    /// Reads and watches must be at or after this revision.
    oldest: Revision,
    keys: BTreeMap<String, Vec<Version>>,
    /// One event per revision from `oldest` (or 1) to `revision`.
    events: VecDeque<Event>,
}

impl State {
    /// The revision of the latest write.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// The compaction point: the oldest revision reads and watches may ask for.
    pub fn oldest(&self) -> Revision {
        self.oldest
    }

    /// Every stored version, key by key (for tests and start-up checks).
    #[cfg(test)]
    pub fn versions(&self) -> &BTreeMap<String, Vec<Version>> {
        &self.keys
    }

    /// The latest value of a key.
    pub fn latest(&self, key: &str) -> Option<KeyValue> {
        self.keys.get(key).and_then(|vs| vs.last()).filter(|v| v.value.is_some()).map(|v| v.key_value(key))
    }

    /// Keys starting with `prefix`, in key order, at one snapshot, counting the rest of the
    /// range (what [`Shared::list`] must agree with).
    #[cfg(test)]
    pub fn list(&self, prefix: &str, options: &ListOptions) -> Result<ListResult> {
        self.list_knowing(prefix, options, None)
    }

    /// [`State::list`], told how many live keys follow `options.start_after` in the range at
    /// the snapshot (`after_start`, known from the page before): then the walk stops at the
    /// limit instead of counting the rest.
    fn list_knowing(&self, prefix: &str, options: &ListOptions, after_start: Option<usize>) -> Result<ListResult> {
        let revision = match options.revision {
            None | Some(0) => self.revision,
            Some(r) if r < self.oldest => return Err(Error::Compacted { oldest: self.oldest }),
            Some(r) if r > self.revision => return Err(Error::FutureRevision { current: self.revision }),
            Some(r) => r,
        };
        let start = match &options.start_after {
            Some(after) if after.as_str() >= prefix => Bound::Excluded(after.clone()),
            _ => Bound::Included(prefix.to_string()),
        };
        let limit = options.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut remaining = 0;
        for (key, versions) in self.keys.range((start, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            let version = versions.iter().rev().find(|v| v.mod_revision <= revision).filter(|v| v.value.is_some());
            if let Some(v) = version {
                if items.len() < limit {
                    items.push(v.key_value(key));
                } else if let Some(total) = after_start {
                    remaining = total.saturating_sub(items.len());
                    break;
                } else {
                    remaining += 1;
                }
            }
        }
        Ok(ListResult { items, revision, remaining })
    }

    /// Records the event of the next revision.
    pub fn apply(&mut self, event: Event) {
        debug_assert_eq!(event.revision(), self.revision + 1, "events are applied in revision order");
        self.revision = event.revision();
        let (key, version) = match &event {
            Event::Put { current, .. } => (
                &current.key,
                Version {
                    mod_revision: current.mod_revision,
                    create_revision: current.create_revision,
                    value: Some(current.value.clone()),
                },
            ),
            Event::Delete { prev, revision } => (&prev.key, Version { mod_revision: *revision, create_revision: 0, value: None }),
        };
        match self.keys.get_mut(key.as_str()) {
            Some(versions) => versions.push(version),
            None => {
                self.keys.insert(key.clone(), vec![version]);
            }
        }
        self.events.push_back(event);
    }

    /// The compaction point that keeps about `history` revisions, once history has grown a
    /// quarter past that (so compaction runs once per `history / 4` writes, not on every one).
    pub fn compaction_due(&self, history: usize) -> Option<Revision> {
        let history = history.max(1);
        (self.events.len() > history + history / 4).then(|| self.revision.saturating_sub(history as u64 - 1))
    }

    /// The revisions of the versions that compacting at `revision` would forget.
    pub fn compaction_victims(&self, revision: Revision) -> Vec<Revision> {
        let revision = revision.min(self.revision);
        let mut victims = Vec::new();
        if revision <= self.oldest {
            return victims;
        }
        for versions in self.keys.values() {
            let (keep_from, drop_all) = compaction_of(versions, revision);
            let end = if drop_all { versions.len() } else { keep_from };
            victims.extend(versions[..end].iter().map(|v| v.mod_revision));
        }
        victims.sort_unstable();
        victims
    }

    /// Forgets history older than `revision` (capped at the current revision).
    pub fn compact(&mut self, revision: Revision) {
        let revision = revision.min(self.revision);
        if revision <= self.oldest {
            return;
        }
        self.oldest = revision;
        while self.events.front().is_some_and(|e| e.revision() < revision) {
            self.events.pop_front();
        }
        self.keys.retain(|_, versions| {
            let (keep_from, drop_all) = compaction_of(versions, revision);
            versions.drain(..keep_from);
            !drop_all
        });
    }

    /// Rebuilds the state from stored versions: `keys` holds each key's versions in revision
    /// order, as compaction left them. The events of the retained history are derived from
    /// them, and the whole is checked: every revision from `oldest` to `revision` must be there
    /// exactly once, and every update or deletion in the history must have its previous value.
    pub fn restore(revision: Revision, oldest: Revision, keys: BTreeMap<String, Vec<Version>>) -> std::result::Result<State, RestoreError> {
        if oldest > revision {
            return Err(RestoreError {
                revision: oldest,
                key: None,
                detail: format!("compaction point {oldest} is after the latest revision {revision}"),
            });
        }
        let mut events = Vec::new();
        for (key, versions) in &keys {
            let fail = |revision: Revision, detail: String| RestoreError { revision, key: Some(key.clone()), detail };
            for (i, v) in versions.iter().enumerate() {
                if v.mod_revision > revision {
                    return Err(fail(v.mod_revision, format!("version is newer than the latest revision {revision}")));
                }
                if i > 0 && versions[i - 1].mod_revision >= v.mod_revision {
                    return Err(fail(v.mod_revision, "versions out of order".to_string()));
                }
                let prev = i.checked_sub(1).map(|p| &versions[p]).filter(|p| p.value.is_some());
                match (&v.value, prev) {
                    (Some(_), None) if v.create_revision != v.mod_revision && v.mod_revision >= oldest => {
                        return Err(fail(v.mod_revision, "the version before this update is missing".to_string()));
                    }
                    (Some(_), Some(p)) if v.create_revision != p.create_revision => {
                        return Err(fail(
                            v.mod_revision,
                            format!("create revision {} does not match the previous version's {}", v.create_revision, p.create_revision),
                        ));
                    }
                    (Some(_), _) if v.create_revision > v.mod_revision || v.create_revision == 0 => {
                        return Err(fail(v.mod_revision, format!("invalid create revision {}", v.create_revision)));
                    }
                    (None, None) if v.mod_revision >= oldest => {
                        return Err(fail(v.mod_revision, "deletion of a key that has no value before it".to_string()));
                    }
                    _ => {}
                }
                if v.mod_revision < oldest {
                    continue;
                }
                events.push(match &v.value {
                    Some(_) => Event::Put { current: v.key_value(key), prev: prev.map(|p| p.key_value(key)) },
                    None => Event::Delete { prev: prev.expect("checked above").key_value(key), revision: v.mod_revision },
                });
            }
        }
        events.sort_unstable_by_key(Event::revision);
        let mut expected = oldest.max(1);
        for event in &events {
            let key = Some(event.key().to_string());
            match event.revision() {
                r if r == expected => expected += 1,
                r if r < expected => return Err(RestoreError { revision: r, key, detail: "two writes share this revision".to_string() }),
                _ => {
                    return Err(RestoreError { revision: expected, key: None, detail: "the write of this revision is missing".to_string() })
                }
            }
        }
        if expected != revision + 1 && revision > 0 {
            return Err(RestoreError { revision: expected, key: None, detail: "the write of this revision is missing".to_string() });
        }
        Ok(State { revision, oldest, keys, events: events.into() })
    }
}

/// Where compaction at `revision` cuts a key's versions: everything before `keep_from` goes,
/// and with `drop_all` the whole key (only an old tombstone was left).
fn compaction_of(versions: &[Version], revision: Revision) -> (usize, bool) {
    // The newest version before the compaction point stays: it is the previous value of the
    // first event kept, and the value a snapshot at the compaction point reads.
    let keep_from = versions.iter().rposition(|v| v.mod_revision < revision).unwrap_or(0);
    let rest = &versions[keep_from..];
    let drop_all = rest.len() == 1 && rest[0].value.is_none() && rest[0].mod_revision < revision;
    (keep_from, drop_all)
}

/// The state behind a lock, with the channel that feeds live watchers.
pub(crate) struct Shared {
    state: Mutex<State>,
    sender: broadcast::Sender<Event>,
    remaining: Mutex<RemainingCounts>,
}

/// How many live keys follow the last key of recent list pages, at their snapshot: the next
/// page of the same walk starts there, so it need not count the rest of the range again (a
/// snapshot never changes, and one compacted away fails before this is read). Paging through
/// N keys then costs O(N) in all instead of O(N) per page.
#[derive(Default)]
struct RemainingCounts {
    entries: std::collections::HashMap<(String, Revision, String), usize>,
    order: VecDeque<(String, Revision, String)>,
}

/// Pages remembered at most (oldest forgotten first).
const REMAINING_COUNTS: usize = 1024;

impl RemainingCounts {
    fn get(&self, prefix: &str, revision: Revision, after: &str) -> Option<usize> {
        self.entries.get(&(prefix.to_string(), revision, after.to_string())).copied()
    }

    fn insert(&mut self, prefix: &str, revision: Revision, last: &str, remaining: usize) {
        let key = (prefix.to_string(), revision, last.to_string());
        if self.entries.insert(key.clone(), remaining).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > REMAINING_COUNTS {
            if let Some(old) = self.order.pop_front() {
                self.entries.remove(&old);
            }
        }
    }
}

impl Shared {
    pub fn new(state: State) -> Self {
        let (sender, _) = broadcast::channel(WATCH_BUFFER);
        Shared { state: Mutex::new(state), sender, remaining: Mutex::default() }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // Every change to the state is a push or a drain that cannot panic half-way, so a
        // poisoned lock still guards a consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies the event and tells live watchers, under the caller's lock so that a watch that
    /// starts concurrently sees it either in its backlog or live, never twice or not at all.
    pub fn publish_locked(&self, state: &mut State, event: Event) {
        state.apply(event.clone());
        let _ = self.sender.send(event);
    }

    pub fn get(&self, key: &str) -> Option<KeyValue> {
        self.lock().latest(key)
    }

    pub fn list(&self, prefix: &str, options: &ListOptions) -> Result<ListResult> {
        let counts = || self.remaining.lock().unwrap_or_else(|e| e.into_inner());
        let state = self.lock();
        let revision = match options.revision {
            None | Some(0) => state.revision,
            Some(r) => r,
        };
        let known = match &options.start_after {
            Some(after) if after.as_str() >= prefix => counts().get(prefix, revision, after),
            _ => None,
        };
        let result = state.list_knowing(prefix, options, known)?;
        drop(state);
        if let (true, Some(last)) = (result.remaining > 0, result.items.last()) {
            counts().insert(prefix, result.revision, &last.key, result.remaining);
        }
        Ok(result)
    }

    pub fn current_revision(&self) -> Revision {
        self.lock().revision()
    }

    /// Events for keys under `prefix` after revision `after`: the retained history first, then
    /// live events.
    pub fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let state = self.lock();
        // Events after `after` must all still be in history: the first one kept is `oldest`.
        if after + 1 < state.oldest {
            return Err(Error::Compacted { oldest: state.oldest });
        }
        if after > state.revision {
            return Err(Error::FutureRevision { current: state.revision });
        }
        let prefix = prefix.to_string();
        let backlog: Vec<Result<Event>> =
            state.events.iter().filter(|e| e.revision() > after && e.key().starts_with(&prefix)).cloned().map(Ok).collect();
        let last_sent = state.revision.max(after);
        // Subscribing under the lock means no write can fall between backlog and live events.
        let receiver = self.sender.subscribe();
        drop(state);
        let live = futures::stream::unfold(Some(receiver), move |state| {
            let prefix = prefix.clone();
            async move {
                let mut receiver = state?;
                loop {
                    match receiver.recv().await {
                        Ok(event) if event.revision() > last_sent && event.key().starts_with(&prefix) => {
                            return Some((Ok(event), Some(receiver)))
                        }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(state: &mut State, key: &str, value: &str) -> Event {
        let current = state.latest(key);
        let write = match &current {
            None => Write::Create { key: key.into(), value: Bytes::from(value.to_string()) },
            Some(kv) => Write::Update { key: key.into(), value: Bytes::from(value.to_string()), expected: kv.mod_revision },
        };
        let event = write.check(current.as_ref(), state.revision() + 1).unwrap();
        state.apply(event.clone());
        event
    }

    fn delete(state: &mut State, key: &str) -> Event {
        let current = state.latest(key);
        let event = Write::Delete { key: key.into(), expected: None }.check(current.as_ref(), state.revision() + 1).unwrap();
        state.apply(event.clone());
        event
    }

    /// Pages after the first take their remaining count from the page before; every page must
    /// still say what a full count at its snapshot says, while writes go on between pages.
    #[test]
    fn pages_count_what_remains_as_a_full_walk_does() {
        let mut state = State::default();
        for i in 0..50 {
            put(&mut state, &format!("/p/{i:03}"), "v");
        }
        put(&mut state, "/q/after-the-prefix", "v");
        delete(&mut state, "/p/010");
        let shared = Shared::new(state);
        let snapshot = shared.current_revision();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let options = ListOptions { start_after: after.clone(), limit: Some(7), revision: Some(snapshot) };
            let page = shared.list("/p/", &options).unwrap();
            let full = shared.lock().list("/p/", &options).unwrap();
            assert_eq!(page.remaining, full.remaining, "page {pages}");
            assert_eq!(page.items, full.items, "page {pages}");
            pages += 1;
            // Writes after the snapshot, inside and outside the range, change nothing it lists.
            let mut state = shared.lock();
            put(&mut state, &format!("/p/{:03}", 100 + pages), "new");
            delete(&mut state, &format!("/p/{:03}", 40 + pages));
            put(&mut state, "/p/000", "changed");
            drop(state);
            match page.items.last() {
                Some(last) if page.remaining > 0 => after = Some(last.key.clone()),
                _ => break,
            }
        }
        assert_eq!(pages, 7, "49 keys in pages of 7");
        // The memo was used: its counts are there for each page but the last.
        assert_eq!(shared.remaining.lock().unwrap().entries.len(), 6);
    }

    #[test]
    fn compaction_keeps_the_version_before_the_point_and_restore_rebuilds_history() {
        let mut state = State::default();
        put(&mut state, "/a", "1"); // 1
        put(&mut state, "/a", "2"); // 2
        put(&mut state, "/b", "1"); // 3
        delete(&mut state, "/b"); // 4
        put(&mut state, "/c", "1"); // 5
        delete(&mut state, "/c"); // 6
        put(&mut state, "/a", "3"); // 7
        let victims = state.compaction_victims(4);
        state.compact(4);
        // /a keeps 2 (newest before 4) and 7; /b keeps 3 (the value its deletion at 4 removed);
        // /c keeps all: both versions are at or after 4.
        assert_eq!(victims, vec![1]);
        let revisions: Vec<(String, Vec<Revision>)> =
            state.versions().iter().map(|(k, vs)| (k.clone(), vs.iter().map(|v| v.mod_revision).collect())).collect();
        assert_eq!(revisions, vec![("/a".into(), vec![2, 7]), ("/b".into(), vec![3, 4]), ("/c".into(), vec![5, 6])]);
        let restored = State::restore(state.revision(), state.oldest(), state.versions().clone()).unwrap();
        assert_eq!(restored.events, state.events);
        // Later, /b's tombstone is older than the point and goes with its value.
        assert_eq!(state.compaction_victims(7), vec![3, 4, 5, 6]);
        state.compact(7);
        assert_eq!(state.versions().keys().collect::<Vec<_>>(), ["/a"]);
        assert_eq!(state.versions()["/a"].len(), 2);
        let restored = State::restore(state.revision(), state.oldest(), state.versions().clone()).unwrap();
        assert_eq!(restored.events, state.events);
    }

    #[test]
    fn restore_reports_gaps_and_missing_previous_values() {
        let mut state = State::default();
        put(&mut state, "/a", "1");
        put(&mut state, "/a", "2");
        put(&mut state, "/b", "1");
        let mut keys = state.versions().clone();
        keys.get_mut("/a").unwrap().remove(0);
        let err = State::restore(3, 0, keys).unwrap_err();
        assert_eq!((err.revision, err.key.as_deref()), (2, Some("/a")));
        let mut keys = state.versions().clone();
        keys.remove("/b");
        let err = State::restore(3, 0, keys).unwrap_err();
        assert_eq!(err.revision, 3);
        assert!(err.detail.contains("missing"), "{err:?}");
    }
}
