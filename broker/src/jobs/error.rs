//! Why a job could not be created, deleted, paused or resumed.

use millrace_processor::ProcessorError;

use crate::metadata::MetadataError;

/// Errors of the job admin operations.
#[derive(Debug, thiserror::Error)]
pub enum JobAdminError {
    /// The SQL does not compile; the message carries line, column and reason.
    #[error("invalid job SQL: {0}")]
    Sql(#[from] ProcessorError),
    #[error("job '{0}' already exists")]
    Exists(String),
    #[error("job '{0}' does not exist")]
    Unknown(String),
    #[error(transparent)]
    Metadata(MetadataError),
}

impl From<MetadataError> for JobAdminError {
    fn from(e: MetadataError) -> Self {
        match e {
            MetadataError::JobExists(n) => JobAdminError::Exists(n),
            MetadataError::UnknownJob(n) => JobAdminError::Unknown(n),
            e => JobAdminError::Metadata(e),
        }
    }
}
