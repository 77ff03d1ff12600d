//! The one writer of the embedded backend: a thread that turns queued requests into group
//! commits.
//!
//! It takes every request waiting in its queue (up to a bound), checks each against the current
//! state plus the earlier writes of the same batch, gives the accepted ones consecutive
//! revisions, and writes them all in one redb transaction with immediate durability (one fsync).
//! Only once that commit returns are the writes applied to the in-memory state, watchers told,
//! and the clients answered. A commit that fails answers the whole batch with
//! [`Error::Unavailable`] and changes nothing in memory.
//!
//! After a failed commit the database handle is dropped (redb refuses further work on a handle
//! that saw an I/O error) and reopened, right away and before every later batch until that
//! works. A reopened file tells whether the failed commit reached the disk after all: if it did,
//! its writes are applied then, so memory and disk never disagree about what was written.

use super::super::mvcc::{value_after, Shared, Write};
use super::super::{Error, Event, KeyValue, Result, Revision};
use super::disk::{self, DiskOptions, META, META_COMPACTED, META_REVISION, VERSIONS};
use redb::Database;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// At most this many writes go into one commit …
const MAX_BATCH_WRITES: usize = 1024;
/// … and at most about this many bytes of values.
const MAX_BATCH_BYTES: usize = 16 << 20;

/// What the writer is asked to do.
pub(super) enum Request {
    Write { write: Write, reply: oneshot::Sender<Result<Event>> },
    Compact { revision: Revision, reply: oneshot::Sender<Result<()>> },
}

impl Request {
    fn size(&self) -> usize {
        match self {
            Request::Write { write: Write::Create { value, .. } | Write::Update { value, .. }, .. } => value.len(),
            _ => 0,
        }
    }
}

/// Counters for tests and benchmarks.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub commits: AtomicU64,
    pub writes: AtomicU64,
}

pub(super) struct Writer {
    pub db: Option<Database>,
    pub path: PathBuf,
    pub disk: DiskOptions,
    pub shared: Arc<Shared>,
    pub history: usize,
    pub counters: Arc<Counters>,
    pub receiver: mpsc::Receiver<Request>,
    /// A batch whose commit failed without the outcome being known: it may be on disk.
    pub in_doubt: Option<Vec<Event>>,
}

impl Writer {
    /// Serves requests until every sender is gone.
    pub fn run(mut self) {
        while let Some(first) = self.receiver.blocking_recv() {
            let mut bytes = first.size();
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH_WRITES && bytes < MAX_BATCH_BYTES {
                match self.receiver.try_recv() {
                    Ok(request) => {
                        bytes += request.size();
                        batch.push(request);
                    }
                    Err(_) => break,
                }
            }
            self.process(batch);
        }
    }

    fn process(&mut self, batch: Vec<Request>) {
        let mut writes = Vec::new();
        let mut compactions = Vec::new();
        for request in batch {
            match request {
                Request::Write { write, reply } => writes.push((write, reply)),
                Request::Compact { revision, reply } => compactions.push((revision, reply)),
            }
        }
        if let Err(e) = self.ensure_open() {
            for (_, reply) in writes {
                let _ = reply.send(Err(e.clone()));
            }
            for (_, reply) in compactions {
                let _ = reply.send(Err(e.clone()));
            }
            return;
        }
        if !writes.is_empty() {
            self.write_batch(writes);
        }
        self.compact(compactions);
    }

    /// Checks, commits and applies one batch of writes, then answers them.
    fn write_batch(&mut self, writes: Vec<(Write, oneshot::Sender<Result<Event>>)>) {
        let mut answers = Vec::with_capacity(writes.len());
        let mut events = Vec::new();
        {
            let state = self.shared.lock();
            let mut revision = state.revision();
            // The latest value of every key this batch has written so far.
            let mut pending: HashMap<String, Option<KeyValue>> = HashMap::new();
            for (write, reply) in writes {
                let key = write.key().to_string();
                let current = match pending.get(&key) {
                    Some(value) => value.clone(),
                    None => state.latest(&key),
                };
                let answer = write.check(current.as_ref(), revision + 1);
                if let Ok(event) = &answer {
                    revision += 1;
                    pending.insert(key, value_after(event));
                    events.push(event.clone());
                }
                answers.push((reply, answer));
            }
        }
        if !events.is_empty() {
            match self.commit(events) {
                Ok(()) => {}
                Err(e) => {
                    // A refusal (conflict, not found) may rest on an earlier write of the same
                    // batch, which did not happen: the whole batch fails alike.
                    for (_, answer) in &mut answers {
                        *answer = Err(e.clone());
                    }
                }
            }
        }
        for (reply, answer) in answers {
            let _ = reply.send(answer);
        }
    }

    /// Writes the events in one durable transaction, then applies them in memory. On failure,
    /// reopens the database to learn whether they reached the disk anyway (then this still
    /// succeeds, and the reopen has applied them).
    fn commit(&mut self, events: Vec<Event>) -> Result<()> {
        let db = self.db.as_ref().expect("ensure_open ran");
        let last = events.last().expect("non-empty batch").revision();
        let result = (|| -> std::result::Result<(), redb::Error> {
            let txn = db.begin_write()?;
            {
                let mut versions = txn.open_table(VERSIONS)?;
                for event in &events {
                    let (key, version) = version_of(event);
                    versions.insert(event.revision(), disk::encode(key, &version).as_slice())?;
                }
                txn.open_table(META)?.insert(META_REVISION, last)?;
            }
            txn.commit()?;
            Ok(())
        })();
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        let error = match result {
            Ok(()) => {
                self.counters.writes.fetch_add(events.len() as u64, Ordering::Relaxed);
                self.publish(events);
                return Ok(());
            }
            Err(e) => e,
        };
        tracing::error!(path = %self.path.display(), error = %error, writes = events.len(), "storage commit failed");
        let count = events.len() as u64;
        self.db = None;
        self.in_doubt = Some(events);
        let unavailable = Error::Unavailable(format!("cannot write {}: {error}", self.path.display()));
        match self.ensure_open() {
            // The reopen found the batch on disk and applied it.
            Ok(()) if self.shared.current_revision() == last => {
                self.counters.writes.fetch_add(count, Ordering::Relaxed);
                Ok(())
            }
            _ => Err(unavailable),
        }
    }

    /// Makes sure the database is open; after a failure, reopens it and settles a batch whose
    /// outcome was unknown.
    fn ensure_open(&mut self) -> Result<()> {
        if self.db.is_some() {
            return Ok(());
        }
        let unavailable = |why: String| Error::Unavailable(format!("cannot open {}: {why}", self.path.display()));
        let db = disk::open_database(&self.path, &self.disk).map_err(|e| unavailable(e.to_string()))?;
        let on_disk = disk::stored_revision(&db).map_err(|e| unavailable(e.to_string()))?;
        let in_memory = self.shared.current_revision();
        match self.in_doubt.take() {
            Some(events) if events.last().map(Event::revision) == Some(on_disk) => {
                tracing::warn!(revision = on_disk, "a commit reported as failed had reached the disk; applying it");
                self.publish(events);
            }
            _ if on_disk == in_memory => {}
            in_doubt => {
                self.in_doubt = in_doubt;
                tracing::error!(on_disk, in_memory, "the data file does not match the served state");
                return Err(unavailable(format!("the file is at revision {on_disk} but the server at {in_memory}; restart the server")));
            }
        }
        self.db = Some(db);
        Ok(())
    }

    /// Applies committed events to the in-memory state and tells watchers.
    fn publish(&self, events: Vec<Event>) {
        let mut state = self.shared.lock();
        for event in events {
            self.shared.publish_locked(&mut state, event);
        }
    }

    /// Runs the compactions asked for, and the automatic one once history outgrows its window.
    /// The disk goes first: memory forgets nothing the disk still needs to match it.
    fn compact(&mut self, asked: Vec<(Revision, oneshot::Sender<Result<()>>)>) {
        let (point, victims) = {
            let state = self.shared.lock();
            let asked_point = asked.iter().map(|(r, _)| (*r).min(state.revision())).max().unwrap_or(0);
            let point = asked_point.max(state.compaction_due(self.history).unwrap_or(0));
            if point <= state.oldest() {
                for (_, reply) in asked {
                    let _ = reply.send(Ok(()));
                }
                return;
            }
            (point, state.compaction_victims(point))
        };
        let result = match self.ensure_open() {
            Err(e) => Err(e),
            Ok(()) => {
                let db = self.db.as_ref().expect("just opened");
                let written = (|| -> std::result::Result<(), redb::Error> {
                    let txn = db.begin_write()?;
                    {
                        let mut versions = txn.open_table(VERSIONS)?;
                        for revision in &victims {
                            versions.remove(*revision)?;
                        }
                        txn.open_table(META)?.insert(META_COMPACTED, point)?;
                    }
                    txn.commit()?;
                    Ok(())
                })();
                written.map_err(|e| {
                    tracing::error!(path = %self.path.display(), error = %e, "storage compaction failed");
                    // Reopened before the next batch. Whether or not this compaction reached
                    // the disk, memory still holds at least what the disk does.
                    self.db = None;
                    Error::Unavailable(format!("cannot compact {}: {e}", self.path.display()))
                })
            }
        };
        if result.is_ok() {
            self.shared.lock().compact(point);
        }
        for (_, reply) in asked {
            let _ = reply.send(result.clone());
        }
    }
}

/// The key and stored version an event writes.
fn version_of(event: &Event) -> (&str, super::super::mvcc::Version) {
    use super::super::mvcc::Version;
    match event {
        Event::Put { current, .. } => (
            &current.key,
            Version { mod_revision: current.mod_revision, create_revision: current.create_revision, value: Some(current.value.clone()) },
        ),
        Event::Delete { prev, revision } => (&prev.key, Version { mod_revision: *revision, create_revision: 0, value: None }),
    }
}
