//! CreatePartitions: grows topics to a larger partition count.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::ResponseError;

use super::common::str_bytes;
use crate::{Broker, BrokerError};

pub async fn handle(
    broker: &Broker,
    _version: i16,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for t in request.topics {
        results.push({
            let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            let assignments: Option<Vec<Vec<i32>>> = t.assignments.as_ref().map(|a| {
                a.iter()
                    .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                    .collect()
            });
            let outcome = if assignments.as_ref().is_some_and(|a| a.is_empty()) {
                Err(BrokerError::invalid(
                    ResponseError::InvalidReplicaAssignment,
                    "an empty assignment list; leave it null to let the broker place replicas",
                ))
            } else {
                broker
                    .create_partitions(
                        t.name.0.as_str(),
                        t.count,
                        assignments,
                        request.validate_only,
                    )
                    .await
            };
            match outcome {
                Ok(()) => result,
                Err(e) => result
                    .with_error_code(e.code())
                    .with_error_message(Some(str_bytes(e.message()))),
            }
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}
