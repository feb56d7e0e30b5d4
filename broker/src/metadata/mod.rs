//! Cluster metadata: records, the immutable image, and the controller that
//! orders, persists and applies changes.
//!
//! The controller itself (an openraft quorum; a single node is a one-voter
//! quorum) lives in `crate::controller` and is re-exported here. `log` is
//! the single-voter metadata log of earlier versions, read once to import it.

pub mod image;
pub mod log;
pub mod record;

use std::path::Path;

pub use crate::controller::{Controller, ControllerConfig, QuorumStatus};
pub use image::{BrokerImage, JobImage, MetadataImage, PartitionImage, TopicImage, NO_LEADER};
pub use record::MetadataRecord;

/// Why a metadata change was refused or could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("job '{0}' already exists")]
    JobExists(String),
    #[error("job '{0}' does not exist")]
    UnknownJob(String),
    #[error("{0}")]
    InvalidReplicas(String),
    #[error("{0}")]
    StalePartitionState(String),
    #[error("broker {0} is not registered")]
    UnknownBroker(i32),
    #[error("no reassignment of {0} is in progress")]
    NoReassignment(String),
    #[error("node.id {0} is in use by another live broker process (or this broker restarted within broker.session.timeout.ms and waits for its old session to expire)")]
    DuplicateBroker(i32),
    #[error("metadata log {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot encode metadata record: {0}")]
    Encode(String),
    /// No leader accepted the change in time (no quorum, or an election
    /// that did not settle); the change may or may not have been made.
    #[error("metadata quorum unavailable: {0}")]
    NoQuorum(String),
    /// The Raft node or its storage failed.
    #[error("metadata quorum: {0}")]
    Raft(String),
    /// An error on the leader that is not a refusal, by its message.
    #[error("metadata leader: {0}")]
    Remote(String),
}

impl MetadataError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        MetadataError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// A new Kafka-style cluster id.
pub(crate) fn new_cluster_id() -> String {
    // Kafka's cluster ids are 16 random bytes in URL-safe base64 without padding.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = String::new();
    for b in bytes {
        bits = (bits << 8) | b as u32;
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            out.push(ALPHABET[((bits >> nbits) & 63) as usize] as char);
        }
    }
    if nbits > 0 {
        out.push(ALPHABET[((bits << (6 - nbits)) & 63) as usize] as char);
    }
    out
}
