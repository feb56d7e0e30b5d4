//! Sparse offset index: `relative offset u32 -> file position u32`, big-endian, 8 bytes an
//! entry, one entry per `index_interval_bytes` of log, each pointing at a batch start.

use std::path::Path;

use crate::error::StorageError;
use crate::index_file::IndexFile;

/// Size of one offset index entry.
pub const OFFSET_ENTRY_BYTES: usize = 8;

/// The `.index` file of one segment.
pub(crate) struct OffsetIndex {
    file: IndexFile,
    base_offset: i64,
}

impl OffsetIndex {
    pub fn open(
        path: &Path,
        base_offset: i64,
        preallocate: Option<u64>,
    ) -> Result<Self, StorageError> {
        let file = IndexFile::open(path, OFFSET_ENTRY_BYTES, preallocate)?;
        Ok(OffsetIndex { file, base_offset })
    }

    pub fn create(path: &Path, base_offset: i64, preallocate: u64) -> Result<Self, StorageError> {
        let file = IndexFile::create(path, OFFSET_ENTRY_BYTES, preallocate)?;
        Ok(OffsetIndex { file, base_offset })
    }

    pub fn len(&self) -> usize {
        self.file.len()
    }

    pub fn is_full(&self) -> bool {
        self.file.is_full()
    }

    /// Entry `i` as `(absolute offset, position)`.
    pub fn entry(&self, i: usize) -> (i64, u32) {
        let raw = self.file.entry(i);
        let rel = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let pos = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
        (self.base_offset + i64::from(rel), pos)
    }

    pub fn last(&self) -> Option<(i64, u32)> {
        self.len().checked_sub(1).map(|i| self.entry(i))
    }

    /// Records that the batch starting at `offset` sits at `position`. Returns false if full.
    pub fn append(&mut self, offset: i64, position: u32) -> bool {
        let rel = offset - self.base_offset;
        assert!(
            (0..=i64::from(u32::MAX)).contains(&rel),
            "offset {offset} outside segment {}",
            self.base_offset
        );
        if let Some((last_offset, last_pos)) = self.last() {
            assert!(
                offset > last_offset && position > last_pos,
                "offset index must grow: ({offset}, {position}) after ({last_offset}, {last_pos})"
            );
        }
        let mut entry = [0u8; OFFSET_ENTRY_BYTES];
        entry[..4].copy_from_slice(&(rel as u32).to_be_bytes());
        entry[4..].copy_from_slice(&position.to_be_bytes());
        let pushed = self.file.push(&entry);
        debug_assert!(!pushed || self.last() == Some((offset, position)));
        pushed
    }

    /// The last entry whose offset is `<= offset`, or `None` (start at position 0).
    pub fn lookup(&self, offset: i64) -> Option<(i64, u32)> {
        let n = self.partition_point(|(o, _)| o <= offset);
        n.checked_sub(1).map(|i| self.entry(i))
    }

    fn partition_point(&self, pred: impl Fn((i64, u32)) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(self.entry(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Cheap consistency check used at open: the last entries grow and point inside the log.
    pub fn looks_sane(&self, log_bytes: u64) -> bool {
        let n = self.len();
        if n == 0 {
            return true;
        }
        let (last_offset, last_pos) = self.entry(n - 1);
        if u64::from(last_pos) >= log_bytes {
            return false;
        }
        if n >= 2 {
            let (prev_offset, prev_pos) = self.entry(n - 2);
            return last_offset > prev_offset && last_pos > prev_pos;
        }
        true
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

    pub fn path(&self) -> &Path {
        self.file.path()
    }
}
