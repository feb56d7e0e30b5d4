//! Log compaction: keep the latest record per key in sealed segments, drop tombstones older
//! than `delete_retention_ms`, never change offsets.
//!
//! A cleaned segment is written to `<base>.log.cleaned`, renamed to `<base>.log.swap`, then
//! renamed over `<base>.log`. At open a `.cleaned` file is deleted (the old segment is still
//! intact) and a `.swap` file is installed (it is complete). Batches keep their base offset,
//! last offset delta, timestamps and producer fields; kept records keep their deltas.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;

use crate::batch::{BatchHeader, BatchIter};
use crate::checkpoint;
use crate::error::{IoContext, StorageError};
use crate::log::PartitionLog;
use crate::records::{rebuild_batch, BatchRecords};
use crate::segment::{segment_path, LOG_SUFFIX};
use crate::CompactionStats;

pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
pub(crate) const SWAP_SUFFIX: &str = ".swap";

/// Key → offset of its latest record in the cleanable range.
/// Cost: one heap copy of every distinct key in the sealed segments.
#[derive(Default)]
pub(crate) struct KeyMap {
    latest: HashMap<Vec<u8>, i64>,
}

impl KeyMap {
    /// Adds every keyed record of a (non-control) batch.
    pub fn add_batch(&mut self, header: &BatchHeader<'_>) -> Result<(), StorageError> {
        if header.is_control() {
            return Ok(());
        }
        let records = BatchRecords::new(*header)?;
        for record in records.iter() {
            let record = record?;
            if let Some(key) = record.key {
                let slot = self.latest.entry(key.to_vec()).or_insert(record.offset);
                *slot = (*slot).max(record.offset);
            }
        }
        Ok(())
    }
}

/// Writes the cleaned form of one batch to `out` (nothing if no record survives).
/// Tombstones are dropped when the batch's max timestamp is below `tombstone_horizon_ms`.
pub(crate) fn clean_batch(
    header: &BatchHeader<'_>,
    keys: &KeyMap,
    tombstone_horizon_ms: i64,
    out: &mut Vec<u8>,
    stats: &mut CompactionStats,
) -> Result<(), StorageError> {
    if header.is_control() {
        out.extend_from_slice(header.bytes());
        return Ok(());
    }
    let records = BatchRecords::new(*header)?;
    let mut kept = Vec::new();
    let mut total = 0u64;
    for record in records.iter() {
        let record = record?;
        total += 1;
        let latest = match record.key {
            Some(key) => keys.latest.get(key).is_some_and(|o| *o == record.offset),
            None => true,
        };
        let expired_tombstone =
            record.value.is_none() && header.max_timestamp() < tombstone_horizon_ms;
        if latest && !expired_tombstone {
            kept.push(record);
        }
    }
    stats.records_kept += kept.len() as u64;
    stats.records_removed += total - kept.len() as u64;
    if kept.len() as u64 == total {
        out.extend_from_slice(header.bytes());
    } else if !kept.is_empty() {
        rebuild_batch(header, &kept, out)?;
    }
    Ok(())
}

impl PartitionLog {
    pub(crate) fn compact_inner(&mut self, now_ms: i64) -> Result<CompactionStats, StorageError> {
        let mut stats = CompactionStats::default();
        if !self.config.compact || self.segments.len() < 2 {
            return Ok(stats);
        }
        let sealed: Vec<i64> = self
            .segments
            .keys()
            .take(self.segments.len() - 1)
            .copied()
            .collect();
        let mut keys = KeyMap::default();
        for base in &sealed {
            let data = self.segments[base].bytes()?;
            for item in BatchIter::new(&data) {
                keys.add_batch(&item?.1)?;
            }
        }
        let horizon = now_ms.saturating_sub(self.config.delete_retention_ms);
        for base in sealed {
            let data = self.segments[&base].bytes()?;
            let mut cleaned = Vec::with_capacity(data.len());
            let before = stats.records_removed;
            for item in BatchIter::new(&data) {
                clean_batch(&item?.1, &keys, horizon, &mut cleaned, &mut stats)?;
            }
            stats.bytes_before += data.len() as u64;
            stats.bytes_after += cleaned.len() as u64;
            if stats.records_removed == before {
                continue;
            }
            self.install_cleaned(base, &cleaned)?;
            stats.segments_cleaned += 1;
        }
        Ok(stats)
    }

    /// `.cleaned` → `.swap` → `.log`, then fresh indexes.
    fn install_cleaned(&mut self, base: i64, cleaned: &[u8]) -> Result<(), StorageError> {
        let dir = self.dir.clone();
        let log_path = segment_path(&dir, base, LOG_SUFFIX);
        let cleaned_path = log_path.with_extension(format!("log{CLEANED_SUFFIX}"));
        let swap_path = log_path.with_extension(format!("log{SWAP_SUFFIX}"));
        {
            let mut file = File::create(&cleaned_path).ctx("create", &cleaned_path)?;
            file.write_all(cleaned).ctx("write", &cleaned_path)?;
            checkpoint::fsync(&file, &cleaned_path)?;
        }
        std::fs::rename(&cleaned_path, &swap_path).ctx("rename", &swap_path)?;
        checkpoint::fsync_dir(&dir)?;
        std::fs::rename(&swap_path, &log_path).ctx("rename", &log_path)?;
        checkpoint::fsync_dir(&dir)?;
        let config = self.config.clone();
        if let Some(segment) = self.segments.get_mut(&base) {
            segment.replace_contents(&dir, cleaned.len() as u64, &config)?;
        }
        Ok(())
    }
}
