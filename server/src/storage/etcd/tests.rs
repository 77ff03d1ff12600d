//! The conformance suite and etcd-specific checks, against a real etcd started by the tests.
//!
//! The suite's tests share one etcd, each under its own key prefix. etcd's revision is global
//! and compaction applies to all keys, so tests on the shared etcd take turns (`TURN`); tests
//! that stop etcd start one of their own.

use super::testing::Etcd;
use super::*;
use crate::storage::{Event, Storage};
use futures::StreamExt;
use std::sync::{Arc, OnceLock};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// One test at a time on the shared etcd.
static TURN: OnceLock<Arc<Mutex<()>>> = OnceLock::new();

fn options(etcd: &Etcd, prefix: &str) -> EtcdOptions {
    let mut options = EtcdOptions::new(vec![etcd.url()]);
    options.prefix = prefix.to_string();
    options.compaction_interval = Duration::ZERO;
    options.request_timeout = Duration::from_secs(3);
    options
}

/// A store on the shared etcd under a fresh prefix, holding the shared etcd's turn.
pub(crate) struct TurnStore {
    storage: EtcdStorage,
    _turn: OwnedMutexGuard<()>,
}

pub(crate) async fn shared_store() -> TurnStore {
    let turn = TURN.get_or_init(Default::default).clone().lock_owned().await;
    let etcd = Etcd::shared();
    let prefix = format!("/test-{}", uuid::Uuid::new_v4());
    TurnStore { storage: EtcdStorage::new(options(etcd, &prefix)).unwrap(), _turn: turn }
}

#[async_trait]
impl Storage for TurnStore {
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
    crate::storage::conformance::suite!(super::shared_store().await);
}

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

/// The next event, or a panic after a few seconds.
async fn next_event(stream: &mut WatchStream) -> Result<Event> {
    tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("a watch event in time").expect("the watch goes on")
}

#[tokio::test]
async fn keys_live_under_the_prefix_and_revisions_are_etcds() {
    let s = shared_store().await;
    let etcd = Etcd::shared();
    let raw = EtcdStorage::new(options(etcd, "")).unwrap();
    let prefix = String::from_utf8(s.storage.keys.prefix.clone()).unwrap();
    let created = s.create("/hello.zeng.dev/foos/default/a", b("{}")).await.unwrap();
    let stored = raw.get(&format!("{prefix}/hello.zeng.dev/foos/default/a")).await.unwrap().unwrap();
    assert_eq!(stored.mod_revision, created.mod_revision);
    assert_eq!(stored.value, b("{}"));
    assert_eq!(raw.current_revision().await.unwrap(), created.mod_revision);
    // A trailing slash on the prefix changes nothing.
    let slash = EtcdStorage::new(options(etcd, &format!("{prefix}/"))).unwrap();
    assert_eq!(slash.get("/hello.zeng.dev/foos/default/a").await.unwrap().unwrap(), created);
}

#[tokio::test]
async fn pagination_counts_what_remains_and_stops_at_the_prefix_end() {
    let s = shared_store().await;
    for k in ["/p/a", "/p/b", "/p/c", "/p/d", "/q/a"] {
        s.create(k, b(k)).await.unwrap();
    }
    let page = s.list("/p/", ListOptions { limit: Some(1), start_after: Some("/p/a".into()), ..Default::default() }).await.unwrap();
    assert_eq!(page.items.iter().map(|kv| kv.key.as_str()).collect::<Vec<_>>(), ["/p/b"]);
    assert_eq!(page.remaining, 2);
    let past = s.list("/p/", ListOptions { start_after: Some("/p/\u{10ffff}".into()), ..Default::default() }).await.unwrap();
    assert!(past.items.is_empty());
    assert_eq!(past.remaining, 0);
    assert_eq!(past.revision, s.current_revision().await.unwrap());
}

#[tokio::test]
async fn a_compacted_start_reports_the_compaction_point() {
    let s = shared_store().await;
    let first = s.create("/k/a", b("1")).await.unwrap();
    let second = s.update("/k/a", b("2"), first.mod_revision).await.unwrap();
    let third = s.update("/k/a", b("3"), second.mod_revision).await.unwrap();
    s.compact(third.mod_revision).await.unwrap();
    // Compacting again, or at an older revision, is not an error; nor is a future one.
    s.compact(second.mod_revision).await.unwrap();
    s.compact(third.mod_revision + 1000).await.unwrap();
    let current = s.current_revision().await.unwrap();
    let expected = Error::Compacted { oldest: current };
    assert_eq!(s.watch("/k/", first.mod_revision).await.map(|_| ()), Err(expected.clone()));
    let list = s.list("/k/", ListOptions { revision: Some(first.mod_revision), ..Default::default() }).await;
    assert_eq!(list.map(|_| ()), Err(expected));
}

#[tokio::test]
async fn watch_events_carry_previous_values_and_follow_many_writes_in_order() {
    let s = shared_store().await;
    let start = s.current_revision().await.unwrap();
    let mut stream = s.watch("/w/", start).await.unwrap();
    let mut expected = Vec::new();
    let mut last = s.create("/w/a", b("0")).await.unwrap();
    expected.push(last.mod_revision);
    for i in 1..50 {
        last = s.update("/w/a", b(&i.to_string()), last.mod_revision).await.unwrap();
        expected.push(last.mod_revision);
    }
    let (_, deleted_at) = s.delete("/w/a", None).await.unwrap();
    expected.push(deleted_at);
    let mut seen = Vec::new();
    for i in 0..expected.len() {
        match next_event(&mut stream).await.unwrap() {
            Event::Put { current, prev } => {
                assert_eq!(current.value, b(&i.to_string()));
                assert_eq!(prev.map(|p| p.value), (i > 0).then(|| b(&(i - 1).to_string())));
                seen.push(current.mod_revision);
            }
            Event::Delete { prev, revision } => {
                assert_eq!(prev.value, b("49"));
                seen.push(revision);
            }
        }
    }
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn future_revisions_are_refused() {
    let s = shared_store().await;
    let current = s.current_revision().await.unwrap();
    assert_eq!(s.watch("/f/", current + 10).await.map(|_| ()), Err(Error::FutureRevision { current }));
}

/// etcd down: every call fails fast with Unavailable; etcd back: the same store works again,
/// and a watch opened before the outage resumes without losing or repeating events.
#[tokio::test]
async fn outage_is_unavailable_and_the_store_recovers() {
    let mut etcd = Etcd::start();
    let s = EtcdStorage::new(options(&etcd, "/registry")).unwrap();
    let a = s.create("/o/a", b("1")).await.unwrap();
    let mut stream = s.watch("/o/", a.mod_revision).await.unwrap();
    let b1 = s.create("/o/b", b("1")).await.unwrap();
    assert!(matches!(next_event(&mut stream).await.unwrap(), Event::Put { current, .. } if current == b1));

    etcd.stop();
    let started = std::time::Instant::now();
    for result in [s.create("/o/c", b("1")).await.map(|_| ()), s.get("/o/a").await.map(|_| ()), s.current_revision().await.map(|_| ())] {
        assert!(matches!(&result, Err(Error::Unavailable(why)) if why.starts_with("etcd: ")), "{result:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(10), "failing took {:?}", started.elapsed());

    etcd.resume();
    // The first call after the restart may still meet the dead connection; soon they succeed.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let c = loop {
        match s.create("/o/c", b("1")).await {
            Ok(kv) => break kv,
            Err(Error::Unavailable(_)) if std::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("etcd did not come back: {e}"),
        }
    };
    assert_eq!(s.get("/o/a").await.unwrap().unwrap(), a);
    let d = s.update("/o/c", b("2"), c.mod_revision).await.unwrap();
    // The watch resumed from where it was: c's creation, then its update, nothing twice.
    assert!(matches!(next_event(&mut stream).await.unwrap(), Event::Put { current, prev: None } if current == c));
    assert!(matches!(next_event(&mut stream).await.unwrap(), Event::Put { current, prev: Some(_) } if current == d));
}

/// etcd's progress notifications move a quiet watch's resume point forward: after other keys
/// were written and history compacted past its start, a lost connection does not expire it.
#[tokio::test]
async fn a_quiet_watch_resumes_past_compaction_after_progress_notifications() {
    let mut etcd = Etcd::start();
    let s = EtcdStorage::new(options(&etcd, "/registry")).unwrap();
    let start = s.current_revision().await.unwrap();
    let mut stream = s.watch("/quiet/", start).await.unwrap();
    let mut last = s.create("/busy/a", b("0")).await.unwrap();
    for i in 1..5 {
        last = s.update("/busy/a", b(&i.to_string()), last.mod_revision).await.unwrap();
    }
    // The test etcd notifies idle watches every second.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    s.compact(last.mod_revision).await.unwrap();
    etcd.stop();
    etcd.resume();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let created = loop {
        match s.create("/quiet/a", b("1")).await {
            Ok(kv) => break kv,
            Err(Error::Unavailable(_)) if std::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("etcd did not come back: {e}"),
        }
    };
    match next_event(&mut stream).await {
        Ok(Event::Put { current, prev: None }) => assert_eq!(current, created),
        other => panic!("expected the create after the restart, got {other:?}"),
    }
}

/// The periodic compactor compacts to the revision it saw one interval earlier.
#[tokio::test]
async fn the_compactor_keeps_one_interval_of_history() {
    let etcd = Etcd::start();
    let mut opts = options(&etcd, "/registry");
    opts.compaction_interval = Duration::from_millis(300);
    let s = EtcdStorage::new(opts).unwrap();
    let first = s.create("/c/a", b("1")).await.unwrap();
    s.update("/c/a", b("2"), first.mod_revision).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let old = s.list("/c/", ListOptions { revision: Some(first.mod_revision), ..Default::default() }).await;
        match old {
            Err(Error::Compacted { oldest }) => {
                assert!(oldest > first.mod_revision);
                break;
            }
            Ok(_) if std::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("history was not compacted: {other:?}"),
        }
    }
    // The compaction rounds are counted on kube-apiserver's key, outside the prefix.
    let raw = EtcdStorage::new(options(&etcd, "")).unwrap();
    let rounds = raw.client.range(proto::RangeRequest { key: compactor::COMPACT_REV_KEY.to_vec(), ..Default::default() }).await.unwrap();
    assert!(rounds.kvs[0].version >= 1);
}

/// Two compactors on one etcd agree: each round, only one of them compacts.
#[tokio::test]
async fn compactors_take_turns() {
    let etcd = Etcd::start();
    let client = client::Client::new(
        &[etcd.url()],
        &client::Settings { request_timeout: Duration::from_secs(3), dial_timeout: Duration::from_secs(1) },
    )
    .unwrap();
    let (rounds, rev) = compactor::round(&client, 0, 0).await.unwrap();
    assert_eq!(rounds, 1);
    // A second server that has not seen the first round loses it and learns the count.
    let (seen, _) = compactor::round(&client, 0, rev).await.unwrap();
    assert_eq!(seen, 1);
    let (rounds, _) = compactor::round(&client, 1, rev).await.unwrap();
    assert_eq!(rounds, 2);
}

#[test]
fn settings_are_checked() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _guard = runtime.enter();
    let new = |servers: &[&str], prefix: &str| {
        let mut options = EtcdOptions::new(servers.iter().map(|s| s.to_string()).collect());
        options.prefix = prefix.to_string();
        EtcdStorage::new(options).map(|_| ()).map_err(|e| e.0)
    };
    assert!(new(&["http://127.0.0.1:2379"], "/registry").is_ok());
    assert!(new(&["http://127.0.0.1:2379", "http://127.0.0.1:22379"], "").is_ok());
    assert!(new(&[], "/registry").unwrap_err().contains("--etcd-servers"));
    assert!(new(&["https://127.0.0.1:2379"], "/registry").unwrap_err().contains("TLS"));
    assert!(new(&["127.0.0.1:2379"], "/registry").unwrap_err().contains("http://"));
    assert!(new(&["http://127.0.0.1:2379"], "registry").unwrap_err().contains("must start with '/'"));
}

#[test]
fn prefix_ends() {
    assert_eq!(prefix_end(b"/a/"), b"/a0");
    assert_eq!(prefix_end(b"a\xff"), b"b");
    assert_eq!(prefix_end(b"\xff\xff"), b"\0");
}
