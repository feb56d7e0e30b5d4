//! Per-log configuration, named after Kafka's topic configs (`segment.bytes` → `segment_bytes`).

use crate::error::StorageError;

/// Hard ceiling for one segment file: positions in the offset index are `u32`.
pub const SEGMENT_BYTES_MAX: u64 = i32::MAX as u64;

/// Smallest index file that holds at least one entry of either index.
pub const SEGMENT_INDEX_BYTES_MIN: u64 = 12;

/// Settings of one partition log. Defaults are Kafka's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll a new segment once the active one would exceed this size (`segment.bytes`).
    /// Cost: one open file and two index mmaps per segment.
    pub segment_bytes: u64,
    /// Roll once the active segment's first append is older than this (`segment.ms`).
    pub segment_ms: i64,
    /// Preallocated size of each index file (`segment.index.bytes`); a full index rolls.
    pub segment_index_bytes: u64,
    /// Bytes of log between two sparse index entries (`index.interval.bytes`).
    /// Cost: a lookup scans up to this many bytes after the index hit.
    pub index_interval_bytes: u64,
    /// Delete sealed segments whose newest timestamp is older than this; -1 keeps forever.
    pub retention_ms: i64,
    /// Delete oldest sealed segments while the log is larger than this; -1 = unlimited.
    pub retention_bytes: i64,
    /// fsync after this many records (`flush.messages`).
    pub flush_messages: u64,
    /// fsync when the last flush is older than this (`flush.ms`), checked by `maybe_flush`.
    pub flush_ms: i64,
    /// fsync before every append returns. Cost: one fsync per produce request.
    pub fsync_every_append: bool,
    /// Largest accepted record batch in bytes, including its 12-byte log overhead.
    pub max_message_bytes: u32,
    /// `cleanup.policy` contains `compact`.
    pub compact: bool,
    /// `cleanup.policy` contains `delete`.
    pub delete: bool,
    /// How long tombstones survive compaction (`delete.retention.ms`).
    pub delete_retention_ms: i64,
    /// `message.timestamp.type=LogAppendTime`: the log stamps `now_ms` on appended batches.
    pub message_timestamp_type_log_append: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            segment_index_bytes: 10 << 20,
            index_interval_bytes: 4096,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            flush_messages: u64::MAX,
            flush_ms: i64::MAX,
            fsync_every_append: false,
            max_message_bytes: 1_048_588,
            compact: false,
            delete: true,
            delete_retention_ms: 86_400_000,
            message_timestamp_type_log_append: false,
        }
    }
}

impl LogConfig {
    /// Rejects values the log cannot work with.
    pub fn validate(&self) -> Result<(), StorageError> {
        let bad = |what: &str| Err(StorageError::InvalidConfig(what.to_string()));
        if self.segment_bytes < 14 || self.segment_bytes > SEGMENT_BYTES_MAX {
            return bad("segment_bytes must be in [14, 2^31-1]");
        }
        if self.segment_index_bytes < SEGMENT_INDEX_BYTES_MIN
            || self.segment_index_bytes > SEGMENT_BYTES_MAX
        {
            return bad("segment_index_bytes must be in [12, 2^31-1]");
        }
        if self.segment_ms <= 0 {
            return bad("segment_ms must be positive");
        }
        if self.index_interval_bytes == 0 {
            return bad("index_interval_bytes must be positive");
        }
        if self.max_message_bytes < crate::batch::HEADER_BYTES as u32 {
            return bad("max_message_bytes must hold at least one batch header");
        }
        Ok(())
    }
}
