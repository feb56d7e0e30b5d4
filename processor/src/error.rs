//! The crate's one error enum.

use thiserror::Error;

/// Errors of job compilation (submission) and of a job stopped by a bad record.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ProcessorError {
    /// Bad SQL or an invalid option, with the 1-based position in the statement.
    #[error("line {line}, column {column}: {reason}")]
    Sql {
        line: u64,
        column: u64,
        reason: String,
    },
    /// A valid but unsupported construct, named.
    #[error("line {line}, column {column}: {construct} is not supported")]
    Unsupported {
        line: u64,
        column: u64,
        construct: String,
    },
    /// A changelog entry that does not decode (restore).
    #[error("bad changelog entry: {0}")]
    Changelog(String),
    /// The job stopped on a bad record (`on_error = 'stop'`).
    #[error("job stopped at partition {partition} offset {offset}: {reason}")]
    Stopped {
        partition: i32,
        offset: i64,
        reason: String,
    },
}

/// Why one record could not be evaluated; handled by the job's `on_error` policy.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct RecordError(pub String);

impl RecordError {
    pub fn new(msg: impl Into<String>) -> RecordError {
        RecordError(msg.into())
    }
}

pub type Result<T, E = ProcessorError> = std::result::Result<T, E>;
