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

pub async fn handle(
    broker: &Broker,
    version: i16,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> = request
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.0.to_string()))
        .map(|t| t.name.0.to_string())
        .collect();
    let mut results = Vec::with_capacity(request.topics.len());
    for t in request.topics {
        results.push({
            let name = t.name.0.to_string();
            let result = CreatableTopicResult::default().with_name(t.name.clone());
            if duplicates.contains(&name) {
                results.push(
                    result
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(str_bytes(format!(
                            "topic '{name}' appears more than once in the request"
                        )))),
                );
                continue;
            }
            match create(broker, version, t, request.validate_only).await {
                Ok(created) => created,
                Err(e) => result
                    .with_error_code(e.code())
                    .with_error_message(Some(str_bytes(e.message()))),
            }
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

async fn create(
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
    let (partitions, rf, assignments) = if t.assignments.is_empty() {
        (
            (t.num_partitions != -1).then_some(t.num_partitions),
            (t.replication_factor != -1).then_some(t.replication_factor),
            None,
        )
    } else {
        check_assignments(&t)?
    };
    let created = broker
        .create_topic(
            NewTopic {
                name: t.name.0.as_str(),
                partitions,
                replication_factor: rf,
                configs,
                assignments,
            },
            validate_only,
        )
        .await?;
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

/// Manual assignments must come with -1 for count and factor and number
/// partitions 0..n; which brokers they name is checked against the metadata.
type Assignment = (Option<i32>, Option<i16>, Option<Vec<Vec<i32>>>);

fn check_assignments(
    t: &kafka_protocol::messages::create_topics_request::CreatableTopic,
) -> Result<Assignment, BrokerError> {
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
    let mut by_index: Vec<_> = t.assignments.iter().collect();
    by_index.sort_by_key(|a| a.partition_index);
    let replicas = by_index
        .into_iter()
        .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
        .collect();
    Ok((
        Some(t.assignments.len() as i32),
        Some(rf as i16),
        Some(replicas),
    ))
}
