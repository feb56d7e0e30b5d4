//! ListOffsets: earliest, latest, max-timestamp and by-timestamp lookups.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use crate::replica::{Partition, ReplicaError, Role};
use crate::{Broker, BrokerError};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
/// KIP-1005: earliest offset still on local storage; without tiering, the log start.
const EARLIEST_LOCAL: i64 = -4;

pub fn handle(broker: &Broker, version: i16, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let image = broker.controller.image();
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let known = image.topic(topic.name.0.as_str()).is_some();
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let r = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1);
                    let partition = known
                        .then(|| {
                            broker
                                .replicas
                                .get(topic.name.0.as_str(), p.partition_index)
                        })
                        .flatten();
                    let Some(partition) = partition else {
                        return r.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let looked_up = partition
                        .check_epoch(p.current_leader_epoch)
                        .map_err(BrokerError::from)
                        .and_then(|()| lookup(&partition, p.timestamp));
                    match looked_up {
                        // leader_epoch exists from v4 on; the codec refuses it earlier.
                        Ok(Some((offset, ts))) if version >= 4 => r
                            .with_offset(offset)
                            .with_timestamp(ts)
                            .with_leader_epoch(partition.leader_epoch()),
                        Ok(Some((offset, ts))) => r.with_offset(offset).with_timestamp(ts),
                        Ok(None) => r,
                        Err(e) => r.with_error_code(e.code()),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// The (offset, timestamp) answering one query, or `None` when no record matches.
fn lookup(p: &Partition, timestamp: i64) -> Result<Option<(i64, i64)>, BrokerError> {
    if p.role() != Role::Leader {
        return Err(ReplicaError::NotLeader(format!("{}-{}", p.topic, p.index)).into());
    }
    let offsets = p.offsets();
    Ok(match timestamp {
        LATEST => Some((offsets.high_watermark, -1)),
        EARLIEST | EARLIEST_LOCAL => Some((offsets.log_start, -1)),
        MAX_TIMESTAMP => p.max_timestamp()?,
        ts if ts >= 0 => p.offset_for_timestamp(ts)?,
        other => {
            return Err(BrokerError::invalid(
                ResponseError::InvalidRequest,
                format!("unsupported ListOffsets timestamp {other}"),
            ))
        }
    })
}
