//! Metadata log records: every change to cluster metadata is one of these,
//! appended to the metadata log and applied in order to the image.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One metadata change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MetadataRecord {
    /// Fixes the cluster id; the first record of every metadata log.
    Bootstrap {
        cluster_id: String,
    },
    CreateTopic {
        name: String,
        id: uuid::Uuid,
        partitions: u32,
        replication_factor: u16,
        configs: BTreeMap<String, String>,
    },
    DeleteTopic {
        name: String,
    },
    CreatePartitions {
        name: String,
        count: u32,
    },
    /// Replaces the listed overrides (`Some`) or removes them (`None`).
    AlterTopicConfigs {
        name: String,
        changes: BTreeMap<String, Option<String>>,
    },
    /// Reserves producer ids below `next` (allocated in blocks, as Kafka does).
    AllocateProducerIds {
        next: i64,
    },
    /// A stream processing job; `sql` compiled when it was submitted.
    CreateJob {
        name: String,
        sql: String,
    },
    DeleteJob {
        name: String,
    },
    SetJobPaused {
        name: String,
        paused: bool,
    },
}
