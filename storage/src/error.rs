//! The crate's one error type. Errors with a Kafka meaning carry their protocol error code
//! (see [`StorageError::kafka_error_code`]); everything else maps to KAFKA_STORAGE_ERROR or
//! UNKNOWN_SERVER_ERROR.

use std::path::{Path, PathBuf};

use crate::failpoints::FailPoint;

/// Every failure the storage crate reports.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Bad framing, magic, length or CRC of a record batch (Kafka CORRUPT_MESSAGE).
    #[error("corrupt record batch at byte {position}: {reason}")]
    CorruptMessage { position: usize, reason: String },

    /// A batch that is well formed but not acceptable, e.g. a record without a key in a
    /// compacted log (Kafka INVALID_RECORD).
    #[error("invalid record in batch at byte {position}: {reason}")]
    InvalidRecord { position: usize, reason: String },

    /// A batch larger than the log's `max_message_bytes` (Kafka MESSAGE_TOO_LARGE).
    #[error("record batch of {size_bytes} bytes exceeds max.message.bytes {limit_bytes}")]
    MessageTooLarge { size_bytes: usize, limit_bytes: u32 },

    /// Offset below the log start or above the log end (Kafka OFFSET_OUT_OF_RANGE).
    #[error("offset {offset} out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },

    /// Sequence gap for an idempotent producer (Kafka OUT_OF_ORDER_SEQUENCE_NUMBER).
    #[error("producer {producer_id}: expected sequence {expected}, got {got}")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },

    /// A producer epoch older than the one the log knows (Kafka INVALID_PRODUCER_EPOCH).
    #[error("producer {producer_id}: epoch {epoch} is older than current epoch {current_epoch}")]
    InvalidProducerEpoch {
        producer_id: i64,
        epoch: i16,
        current_epoch: i16,
    },

    /// A leader append (or a replicated batch) with a leader epoch older than the latest one
    /// the log has seen (Kafka FENCED_LEADER_EPOCH).
    #[error("leader epoch {epoch} is older than the latest epoch {latest}")]
    StaleLeaderEpoch { epoch: i32, latest: i32 },

    /// A replicated append that does not start at the log end: the follower must truncate
    /// or fetch from its log end first (Kafka's UnexpectedAppendOffsetException).
    #[error("replicated append must start at the log end {expected}, got base offset {got}")]
    NonContiguousReplicatedAppend { expected: i64, got: i64 },

    /// Replicated batches whose offsets do not increase (Kafka's OffsetsOutOfOrderException).
    #[error("replicated batch at base offset {base_offset} does not follow offset {previous_last_offset}")]
    OffsetsOutOfOrder {
        previous_last_offset: i64,
        base_offset: i64,
    },

    /// `truncate_to` was asked to cut inside a batch.
    #[error("offset {offset} is not on a batch boundary")]
    NotBatchBoundary { offset: i64 },

    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A metadata file (checkpoint, snapshot, index) that cannot be trusted.
    #[error("corrupt file {}: {reason}", path.display())]
    CorruptFile { path: PathBuf, reason: String },

    /// An earlier write or fsync failed and the log refuses further writes until reopened.
    #[error("log {} is offline after an earlier I/O failure", dir.display())]
    LogOffline { dir: PathBuf },

    /// A configuration value outside its allowed range.
    #[error("invalid log config: {0}")]
    InvalidConfig(String),

    /// A fault injected by a test through the `failpoints` feature.
    #[error("injected fault at {0:?}")]
    Injected(FailPoint),
}

impl StorageError {
    /// The Kafka protocol error code the broker should answer with.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            StorageError::OffsetOutOfRange { .. } => 1,
            StorageError::CorruptMessage { .. } => 2,
            StorageError::MessageTooLarge { .. } => 10,
            StorageError::OutOfOrderSequence { .. } => 45,
            StorageError::InvalidProducerEpoch { .. } => 47,
            StorageError::StaleLeaderEpoch { .. } => 74, // FENCED_LEADER_EPOCH
            StorageError::InvalidRecord { .. } => 87,
            StorageError::Io { .. }
            | StorageError::CorruptFile { .. }
            | StorageError::LogOffline { .. }
            | StorageError::Injected(_) => 56, // KAFKA_STORAGE_ERROR
            StorageError::NotBatchBoundary { .. }
            | StorageError::NonContiguousReplicatedAppend { .. }
            | StorageError::OffsetsOutOfOrder { .. }
            | StorageError::InvalidConfig(_) => -1,
        }
    }

    pub(crate) fn corrupt(position: usize, reason: impl Into<String>) -> Self {
        StorageError::CorruptMessage {
            position,
            reason: reason.into(),
        }
    }

    pub(crate) fn corrupt_file(path: &Path, reason: impl Into<String>) -> Self {
        StorageError::CorruptFile {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// Attaches the operation and path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T, StorageError>;
}

impl<T> IoContext<T> for Result<T, std::io::Error> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T, StorageError> {
        self.map_err(|source| StorageError::Io {
            op,
            path: path.to_path_buf(),
            source,
        })
    }
}
