//! etcd backend (`--storage etcd`): the storage contract on an etcd v3 cluster, so that several
//! servers can share one store. See `docs/storage.md`.
//!
//! - Keys are stored under a prefix (`--etcd-prefix`, default `/registry`, as kube-apiserver):
//!   `/hello.zeng.dev/foos/default/a` is the etcd key `/registry/hello.zeng.dev/foos/default/a`.
//! - Revisions are etcd's: a key's `mod_revision` is the object's `resourceVersion`.
//! - Writes are etcd transactions that compare before they write: `create_revision == 0` for a
//!   create, `mod_revision == expected` for an update or a conditional delete.
//! - Lists are ranges at one revision with a limit; watches are etcd watch streams that resume
//!   by themselves when the connection drops.
//! - A failed or timed-out call is [`Error::Unavailable`] (HTTP 503); the connection is dialled
//!   again on the next call, so the server recovers when etcd comes back.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use server::storage::etcd::{EtcdOptions, EtcdStorage};
//! use server::storage::Storage;
//! let storage = EtcdStorage::new(EtcdOptions::new(vec!["http://127.0.0.1:2379".into()]))?;
//! let created = storage.create("/hello.zeng.dev/foos/default/a", "{}".into()).await?;
//! assert_eq!(created.mod_revision, created.create_revision);
//! # Ok(()) }
//! ```

mod client;
mod compactor;
mod proto;
mod watch;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

use super::{Error, KeyValue, ListOptions, ListResult, Result, Revision, Storage, WatchStream};
use async_trait::async_trait;
use bytes::Bytes;
use proto::{Compare, CompareResult, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest};
use std::time::Duration;

/// kube-apiserver's default `--etcd-prefix`.
pub const DEFAULT_PREFIX: &str = "/registry";
/// kube-apiserver's default `--etcd-compaction-interval`.
pub const DEFAULT_COMPACTION_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Settings of the etcd backend.
#[derive(Debug, Clone)]
pub struct EtcdOptions {
    /// Client URLs of the cluster's members, e.g. `http://127.0.0.1:2379`.
    pub servers: Vec<String>,
    /// Prepended to every key (`--etcd-prefix`). A trailing `/` is ignored.
    pub prefix: String,
    /// How long one etcd call may take before the request fails with 503.
    pub request_timeout: Duration,
    /// How long connecting to a member may take.
    pub dial_timeout: Duration,
    /// How often history older than the previous run is compacted, as kube-apiserver's
    /// `--etcd-compaction-interval`; zero turns it off (for an external compactor).
    pub compaction_interval: Duration,
}

impl EtcdOptions {
    /// kube-apiserver's defaults for the given servers.
    pub fn new(servers: Vec<String>) -> Self {
        EtcdOptions {
            servers,
            prefix: DEFAULT_PREFIX.to_string(),
            request_timeout: Duration::from_secs(10),
            dial_timeout: Duration::from_secs(2),
            compaction_interval: DEFAULT_COMPACTION_INTERVAL,
        }
    }
}

/// Invalid settings (the servers are not contacted when the store is built).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The etcd-backed store.
pub struct EtcdStorage {
    client: client::Client,
    keys: Keys,
    compactor: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for EtcdStorage {
    fn drop(&mut self) {
        if let Some(compactor) = self.compactor.take() {
            compactor.abort();
        }
    }
}

/// Maps the store's keys to etcd keys under the prefix, and back.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: Vec<u8>,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Keys { prefix: prefix.trim_end_matches('/').as_bytes().to_vec() }
    }

    /// The etcd key of `key`.
    fn etcd(&self, key: &str) -> Vec<u8> {
        let mut full = Vec::with_capacity(self.prefix.len() + key.len());
        full.extend_from_slice(&self.prefix);
        full.extend_from_slice(key.as_bytes());
        full
    }

    /// The store's key of an etcd key under the prefix.
    fn local(&self, key: &[u8]) -> String {
        let key = key.strip_prefix(self.prefix.as_slice()).unwrap_or(key);
        String::from_utf8_lossy(key).into_owned()
    }

    fn key_value(&self, kv: proto::KeyValue) -> KeyValue {
        KeyValue {
            key: self.local(&kv.key),
            value: kv.value,
            create_revision: revision_of(kv.create_revision),
            mod_revision: revision_of(kv.mod_revision),
        }
    }
}

/// The end of etcd's range of keys starting with `prefix` (its `GetPrefixRangeEnd`): the
/// prefix with its last byte below 0xff incremented and the rest dropped; `\0` (every key from
/// `prefix` on) if there is none.
pub(super) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn revision_of(etcd: i64) -> Revision {
    etcd.max(0) as Revision
}

fn etcd_revision(revision: Revision) -> i64 {
    i64::try_from(revision).unwrap_or(i64::MAX)
}

/// What a failed etcd call means for the contract.
enum Failure {
    /// A read or watch at a revision before the compaction point.
    Compacted,
    /// A read at a revision after the latest one.
    FutureRevision,
    /// Anything else: unreachable, timed out, no leader, out of space, …
    Unavailable(String),
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        // etcd's rpctypes.ErrGRPCCompacted and ErrGRPCFutureRev, both codes.OutOfRange.
        let message = status.message();
        if message.contains("required revision has been compacted") {
            Failure::Compacted
        } else if message.contains("required revision is a future revision") {
            Failure::FutureRevision
        } else {
            Failure::Unavailable(client::describe_status(&status))
        }
    }
}

fn unavailable(status: tonic::Status) -> Error {
    Error::Unavailable(format!("etcd: {}", client::describe_status(&status)))
}

impl EtcdStorage {
    /// A store on the given cluster. Checks the settings but does not contact etcd: calls fail
    /// with [`Error::Unavailable`] until it can be reached. Starts the periodic compactor, so it
    /// must be called within a Tokio runtime.
    pub fn new(options: EtcdOptions) -> std::result::Result<Self, ConfigError> {
        if !options.prefix.is_empty() && !options.prefix.starts_with('/') {
            return Err(ConfigError(format!("--etcd-prefix {:?} must start with '/'", options.prefix)));
        }
        let settings = client::Settings { request_timeout: options.request_timeout, dial_timeout: options.dial_timeout };
        let client = client::Client::new(&options.servers, &settings).map_err(ConfigError)?;
        let compactor =
            (!options.compaction_interval.is_zero()).then(|| tokio::spawn(compactor::run(client.clone(), options.compaction_interval)));
        Ok(EtcdStorage { client, keys: Keys::new(&options.prefix), compactor })
    }

    /// The version of the etcd member that answers, to check the connection at start-up.
    pub async fn server_version(&self) -> Result<String> {
        self.client.status().await.map(|s| s.version).map_err(unavailable)
    }

    /// The compaction point, for the error of a read that asked for an older revision. etcd
    /// only tells it to a watch that starts too early, so one is opened on a key that is never
    /// written; `fallback` if it does not answer in time.
    async fn compaction_point(&self, fallback: Revision) -> Revision {
        let probe = watch::compaction_point(&self.client, self.keys.etcd("\0compaction-probe"));
        match tokio::time::timeout(Duration::from_secs(2), probe).await {
            Ok(Some(point)) => point,
            _ => fallback,
        }
    }

    /// Turns a failed read at `revision` into the contract's error.
    async fn read_error(&self, status: tonic::Status, revision: Revision) -> Error {
        match Failure::from(status) {
            Failure::Compacted => Error::Compacted { oldest: self.compaction_point(revision + 1).await },
            Failure::FutureRevision => match self.current_revision().await {
                Ok(current) => Error::FutureRevision { current },
                Err(e) => e,
            },
            Failure::Unavailable(why) => Error::Unavailable(format!("etcd: {why}")),
        }
    }

    /// Runs a transaction that writes `key` if `compare` holds, and otherwise reads it.
    async fn write_txn(&self, key: &[u8], compare: Vec<Compare>, write: RequestOp) -> Result<proto::TxnResponse> {
        let request = TxnRequest {
            compare,
            success: vec![write],
            failure: vec![RequestOp::range(RangeRequest { key: key.to_vec(), ..Default::default() })],
        };
        self.client.txn(request).await.map_err(unavailable)
    }

    /// Why a transaction's comparison failed, from the read of its failure branch.
    fn compare_failed(response: &proto::TxnResponse) -> Error {
        match response.range().and_then(|r| r.kvs.first()) {
            None => Error::NotFound,
            Some(kv) => Error::Conflict { current: revision_of(kv.mod_revision) },
        }
    }
}

#[async_trait]
impl Storage for EtcdStorage {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let response = self.client.range(RangeRequest { key: self.keys.etcd(key), ..Default::default() }).await.map_err(unavailable)?;
        Ok(response.kvs.into_iter().next().map(|kv| self.keys.key_value(kv)))
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        let start = match &options.start_after {
            // Just after `after`: the smallest key greater than it.
            Some(after) if after.as_str() >= prefix => {
                let mut start = self.keys.etcd(after);
                start.push(0);
                start
            }
            _ => self.keys.etcd(prefix),
        };
        let end = prefix_end(&self.keys.etcd(prefix));
        let requested = options.revision.filter(|r| *r > 0);
        if end != [0] && start >= end {
            // Past the end of the prefix: nothing, at the snapshot asked for.
            let revision = match requested {
                Some(r) => r,
                None => self.current_revision().await?,
            };
            return Ok(ListResult { items: Vec::new(), revision, remaining: 0 });
        }
        let limit = options.limit.filter(|l| *l > 0).map_or(0, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let request =
            RangeRequest { key: start, range_end: end, limit, revision: requested.map_or(0, etcd_revision), ..Default::default() };
        let response = match self.client.range(request).await {
            Ok(response) => response,
            Err(status) => return Err(self.read_error(status, requested.unwrap_or(0)).await),
        };
        let revision = requested.unwrap_or_else(|| revision_of(response.header.as_ref().map_or(0, |h| h.revision)));
        // `count` is every key in the range, whatever the limit.
        let remaining = usize::try_from(response.count).unwrap_or(0).saturating_sub(response.kvs.len());
        let items = response.kvs.into_iter().map(|kv| self.keys.key_value(kv)).collect();
        Ok(ListResult { items, revision, remaining })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        let etcd_key = self.keys.etcd(key);
        let compare = vec![Compare::create_revision(&etcd_key, CompareResult::Equal, 0)];
        let put = RequestOp::put(PutRequest { key: etcd_key.clone(), value: value.clone(), prev_kv: false });
        let response = self.write_txn(&etcd_key, compare, put).await?;
        if !response.succeeded {
            return Err(Error::AlreadyExists);
        }
        let revision = revision_of(response.revision());
        Ok(KeyValue { key: key.to_string(), value, create_revision: revision, mod_revision: revision })
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        let etcd_key = self.keys.etcd(key);
        // The key must exist: a missing key's mod_revision compares as 0.
        let compare = vec![
            Compare::create_revision(&etcd_key, CompareResult::Greater, 0),
            Compare::mod_revision(&etcd_key, CompareResult::Equal, etcd_revision(expected)),
        ];
        let put = RequestOp::put(PutRequest { key: etcd_key.clone(), value: value.clone(), prev_kv: true });
        let response = self.write_txn(&etcd_key, compare, put).await?;
        if !response.succeeded {
            return Err(Self::compare_failed(&response));
        }
        let revision = revision_of(response.revision());
        let create_revision = response.put().and_then(|p| p.prev_kv.as_ref()).map_or(revision, |prev| revision_of(prev.create_revision));
        Ok(KeyValue { key: key.to_string(), value, create_revision, mod_revision: revision })
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)> {
        let etcd_key = self.keys.etcd(key);
        let mut compare = vec![Compare::create_revision(&etcd_key, CompareResult::Greater, 0)];
        if let Some(expected) = expected {
            compare.push(Compare::mod_revision(&etcd_key, CompareResult::Equal, etcd_revision(expected)));
        }
        let delete = RequestOp::delete_range(DeleteRangeRequest { key: etcd_key.clone(), range_end: Vec::new(), prev_kv: true });
        let response = self.write_txn(&etcd_key, compare, delete).await?;
        if !response.succeeded {
            return Err(Self::compare_failed(&response));
        }
        let prev = response
            .delete_range()
            .and_then(|d| d.prev_kvs.first().cloned())
            .ok_or_else(|| Error::Unavailable("etcd: a deletion answered without the deleted value".to_string()))?;
        Ok((self.keys.key_value(prev), revision_of(response.revision())))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let current = self.current_revision().await?;
        if after > current {
            return Err(Error::FutureRevision { current });
        }
        if after < current {
            // A watch from `after + 1` misses events exactly when a read at `after + 1` is
            // compacted; asking first keeps the error out of the stream in the common case.
            let probe =
                RangeRequest { key: self.keys.etcd(prefix), count_only: true, revision: etcd_revision(after + 1), ..Default::default() };
            if let Err(status) = self.client.range(probe).await {
                return Err(self.read_error(status, after + 1).await);
            }
        }
        let key = self.keys.etcd(prefix);
        let range_end = prefix_end(&key);
        Ok(watch::start(self.client.clone(), self.keys.clone(), key, range_end, after))
    }

    async fn current_revision(&self) -> Result<Revision> {
        // Counting one key is the cheapest linearizable read that returns the store's revision.
        let request = RangeRequest { key: self.keys.etcd("/"), count_only: true, ..Default::default() };
        let response = self.client.range(request).await.map_err(unavailable)?;
        Ok(revision_of(response.header.map_or(0, |h| h.revision)))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        if revision == 0 {
            return Ok(());
        }
        let mut target = etcd_revision(revision);
        loop {
            match self.client.compact(proto::CompactionRequest { revision: target, physical: false }).await {
                Ok(_) => return Ok(()),
                Err(status) => match Failure::from(status) {
                    // Already compacted at or past it: nothing left to do.
                    Failure::Compacted => return Ok(()),
                    // As the local backends do, compact no further than the latest revision.
                    Failure::FutureRevision => {
                        let current = etcd_revision(self.current_revision().await?);
                        if current >= target {
                            return Err(Error::Unavailable("etcd: compaction failed at a revision it reported as current".to_string()));
                        }
                        target = current;
                    }
                    Failure::Unavailable(why) => return Err(Error::Unavailable(format!("etcd: {why}"))),
                },
            }
        }
    }
}
