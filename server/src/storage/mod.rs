//! The storage layer: a small revisioned key-value store in the style of etcd.
//!
//! Every write gets the next value of one global revision, which the API exposes as
//! `resourceVersion`. Backends keep older revisions for a while so that lists can be paginated
//! over one snapshot and watchers can resume; past the compaction point a read or watch gets
//! [`Error::Compacted`] (HTTP 410 Expired).
//!
//! The same conformance tests (`conformance`) run against every backend.
//!
//! Backends: [`memory`] (nothing survives a restart) and [`embedded`] (durable, the default),
//! both built on the multi-version core in `mvcc.rs`.
//! [`etcd`] keeps everything in an etcd cluster, so that several servers can share it.

pub mod embedded;
pub mod etcd;
pub mod memory;
pub(crate) mod mvcc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

/// A position in the store's history. 0 means "before any write".
pub type Revision = u64;

/// One stored key with its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// Full key, e.g. `/hello.zeng.dev/foos/default/my-foo`.
    pub key: String,
    /// The stored bytes (JSON of the object).
    pub value: Bytes,
    /// Revision of the write that created this key (since its last deletion).
    pub create_revision: Revision,
    /// Revision of the latest write to this key.
    pub mod_revision: Revision,
}

/// What happened to a key, as seen by a watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The key was created (`prev` is `None`) or updated.
    Put {
        /// The new value; its `mod_revision` is the event's revision.
        current: KeyValue,
        /// The value before, for updates.
        prev: Option<KeyValue>,
    },
    /// The key was deleted at `revision`.
    Delete {
        /// The last value before deletion.
        prev: KeyValue,
        /// Revision of the deletion.
        revision: Revision,
    },
}

impl Event {
    /// The revision at which the event happened.
    pub fn revision(&self) -> Revision {
        match self {
            Event::Put { current, .. } => current.mod_revision,
            Event::Delete { revision, .. } => *revision,
        }
    }

    /// The key the event is about.
    pub fn key(&self) -> &str {
        match self {
            Event::Put { current, .. } => &current.key,
            Event::Delete { prev, .. } => &prev.key,
        }
    }
}

/// Storage failures. The registry turns them into Kubernetes Status errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No such key.
    NotFound,
    /// `create` on an existing key.
    AlreadyExists,
    /// A compare-and-swap saw a different revision.
    Conflict {
        /// The key's current modification revision.
        current: Revision,
    },
    /// The requested revision is older than the oldest one kept.
    Compacted {
        /// The oldest revision still available.
        oldest: Revision,
    },
    /// The requested revision is newer than the store's current revision.
    FutureRevision {
        /// The store's current revision.
        current: Revision,
    },
    /// The backend cannot serve requests right now (disk full, etcd unreachable, …).
    Unavailable(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NotFound => write!(f, "key not found"),
            Error::AlreadyExists => write!(f, "key already exists"),
            Error::Conflict { current } => write!(f, "revision mismatch (current {current})"),
            Error::Compacted { oldest } => write!(f, "revision compacted (oldest available {oldest})"),
            Error::FutureRevision { current } => write!(f, "revision is in the future (current {current})"),
            Error::Unavailable(why) => write!(f, "storage unavailable: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result of storage operations.
pub type Result<T> = std::result::Result<T, Error>;

/// A range read.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Only keys after this one (exclusive), for pagination.
    pub start_after: Option<String>,
    /// At most this many items (`None` or 0: all).
    pub limit: Option<usize>,
    /// Read the snapshot at this revision (`None`: the latest).
    pub revision: Option<Revision>,
}

/// The result of a range read.
#[derive(Debug, Clone, Default)]
pub struct ListResult {
    /// Items in key order.
    pub items: Vec<KeyValue>,
    /// The snapshot revision the items were read at.
    pub revision: Revision,
    /// How many more keys match after the last returned item.
    pub remaining: usize,
}

/// A stream of events, oldest first. It ends with `Err(Compacted)` when the watcher fell too far
/// behind to be served without a gap.
pub type WatchStream = BoxStream<'static, Result<Event>>;

/// The storage contract every backend implements.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// The latest value of a key.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Keys starting with `prefix`, in key order, at one snapshot.
    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult>;

    /// Stores a new key; [`Error::AlreadyExists`] if it exists.
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue>;

    /// Replaces a key's value if its `mod_revision` is `expected`.
    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue>;

    /// Deletes a key, if `expected` is given only when its `mod_revision` matches. Returns the
    /// deleted value and the revision of the deletion.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)>;

    /// Events for keys starting with `prefix` with a revision greater than `after`.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// The revision of the latest write.
    async fn current_revision(&self) -> Result<Revision>;

    /// Forgets history older than `revision`.
    async fn compact(&self, revision: Revision) -> Result<()>;
}

#[cfg(test)]
pub(crate) mod conformance;
