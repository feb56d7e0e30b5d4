//! The openraft type configuration of the metadata quorum, and what a
//! committed entry answers.
//!
//! A log entry's payload is one `MetadataRecord`; its response is an
//! `Outcome`: applied (with the log index) or refused by the image, carried
//! as a serializable `Refusal` so a follower that forwarded the proposal gets
//! back the same `MetadataError` variant the leader saw.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::metadata::{MetadataError, MetadataRecord};

openraft::declare_raft_types!(
    /// Types of the metadata Raft group: Kafka node ids, controller addresses,
    /// metadata records in, outcomes out.
    pub TypeConfig:
        D = MetadataRecord,
        R = Outcome,
        NodeId = u64,
        Node = openraft::BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type NodeId = u64;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Raft = openraft::Raft<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;

/// What applying one committed entry did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// The record changed the image at this log index. For
    /// `AllocateProducerIds` `reserved` is the half-open id range this entry
    /// reserved (empty when another allocation got there first), so two
    /// brokers racing for a block never both get it.
    Applied {
        index: u64,
        reserved: Option<(i64, i64)>,
    },
    /// The image refused the record; the image is unchanged.
    Refused(Refusal),
}

/// The refusals of `MetadataError` in a form that crosses the wire.
///
/// Every refusal variant of `MetadataError` has a twin here, so
/// `from_wire(to_wire(e))` gives the same variant; an error that is not a
/// refusal (I/O, encoding) travels as `Other` with its message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Refusal {
    TopicExists(String),
    UnknownTopic(String),
    InvalidPartitions(String),
    JobExists(String),
    UnknownJob(String),
    InvalidReplicas(String),
    StalePartitionState(String),
    UnknownBroker(i32),
    NoReassignment(String),
    DuplicateBroker(i32),
    NoQuorum(String),
    Other(String),
}

impl Refusal {
    /// The wire form of an error.
    pub fn from_error(e: &MetadataError) -> Self {
        match e {
            MetadataError::TopicExists(s) => Refusal::TopicExists(s.clone()),
            MetadataError::UnknownTopic(s) => Refusal::UnknownTopic(s.clone()),
            MetadataError::InvalidPartitions(s) => Refusal::InvalidPartitions(s.clone()),
            MetadataError::JobExists(s) => Refusal::JobExists(s.clone()),
            MetadataError::UnknownJob(s) => Refusal::UnknownJob(s.clone()),
            MetadataError::InvalidReplicas(s) => Refusal::InvalidReplicas(s.clone()),
            MetadataError::StalePartitionState(s) => Refusal::StalePartitionState(s.clone()),
            MetadataError::UnknownBroker(id) => Refusal::UnknownBroker(*id),
            MetadataError::NoReassignment(s) => Refusal::NoReassignment(s.clone()),
            MetadataError::DuplicateBroker(id) => Refusal::DuplicateBroker(*id),
            MetadataError::NoQuorum(s) => Refusal::NoQuorum(s.clone()),
            // Listed, not matched by `_`: a new MetadataError variant must be
            // placed here (a refusal gets a twin above) or this fails to build.
            MetadataError::Io { .. }
            | MetadataError::Encode(_)
            | MetadataError::Raft(_)
            | MetadataError::Remote(_) => Refusal::Other(e.to_string()),
        }
    }

    /// The error this refusal stands for.
    pub fn into_error(self) -> MetadataError {
        match self {
            Refusal::TopicExists(s) => MetadataError::TopicExists(s),
            Refusal::UnknownTopic(s) => MetadataError::UnknownTopic(s),
            Refusal::InvalidPartitions(s) => MetadataError::InvalidPartitions(s),
            Refusal::JobExists(s) => MetadataError::JobExists(s),
            Refusal::UnknownJob(s) => MetadataError::UnknownJob(s),
            Refusal::InvalidReplicas(s) => MetadataError::InvalidReplicas(s),
            Refusal::StalePartitionState(s) => MetadataError::StalePartitionState(s),
            Refusal::UnknownBroker(id) => MetadataError::UnknownBroker(id),
            Refusal::NoReassignment(s) => MetadataError::NoReassignment(s),
            Refusal::DuplicateBroker(id) => MetadataError::DuplicateBroker(id),
            Refusal::NoQuorum(s) => MetadataError::NoQuorum(s),
            Refusal::Other(s) => MetadataError::Remote(s),
        }
    }
}

/// The Raft config of the metadata quorum.
///
/// Heartbeat 100 ms and an election timeout of 400–800 ms keep failover
/// (detect, elect, first commit) well under the 2 s target; a snapshot every
/// 1000 entries keeps the log (and a restart's replay) small.
pub fn raft_config() -> Result<std::sync::Arc<openraft::Config>, MetadataError> {
    let config = openraft::Config {
        cluster_name: "millrace-metadata".into(),
        heartbeat_interval: 100,
        election_timeout_min: 400,
        election_timeout_max: 800,
        install_snapshot_timeout: 2000,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(1000),
        max_in_snapshot_log_to_keep: 1000,
        ..Default::default()
    };
    let config = config
        .validate()
        .map_err(|e| MetadataError::Raft(e.to_string()))?;
    Ok(std::sync::Arc::new(config))
}
