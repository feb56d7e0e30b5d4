//! OffsetForLeaderEpoch: the end offset of a leader epoch in the leader's log
//! (KIP-101). Followers truncate to it after a leader change; consumers use it
//! to detect log truncation (KIP-320).

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::ResponseError;

use crate::{Broker, BrokerError};

pub fn handle(
    broker: &Broker,
    _version: i16,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let r = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let Some(partition) = broker.replicas.get(t.topic.as_str(), p.partition) else {
                        return r.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    match partition.end_offset_for_epoch(p.leader_epoch, p.current_leader_epoch) {
                        Ok(Some((epoch, end))) => r.with_leader_epoch(epoch).with_end_offset(end),
                        // Older than anything we hold: undefined, as Kafka answers.
                        Ok(None) => r,
                        Err(e) => r.with_error_code(BrokerError::from(e).code()),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
