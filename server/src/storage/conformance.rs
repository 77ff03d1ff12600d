//! One conformance suite for every storage backend. A backend's test module calls
//! `suite!(constructor_expression)` to run all of it.

use super::*;
use futures::StreamExt;

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

pub async fn create_get_update_delete<S: Storage>(s: S) {
    assert_eq!(s.get("/a/x").await.unwrap(), None);
    let created = s.create("/a/x", b("1")).await.unwrap();
    assert_eq!(created.mod_revision, created.create_revision);
    assert_eq!(s.create("/a/x", b("again")).await, Err(Error::AlreadyExists));
    let got = s.get("/a/x").await.unwrap().unwrap();
    assert_eq!(got.value, b("1"));
    let updated = s.update("/a/x", b("2"), created.mod_revision).await.unwrap();
    assert!(updated.mod_revision > created.mod_revision);
    assert_eq!(updated.create_revision, created.create_revision);
    assert_eq!(s.update("/a/x", b("3"), created.mod_revision).await, Err(Error::Conflict { current: updated.mod_revision }));
    assert_eq!(s.delete("/a/x", Some(created.mod_revision)).await.map(|_| ()), Err(Error::Conflict { current: updated.mod_revision }));
    let (deleted, rev) = s.delete("/a/x", Some(updated.mod_revision)).await.unwrap();
    assert_eq!(deleted.value, b("2"));
    assert!(rev > updated.mod_revision);
    assert_eq!(s.get("/a/x").await.unwrap(), None);
    assert_eq!(s.delete("/a/x", None).await.map(|_| ()), Err(Error::NotFound));
    assert_eq!(s.update("/a/x", b("4"), rev).await, Err(Error::NotFound));
    assert_eq!(s.current_revision().await.unwrap(), rev);
}

pub async fn list_is_ordered_paginated_and_prefix_bound<S: Storage>(s: S) {
    for k in ["/p/c", "/p/a", "/q/a", "/p/b", "/pa/z"] {
        s.create(k, b(k)).await.unwrap();
    }
    let all = s.list("/p/", ListOptions::default()).await.unwrap();
    let keys: Vec<_> = all.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/p/a", "/p/b", "/p/c"]);
    assert_eq!(all.remaining, 0);
    let page1 = s.list("/p/", ListOptions { limit: Some(2), ..Default::default() }).await.unwrap();
    assert_eq!(page1.items.len(), 2);
    assert_eq!(page1.remaining, 1);
    // Writes after the first page do not show in later pages of the same snapshot.
    s.create("/p/d", b("new")).await.unwrap();
    s.delete("/p/c", None).await.unwrap();
    let page2 = s
        .list("/p/", ListOptions { start_after: Some(page1.items[1].key.clone()), limit: Some(2), revision: Some(page1.revision) })
        .await
        .unwrap();
    let keys: Vec<_> = page2.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/p/c"]);
    assert_eq!(page2.revision, page1.revision);
    let now = s.list("/p/", ListOptions::default()).await.unwrap();
    let keys: Vec<_> = now.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/p/a", "/p/b", "/p/d"]);
    let future = s.list("/p/", ListOptions { revision: Some(now.revision + 100), ..Default::default() }).await;
    assert!(matches!(future, Err(Error::FutureRevision { .. })));
}

pub async fn watch_replays_then_follows<S: Storage>(s: S) {
    let first = s.create("/w/a", b("1")).await.unwrap();
    s.create("/other/a", b("x")).await.unwrap();
    let second = s.update("/w/a", b("2"), first.mod_revision).await.unwrap();
    let mut stream = s.watch("/w/", first.mod_revision).await.unwrap();
    // History after the starting revision comes first …
    match stream.next().await.unwrap().unwrap() {
        Event::Put { current, prev } => {
            assert_eq!(current, second);
            assert_eq!(prev.unwrap().value, b("1"));
        }
        other => panic!("unexpected {other:?}"),
    }
    // … then live events, filtered by prefix.
    s.create("/other/b", b("y")).await.unwrap();
    let (_, rev) = s.delete("/w/a", None).await.unwrap();
    match stream.next().await.unwrap().unwrap() {
        Event::Delete { prev, revision } => {
            assert_eq!(prev.value, b("2"));
            assert_eq!(revision, rev);
        }
        other => panic!("unexpected {other:?}"),
    }
}

pub async fn compaction_expires_old_revisions<S: Storage>(s: S) {
    let a = s.create("/c/a", b("1")).await.unwrap();
    let mut last = a.clone();
    for i in 0..5 {
        last = s.update("/c/a", b(&i.to_string()), last.mod_revision).await.unwrap();
    }
    s.compact(last.mod_revision).await.unwrap();
    assert!(matches!(s.watch("/c/", a.mod_revision).await.map(|_| ()), Err(Error::Compacted { .. })));
    assert!(matches!(
        s.list("/c/", ListOptions { revision: Some(a.mod_revision), ..Default::default() }).await,
        Err(Error::Compacted { .. })
    ));
    // The latest value survives compaction.
    assert_eq!(s.get("/c/a").await.unwrap().unwrap(), last);
    assert_eq!(
        s.list("/c/", ListOptions { revision: Some(last.mod_revision), ..Default::default() }).await.unwrap().items,
        vec![last.clone()]
    );
    assert!(s.watch("/c/", last.mod_revision).await.is_ok());
}

/// Expands to one `#[tokio::test]` per conformance check for the backend built by `$make`.
macro_rules! suite {
    ($make:expr) => {
        use $crate::storage::conformance as c;
        #[tokio::test]
        async fn create_get_update_delete() {
            c::create_get_update_delete($make).await
        }
        #[tokio::test]
        async fn list_is_ordered_paginated_and_prefix_bound() {
            c::list_is_ordered_paginated_and_prefix_bound($make).await
        }
        #[tokio::test]
        async fn watch_replays_then_follows() {
            c::watch_replays_then_follows($make).await
        }
        #[tokio::test]
        async fn compaction_expires_old_revisions() {
            c::compaction_expires_old_revisions($make).await
        }
    };
}
pub(crate) use suite;
