//! Embedded durable backend (the default): the in-memory multi-version core for reads, lists
//! and watches, and a redb file as the durable log of writes. See `docs/storage.md`.
//!
//! - Reads never touch the disk: they are served from the `mvcc` core, loaded from the
//!   file at start-up.
//! - Writes go to one writer thread (`writer.rs`) that batches whatever is queued into one
//!   durable (fsync'd) redb transaction, and acknowledges each write only after that commit.
//! - A failed commit answers [`Error::Unavailable`] and leaves memory and disk as they were;
//!   the next batch reopens the file and goes on once the fault is gone.
//! - Damaged data fails [`EmbeddedStorage::open`] with an [`OpenError`] naming the file and,
//!   where one is involved, the record's revision and key.

mod disk;
mod writer;

use super::mvcc::{deleted, put_value, Shared, State, Write};
use super::{Error, Event, KeyValue, ListOptions, ListResult, Result, Revision, Storage, WatchStream};
use async_trait::async_trait;
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The database file's name inside the data directory.
pub const FILE_NAME: &str = "store.redb";
/// Requests queued for the writer before senders wait.
const QUEUE: usize = 4096;

/// Settings of the embedded backend.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// About how many past revisions are kept for snapshot lists and watch resumption.
    pub history: usize,
    /// Verify every page checksum of the file when opening it (not only after a crash).
    pub verify_on_open: bool,
    /// Page cache of the database, in bytes. Reads are served from memory, so the cache only
    /// serves the writer and the start-up scan.
    pub cache_bytes: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions { history: super::memory::DEFAULT_HISTORY, verify_on_open: true, cache_bytes: 32 << 20 }
    }
}

/// Why the store could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenError {
    /// The database file (or directory) concerned.
    pub path: PathBuf,
    /// The revision of the damaged record, if one is to blame.
    pub revision: Option<Revision>,
    /// The key of the damaged record, if it could be read.
    pub key: Option<String>,
    /// What is wrong.
    pub detail: String,
    /// True when the data is damaged (as opposed to unreachable or locked).
    pub corrupt: bool,
}

impl OpenError {
    fn corrupt(path: &Path, revision: Option<Revision>, key: Option<String>, detail: String) -> Self {
        OpenError { path: path.to_path_buf(), revision, key, detail, corrupt: true }
    }

    fn other(path: &Path, detail: String) -> Self {
        OpenError { path: path.to_path_buf(), revision: None, key: None, detail, corrupt: false }
    }
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.corrupt { "damaged data in" } else { "cannot open" };
        write!(f, "{what} {}", self.path.display())?;
        match (&self.revision, &self.key) {
            (Some(r), Some(k)) => write!(f, " (record of revision {r}, key {k:?})")?,
            (Some(r), None) => write!(f, " (record of revision {r})")?,
            (None, Some(k)) => write!(f, " (key {k:?})")?,
            (None, None) => {}
        }
        write!(f, ": {}", self.detail)?;
        if self.corrupt {
            write!(
                f,
                "; refusing to start rather than serve partial data (restore the file from a backup, or move it away to start empty)"
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for OpenError {}

/// Write statistics, for tests and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Transactions attempted for writes.
    pub commits: u64,
    /// Writes made durable.
    pub writes: u64,
}

/// The embedded durable store.
pub struct EmbeddedStorage {
    shared: Arc<Shared>,
    /// `None` only while dropping.
    sender: Option<mpsc::Sender<writer::Request>>,
    thread: Option<std::thread::JoinHandle<()>>,
    counters: Arc<writer::Counters>,
    path: PathBuf,
}

impl EmbeddedStorage {
    /// Opens (or creates) the store in `dir`, loading everything it holds. Fails, naming the
    /// file and record, if any of it cannot be read back exactly.
    pub fn open(dir: &Path, options: EmbeddedOptions) -> std::result::Result<Self, OpenError> {
        Self::open_with_faults(dir, options, None)
    }

    pub(crate) fn open_with_faults(
        dir: &Path,
        options: EmbeddedOptions,
        faults: Option<Arc<disk::Faults>>,
    ) -> std::result::Result<Self, OpenError> {
        std::fs::create_dir_all(dir).map_err(|e| OpenError::other(dir, format!("cannot create the data directory: {e}")))?;
        let path = dir.join(FILE_NAME);
        let created = !path.exists();
        let disk = disk::DiskOptions { verify_on_open: options.verify_on_open, cache_bytes: options.cache_bytes, faults };
        // redb may panic on some kinds of damage instead of returning an error: either way the
        // server must stop with a message that names the file.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let db = disk::open_database(&path, &disk).map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => OpenError::other(
                    &path,
                    "the file is in use by another process (another server with the same data directory?)".to_string(),
                ),
                redb::DatabaseError::Storage(redb::StorageError::Io(io)) if io.kind() == std::io::ErrorKind::InvalidData => {
                    OpenError::corrupt(&path, None, None, io.to_string())
                }
                redb::DatabaseError::Storage(redb::StorageError::Io(io)) => OpenError::other(&path, io.to_string()),
                other => OpenError::corrupt(&path, None, None, other.to_string()),
            })?;
            let state = disk::load(&db, &path)?;
            Ok::<_, OpenError>((db, state))
        }));
        let (db, state) = match opened {
            Ok(result) => result?,
            Err(panic) => {
                let why = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
                return Err(OpenError::corrupt(
                    &path,
                    None,
                    None,
                    format!("the database failed while reading it: {}", why.unwrap_or_default()),
                ));
            }
        };
        if created {
            // The new file's directory entry must be durable too, or a power loss can take the
            // whole file with it.
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| OpenError::other(dir, format!("cannot sync the data directory: {e}")))?;
        }
        tracing::info!(path = %path.display(), revision = state.revision(), compacted = state.oldest(), "storage loaded");
        Ok(Self::start(db, state, path, options, disk))
    }

    fn start(db: redb::Database, state: State, path: PathBuf, options: EmbeddedOptions, disk: disk::DiskOptions) -> Self {
        let shared = Arc::new(Shared::new(state));
        let counters = Arc::new(writer::Counters::default());
        let (sender, receiver) = mpsc::channel(QUEUE);
        let writer = writer::Writer {
            db: Some(db),
            path: path.clone(),
            disk,
            shared: shared.clone(),
            history: options.history.max(1),
            counters: counters.clone(),
            receiver,
            in_doubt: None,
        };
        let thread =
            std::thread::Builder::new().name("storage-writer".into()).spawn(move || writer.run()).expect("spawn the storage writer");
        EmbeddedStorage { shared, sender: Some(sender), thread: Some(thread), counters, path }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many commits made how many writes durable so far.
    pub fn stats(&self) -> Stats {
        Stats { commits: self.counters.commits.load(Ordering::Relaxed), writes: self.counters.writes.load(Ordering::Relaxed) }
    }

    async fn request<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> writer::Request) -> Result<T> {
        let stopped = || Error::Unavailable("the storage writer has stopped".to_string());
        let (reply, answer) = oneshot::channel();
        let sender = self.sender.as_ref().ok_or_else(stopped)?;
        sender.send(make(reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    async fn write(&self, write: Write) -> Result<Event> {
        self.request(|reply| writer::Request::Write { write, reply }).await
    }
}

impl Drop for EmbeddedStorage {
    /// Lets the writer finish what is queued and close the file, so that the same directory can
    /// be opened again as soon as this returns.
    fn drop(&mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[async_trait]
impl Storage for EmbeddedStorage {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(self.shared.get(key))
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        self.shared.list(prefix, &options)
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        self.write(Write::Create { key: key.to_string(), value }).await.map(put_value)
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        self.write(Write::Update { key: key.to_string(), value, expected }).await.map(put_value)
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)> {
        self.write(Write::Delete { key: key.to_string(), expected }).await.map(deleted)
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        self.shared.watch(prefix, after)
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.shared.current_revision())
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.request(|reply| writer::Request::Compact { revision, reply }).await
    }
}

#[cfg(test)]
mod tests;
