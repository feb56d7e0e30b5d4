//! IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT on topic overrides.

use std::collections::BTreeMap;

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::ResponseError;

use super::common::str_bytes;
use super::describe_configs::RESOURCE_TOPIC;
use crate::config::{parse, topic};
use crate::{Broker, BrokerError};

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

pub async fn handle(
    broker: &Broker,
    _version: i16,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for r in request.resources {
        responses.push({
            let result = AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let outcome = if r.resource_type != RESOURCE_TOPIC {
                Err(BrokerError::invalid(
                    ResponseError::InvalidRequest,
                    "only topic configs can be altered; broker configs are static",
                ))
            } else {
                match changes(broker, r.resource_name.as_str(), &r.configs) {
                    Ok(changes) => {
                        broker
                            .alter_topic_configs(
                                r.resource_name.as_str(),
                                changes,
                                request.validate_only,
                            )
                            .await
                    }
                    Err(e) => Err(e),
                }
            };
            match outcome {
                Ok(()) => result,
                Err(e) => result
                    .with_error_code(e.code())
                    .with_error_message(Some(str_bytes(e.message()))),
            }
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

fn changes(
    broker: &Broker,
    name: &str,
    ops: &[kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig],
) -> Result<BTreeMap<String, Option<String>>, BrokerError> {
    let image = broker.controller.image();
    let t = image.topic(name).ok_or_else(|| {
        BrokerError::invalid(
            ResponseError::UnknownTopicOrPartition,
            format!("topic '{name}' does not exist"),
        )
    })?;
    let mut out = BTreeMap::new();
    for op in ops {
        let key = op.name.to_string();
        let value = op.value.as_ref().map(|v| v.to_string());
        let current = || {
            t.configs
                .get(&key)
                .cloned()
                .unwrap_or_else(|| topic::broker_default(&broker.config, &key).0)
        };
        let list_only = || {
            if topic::find(&key).is_some_and(|k| k.config_type == 7) {
                Ok(())
            } else {
                Err(BrokerError::invalid(
                    ResponseError::InvalidConfig,
                    format!("'{key}' is not a list config"),
                ))
            }
        };
        let new = match op.config_operation {
            SET => value,
            DELETE => None,
            APPEND => {
                list_only()?;
                let mut items = parse::list(&current());
                for v in parse::list(value.as_deref().unwrap_or("")) {
                    if !items.contains(&v) {
                        items.push(v);
                    }
                }
                Some(items.join(","))
            }
            SUBTRACT => {
                list_only()?;
                let remove = parse::list(value.as_deref().unwrap_or(""));
                let items: Vec<String> = parse::list(&current())
                    .into_iter()
                    .filter(|i| !remove.contains(i))
                    .collect();
                Some(items.join(","))
            }
            other => {
                return Err(BrokerError::invalid(
                    ResponseError::InvalidRequest,
                    format!("unknown config operation {other}"),
                ))
            }
        };
        out.insert(key, new);
    }
    Ok(out)
}
