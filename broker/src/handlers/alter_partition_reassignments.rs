//! AlterPartitionReassignments: starts moving partitions onto other brokers
//! (replicas `null` cancels a move in progress). New replicas copy the log
//! from the leader and join the ISR; the controller then drops the old ones.

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
};
use kafka_protocol::ResponseError;

use super::common::str_bytes;
use crate::metadata::MetadataRecord;
use crate::{Broker, BrokerError};

pub async fn handle(
    broker: &Broker,
    _version: i16,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let mut responses = Vec::with_capacity(request.topics.len());
    for t in request.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let target: Option<Vec<i32>> = p.replicas.map(|r| r.into_iter().map(|b| b.0).collect());
            let outcome = reassign(
                broker,
                t.name.as_str(),
                p.partition_index,
                target,
                request.allow_replication_factor_change,
            )
            .await;
            let r =
                ReassignablePartitionResponse::default().with_partition_index(p.partition_index);
            partitions.push(match outcome {
                Ok(()) => r,
                Err(e) => r
                    .with_error_code(e.code())
                    .with_error_message(Some(str_bytes(e.message()))),
            });
        }
        responses.push(
            ReassignableTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    AlterPartitionReassignmentsResponse::default().with_responses(responses)
}

async fn reassign(
    broker: &Broker,
    topic: &str,
    index: i32,
    target: Option<Vec<i32>>,
    allow_rf_change: bool,
) -> Result<(), BrokerError> {
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
    if let Some(target) = &target {
        let current = state.replicas.len() - state.adding.len();
        if !allow_rf_change && target.len() != current {
            return Err(BrokerError::invalid(
                ResponseError::InvalidReplicationFactor,
                format!(
                    "{topic}-{index} has {current} replicas; a move to {} needs allow_replication_factor_change",
                    target.len()
                ),
            ));
        }
    }
    broker
        .controller
        .propose(MetadataRecord::ReassignPartition {
            topic: topic.to_string(),
            partition: index as u32,
            target,
        })
        .await?;
    Ok(())
}
