//! The rendered items of recent large LIST answers (JSON items, Table rows), reused while the
//! listed objects stay the same.
//!
//! Writing a LIST's items means rendering every stored object with its `resourceVersion` and
//! `apiVersion` ([`stored_json::render`](super::stored_json::render)): milliseconds for ten
//! thousand objects. When the same objects are listed again (controllers re-listing after a
//! restart, clients polling a collection) those bytes are the same, so they are kept and sent
//! again. Only the list's own metadata (its resourceVersion, continue token, remaining count) is
//! written for each answer, and a Table's ages are printed then ([`table::Rows`]).
//!
//! Correctness does not rest on invalidation. An entry remembers the exact sequence of its items'
//! `(mod_revision, stored length)`. Every storage write changes one key at a new revision, so two
//! equal sequences name the same stored bytes, and the rendering of stored bytes depends only on
//! them and the served form. A LIST reads its items from storage as always and uses an
//! entry only when the sequences are equal; checking is one pass over integers. Entries are
//! found by query (form, key prefix, selectors): a query whose objects changed replaces its
//! entry. When several requests need the same rendering at once, one renders and the others wait
//! for it.
//!
//! Memory is bounded by `--list-cache-bytes` (least recently used entries go first); lists
//! smaller than [`MIN_CACHED_BYTES`] are rendered every time, as are lists too large for the
//! budget. A budget of 0 turns the cache off.

use super::table;
use crate::storage::{KeyValue, Revision};
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// The default of `--list-cache-bytes`: room for a list of about 200,000 small objects.
pub const DEFAULT_BUDGET: usize = 128 * 1024 * 1024;

/// Lists whose stored bytes are fewer than this are not cached: they render in well under a
/// millisecond.
pub const MIN_CACHED_BYTES: usize = 64 * 1024;

/// At most this many entries, whatever their size.
const MAX_ENTRIES: usize = 32;

/// What identifies a query: the served form, the storage prefix and the selectors.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Query {
    /// What the items are rendered as: the apiVersion they are served in, and for a Table its
    /// version and `includeObject`.
    pub form: String,
    /// The storage key prefix listed.
    pub prefix: String,
    /// `labelSelector`, as given.
    pub label_selector: String,
    /// `fieldSelector`, as given.
    pub field_selector: String,
}

/// The identity of a list's items: each one's `(mod_revision, stored length)`, in order.
type Fingerprint = Vec<(Revision, usize)>;

fn fingerprint(items: &[KeyValue]) -> Fingerprint {
    items.iter().map(|kv| (kv.mod_revision, kv.value.len())).collect()
}

/// What is kept of a list.
#[derive(Debug, Clone)]
pub enum Cached {
    /// The start of a JSON list and its items.
    Json(Bytes),
    /// A Table's rows.
    Table(Arc<table::Rows>),
}

impl Cached {
    fn size(&self) -> usize {
        match self {
            Cached::Json(bytes) => bytes.len(),
            Cached::Table(rows) => rows.size(),
        }
    }
}

/// The rendering of one list, shared by every answer that uses it; `None` when it could not be
/// rendered (the caller then takes the decoding path).
type Rendering = Arc<OnceCell<Option<Cached>>>;

struct Entry {
    query: Query,
    fingerprint: Arc<Fingerprint>,
    rendering: Rendering,
    /// Bytes of the rendering, once known (0 before).
    size: usize,
    last_used: u64,
}

#[derive(Default)]
struct Entries {
    list: Vec<Entry>,
    clock: u64,
}

/// The cache; one per engine, shared by every request.
pub struct ListCache {
    budget: usize,
    entries: Mutex<Entries>,
}

impl std::fmt::Debug for ListCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListCache").field("budget", &self.budget).finish_non_exhaustive()
    }
}

impl ListCache {
    /// A cache holding at most `budget` bytes of renderings; 0 caches nothing.
    pub fn new(budget: usize) -> ListCache {
        ListCache { budget, entries: Mutex::new(Entries::default()) }
    }

    /// The rendering of `items` for `query`: from the cache when the same objects were
    /// rendered for it before, else from `render` (called once however many requests ask at
    /// the same time). `render` returns `None` when it cannot render them.
    pub async fn get(&self, query: &Query, items: &[KeyValue], render: impl FnOnce() -> Option<Cached>) -> Option<Cached> {
        let stored: usize = items.iter().map(|kv| kv.value.len()).sum();
        if self.budget == 0 || stored < MIN_CACHED_BYTES || stored > self.budget {
            return render();
        }
        let printed = fingerprint(items);
        let (rendering, fingerprint) = self.entry(query, printed);
        let cached = rendering.get_or_init(|| async { render() }).await.clone();
        // The fingerprint is held as long as the rendering, and counts against the budget.
        let held = std::mem::size_of_val(fingerprint.as_slice()) + cached.as_ref().map_or(0, Cached::size);
        self.rendered(query, &fingerprint, held);
        cached
    }

    /// The entry of `query` for these items, made (empty) if there is none.
    fn entry(&self, query: &Query, printed: Fingerprint) -> (Rendering, Arc<Fingerprint>) {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.clock += 1;
        let now = entries.clock;
        if let Some(entry) = entries.list.iter_mut().find(|e| e.query == *query) {
            if *entry.fingerprint == printed {
                entry.last_used = now;
                return (entry.rendering.clone(), entry.fingerprint.clone());
            }
            // The objects changed: the old rendering is of no more use to this query.
            entry.fingerprint = Arc::new(printed);
            entry.rendering = Rendering::default();
            entry.size = 0;
            entry.last_used = now;
            return (entry.rendering.clone(), entry.fingerprint.clone());
        }
        let fingerprint = Arc::new(printed);
        let rendering = Rendering::default();
        entries.list.push(Entry {
            query: query.clone(),
            fingerprint: fingerprint.clone(),
            rendering: rendering.clone(),
            size: 0,
            last_used: now,
        });
        (rendering, fingerprint)
    }

    /// Records the size of a finished rendering and evicts least recently used entries until
    /// the cache fits its budget. An entry replaced meanwhile is left alone.
    fn rendered(&self, query: &Query, fingerprint: &Arc<Fingerprint>, size: usize) {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(entry) = entries.list.iter_mut().find(|e| e.query == *query && Arc::ptr_eq(&e.fingerprint, fingerprint)) else {
            return;
        };
        if entry.size == size {
            return;
        }
        entry.size = size;
        loop {
            let total: usize = entries.list.iter().map(|e| e.size).sum();
            if total <= self.budget && entries.list.len() <= MAX_ENTRIES {
                break;
            }
            let Some(oldest) = entries.list.iter().enumerate().min_by_key(|(_, e)| e.last_used).map(|(i, _)| i) else { break };
            entries.list.swap_remove(oldest);
        }
    }

    /// Bytes held by finished renderings and their fingerprints (for tests and metrics).
    pub fn bytes(&self) -> usize {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).list.iter().map(|e| e.size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn kv(key: &str, value_len: usize, rev: Revision) -> KeyValue {
        KeyValue { key: key.into(), value: Bytes::from(vec![b'x'; value_len]), create_revision: rev, mod_revision: rev }
    }

    fn query(prefix: &str) -> Query {
        Query { form: "v1".into(), prefix: prefix.into(), label_selector: String::new(), field_selector: String::new() }
    }

    fn json(text: &str) -> Cached {
        Cached::Json(Bytes::from(text.to_string()))
    }

    fn text(cached: Option<Cached>) -> String {
        match cached {
            Some(Cached::Json(bytes)) => String::from_utf8(bytes.to_vec()).unwrap(),
            other => panic!("not JSON: {other:?}"),
        }
    }

    fn big_list(revisions: std::ops::Range<u64>) -> Vec<KeyValue> {
        revisions.map(|r| kv(&format!("/k/{r}"), 1024, r)).collect()
    }

    #[tokio::test]
    async fn same_objects_render_once_changed_objects_render_again() {
        let cache = ListCache::new(DEFAULT_BUDGET);
        let renders = AtomicUsize::new(0);
        let render = |tag: &'static str| {
            renders.fetch_add(1, Ordering::SeqCst);
            Some(json(tag))
        };
        let items = big_list(1..101);
        assert_eq!(text(cache.get(&query("/a/"), &items, || render("first")).await), "first");
        assert_eq!(text(cache.get(&query("/a/"), &items, || render("second")).await), "first");
        assert_eq!(renders.load(Ordering::SeqCst), 1);

        // One object rewritten (a new revision): rendered again, and the old rendering is gone.
        let mut changed = items.clone();
        changed[50].mod_revision = 500;
        assert_eq!(text(cache.get(&query("/a/"), &changed, || render("third")).await), "third");
        // One object deleted.
        let shorter = &items[1..];
        assert_eq!(text(cache.get(&query("/a/"), shorter, || render("fourth")).await), "fourth");
        // Same revision, other length: not the same bytes.
        let mut resized = items.clone();
        resized[3] = kv("/k/4", 1000, 4);
        assert_eq!(text(cache.get(&query("/a/"), &resized, || render("fifth")).await), "fifth");
        // Another query with the same objects has its own entry.
        assert_eq!(text(cache.get(&query("/b/"), &items, || render("sixth")).await), "sixth");
        let other_version = Query { form: "v2".into(), ..query("/b/") };
        assert_eq!(text(cache.get(&other_version, &items, || render("seventh")).await), "seventh");
        assert_eq!(renders.load(Ordering::SeqCst), 6);
    }

    #[tokio::test]
    async fn small_lists_and_a_zero_budget_are_not_cached() {
        let renders = AtomicUsize::new(0);
        let render = || {
            renders.fetch_add(1, Ordering::SeqCst);
            Some(json("r"))
        };
        let cache = ListCache::new(DEFAULT_BUDGET);
        let small = big_list(1..3);
        cache.get(&query("/a/"), &small, render).await;
        cache.get(&query("/a/"), &small, render).await;
        assert_eq!(renders.load(Ordering::SeqCst), 2);
        let off = ListCache::new(0);
        let items = big_list(1..101);
        off.get(&query("/a/"), &items, render).await;
        off.get(&query("/a/"), &items, render).await;
        assert_eq!(renders.load(Ordering::SeqCst), 4);
        assert_eq!(off.bytes(), 0);
    }

    #[tokio::test]
    async fn a_failed_rendering_is_remembered_as_such() {
        let cache = ListCache::new(DEFAULT_BUDGET);
        let items = big_list(1..101);
        assert!(cache.get(&query("/a/"), &items, || None).await.is_none());
        assert!(cache.get(&query("/a/"), &items, || Some(json("never"))).await.is_none());
    }

    #[tokio::test]
    async fn the_budget_evicts_the_least_recently_used() {
        // Room for two renderings of 100 KiB.
        let cache = ListCache::new(250 * 1024);
        let rendering = || Some(Cached::Json(Bytes::from(vec![b'r'; 100 * 1024])));
        let items = big_list(1..101);
        cache.get(&query("/a/"), &items, rendering).await;
        cache.get(&query("/b/"), &items, rendering).await;
        assert_eq!(cache.bytes(), 2 * (100 * 1024 + 100 * 16));
        cache.get(&query("/a/"), &items, || panic!("/a/ is cached")).await;
        cache.get(&query("/c/"), &items, rendering).await;
        assert_eq!(cache.bytes(), 2 * (100 * 1024 + 100 * 16));
        // /b/ was the least recently used.
        cache.get(&query("/a/"), &items, || panic!("/a/ is cached")).await;
        cache.get(&query("/c/"), &items, || panic!("/c/ is cached")).await;
        let rendered = AtomicUsize::new(0);
        cache
            .get(&query("/b/"), &items, || {
                rendered.fetch_add(1, Ordering::SeqCst);
                rendering()
            })
            .await;
        assert_eq!(rendered.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_one_rendering() {
        let cache = Arc::new(ListCache::new(DEFAULT_BUDGET));
        let renders = Arc::new(AtomicUsize::new(0));
        let items = Arc::new(big_list(1..101));
        let gate = Arc::new(tokio::sync::Barrier::new(8));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (cache, renders, items, gate) = (cache.clone(), renders.clone(), items.clone(), gate.clone());
                tokio::spawn(async move {
                    gate.wait().await;
                    cache
                        .get(&query("/a/"), &items, || {
                            renders.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(50));
                            Some(json("once"))
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(text(task.await.unwrap()), "once");
        }
        assert_eq!(renders.load(Ordering::SeqCst), 1);
    }
}
