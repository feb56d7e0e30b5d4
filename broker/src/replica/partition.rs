//! One partition replica hosted here: the log plus the offsets Kafka exposes.
//!
//! The log has one owner, this struct, behind a short `std::sync::Mutex`:
//! appends and reads are synchronous page-cache operations and never span an
//! `.await`. On a single node the replica is the whole ISR, so the high
//! watermark is the log end offset after every append.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use millrace_storage::{AppendInfo, Log, LogConfig, PartitionLog, StorageError};

/// The offsets of a partition at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    pub log_start: i64,
    pub high_watermark: i64,
    pub log_end: i64,
}

/// A partition replica.
pub struct Partition {
    pub topic: String,
    pub index: i32,
    pub topic_id: uuid::Uuid,
    pub dir: PathBuf,
    log: Mutex<Box<dyn Log>>,
}

impl Partition {
    /// Opens (recovering if needed) the partition's log in `dir`.
    pub fn open(
        topic: &str,
        index: i32,
        topic_id: uuid::Uuid,
        dir: &Path,
        config: LogConfig,
        now_ms: i64,
    ) -> Result<Self, StorageError> {
        let log = PartitionLog::open(dir, config, now_ms)?;
        Ok(Self {
            topic: topic.to_string(),
            index,
            topic_id,
            dir: dir.to_path_buf(),
            log: Mutex::new(Box::new(log)),
        })
    }

    fn log(&self) -> MutexGuard<'_, Box<dyn Log>> {
        // A panic while holding the lock must not take the partition down with it:
        // the log's own invariants are re-checked by its methods.
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn append(&self, batches: &[u8], now_ms: i64) -> Result<AppendInfo, StorageError> {
        self.log().append(batches, 0, now_ms)
    }

    /// Whole batches from `offset`, bounded by the high watermark.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<(Bytes, Offsets), StorageError> {
        let log = self.log();
        let offsets = offsets_of(&**log);
        let bytes = log.read(offset, max_bytes, offsets.high_watermark)?;
        Ok((bytes, offsets))
    }

    pub fn offsets(&self) -> Offsets {
        offsets_of(&**self.log())
    }

    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, StorageError> {
        self.log().offset_for_timestamp(ts)
    }

    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, StorageError> {
        self.log().max_timestamp()
    }

    pub fn delete_records(&self, offset: i64) -> Result<i64, StorageError> {
        self.log().delete_records(offset)
    }

    pub fn apply_retention(&self, now_ms: i64) -> Result<usize, StorageError> {
        self.log().apply_retention(now_ms)
    }

    pub fn maybe_flush(&self, now_ms: i64) -> Result<(), StorageError> {
        self.log().maybe_flush(now_ms)
    }

    pub fn compact(&self, now_ms: i64) -> Result<(), StorageError> {
        self.log().compact(now_ms).map(|_| ())
    }

    pub fn update_config(&self, config: LogConfig) -> Result<(), StorageError> {
        self.log().update_config(config)
    }

    pub fn size_bytes(&self) -> u64 {
        self.log().size_bytes()
    }

    /// Flushes and writes the recovery checkpoint, for a clean shutdown.
    pub fn close(&self) -> Result<(), StorageError> {
        self.log().close()
    }
}

fn offsets_of(log: &dyn Log) -> Offsets {
    let log_end = log.log_end_offset();
    Offsets {
        log_start: log.log_start_offset(),
        high_watermark: log_end,
        log_end,
    }
}
