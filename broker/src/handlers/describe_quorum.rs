//! DescribeQuorum: the metadata quorum's leader, epoch and how far each voter
//! and observer (learner) has replicated. Only the quorum leader knows the
//! replication progress; other nodes answer with what they know (-1 offsets),
//! and `broker cluster status` asks the leader.

use kafka_protocol::messages::describe_quorum_response::{PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse};
use kafka_protocol::ResponseError;

use crate::Broker;

const METADATA_TOPIC: &str = "__cluster_metadata";

pub fn handle(
    broker: &Broker,
    _version: i16,
    request: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    let status = broker.controller.status();
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
                    data.with_leader_id(BrokerId(status.leader.unwrap_or(-1)))
                        .with_leader_epoch(status.term as i32)
                        .with_high_watermark(status.last_applied.map_or(0, |i| i as i64 + 1))
                        .with_current_voters(status.voters.iter().map(replica).collect())
                        .with_observers(status.learners.iter().map(replica).collect())
                })
                .collect();
            TopicData::default()
                .with_topic_name(t.topic_name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeQuorumResponse::default().with_topics(topics)
}
