//! ElectLeaders: moves leadership back to each partition's preferred replica
//! (the first one listed) when it is alive and in sync (`kafka-leader-election
//! --election-type preferred`). Unclean election on demand is not offered;
//! `unclean.leader.election.enable` on the topic lets the controller do it.

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::ResponseError;

use super::common::str_bytes;
use crate::metadata::MetadataRecord;
use crate::{Broker, BrokerError};

const PREFERRED: i8 = 0;

pub async fn handle(
    broker: &Broker,
    _version: i16,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    let image = broker.controller.image();
    // Null means every partition of every topic.
    let targets: Vec<(String, Vec<i32>)> = match request.topic_partitions {
        Some(list) => list
            .into_iter()
            .map(|t| (t.topic.to_string(), t.partitions))
            .collect(),
        None => image
            .topics
            .values()
            .map(|t| (t.name.clone(), (0..t.partitions as i32).collect()))
            .collect(),
    };
    let mut results = Vec::with_capacity(targets.len());
    for (topic, partitions) in targets {
        let mut out = Vec::with_capacity(partitions.len());
        for index in partitions {
            let outcome = if request.election_type != PREFERRED {
                Err(BrokerError::invalid(
                    ResponseError::EligibleLeadersNotAvailable,
                    "only preferred elections are offered; unclean election follows the topic's unclean.leader.election.enable",
                ))
            } else {
                elect_preferred(broker, &topic, index).await
            };
            let r = PartitionResult::default().with_partition_id(index);
            out.push(match outcome {
                Ok(()) => r,
                Err(e) => r
                    .with_error_code(e.code())
                    .with_error_message(Some(str_bytes(e.message()))),
            });
        }
        results.push(
            ReplicaElectionResult::default()
                .with_topic(TopicName(str_bytes(topic)))
                .with_partition_result(out),
        );
    }
    ElectLeadersResponse::default().with_replica_election_results(results)
}

async fn elect_preferred(broker: &Broker, topic: &str, index: i32) -> Result<(), BrokerError> {
    let image = broker.controller.image();
    let state = image
        .topic(topic)
        .and_then(|t| t.partition(index))
        .ok_or_else(|| {
            BrokerError::invalid(
                ResponseError::UnknownTopicOrPartition,
                format!("{topic}-{index} does not exist"),
            )
        })?;
    let preferred = state.replicas[0];
    if state.leader == preferred {
        return Err(BrokerError::invalid(
            ResponseError::ElectionNotNeeded,
            format!("broker {preferred} already leads {topic}-{index}"),
        ));
    }
    let live = image.brokers.get(&preferred).is_some_and(|b| !b.fenced);
    if !live || !state.isr.contains(&preferred) {
        return Err(BrokerError::invalid(
            ResponseError::PreferredLeaderNotAvailable,
            format!("broker {preferred} is not a live in-sync replica of {topic}-{index}"),
        ));
    }
    broker
        .controller
        .propose(MetadataRecord::ElectLeader {
            topic: topic.to_string(),
            partition: index as u32,
            leader: preferred,
        })
        .await?;
    Ok(())
}
