//! CreateTopics: per-topic validation and creation, honouring validate_only.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::ResponseError;

use super::common::str_bytes;
use crate::config::topic;
use crate::topics::NewTopic;
use crate::{Broker, BrokerError};

pub fn handle(broker: &Broker, version: i16, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> = request
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.0.to_string()))
        .map(|t| t.name.0.to_string())
        .collect();
    let results = request
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let result = CreatableTopicResult::default().with_name(t.name.clone());
            if duplicates.contains(&name) {
                return result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(format!(
                        "topic '{name}' appears more than once in the request"
                    ))));
            }
            match create(broker, version, t, request.validate_only) {
                Ok(created) => created,
                Err(e) => result
                    .with_error_code(e.code())
                    .with_error_message(Some(str_bytes(e.message()))),
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(results)
}

fn create(
    broker: &Broker,
    version: i16,
    t: kafka_protocol::messages::create_topics_request::CreatableTopic,
    validate_only: bool,
) -> Result<CreatableTopicResult, BrokerError> {
    let mut configs = BTreeMap::new();
    for c in &t.configs {
        let Some(v) = &c.value else { continue };
        configs.insert(c.name.to_string(), v.to_string());
    }
    let (partitions, rf) = if t.assignments.is_empty() {
        (
            (t.num_partitions != -1).then_some(t.num_partitions),
            (t.replication_factor != -1).then_some(t.replication_factor),
        )
    } else {
        check_assignments(broker, &t)?
    };
    let created = broker.create_topic(
        NewTopic {
            name: t.name.0.as_str(),
            partitions,
            replication_factor: rf,
            configs,
        },
        validate_only,
    )?;
    let described = topic::effective(&broker.config, &created.configs)
        .into_iter()
        .map(|(k, v)| {
            let source = if created.configs.contains_key(k) {
                1
            } else {
                5
            };
            CreatableTopicConfigs::default()
                .with_name(str_bytes(k))
                .with_value(Some(str_bytes(v)))
                .with_config_source(source)
        })
        .collect();
    Ok(CreatableTopicResult::default()
        .with_name(t.name)
        .with_topic_id(created.id)
        .with_num_partitions(created.partitions as i32)
        .with_replication_factor(created.replication_factor as i16)
        .with_configs((version >= 5).then_some(described)))
}

/// Manual assignments must come with -1 for count and factor, name only
/// live brokers, and number partitions 0..n.
fn check_assignments(
    broker: &Broker,
    t: &kafka_protocol::messages::create_topics_request::CreatableTopic,
) -> Result<(Option<i32>, Option<i16>), BrokerError> {
    let bad = |m: String| BrokerError::invalid(ResponseError::InvalidReplicaAssignment, m);
    if t.num_partitions != -1 || t.replication_factor != -1 {
        return Err(BrokerError::invalid(
            ResponseError::InvalidRequest,
            "num_partitions and replication_factor must be -1 when assignments are given",
        ));
    }
    let mut indexes: Vec<i32> = t.assignments.iter().map(|a| a.partition_index).collect();
    indexes.sort();
    if indexes != (0..t.assignments.len() as i32).collect::<Vec<_>>() {
        return Err(bad("partition indexes must be 0..n without gaps".into()));
    }
    let rf = t.assignments[0].broker_ids.len();
    for a in &t.assignments {
        if a.broker_ids.len() != rf || a.broker_ids.is_empty() {
            return Err(bad(
                "every partition needs the same, non-zero number of replicas".into(),
            ));
        }
        if let Some(b) = a.broker_ids.iter().find(|b| b.0 != broker.config.node_id) {
            return Err(bad(format!("broker {} is not a live broker", b.0)));
        }
    }
    Ok((Some(t.assignments.len() as i32), Some(rf as i16)))
}
