//! Millrace storage: the partition log.
//!
//! Owns everything on disk for one partition: segments of Kafka v2 record batches stored
//! exactly as produced (`<base offset>.log`), memory-mapped sparse offset and time indexes,
//! recovery of a torn tail, retention, DeleteRecords, follower truncation, flush policy,
//! idempotent producer state, the leader-epoch cache and log compaction. Also owns the v2 batch format itself
//! ([`batch`], [`records`]), which the broker reuses.
//!
//! Must not depend on tokio or any async runtime, nor on the protocol or broker crates.
//! Time always comes in as an argument (`now_ms`); nothing here reads the clock.
//!
//! Module map:
//! - [`batch`]: batch header view, validation (framing, magic, CRC32C), iteration.
//! - [`records`]: record decoding (incl. decompression) and re-encoding for compaction.
//! - [`config`]: [`LogConfig`] with Kafka's defaults.
//! - [`error`]: [`StorageError`], the crate's one error type, with Kafka error codes.
//! - [`log`]: [`PartitionLog`], the file-backed [`Log`]; split across `recovery`,
//!   `retention` and `compaction` for open, deletion and cleaning.
//! - [`memory`]: [`MemoryLog`], the in-memory [`Log`] for tests and simulation.
//! - `segment`, `index`, `time_index`, `index_file`: one segment and its mmap indexes.
//! - [`epoch_cache`]: leader epoch → start offset (KIP-101/279), `leader-epoch-checkpoint`.
//! - [`producer_state`]: idempotent producer sequence/epoch tracking and snapshots.
//! - `checkpoint`: atomically written metadata files (recovery point, log start).
//! - `append_plan`: validation of an append (leader and follower), shared by both logs.
//! - [`failpoints`]: fault injection for tests (`failpoints` feature).
//! - [`testkit`]: builders of valid batches for tests and benchmarks.
//!
//! Invariants (checked by `check_invariants()`): log start ≤ log end; segment base offsets
//! strictly increase; index entries grow; every byte below a segment's logical end is a
//! whole batch with a valid CRC; leader-epoch entries strictly increase in epoch and start
//! offset, start at or after the log start and before the log end.

pub mod append_plan;
pub mod batch;
mod checkpoint;
mod compaction;
pub mod config;
pub mod epoch_cache;
pub mod error;
pub mod failpoints;
mod index;
mod index_file;
pub mod log;
pub mod memory;
pub mod producer_state;
pub mod records;
mod recovery;
mod retention;
mod segment;
pub mod testkit;
mod time_index;

pub use config::LogConfig;
pub use error::StorageError;
pub use log::PartitionLog;
pub use memory::MemoryLog;

/// The result of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset given to the first record (for a duplicate: the original batch's).
    pub first_offset: i64,
    pub last_offset: i64,
    /// Largest timestamp of the appended batches (LogAppendTime: `now_ms`).
    pub max_timestamp: i64,
    /// `now_ms` when the log stamps LogAppendTime, else -1.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    /// The batch was a retry of one already written; nothing was written.
    pub duplicate: bool,
    /// Records appended (0 for a duplicate).
    pub records: u32,
}

/// What one compaction pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionStats {
    pub segments_cleaned: usize,
    pub records_kept: u64,
    pub records_removed: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// A partition log. Implemented by [`PartitionLog`] (files) and [`MemoryLog`].
///
/// One owner mutates it; `read` and the lookups take `&self`. Time is an argument.
pub trait Log: Send {
    /// Validates all batches in `batches` (one or more v2 batches), then writes them with
    /// offsets from the log end and `leader_epoch`. Nothing is written on error. A
    /// `leader_epoch` newer than [`Log::latest_epoch`] starts at this append's first offset;
    /// an older one is refused with [`StorageError::StaleLeaderEpoch`].
    fn append(
        &mut self,
        batches: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError>;
    /// Follower path: appends batches copied from the leader, keeping their base offsets and
    /// partition leader epochs. Validated like [`Log::append`] (framing, CRC, size); the
    /// first batch must start at the log end and offsets must increase. Producer state is
    /// recorded without duplicate checks (the leader decided). Empty input writes nothing.
    fn append_replicated(
        &mut self,
        batches: &[u8],
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError>;
    /// The newest leader epoch in the log, if any batch carries one.
    fn latest_epoch(&self) -> Option<i32>;
    /// OffsetForLeaderEpoch: the largest cached epoch ≤ `epoch` and its end offset (the
    /// start of the next cached epoch, or the log end for the latest). `None` if `epoch` is
    /// older than every cached epoch or the cache is empty.
    fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)>;
    /// Whole batches from the one containing `offset`, only those whose last offset is
    /// below `max_offset`, at least one batch if any, up to `max_bytes` otherwise.
    fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
    ) -> Result<bytes::Bytes, StorageError>;
    fn log_start_offset(&self) -> i64;
    fn log_end_offset(&self) -> i64;
    /// First record with timestamp `>= ts`, as `(offset, timestamp)`.
    fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, StorageError>;
    /// The record with the largest timestamp (KIP-734), as `(offset, timestamp)`.
    fn max_timestamp(&self) -> Result<Option<(i64, i64)>, StorageError>;
    /// Removes every batch at or above `offset`, which must be a batch boundary.
    fn truncate_to(&mut self, offset: i64) -> Result<(), StorageError>;
    /// Moves the log start to `offset` (≤ log end) and deletes segments wholly below it.
    fn delete_records(&mut self, offset: i64) -> Result<i64, StorageError>;
    /// Deletes sealed segments past `retention_ms` / `retention_bytes`; returns how many.
    fn apply_retention(&mut self, now_ms: i64) -> Result<usize, StorageError>;
    /// fsyncs if `flush_messages` or `flush_ms` says so.
    fn maybe_flush(&mut self, now_ms: i64) -> Result<(), StorageError>;
    /// fsyncs everything and advances the recovery point.
    fn flush(&mut self) -> Result<(), StorageError>;
    /// Flushes, writes the recovery point and producer snapshot; the log is unusable after.
    fn close(&mut self) -> Result<(), StorageError>;
    fn size_bytes(&self) -> u64;
    fn update_config(&mut self, config: LogConfig) -> Result<(), StorageError>;
    /// Keeps the latest record per key in sealed segments.
    fn compact(&mut self, now_ms: i64) -> Result<CompactionStats, StorageError>;
    /// Current producer state (for the broker's idempotence bookkeeping and tests).
    fn producer_state(&self) -> &producer_state::ProducerStateManager;
    /// Asserts the log's invariants (tests and debug builds).
    fn check_invariants(&self);
}
