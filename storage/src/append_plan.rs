//! Validation of one append call, shared by [`crate::PartitionLog`] and
//! [`crate::MemoryLog`]: every batch is checked (framing, CRC, size, keys, producer
//! sequence) and given its offsets before a single byte is written. The follower path
//! ([`plan_replicated`]) checks the same framing but keeps the leader's offsets and epochs.

use std::collections::HashMap;
use std::ops::Range;

use crate::batch::{self, BatchHeader};
use crate::config::LogConfig;
use crate::epoch_cache::{self, EpochEntry, LeaderEpochCache};
use crate::error::StorageError;
use crate::producer_state::{ProducerEntry, ProducerStateManager};
use crate::records::BatchRecords;
use crate::AppendInfo;

/// One validated batch and the offsets it will get.
#[derive(Debug)]
pub(crate) struct PlannedBatch {
    /// Where the batch sits in the caller's buffer.
    pub range: Range<usize>,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    /// Written into the batch header (the leader's epoch; a replicated batch keeps its own).
    pub partition_leader_epoch: i32,
    /// The LogAppendTime copy (base offset not yet patched), if the config asks for it.
    pub stamped: Option<Vec<u8>>,
}

impl PlannedBatch {
    /// Bytes to write, before the base offset / leader epoch patch.
    pub fn source<'a>(&'a self, input: &'a [u8]) -> &'a [u8] {
        self.stamped
            .as_deref()
            .unwrap_or(&input[self.range.clone()])
    }
}

/// The outcome of planning: write these batches, or answer with a duplicate's offsets.
pub(crate) enum Plan {
    Write(AppendPlan),
    Duplicate(AppendInfo),
}

#[derive(Debug)]
pub(crate) struct AppendPlan {
    pub batches: Vec<PlannedBatch>,
    pub producers: HashMap<i64, ProducerEntry>,
    pub total_bytes: usize,
    pub info: AppendInfo,
    /// Epochs this append starts, for the leader-epoch cache once the data is written.
    pub new_epochs: Vec<EpochEntry>,
}

impl AppendPlan {
    pub fn next_offset(&self) -> i64 {
        self.info.last_offset + 1
    }
}

/// What planning needs to know about the log.
pub(crate) struct LogView<'a> {
    pub config: &'a LogConfig,
    pub producers: &'a ProducerStateManager,
    pub epochs: &'a LeaderEpochCache,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// Validates `input` (one or more v2 batches) for appending at the log end as leader of
/// `leader_epoch`.
pub(crate) fn plan_append(
    input: &[u8],
    log: &LogView<'_>,
    leader_epoch: i32,
    now_ms: i64,
) -> Result<Plan, StorageError> {
    let LogView {
        config,
        producers,
        epochs,
        log_start_offset,
        log_end_offset: next_offset,
    } = *log;
    if input.is_empty() {
        return Err(StorageError::InvalidRecord {
            position: 0,
            reason: "append without record batches".into(),
        });
    }
    epochs.check_not_stale(leader_epoch)?;
    let mut staged = producers.begin();
    let mut batches = Vec::new();
    let mut offset = next_offset;
    let mut position = 0;
    let mut records = 0u32;
    let mut max_timestamp = -1i64;
    while position < input.len() {
        let header = batch::validate(&input[position..], position)?;
        let size_bytes = header.total_bytes();
        if size_bytes > config.max_message_bytes as usize {
            return Err(StorageError::MessageTooLarge {
                size_bytes,
                limit_bytes: config.max_message_bytes,
            });
        }
        if config.compact {
            check_keys(&header, position)?;
        }
        if let Some(dup) = staged.check(&header, offset)? {
            return Ok(Plan::Duplicate(AppendInfo {
                first_offset: dup.first_offset,
                last_offset: dup.last_offset,
                max_timestamp: dup.timestamp,
                log_append_time: -1,
                log_start_offset,
                duplicate: true,
                records: 0,
            }));
        }
        let stamped = config
            .message_timestamp_type_log_append
            .then(|| batch::stamp_log_append_time(header.bytes(), now_ms));
        let batch_max_ts = if stamped.is_some() {
            now_ms
        } else {
            header.max_timestamp()
        };
        let last_offset = offset + i64::from(header.last_offset_delta());
        batches.push(PlannedBatch {
            range: position..position + size_bytes,
            base_offset: offset,
            last_offset,
            max_timestamp: batch_max_ts,
            partition_leader_epoch: leader_epoch,
            stamped,
        });
        max_timestamp = max_timestamp.max(batch_max_ts);
        records = records.saturating_add(header.records_count() as u32);
        offset = last_offset + 1;
        position += size_bytes;
    }
    let info = AppendInfo {
        first_offset: next_offset,
        last_offset: offset - 1,
        max_timestamp,
        log_append_time: if config.message_timestamp_type_log_append {
            now_ms
        } else {
            -1
        },
        log_start_offset,
        duplicate: false,
        records,
    };
    let mut new_epochs = Vec::new();
    if epochs.is_new(leader_epoch) {
        new_epochs.push(EpochEntry {
            epoch: leader_epoch,
            start_offset: next_offset,
        });
    }
    Ok(Plan::Write(AppendPlan {
        batches,
        producers: staged.into_staged(),
        total_bytes: input.len(),
        info,
        new_epochs,
    }))
}

/// Validates batches a follower copies from its leader. Offsets and leader epochs are the
/// leader's and are kept; the first batch must start at the log end, offsets must increase
/// (compaction may leave gaps) and epochs must not go back. Producer state is recorded
/// without duplicate or sequence checks: the leader already decided. `input` is not empty.
pub(crate) fn plan_replicated(input: &[u8], log: &LogView<'_>) -> Result<AppendPlan, StorageError> {
    let mut staged = log.producers.begin();
    let mut latest_epoch = log.epochs.latest_epoch();
    let mut new_epochs = Vec::new();
    let mut batches = Vec::new();
    let mut previous_last: Option<i64> = None;
    let mut position = 0;
    let mut records = 0u32;
    let mut max_timestamp = -1i64;
    while position < input.len() {
        let header = batch::validate(&input[position..], position)?;
        let size_bytes = header.total_bytes();
        if size_bytes > log.config.max_message_bytes as usize {
            return Err(StorageError::MessageTooLarge {
                size_bytes,
                limit_bytes: log.config.max_message_bytes,
            });
        }
        let base_offset = header.base_offset();
        match previous_last {
            None if base_offset != log.log_end_offset => {
                return Err(StorageError::NonContiguousReplicatedAppend {
                    expected: log.log_end_offset,
                    got: base_offset,
                })
            }
            Some(previous_last_offset) if base_offset <= previous_last_offset => {
                return Err(StorageError::OffsetsOutOfOrder {
                    previous_last_offset,
                    base_offset,
                })
            }
            _ => {}
        }
        let epoch = header.partition_leader_epoch();
        epoch_cache::check_not_stale(epoch, latest_epoch)?;
        if epoch_cache::is_new(epoch, latest_epoch) {
            latest_epoch = Some(epoch);
            new_epochs.push(EpochEntry {
                epoch,
                start_offset: base_offset,
            });
        }
        staged.record(&header, base_offset);
        batches.push(PlannedBatch {
            range: position..position + size_bytes,
            base_offset,
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp(),
            partition_leader_epoch: epoch,
            stamped: None,
        });
        max_timestamp = max_timestamp.max(header.max_timestamp());
        records = records.saturating_add(header.records_count() as u32);
        previous_last = Some(header.last_offset());
        position += size_bytes;
    }
    let info = AppendInfo {
        first_offset: log.log_end_offset,
        last_offset: previous_last.unwrap_or(log.log_end_offset - 1),
        max_timestamp,
        log_append_time: -1,
        log_start_offset: log.log_start_offset,
        duplicate: false,
        records,
    };
    Ok(AppendPlan {
        batches,
        producers: staged.into_staged(),
        total_bytes: input.len(),
        info,
        new_epochs,
    })
}

/// The answer to a replicated append of no batches: nothing written.
pub(crate) fn empty_append(log_start_offset: i64, log_end_offset: i64) -> AppendInfo {
    AppendInfo {
        first_offset: log_end_offset,
        last_offset: log_end_offset - 1,
        max_timestamp: -1,
        log_append_time: -1,
        log_start_offset,
        duplicate: false,
        records: 0,
    }
}

/// Compacted topics need a key on every (non-control) record.
fn check_keys(header: &BatchHeader<'_>, position: usize) -> Result<(), StorageError> {
    if header.is_control() {
        return Ok(());
    }
    let records = BatchRecords::new(*header).map_err(|e| at(e, position))?;
    for record in records.iter() {
        let record = record.map_err(|e| at(e, position))?;
        if record.key.is_none() {
            return Err(StorageError::InvalidRecord {
                position,
                reason: format!(
                    "record at offset delta {} has no key in a compacted log",
                    record.offset_delta
                ),
            });
        }
    }
    Ok(())
}

/// Rebases a record-level corruption error onto the batch position.
fn at(error: StorageError, position: usize) -> StorageError {
    match error {
        StorageError::CorruptMessage { reason, .. } => {
            StorageError::CorruptMessage { position, reason }
        }
        other => other,
    }
}
