//! AlterConfigs (legacy): replaces a topic's whole set of overrides.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::ResponseError;

use super::common::str_bytes;
use super::describe_configs::RESOURCE_TOPIC;
use crate::{Broker, BrokerError};

pub async fn handle(
    broker: &Broker,
    _version: i16,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for r in request.resources {
        responses.push({
            let result = AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let name = r.resource_name.to_string();
            let outcome = if r.resource_type != RESOURCE_TOPIC {
                Err(BrokerError::invalid(
                    ResponseError::InvalidRequest,
                    "only topic configs can be altered; broker configs are static",
                ))
            } else {
                let current = broker
                    .controller
                    .image()
                    .topic(&name)
                    .map(|t| t.configs.clone())
                    .unwrap_or_default();
                // Legacy semantics: the request's set replaces every override.
                let mut changes: BTreeMap<String, Option<String>> =
                    current.into_keys().map(|k| (k, None)).collect();
                for c in r.configs {
                    changes.insert(c.name.to_string(), c.value.map(|v| v.to_string()));
                }
                broker
                    .alter_topic_configs(&name, changes, request.validate_only)
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
    AlterConfigsResponse::default().with_responses(responses)
}
