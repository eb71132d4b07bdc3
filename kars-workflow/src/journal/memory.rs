//! `MemoryStore`: an in-memory [`Store`] with the same semantics as the file store, for tests.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use super::{DEFAULT_MAX_RECORD_LEN, JournalError, Store, Stored, check_sizes};
use crate::InstanceId;

/// A [`Store`] in memory: versions, conflicts and size limits behave as in
/// [`FileStore`](super::FileStore), and nothing survives the process.
#[derive(Debug)]
pub struct MemoryStore {
    instances: Mutex<BTreeMap<InstanceId, Stored>>,
    max_record_len: u32,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store with the default record size limit.
    #[must_use]
    pub fn new() -> Self {
        Self::with_max_record_len(DEFAULT_MAX_RECORD_LEN)
    }

    /// An empty store that refuses records and headers over `max_record_len` bytes.
    #[must_use]
    pub fn with_max_record_len(max_record_len: u32) -> Self {
        Self { instances: Mutex::new(BTreeMap::new()), max_record_len }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<InstanceId, Stored>> {
        // A panic while holding the lock cannot leave a half-applied append: every change is
        // checked first and then applied by infallible pushes.
        self.instances.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Store for MemoryStore {
    fn create(&self, id: &InstanceId, header: &[u8]) -> Result<(), JournalError> {
        let max = self.max_record_len;
        if u32::try_from(header.len()).map_or(true, |len| len > max) {
            return Err(JournalError::TooLarge { id: id.clone(), index: None, len: header.len(), max });
        }
        let mut instances = self.lock();
        if instances.contains_key(id) {
            return Err(JournalError::AlreadyExists { id: id.clone() });
        }
        instances.insert(id.clone(), Stored { header: header.to_vec(), records: Vec::new(), version: 0 });
        Ok(())
    }

    fn append(&self, id: &InstanceId, expected_version: u64, records: &[&[u8]]) -> Result<u64, JournalError> {
        check_sizes(id, records, self.max_record_len)?;
        let mut instances = self.lock();
        let stored = instances.get_mut(id).ok_or_else(|| JournalError::NotFound { id: id.clone() })?;
        if stored.version != expected_version {
            return Err(JournalError::Conflict { id: id.clone(), expected: expected_version, actual: stored.version });
        }
        stored.records.extend(records.iter().map(|r| r.to_vec()));
        stored.version += records.len() as u64;
        Ok(stored.version)
    }

    fn read(&self, id: &InstanceId) -> Result<Stored, JournalError> {
        self.lock().get(id).cloned().ok_or_else(|| JournalError::NotFound { id: id.clone() })
    }

    fn version(&self, id: &InstanceId) -> Result<u64, JournalError> {
        self.lock().get(id).map(|s| s.version).ok_or_else(|| JournalError::NotFound { id: id.clone() })
    }

    fn list(&self) -> Result<Vec<InstanceId>, JournalError> {
        Ok(self.lock().keys().cloned().collect())
    }
}
