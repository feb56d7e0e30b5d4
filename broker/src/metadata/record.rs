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
    /// `assignments[p]` lists partition p's replicas, preferred leader first.
    CreateTopic {
        name: String,
        id: uuid::Uuid,
        partitions: u32,
        replication_factor: u16,
        configs: BTreeMap<String, String>,
        /// Absent in logs written before replication existed.
        #[serde(default)]
        assignments: Vec<Vec<i32>>,
    },
    DeleteTopic {
        name: String,
    },
    /// `assignments` lists the replicas of each new partition, in order.
    CreatePartitions {
        name: String,
        count: u32,
        #[serde(default)]
        assignments: Vec<Vec<i32>>,
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
    /// A broker process announced itself. A new incarnation of a known id is
    /// a restart: it comes back fenced and out of every ISR, like a failure.
    RegisterBroker {
        id: i32,
        incarnation: uuid::Uuid,
        host: String,
        port: u16,
        rack: Option<String>,
    },
    /// The broker stopped heartbeating or is shutting down: leadership moves
    /// to another in-sync replica and it leaves every ISR it can leave.
    FenceBroker {
        id: i32,
    },
    /// The broker is alive again; offline partitions it is in sync for get it as leader.
    UnfenceBroker {
        id: i32,
    },
    /// A partition leader's ISR change (Kafka's AlterPartition). Refused unless
    /// `leader_epoch` and `partition_epoch` are the current ones, so a deposed
    /// leader cannot rewrite the ISR.
    AlterIsr {
        topic: String,
        partition: u32,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: Vec<i32>,
    },
    /// Starts moving a partition onto `target` replicas (preferred leader
    /// first), or with `None` cancels the move in progress. New replicas copy
    /// the log and join the ISR; `CompleteReassignment` then drops the others.
    ReassignPartition {
        topic: String,
        partition: u32,
        target: Option<Vec<i32>>,
    },
    /// Ends a move once every added replica is in sync.
    CompleteReassignment {
        topic: String,
        partition: u32,
    },
    /// Moves leadership to `leader`, which must be an unfenced in-sync replica
    /// (preferred-leader and operator elections).
    ElectLeader {
        topic: String,
        partition: u32,
        leader: i32,
    },
}

impl MetadataRecord {
    /// Logs from the single-node era carry no replica assignments: every
    /// partition lived on the one node. Fills them in as `[node_id]`.
    pub fn with_legacy_assignments(self, node_id: i32, current_partitions: u32) -> Self {
        match self {
            MetadataRecord::CreateTopic {
                name,
                id,
                partitions,
                replication_factor,
                configs,
                assignments,
            } if assignments.is_empty() => MetadataRecord::CreateTopic {
                name,
                id,
                partitions,
                replication_factor,
                configs,
                assignments: vec![vec![node_id]; partitions as usize],
            },
            MetadataRecord::CreatePartitions {
                name,
                count,
                assignments,
            } if assignments.is_empty() => MetadataRecord::CreatePartitions {
                name,
                count,
                assignments: vec![vec![node_id]; count.saturating_sub(current_partitions) as usize],
            },
            other => other,
        }
    }
}
