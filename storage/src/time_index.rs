//! Sparse time index: `max timestamp so far i64 -> relative offset u32`, big-endian, 12 bytes
//! an entry. Timestamps strictly grow; the offset is the start of the batch holding that
//! timestamp. The last entry of a sealed segment is the segment's largest timestamp.

use std::path::Path;

use crate::error::StorageError;
use crate::index_file::IndexFile;

/// Size of one time index entry.
pub const TIME_ENTRY_BYTES: usize = 12;

/// The `.timeindex` file of one segment.
pub(crate) struct TimeIndex {
    file: IndexFile,
    base_offset: i64,
}

impl TimeIndex {
    pub fn open(
        path: &Path,
        base_offset: i64,
        preallocate: Option<u64>,
    ) -> Result<Self, StorageError> {
        let file = IndexFile::open(path, TIME_ENTRY_BYTES, preallocate)?;
        Ok(TimeIndex { file, base_offset })
    }

    pub fn create(path: &Path, base_offset: i64, preallocate: u64) -> Result<Self, StorageError> {
        let file = IndexFile::create(path, TIME_ENTRY_BYTES, preallocate)?;
        Ok(TimeIndex { file, base_offset })
    }

    pub fn len(&self) -> usize {
        self.file.len()
    }

    pub fn is_full(&self) -> bool {
        self.file.is_full()
    }

    /// Entry `i` as `(timestamp, absolute offset)`.
    pub fn entry(&self, i: usize) -> (i64, i64) {
        let raw = self.file.entry(i);
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&raw[..8]);
        let rel = u32::from_be_bytes([raw[8], raw[9], raw[10], raw[11]]);
        (i64::from_be_bytes(ts), self.base_offset + i64::from(rel))
    }

    pub fn last(&self) -> Option<(i64, i64)> {
        self.len().checked_sub(1).map(|i| self.entry(i))
    }

    /// Appends `(timestamp, offset)` if `timestamp` is newer than the last entry.
    /// Returns false only when full.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64) -> bool {
        if let Some((last_ts, last_offset)) = self.last() {
            if timestamp <= last_ts {
                return true;
            }
            assert!(offset >= last_offset, "time index offsets must not go back");
        }
        let rel = offset - self.base_offset;
        assert!(
            (0..=i64::from(u32::MAX)).contains(&rel),
            "offset outside segment"
        );
        let mut entry = [0u8; TIME_ENTRY_BYTES];
        entry[..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..].copy_from_slice(&(rel as u32).to_be_bytes());
        self.file.push(&entry)
    }

    /// The last entry with timestamp strictly below `timestamp`: every record before its
    /// offset is older than `timestamp`, so a search may start there.
    pub fn lookup_before(&self, timestamp: i64) -> Option<(i64, i64)> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.entry(mid).0 < timestamp {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1).map(|i| self.entry(i))
    }

    /// Cheap consistency check used at open: the last entries grow.
    pub fn looks_sane(&self) -> bool {
        let n = self.len();
        if n < 2 {
            return true;
        }
        let (prev_ts, prev_offset) = self.entry(n - 2);
        let (last_ts, last_offset) = self.entry(n - 1);
        last_ts > prev_ts && last_offset >= prev_offset
    }

    pub fn flush(&self) -> Result<(), StorageError> {
        self.file.flush()
    }

    pub fn trim(&mut self) -> Result<(), StorageError> {
        self.file.trim()
    }

    pub fn reopen_for_append(&mut self, preallocate: u64) -> Result<(), StorageError> {
        self.file.reopen_for_append(preallocate)
    }

    pub fn delete(self) -> Result<(), StorageError> {
        self.file.delete()
    }
}
