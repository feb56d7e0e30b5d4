//! Metadata: brokers, the controller, and topics with their partitions;
//! creates unknown topics when auto-creation is on and the client allows it.

use std::collections::BTreeMap;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::ResponseError;

use super::common::str_bytes;
use crate::metadata::{TopicImage, NO_LEADER};
use crate::topics::NewTopic;
use crate::Broker;

pub async fn handle(broker: &Broker, version: i16, request: MetadataRequest) -> MetadataResponse {
    let node = BrokerId(
        broker
            .controller
            .leader_id()
            .unwrap_or(broker.config.node_id),
    );
    let brokers = live_brokers(broker)
        .into_iter()
        .map(|(id, host, port, rack)| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(id))
                .with_host(str_bytes(host))
                .with_port(port as i32)
                .with_rack(rack.map(str_bytes))
        })
        .collect();
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
    let image = broker.controller.image();
    let ids = |v: &[i32]| v.iter().map(|id| BrokerId(*id)).collect::<Vec<_>>();
    let partitions = t
        .partition_states
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let offline: Vec<i32> = p
                .replicas
                .iter()
                .copied()
                .filter(|r| image.brokers.get(r).is_none_or(|b| b.fenced))
                .collect();
            let r = MetadataResponsePartition::default()
                .with_partition_index(i as i32)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(ids(&p.replicas))
                .with_isr_nodes(ids(&p.isr))
                .with_offline_replicas(ids(&offline));
            if p.leader == NO_LEADER {
                r.with_error_code(ResponseError::LeaderNotAvailable.code())
            } else {
                r
            }
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(t.name.clone()))))
        .with_topic_id(t.id)
        .with_is_internal(t.name.starts_with("__"))
        .with_partitions(partitions)
}

/// The brokers clients may talk to: the unfenced registered ones, and this
/// node itself until its registration is in the image.
pub fn live_brokers(broker: &Broker) -> Vec<(i32, String, u16, Option<String>)> {
    let image = broker.controller.image();
    let mut out: Vec<_> = image
        .live_brokers()
        .map(|b| (b.id, b.host.clone(), b.port, b.rack.clone()))
        .collect();
    if !out.iter().any(|b| b.0 == broker.config.node_id) {
        let me = broker.config.advertised();
        out.push((
            broker.config.node_id,
            me.host.clone(),
            me.port,
            broker.config.rack.clone(),
        ));
    }
    out
}
