//! OffsetDelete: removes committed offsets of topics a group no longer consumes.

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    ConsumerProtocolSubscription, OffsetDeleteRequest, OffsetDeleteResponse,
};
use kafka_protocol::protocol::Decodable;
use kafka_protocol::ResponseError;

use crate::group::store::StoredKey;
use crate::group::{Group, GroupState, PendingWrite};
use crate::Broker;

pub async fn handle(
    broker: &Broker,
    _version: i16,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let (topics, write) = match delete(broker, &request) {
        Ok(done) => done,
        Err(code) => return OffsetDeleteResponse::default().with_error_code(code),
    };
    if let Err(e) = broker.groups.commit(broker, write).await {
        return OffsetDeleteResponse::default().with_error_code(e.code());
    }
    OffsetDeleteResponse::default().with_topics(topics)
}

/// Appends the tombstones and forgets the offsets, under the groups lock.
fn delete(
    broker: &Broker,
    request: &OffsetDeleteRequest,
) -> Result<(Vec<OffsetDeleteResponseTopic>, Option<PendingWrite>), i16> {
    let coordinator = &broker.groups;
    let group_id = request.group_id.0.as_str();
    let mut groups = coordinator.lock_group(group_id).map_err(|e| e.code())?;
    let Some(g) = groups.get_mut(request.group_id.0.as_str()) else {
        return Err(ResponseError::GroupIdNotFound.code());
    };
    let mut entries = Vec::new();
    let mut removed = Vec::new();
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let subscribed = subscribed(g, &name);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = if subscribed {
                        ResponseError::GroupSubscribedToTopic.code()
                    } else {
                        if g.offsets.contains_key(&(name.clone(), p.partition_index)) {
                            entries.push((
                                StoredKey::Offset {
                                    group: g.id.clone(),
                                    topic: name.clone(),
                                    partition: p.partition_index,
                                },
                                None,
                            ));
                            removed.push((name.clone(), p.partition_index));
                        }
                        0
                    };
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    let write = coordinator
        .append(broker, &g.id.clone(), &entries)
        .map_err(|e| e.code())?;
    for k in removed {
        g.offsets.remove(&k);
    }
    Ok((topics, write))
}

/// Whether a live member of a consumer group subscribes to `topic`.
fn subscribed(g: &Group, topic: &str) -> bool {
    if g.state == GroupState::Empty || g.protocol_type.as_deref() != Some("consumer") {
        return false;
    }
    let protocol = g.protocol.clone().unwrap_or_default();
    g.members.values().any(|m| {
        let mut meta = m.metadata_for(&protocol);
        if meta.len() < 2 {
            return false;
        }
        let version = i16::from_be_bytes([meta[0], meta[1]]);
        bytes::Buf::advance(&mut meta, 2);
        // Undecodable metadata: assume subscribed rather than delete live offsets.
        ConsumerProtocolSubscription::decode(&mut meta, version)
            .map(|s| s.topics.iter().any(|t| t.as_str() == topic))
            .unwrap_or(true)
    })
}
