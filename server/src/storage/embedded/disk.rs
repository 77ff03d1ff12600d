//! The on-disk form of the embedded backend: one redb file, `store.redb`, with two tables.
//!
//! - `versions`: revision (u64) → one version record. Every write is one record under its own
//!   revision, so the table is the log of writes; compaction removes the records the in-memory
//!   state forgets, and nothing else ever removes or rewrites one.
//! - `meta`: `format` (the record format, 1), `revision` (the latest write) and `compacted` (the
//!   compaction point).
//!
//! A record is `[format=1][kind: 0 put, 1 delete][create_revision u64 LE][key length u32 LE]
//! [key][value][crc32c u32 LE]`, the checksum covering the revision it is stored under followed
//! by everything before the checksum, so a record that is damaged or stored under the wrong
//! revision is caught at start-up and reported with its key.

use super::super::mvcc::{State, Version};
use super::super::Revision;
use super::OpenError;
use bytes::Bytes;
use redb::backends::FileBackend;
use redb::{BackendError, Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, StorageBackend, TableDefinition};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

pub(super) const VERSIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("versions");
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(super) const META_FORMAT: &str = "format";
pub(super) const META_REVISION: &str = "revision";
pub(super) const META_COMPACTED: &str = "compacted";
/// The record format this code reads and writes.
const FORMAT: u64 = 1;
const RECORD_V1: u8 = 1;
const KIND_PUT: u8 = 0;
const KIND_DELETE: u8 = 1;
/// format, kind, create revision, key length; and the checksum at the end.
const HEADER: usize = 1 + 1 + 8 + 4;
const TRAILER: usize = 4;

/// How the database file is opened.
#[derive(Clone)]
pub(super) struct DiskOptions {
    pub verify_on_open: bool,
    pub cache_bytes: usize,
    /// Injected failures (tests).
    pub faults: Option<Arc<Faults>>,
}

/// Encodes one version of `key` stored under its revision.
pub(super) fn encode(key: &str, version: &Version) -> Vec<u8> {
    let value: &[u8] = version.value.as_deref().unwrap_or_default();
    let mut out = Vec::with_capacity(HEADER + key.len() + value.len() + TRAILER);
    out.push(RECORD_V1);
    out.push(if version.value.is_some() { KIND_PUT } else { KIND_DELETE });
    out.extend_from_slice(&version.create_revision.to_le_bytes());
    out.extend_from_slice(&u32::try_from(key.len()).expect("keys are short").to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(value);
    let crc = crc32c(&[&version.mod_revision.to_le_bytes(), &out]);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Why a record cannot be read: what is wrong, and the key if it could still be read.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct BadRecord {
    pub key: Option<String>,
    pub detail: String,
}

/// Decodes the record stored under `revision`.
pub(super) fn decode(revision: Revision, record: &[u8]) -> Result<(String, Version), BadRecord> {
    let bad = |key: Option<&str>, detail: String| BadRecord { key: key.map(str::to_string), detail };
    if record.len() < HEADER + TRAILER {
        return Err(bad(None, format!("record is {} bytes, shorter than any valid record", record.len())));
    }
    let (body, crc) = record.split_at(record.len() - TRAILER);
    let key_len = u32::from_le_bytes(body[10..14].try_into().expect("4 bytes")) as usize;
    // The key, if its bytes are there, makes the report useful even when the checksum fails.
    let key = body.get(HEADER..HEADER + key_len).and_then(|k| std::str::from_utf8(k).ok());
    let expected = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
    let actual = crc32c(&[&revision.to_le_bytes(), body]);
    if expected != actual {
        return Err(bad(key, format!("checksum mismatch (stored {expected:#010x}, computed {actual:#010x})")));
    }
    if body[0] != RECORD_V1 {
        return Err(bad(key, format!("unknown record format {}", body[0])));
    }
    let Some(key) = key else {
        return Err(bad(None, "key is not valid UTF-8 or overruns the record".to_string()));
    };
    let create_revision = u64::from_le_bytes(body[2..10].try_into().expect("8 bytes"));
    let value = &body[HEADER + key_len..];
    let version = match body[1] {
        KIND_PUT => Version { mod_revision: revision, create_revision, value: Some(Bytes::copy_from_slice(value)) },
        KIND_DELETE if value.is_empty() => Version { mod_revision: revision, create_revision: 0, value: None },
        KIND_DELETE => return Err(bad(Some(key), "deletion record carries a value".to_string())),
        kind => return Err(bad(Some(key), format!("unknown record kind {kind}"))),
    };
    Ok((key.to_string(), version))
}

/// Opens (creating if needed) the database file.
pub(super) fn open_database(path: &Path, options: &DiskOptions) -> Result<Database, redb::DatabaseError> {
    let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
    let backend = Disk { file: FileBackend::new(file)?, faults: options.faults.clone() };
    redb::Builder::new()
        .set_cache_size(options.cache_bytes)
        .set_check_integrity_on_open(options.verify_on_open)
        .create_with_backend(backend)
}

/// Reads the stored revision and compaction point; a new, empty database is initialized.
pub(super) fn read_meta(db: &Database) -> Result<(Revision, Revision), String> {
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        Err(redb::TableError::TableDoesNotExist(_)) => {
            drop(txn);
            initialize(db).map_err(|e| format!("cannot initialize a new database: {e}"))?;
            return Ok((0, 0));
        }
        Err(e) => return Err(e.to_string()),
    };
    let get = |name: &str| -> Result<u64, String> {
        match meta.get(name) {
            Ok(Some(v)) => Ok(v.value()),
            Ok(None) => Err(format!("the meta table has no {name:?} entry")),
            Err(e) => Err(e.to_string()),
        }
    };
    let format = get(META_FORMAT)?;
    if format != FORMAT {
        return Err(format!("stored in format {format}, which this server does not read (it reads format {FORMAT})"));
    }
    Ok((get(META_REVISION)?, get(META_COMPACTED)?))
}

fn initialize(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        let versions = txn.open_table(VERSIONS)?;
        if !versions.is_empty()? {
            return Err(redb::Error::Corrupted("versions are stored but the meta table is missing".to_string()));
        }
        let mut meta = txn.open_table(META)?;
        meta.insert(META_FORMAT, FORMAT)?;
        meta.insert(META_REVISION, 0)?;
        meta.insert(META_COMPACTED, 0)?;
    }
    txn.commit()?;
    Ok(())
}

/// Loads every stored version and rebuilds the multi-version state from them.
pub(super) fn load(db: &Database, path: &Path) -> Result<State, OpenError> {
    let fail = |revision: Option<Revision>, key: Option<String>, detail: String| OpenError::corrupt(path, revision, key, detail);
    let (revision, compacted) = read_meta(db).map_err(|e| fail(None, None, e))?;
    let txn = db.begin_read().map_err(|e| fail(None, None, e.to_string()))?;
    let table = txn.open_table(VERSIONS).map_err(|e| fail(None, None, e.to_string()))?;
    let mut keys: BTreeMap<String, Vec<Version>> = BTreeMap::new();
    let mut last = 0;
    for entry in table.iter().map_err(|e| fail(None, None, e.to_string()))? {
        let (rev, record) = entry.map_err(|e| fail(None, None, format!("cannot read the record after revision {last}: {e}")))?;
        let rev = rev.value();
        let (key, version) = decode(rev, record.value()).map_err(|bad| fail(Some(rev), bad.key, bad.detail))?;
        last = rev;
        keys.entry(key).or_default().push(version);
    }
    State::restore(revision, compacted, keys).map_err(|e| fail(Some(e.revision), e.key, e.detail))
}

/// The revision stored in the meta table.
pub(super) fn stored_revision(db: &Database) -> Result<Revision, redb::Error> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META)?;
    let revision = meta.get(META_REVISION)?.map(|v| v.value());
    revision.ok_or_else(|| redb::Error::Corrupted("the meta table has no revision".to_string()))
}

/// Failures a test can switch on while the store runs.
#[derive(Debug, Default)]
pub(crate) struct Faults(AtomicU8);

#[cfg_attr(not(test), allow(dead_code))]
impl Faults {
    const NONE: u8 = 0;
    const FULL: u8 = 1;
    const SYNC: u8 = 2;

    /// Every write, resize and sync fails with ENOSPC, as on a full disk.
    pub fn disk_full(&self) {
        self.0.store(Self::FULL, Ordering::SeqCst);
    }

    /// Writes reach the file but every sync fails with EIO: the outcome of a commit is unknown.
    pub fn sync_fails(&self) {
        self.0.store(Self::SYNC, Ordering::SeqCst);
    }

    pub fn clear(&self) {
        self.0.store(Self::NONE, Ordering::SeqCst);
    }
}

/// The file backend, able to fail on demand.
#[derive(Debug)]
struct Disk {
    file: FileBackend,
    faults: Option<Arc<Faults>>,
}

impl Disk {
    fn check(&self, sync: bool) -> std::io::Result<()> {
        match self.faults.as_ref().map(|f| f.0.load(Ordering::SeqCst)) {
            Some(Faults::FULL) => Err(std::io::Error::from_raw_os_error(28)), // ENOSPC
            Some(Faults::SYNC) if sync => Err(std::io::Error::from_raw_os_error(5)), // EIO
            _ => Ok(()),
        }
    }
}

impl StorageBackend for Disk {
    fn len(&self) -> std::io::Result<u64> {
        self.file.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.file.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.check(false)?;
        self.file.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.check(true)?;
        self.file.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.check(false)?;
        self.file.write(offset, data)
    }
    fn close(&self) -> std::io::Result<()> {
        self.file.close()
    }
    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }
    fn try_lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }
    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }
    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }
    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }
    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}

/// CRC-32C (Castagnoli), over the concatenation of `parts`.
pub(super) fn crc32c(parts: &[&[u8]]) -> u32 {
    static TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut bit = 0;
            while bit < 8 {
                c = if c & 1 != 0 { 0x82F6_3B78 ^ (c >> 1) } else { c >> 1 };
                bit += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for part in parts {
        for &byte in *part {
            crc = TABLE[((crc ^ byte as u32) & 0xff) as usize] ^ (crc >> 8);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(&[b"123456789"]), 0xE306_9283);
        assert_eq!(crc32c(&[b"1234", b"56789"]), 0xE306_9283);
    }

    #[test]
    fn records_round_trip_and_damage_is_reported_with_the_key() {
        let put = Version { mod_revision: 7, create_revision: 3, value: Some(Bytes::from_static(b"{\"a\":1}")) };
        let record = encode("/g/foos/ns/x", &put);
        assert_eq!(decode(7, &record), Ok(("/g/foos/ns/x".to_string(), put)));
        let tombstone = Version { mod_revision: 9, create_revision: 0, value: None };
        assert_eq!(decode(9, &encode("/k", &tombstone)), Ok(("/k".to_string(), tombstone)));
        // Stored under another revision: the checksum covers the revision.
        assert!(decode(8, &record).unwrap_err().detail.contains("checksum"));
        let mut flipped = record.clone();
        let at = flipped.len() - 6;
        flipped[at] ^= 0x40;
        let err = decode(7, &flipped).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("/g/foos/ns/x"));
        assert!(err.detail.contains("checksum"), "{err:?}");
        assert!(decode(7, &record[..10]).is_err());
    }
}
