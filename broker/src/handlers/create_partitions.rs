//! CreatePartitions: grows topics to a larger partition count.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::ResponseError;

use super::common::str_bytes;
use crate::{Broker, BrokerError};

pub fn handle(
    broker: &Broker,
    _version: i16,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let results = request
        .topics
        .into_iter()
        .map(|t| {
            let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            let assignments_ok = t.assignments.iter().flatten().all(|a| {
                !a.broker_ids.is_empty()
                    && a.broker_ids.iter().all(|b| b.0 == broker.config.node_id)
            });
            let outcome = if !assignments_ok {
                Err(BrokerError::invalid(
                    ResponseError::InvalidReplicaAssignment,
                    "assignments may only name live brokers",
                ))
            } else {
                broker.create_partitions(t.name.0.as_str(), t.count, request.validate_only)
            };
            match outcome {
                Ok(()) => result,
                Err(e) => result
                    .with_error_code(e.code())
                    .with_error_message(Some(str_bytes(e.message()))),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
