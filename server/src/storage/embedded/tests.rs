//! The embedded backend: the shared conformance suite, and what only a durable store must do —
//! come back identical after a restart, batch concurrent writes into group commits, survive
//! write failures, and refuse damaged files.

use super::disk::{self, Faults};
use super::*;
use futures::StreamExt;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use std::collections::BTreeSet;
use tempfile::TempDir;

/// A store in a temporary directory that lives as long as it.
struct Temp {
    storage: EmbeddedStorage,
    _dir: TempDir,
}

impl Temp {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let options = EmbeddedOptions { history: 1_000, ..Default::default() };
        Temp { storage: EmbeddedStorage::open(dir.path(), options).unwrap(), _dir: dir }
    }
}

#[async_trait]
impl Storage for Temp {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.storage.get(key).await
    }
    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        self.storage.list(prefix, options).await
    }
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        self.storage.create(key, value).await
    }
    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        self.storage.update(key, value, expected).await
    }
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)> {
        self.storage.delete(key, expected).await
    }
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        self.storage.watch(prefix, after).await
    }
    async fn current_revision(&self) -> Result<Revision> {
        self.storage.current_revision().await
    }
    async fn compact(&self, revision: Revision) -> Result<()> {
        self.storage.compact(revision).await
    }
}

mod conformance {
    crate::storage::conformance::suite!(super::Temp::new());
}

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

fn open(dir: &Path) -> EmbeddedStorage {
    EmbeddedStorage::open(dir, EmbeddedOptions::default()).unwrap()
}

async fn everything(s: &EmbeddedStorage) -> Vec<KeyValue> {
    s.list("/", ListOptions::default()).await.unwrap().items
}

/// Takes events from a watch until it has `n`.
async fn take(stream: WatchStream, n: usize) -> Vec<Event> {
    tokio::time::timeout(std::time::Duration::from_secs(10), stream.take(n).map(|e| e.unwrap()).collect())
        .await
        .expect("watch events arrive")
}

#[tokio::test]
async fn restart_brings_back_objects_revisions_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let uid = r#"{"metadata":{"name":"a","uid":"6f1c3f0e-8a44-4d43-9a3e-2d5b7c0e9f11"}}"#;
    let a = s.create("/g/foos/ns/a", b(uid)).await.unwrap();
    let b1 = s.create("/g/foos/ns/b", b("b1")).await.unwrap();
    let b2 = s.update("/g/foos/ns/b", b("b2"), b1.mod_revision).await.unwrap();
    s.create("/g/foos/ns/c", b("c")).await.unwrap();
    let (_, deleted_at) = s.delete("/g/foos/ns/c", None).await.unwrap();
    s.create("/g/bars/x", b("x")).await.unwrap();
    let before = everything(&s).await;
    let revision = s.current_revision().await.unwrap();
    let history = take(s.watch("/g/foos/", a.mod_revision).await.unwrap(), 4).await;
    let old_page = s.list("/g/foos/", ListOptions { revision: Some(b2.mod_revision), ..Default::default() }).await.unwrap();
    drop(s);

    let s = open(dir.path());
    assert_eq!(everything(&s).await, before);
    assert_eq!(s.get("/g/foos/ns/a").await.unwrap().unwrap().value, b(uid));
    assert_eq!(s.current_revision().await.unwrap(), revision);
    assert_eq!(s.get("/g/foos/ns/c").await.unwrap(), None);
    // Snapshot reads and watches from before the restart still work, and see the same.
    let page = s.list("/g/foos/", ListOptions { revision: Some(b2.mod_revision), ..Default::default() }).await.unwrap();
    assert_eq!(page.items, old_page.items);
    assert_eq!(take(s.watch("/g/foos/", a.mod_revision).await.unwrap(), 4).await, history);
    assert!(matches!(&history[3], Event::Delete { revision, .. } if *revision == deleted_at));
    // Revisions go on from where they were.
    let later = s.update("/g/foos/ns/a", b("a2"), a.mod_revision).await.unwrap();
    assert_eq!(later.mod_revision, revision + 1);
    assert_eq!(later.create_revision, a.create_revision);
    drop(s);

    let s = open(dir.path());
    assert_eq!(s.get("/g/foos/ns/a").await.unwrap(), Some(later));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_are_group_committed_with_distinct_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(open(dir.path()));
    let base = s.current_revision().await.unwrap();
    const N: u64 = 300;
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.create(&format!("/k/{i:04}"), b(&i.to_string())).await.unwrap() })
        })
        .collect();
    let mut revisions = BTreeSet::new();
    for task in tasks {
        let kv = task.await.unwrap();
        assert_eq!(kv.create_revision, kv.mod_revision);
        revisions.insert(kv.mod_revision);
    }
    assert_eq!(revisions, (base + 1..=base + N).collect::<BTreeSet<_>>());
    let stats = s.stats();
    assert_eq!(stats.writes, N);
    assert!(stats.commits < N, "{N} concurrent writes took {} commits: no batching", stats.commits);
    drop(Arc::into_inner(s).unwrap());
    assert_eq!(open(dir.path()).list("/k/", ListOptions::default()).await.unwrap().items.len(), N as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_in_one_batch_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(open(dir.path()));
    let first = s.create("/x", b("0")).await.unwrap();
    // Many updates expecting the same revision, and many creates of one key: whatever the
    // batching, exactly one of each wins.
    let updates: Vec<_> = (0..50)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.update("/x", b(&i.to_string()), first.mod_revision).await })
        })
        .collect();
    let creates: Vec<_> = (0..50)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.create("/y", b(&i.to_string())).await })
        })
        .collect();
    let mut won = 0;
    for task in updates {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(Error::Conflict { current }) => assert!(current > first.mod_revision),
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(won, 1);
    let mut won = 0;
    for task in creates {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(Error::AlreadyExists) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(s.current_revision().await.unwrap(), first.mod_revision + 2);
}

#[tokio::test]
async fn compaction_is_persisted_and_bounds_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions { history: 20, ..Default::default() };
    let s = EmbeddedStorage::open(dir.path(), options.clone()).unwrap();
    let first = s.create("/c/a", b("0")).await.unwrap();
    s.create("/c/gone", b("x")).await.unwrap();
    s.delete("/c/gone", None).await.unwrap();
    let mut last = first.clone();
    for i in 1..200 {
        last = s.update("/c/a", b(&i.to_string()), last.mod_revision).await.unwrap();
    }
    let watch_from = last.mod_revision - 5;
    let recent = take(s.watch("/c/", watch_from).await.unwrap(), 5).await;
    drop(s);

    // Automatic compaction kept about `history` revisions on disk, not all 202.
    let records = {
        let db = redb::Database::open(dir.path().join(FILE_NAME)).unwrap();
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(disk::VERSIONS).unwrap();
        table.len().unwrap()
    };
    assert!(records <= 20 + 20 / 4 + 1, "{records} records kept");

    let s = EmbeddedStorage::open(dir.path(), options).unwrap();
    assert!(matches!(s.watch("/c/", first.mod_revision).await.map(|_| ()), Err(Error::Compacted { .. })));
    assert_eq!(take(s.watch("/c/", watch_from).await.unwrap(), 5).await, recent);
    assert_eq!(s.get("/c/a").await.unwrap(), Some(last.clone()));
    assert_eq!(s.get("/c/gone").await.unwrap(), None);
    // An explicit compaction is durable as well.
    s.compact(last.mod_revision).await.unwrap();
    drop(s);
    let s = open(dir.path());
    assert!(matches!(s.watch("/c/", watch_from).await.map(|_| ()), Err(Error::Compacted { .. })));
    assert!(s.watch("/c/", last.mod_revision).await.is_ok());
    assert_eq!(everything(&s).await, vec![last]);
}

#[tokio::test]
async fn a_full_disk_fails_writes_with_unavailable_and_recovery_follows() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let s = EmbeddedStorage::open_with_faults(dir.path(), EmbeddedOptions::default(), Some(faults.clone())).unwrap();
    let a = s.create("/f/a", b("a")).await.unwrap();
    faults.disk_full();
    assert!(matches!(s.create("/f/b", b("b")).await, Err(Error::Unavailable(_))));
    assert!(matches!(s.update("/f/a", b("a2"), a.mod_revision).await, Err(Error::Unavailable(_))));
    assert!(matches!(s.compact(a.mod_revision).await, Ok(()) | Err(Error::Unavailable(_))));
    // Reads go on, and nothing changed.
    assert_eq!(everything(&s).await, vec![a.clone()]);
    assert_eq!(s.current_revision().await.unwrap(), a.mod_revision);
    faults.clear();
    let b_ = s.create("/f/b", b("b")).await.unwrap();
    assert_eq!(b_.mod_revision, a.mod_revision + 1, "a failed write used no revision");
    let a2 = s.update("/f/a", b("a2"), a.mod_revision).await.unwrap();
    drop(s);
    let s = open(dir.path());
    assert_eq!(everything(&s).await, vec![a2, b_]);
}

#[tokio::test]
async fn a_commit_of_unknown_outcome_is_settled_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let s = EmbeddedStorage::open_with_faults(dir.path(), EmbeddedOptions::default(), Some(faults.clone())).unwrap();
    s.create("/u/a", b("a")).await.unwrap();
    faults.sync_fails();
    let outcome = s.create("/u/b", b("b")).await;
    assert!(matches!(outcome, Ok(_) | Err(Error::Unavailable(_))), "{outcome:?}");
    faults.clear();
    s.create("/u/c", b("c")).await.unwrap();
    // Whatever the failed commit did, memory agrees with the file.
    let served = everything(&s).await;
    let revision = s.current_revision().await.unwrap();
    drop(s);
    let s = open(dir.path());
    assert_eq!(everything(&s).await, served);
    assert_eq!(s.current_revision().await.unwrap(), revision);
}

#[tokio::test]
async fn a_second_server_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path());
    let err = EmbeddedStorage::open(dir.path(), EmbeddedOptions::default()).err().expect("refused");
    assert!(!err.corrupt);
    assert!(err.to_string().contains("in use"), "{err}");
}

/// Rewrites one stored record (by revision) of a closed store.
fn tamper(dir: &Path, revision: Revision, change: impl FnOnce(Option<Vec<u8>>) -> Option<Vec<u8>>) {
    let db = redb::Database::create(dir.join(FILE_NAME)).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(disk::VERSIONS).unwrap();
        let old = table.get(revision).unwrap().map(|v| v.value().to_vec());
        match change(old) {
            Some(new) => table.insert(revision, new.as_slice()).unwrap(),
            None => table.remove(revision).unwrap(),
        };
    }
    txn.commit().unwrap();
}

async fn populated() -> (TempDir, Revision) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.create("/d/a", b(r#"{"a":1}"#)).await.unwrap();
    let victim = s.create("/d/victim", b(r#"{"b":2}"#)).await.unwrap();
    s.create("/d/z", b(r#"{"c":3}"#)).await.unwrap();
    (dir, victim.mod_revision)
}

#[tokio::test]
async fn a_damaged_record_stops_the_start_with_file_revision_and_key() {
    let (dir, victim) = populated().await;
    tamper(dir.path(), victim, |old| {
        let mut record = old.unwrap();
        let at = record.len() - 6;
        record[at] ^= 1;
        Some(record)
    });
    let err = EmbeddedStorage::open(dir.path(), EmbeddedOptions::default()).err().expect("refused");
    assert!(err.corrupt);
    assert_eq!((err.revision, err.key.as_deref()), (Some(victim), Some("/d/victim")));
    let message = err.to_string();
    assert!(message.contains(FILE_NAME) && message.contains("/d/victim") && message.contains("checksum"), "{message}");
}

#[tokio::test]
async fn a_missing_record_stops_the_start() {
    let (dir, victim) = populated().await;
    tamper(dir.path(), victim, |_| None);
    let err = EmbeddedStorage::open(dir.path(), EmbeddedOptions::default()).err().expect("refused");
    assert!(err.corrupt);
    assert_eq!(err.revision, Some(victim));
    assert!(err.to_string().contains("missing"), "{err}");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FILE_NAME), vec![0x5a; 10_000]).unwrap();
    let err = EmbeddedStorage::open(dir.path(), EmbeddedOptions::default()).err().expect("refused");
    assert!(err.corrupt, "{err}");
    assert!(err.to_string().contains(FILE_NAME), "{err}");
    // The file is left as it was, for the operator to look at.
    assert_eq!(std::fs::read(dir.path().join(FILE_NAME)).unwrap(), vec![0x5a; 10_000]);
}

#[tokio::test]
async fn damaged_pages_stop_the_start() {
    let (dir, _) = populated().await;
    let path = dir.path().join(FILE_NAME);
    let mut bytes = std::fs::read(&path).unwrap();
    // Flip bits all over the data pages (the header is in the first page).
    for at in (4096..bytes.len()).step_by(97) {
        bytes[at] ^= 0xff;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = EmbeddedStorage::open(dir.path(), EmbeddedOptions::default()).err().expect("refused");
    assert!(err.corrupt, "{err}");
    assert!(err.to_string().contains(FILE_NAME), "{err}");
}
