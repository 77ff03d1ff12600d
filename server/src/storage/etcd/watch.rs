//! Watches on etcd's watch stream, resumed across lost connections.
//!
//! Each storage watch is one etcd watch (`prev_kv` on, so updates and deletions carry the value
//! before them; `progress_notify` on). A task reads it and hands events on through a bounded
//! channel, so a slow HTTP client slows the etcd stream down (gRPC flow control) instead of
//! piling events up here.
//!
//! The task remembers the next revision it still owes the consumer. When the stream breaks
//! (etcd restarted, connection lost) it opens a new one from that revision, with a growing
//! pause between attempts, so the consumer sees every event once and in order. etcd's idle
//! progress notifications move that revision forward too, so a quiet watch resumes from a
//! recent revision rather than one that may have been compacted since. The stream ends with
//! [`Error::Compacted`] when etcd can no longer serve that revision, as kube-apiserver's etcd
//! watcher does (the client then lists again).

use super::client::{describe_status, Client};
use super::proto::{self, watch_request::RequestUnion, EventType, WatchCreateRequest, WatchRequest};
use super::{etcd_revision, revision_of, Keys};
use crate::storage::{Error, Event, Result, Revision, WatchStream};
use futures::channel::mpsc as request_channel;
use futures::StreamExt;
use std::time::Duration;
use tokio::sync::mpsc;

/// Events buffered between the etcd stream and the consumer.
const BUFFER: usize = 256;
/// The first and the longest pause before opening a broken watch again.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Starts watching `[key, range_end)` for events after `after`.
pub(super) fn start(client: Client, keys: Keys, key: Vec<u8>, range_end: Vec<u8>, after: Revision) -> WatchStream {
    let (sender, receiver) = mpsc::channel(BUFFER);
    let watcher = Watcher { client, keys, key, range_end, delivered: after, next: after + 1, sender };
    tokio::spawn(watcher.run());
    futures::stream::unfold(receiver, |mut receiver| async move { receiver.recv().await.map(|event| (event, receiver)) }).boxed()
}

struct Watcher {
    client: Client,
    keys: Keys,
    key: Vec<u8>,
    range_end: Vec<u8>,
    /// The revision of the last event the consumer got (or the starting point).
    delivered: Revision,
    /// Where a new etcd watch starts: after `delivered`, or after the revision of a later
    /// progress notification.
    next: Revision,
    sender: mpsc::Sender<Result<Event>>,
}

/// Why one etcd watch stream ended.
enum End {
    /// The consumer is gone, or the watch cannot go on: stop.
    Stop,
    /// The stream broke: open another one.
    Broken(String),
}

impl Watcher {
    async fn run(mut self) {
        let mut pause = RETRY_MIN;
        loop {
            match self.follow(&mut pause).await {
                End::Stop => return,
                // Once per outage at warning level, not at every attempt of every watch.
                End::Broken(why) if pause == RETRY_MIN => {
                    tracing::warn!(from = self.next, "etcd watch lost ({why}); resuming in {pause:?}");
                }
                End::Broken(why) => tracing::debug!(from = self.next, "etcd watch still lost ({why}); retrying in {pause:?}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.sender.closed() => return,
            }
            pause = (pause * 2).min(RETRY_MAX);
        }
    }

    /// Opens one etcd watch from `next` and forwards its events until it ends.
    async fn follow(&mut self, pause: &mut Duration) -> End {
        let (requests, request_stream) = request_channel::unbounded();
        let create = WatchCreateRequest {
            key: self.key.clone(),
            range_end: self.range_end.clone(),
            start_revision: etcd_revision(self.next),
            progress_notify: true,
            prev_kv: true,
        };
        // `requests` must live as long as the watch: etcd ends the stream when the client closes
        // its side.
        let _ = requests.unbounded_send(WatchRequest { request_union: Some(RequestUnion::CreateRequest(create)) });
        let mut stream = tokio::select! {
            opened = self.client.watch(request_stream) => match opened {
                Ok(stream) => stream,
                Err(status) => return End::Broken(describe_status(&status)),
            },
            _ = self.sender.closed() => return End::Stop,
        };
        loop {
            let message = tokio::select! {
                message = stream.message() => message,
                _ = self.sender.closed() => return End::Stop,
            };
            let response = match message {
                Ok(Some(response)) => response,
                Ok(None) => return End::Broken("the stream ended".to_string()),
                Err(status) => return End::Broken(describe_status(&status)),
            };
            if response.compact_revision > 0 {
                let oldest = revision_of(response.compact_revision);
                let _ = self.sender.send(Err(Error::Compacted { oldest })).await;
                return End::Stop;
            }
            if response.canceled {
                let why = format!("etcd canceled the watch: {}", response.cancel_reason);
                let _ = self.sender.send(Err(Error::Unavailable(why))).await;
                return End::Stop;
            }
            if response.created {
                *pause = RETRY_MIN;
                continue;
            }
            if response.events.is_empty() {
                // A progress notification: every event up to the header's revision was sent.
                // Only a resumption uses it; events are compared with `delivered`, so even a
                // notification that overtook an event (etcd#15220) cannot hide that event.
                if let Some(header) = &response.header {
                    self.next = self.next.max(revision_of(header.revision) + 1);
                }
                continue;
            }
            for event in response.events {
                let event = match convert(&self.keys, event) {
                    Ok(event) => event,
                    Err(why) => {
                        tracing::warn!("etcd watch: {why}");
                        let _ = self.sender.send(Err(Error::Compacted { oldest: self.next })).await;
                        return End::Stop;
                    }
                };
                let revision = event.revision();
                if revision <= self.delivered {
                    // Already sent (cannot happen with etcd's ordering, but a duplicate would
                    // be worse than a check).
                    continue;
                }
                if self.sender.send(Ok(event)).await.is_err() {
                    return End::Stop;
                }
                self.delivered = revision;
                self.next = self.next.max(revision + 1);
            }
        }
    }
}

/// An etcd event as the contract's [`Event`].
fn convert(keys: &Keys, event: proto::Event) -> std::result::Result<Event, String> {
    let kv = event.kv.ok_or("an event without a key")?;
    let kind = EventType::try_from(event.r#type).map_err(|_| format!("an event of unknown type {}", event.r#type))?;
    match kind {
        EventType::Put => {
            // Without its previous value an update cannot be told from a create (etcd leaves it
            // out when that value was compacted): kube-apiserver fails the watch too.
            if kv.create_revision != kv.mod_revision && event.prev_kv.is_none() {
                return Err(format!(
                    "an update of {:?} at revision {} came without its previous value",
                    keys.local(&kv.key),
                    kv.mod_revision
                ));
            }
            Ok(Event::Put { current: keys.key_value(kv), prev: event.prev_kv.map(|p| keys.key_value(p)) })
        }
        EventType::Delete => {
            let revision = revision_of(kv.mod_revision);
            let prev = event
                .prev_kv
                .ok_or_else(|| format!("a deletion of {:?} at revision {revision} came without the deleted value", keys.local(&kv.key)))?;
            Ok(Event::Delete { prev: keys.key_value(prev), revision })
        }
    }
}

/// etcd's compaction point, read by watching `key` (which is never written) from revision 1:
/// etcd answers a watch that starts before the compaction point with that point. `None` when
/// the call fails or nothing is compacted (then the caller's timeout ends the wait).
pub(super) async fn compaction_point(client: &Client, key: Vec<u8>) -> Option<Revision> {
    let (requests, request_stream) = request_channel::unbounded();
    let create = WatchCreateRequest { key, start_revision: 1, ..Default::default() };
    let _ = requests.unbounded_send(WatchRequest { request_union: Some(RequestUnion::CreateRequest(create)) });
    let mut stream = client.watch(request_stream).await.ok()?;
    while let Ok(Some(response)) = stream.message().await {
        if response.compact_revision > 0 {
            return Some(revision_of(response.compact_revision));
        }
        if response.canceled {
            return None;
        }
    }
    None
}
