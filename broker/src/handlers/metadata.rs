//! Metadata: brokers, the controller, and topics with their partitions;
//! creates unknown topics when auto-creation is on and the client allows it.

use std::collections::BTreeMap;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::ResponseError;

use super::common::str_bytes;
use crate::metadata::TopicImage;
use crate::topics::NewTopic;
use crate::Broker;

pub async fn handle(broker: &Broker, version: i16, request: MetadataRequest) -> MetadataResponse {
    let me = broker.config.advertised();
    let node = BrokerId(broker.config.node_id);
    let brokers = vec![MetadataResponseBroker::default()
        .with_node_id(node)
        .with_host(str_bytes(me.host.clone()))
        .with_port(me.port as i32)
        .with_rack(broker.config.rack.clone().map(str_bytes))];
    // v0 has no null topic list: an empty list means "all topics" there.
    let requested = match request.topics {
        Some(t) if !(version == 0 && t.is_empty()) => Some(t),
        _ => None,
    };
    let topics = match requested {
        None => broker
            .controller
            .image()
            .topics
            .values()
            .map(|t| describe(broker, t))
            .collect(),
        Some(wanted) => {
            // v4+ lets the client forbid auto-creation; older versions always allow it.
            let client_allows = version < 4 || request.allow_auto_topic_creation;
            let mut topics = Vec::with_capacity(wanted.len());
            for t in wanted {
                topics.push(match t.name {
                    Some(name) => by_name(broker, name.0.as_str(), client_allows).await,
                    None => by_id(broker, t.topic_id),
                });
            }
            topics
        }
    };
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(str_bytes(
            broker.controller.image().cluster_id.clone(),
        )))
        .with_controller_id(node)
        .with_topics(topics)
}

async fn by_name(broker: &Broker, name: &str, client_allows: bool) -> MetadataResponseTopic {
    if let Some(t) = broker.controller.image().topic(name) {
        return describe(broker, t);
    }
    if !(client_allows && broker.config.auto_create_topics) {
        return error_topic(Some(name), ResponseError::UnknownTopicOrPartition);
    }
    let new = NewTopic {
        name,
        partitions: None,
        replication_factor: None,
        configs: BTreeMap::new(),
        assignments: None,
    };
    match broker.create_topic(new, false).await {
        Ok(t) => describe(broker, &t),
        // Raced with another creator: describe what is there now.
        Err(e) => match broker.controller.image().topic(name) {
            Some(t) => describe(broker, t),
            None => error_topic(Some(name), code_of(&e)),
        },
    }
}

fn code_of(e: &crate::BrokerError) -> ResponseError {
    ResponseError::try_from_code(e.code()).unwrap_or(ResponseError::UnknownServerError)
}

fn by_id(broker: &Broker, id: uuid::Uuid) -> MetadataResponseTopic {
    match broker.controller.image().topic_by_id(&id) {
        Some(t) => describe(broker, t),
        None => error_topic(None, ResponseError::UnknownTopicId).with_topic_id(id),
    }
}

fn error_topic(name: Option<&str>, code: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name.map(|n| TopicName(str_bytes(n))))
        .with_error_code(code.code())
}

fn describe(broker: &Broker, t: &TopicImage) -> MetadataResponseTopic {
    let node = BrokerId(broker.config.node_id);
    let partitions = (0..t.partitions as i32)
        .map(|i| {
            MetadataResponsePartition::default()
                .with_partition_index(i)
                .with_leader_id(node)
                .with_leader_epoch(0)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(t.name.clone()))))
        .with_topic_id(t.id)
        .with_is_internal(t.name.starts_with("__"))
        .with_partitions(partitions)
}
