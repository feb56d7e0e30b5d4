//! DescribeQuorum: the metadata quorum's leader, epoch, and how far each
//! voter and observer (learner) has replicated, as the leader sees it (a
//! follower asks the leader over the controller protocol).

use kafka_protocol::messages::describe_quorum_response::{PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};
use kafka_protocol::ResponseError;

use super::common::str_bytes;
use crate::Broker;

/// The metadata log's name in Kafka (KRaft).
const METADATA_TOPIC: &str = "__cluster_metadata";

pub async fn handle(
    broker: &Broker,
    version: i16,
    request: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    let status = broker.controller.leader_status().await;
    let mut topics = Vec::new();
    for t in request.topics {
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                let out = PartitionData::default().with_partition_index(p.partition_index);
                if t.topic_name.0.as_str() != METADATA_TOPIC || p.partition_index != 0 {
                    return out.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                }
                match &status {
                    Ok(s) => quorum(out, s),
                    Err(e) => {
                        let out = out.with_error_code(ResponseError::NotLeaderOrFollower.code());
                        // error_message exists from v2 on.
                        if version >= 2 {
                            out.with_error_message(Some(str_bytes(e.to_string())))
                        } else {
                            out
                        }
                    }
                }
            })
            .collect();
        topics.push(
            TopicData::default()
                .with_topic_name(TopicName(t.topic_name.0))
                .with_partitions(partitions),
        );
    }
    DescribeQuorumResponse::default().with_topics(topics)
}

/// Raft indexes stand in for offsets: a node's log end is one past the last
/// index it holds, the high watermark one past the last committed (applied).
fn quorum(out: PartitionData, s: &crate::metadata::QuorumStatus) -> PartitionData {
    let end = |id: &i32| -> i64 {
        s.matched
            .get(id)
            .copied()
            .flatten()
            .map_or(-1, |i| i as i64 + 1)
    };
    let replicas = |ids: &[i32]| -> Vec<ReplicaState> {
        ids.iter()
            .map(|id| {
                ReplicaState::default()
                    .with_replica_id(BrokerId(*id))
                    .with_log_end_offset(end(id))
            })
            .collect()
    };
    out.with_leader_id(BrokerId(s.leader.unwrap_or(-1)))
        .with_leader_epoch(s.term as i32)
        .with_high_watermark(s.last_applied.map_or(0, |i| i as i64 + 1))
        .with_current_voters(replicas(&s.voters))
        .with_observers(replicas(&s.learners))
}
