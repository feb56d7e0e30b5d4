//! The broker's error type and the one place that maps errors to Kafka codes.

use kafka_protocol::ResponseError;
use millrace_storage::StorageError;

use crate::metadata::MetadataError;
use crate::replica::ReplicaError;

/// Errors a handler answers with.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    /// A request that names something invalid; the code says what.
    #[error("{message}")]
    Invalid {
        code: ResponseError,
        message: String,
    },
}

impl BrokerError {
    pub fn invalid(code: ResponseError, message: impl Into<String>) -> Self {
        BrokerError::Invalid {
            code,
            message: message.into(),
        }
    }

    /// The Kafka error code for this error. Unexpected ones are logged as
    /// errors; expected ones (a client's mistake) at debug.
    pub fn code(&self) -> i16 {
        let code = match self {
            BrokerError::Storage(e) => e.kafka_error_code(),
            BrokerError::Metadata(e) => metadata_code(e).code(),
            BrokerError::Replica(e) => replica_code(e),
            BrokerError::Invalid { code, .. } => code.code(),
        };
        if code == ResponseError::UnknownServerError.code()
            || code == ResponseError::KafkaStorageError.code()
        {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::debug!(error = %self, code, "request refused");
        }
        code
    }

    /// The message to put in a response's error_message field.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

fn metadata_code(e: &MetadataError) -> ResponseError {
    match e {
        MetadataError::TopicExists(_) => ResponseError::TopicAlreadyExists,
        MetadataError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
        MetadataError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        MetadataError::JobExists(_) => ResponseError::InvalidRequest,
        MetadataError::UnknownJob(_) => ResponseError::InvalidRequest,
        MetadataError::InvalidReplicas(_) => ResponseError::InvalidReplicaAssignment,
        MetadataError::StalePartitionState(_) => ResponseError::InvalidUpdateVersion,
        MetadataError::UnknownBroker(_) => ResponseError::BrokerNotAvailable,
        MetadataError::NoReassignment(_) => ResponseError::NoReassignmentInProgress,
        MetadataError::DuplicateBroker(_) => ResponseError::DuplicateBrokerRegistration,
        // Retriable: the client tries again once a leader is elected.
        MetadataError::NoQuorum(_) => ResponseError::RequestTimedOut,
        MetadataError::Io { .. }
        | MetadataError::Encode(_)
        | MetadataError::Raft(_)
        | MetadataError::Remote(_) => ResponseError::UnknownServerError,
    }
}

fn replica_code(e: &ReplicaError) -> i16 {
    match e {
        ReplicaError::Storage(e) => e.kafka_error_code(),
        ReplicaError::NotLeader(_) => ResponseError::NotLeaderOrFollower.code(),
        ReplicaError::FencedEpoch { .. } => ResponseError::FencedLeaderEpoch.code(),
        ReplicaError::UnknownEpoch { .. } => ResponseError::UnknownLeaderEpoch.code(),
        ReplicaError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas.code(),
    }
}

/// Shorthand for "this code, no error" in response building.
pub const NONE: i16 = 0;
