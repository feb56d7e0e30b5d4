//! Deleting from the head of a [`PartitionLog`]: time and size retention and DeleteRecords.
//! Only whole sealed segments are deleted; the log start offset only moves forward.

use crate::checkpoint::{self, LOG_START_FILE};
use crate::error::StorageError;
use crate::log::PartitionLog;
use crate::producer_state;
use crate::Log;

/// Sealed segments (all but the active one) to delete, oldest first, under `config`.
/// `segments` is `(max timestamp, size bytes)` per sealed segment, oldest first.
pub(crate) fn retention_victims(
    segments: &[(i64, u64)],
    total_bytes: u64,
    retention_ms: i64,
    retention_bytes: i64,
    now_ms: i64,
) -> usize {
    let mut victims = 0;
    if retention_ms >= 0 {
        let horizon = now_ms.saturating_sub(retention_ms);
        victims = segments.iter().take_while(|(ts, _)| *ts < horizon).count();
    }
    if retention_bytes >= 0 {
        let mut excess = total_bytes as i64 - retention_bytes;
        let mut by_size = 0;
        for (_, size) in segments {
            if excess - (*size as i64) < 0 {
                break;
            }
            excess -= *size as i64;
            by_size += 1;
        }
        victims = victims.max(by_size);
    }
    victims
}

impl PartitionLog {
    pub(crate) fn apply_retention_inner(&mut self, now_ms: i64) -> Result<usize, StorageError> {
        if !self.config.delete {
            return Ok(0);
        }
        let sealed: Vec<(i64, u64)> = self
            .segments
            .values()
            .take(self.segments.len().saturating_sub(1))
            .map(|s| (s.max_timestamp(), s.size_bytes()))
            .collect();
        let victims = retention_victims(
            &sealed,
            self.size_bytes(),
            self.config.retention_ms,
            self.config.retention_bytes,
            now_ms,
        );
        self.delete_oldest_segments(victims)?;
        Ok(victims)
    }

    /// Deletes the `count` oldest segments (never the active one) and moves the log start.
    fn delete_oldest_segments(&mut self, count: usize) -> Result<(), StorageError> {
        let count = count.min(self.segments.len().saturating_sub(1));
        if count == 0 {
            return Ok(());
        }
        for _ in 0..count {
            if let Some((_, segment)) = self.segments.pop_first() {
                segment.delete()?;
            }
        }
        if let Some(first) = self.segments.keys().next() {
            self.log_start_offset = self.log_start_offset.max(*first);
        }
        self.after_log_start_moved()
    }

    fn after_log_start_moved(&mut self) -> Result<(), StorageError> {
        checkpoint::write_offsets(&self.dir, LOG_START_FILE, &[self.log_start_offset])?;
        let start = self.log_start_offset;
        self.update_epochs(|cache| cache.truncate_from_start(start))?;
        self.producers.remove_before(self.log_start_offset);
        producer_state::prune_snapshots(&self.dir, self.log_start_offset, self.log_end_offset)
    }

    pub(crate) fn delete_records_inner(&mut self, offset: i64) -> Result<i64, StorageError> {
        if offset < 0 || offset > self.log_end_offset {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset,
            });
        }
        if offset <= self.log_start_offset {
            return Ok(self.log_start_offset);
        }
        self.log_start_offset = offset;
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        let wholly_below = bases
            .windows(2)
            .take_while(|pair| pair[1] <= offset)
            .count();
        self.delete_oldest_segments(wholly_below)?;
        self.after_log_start_moved()?;
        Ok(self.log_start_offset)
    }
}
