//! DescribeQuorum: the metadata quorum's leader, epoch and how far each voter
//! and observer (learner) has replicated. Only the quorum leader knows the
//! replication progress, so any node asks the leader (controller protocol);
//! if no leader answers, it answers with what it knows (-1 offsets).

use kafka_protocol::messages::describe_quorum_response::{PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse};
use kafka_protocol::ResponseError;

use crate::metadata::QuorumStatus;
use crate::Broker;

const METADATA_TOPIC: &str = "__cluster_metadata";
/// How long to wait for the quorum leader's view before answering with ours.
const LEADER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

pub async fn handle(
    broker: &Broker,
    _version: i16,
    request: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    // A status tool should answer quickly even without a leader.
    let asked = tokio::time::timeout(LEADER_WAIT, broker.controller.leader_status()).await;
    let status = match asked {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "no quorum leader answered; describing the local view");
            broker.controller.status()
        }
        Err(_) => broker.controller.status(),
    };
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let data = PartitionData::default().with_partition_index(p.partition_index);
                    if t.topic_name.as_str() != METADATA_TOPIC || p.partition_index != 0 {
                        return data.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    }
                    quorum(data, &status)
                })
                .collect();
            TopicData::default()
                .with_topic_name(t.topic_name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeQuorumResponse::default().with_topics(topics)
}

/// Raft indexes stand in for offsets: a node's log end is one past the last
/// index it holds, the high watermark one past the last applied.
fn quorum(data: PartitionData, status: &QuorumStatus) -> PartitionData {
    let replica = |id: &i32| {
        let end = status
            .matched
            .get(id)
            .copied()
            .flatten()
            .map_or(-1, |i| i as i64 + 1);
        ReplicaState::default()
            .with_replica_id(BrokerId(*id))
            .with_log_end_offset(end)
            .with_last_fetch_timestamp(-1)
            .with_last_caught_up_timestamp(-1)
    };
    data.with_leader_id(BrokerId(status.leader.unwrap_or(-1)))
        .with_leader_epoch(status.term as i32)
        .with_high_watermark(status.last_applied.map_or(0, |i| i as i64 + 1))
        .with_current_voters(status.voters.iter().map(replica).collect())
        .with_observers(status.learners.iter().map(replica).collect())
}
