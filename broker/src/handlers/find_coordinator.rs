//! FindCoordinator: the coordinator of a group is the leader of the group's
//! `__consumer_offsets` partition, created on the first lookup if the topic
//! does not exist yet (COORDINATOR_NOT_AVAILABLE meanwhile, as in Kafka).
//! Transactions are not implemented: this node answers for them.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::common::str_bytes;
use crate::group::store;
use crate::metadata::MetadataImage;
use crate::Broker;

const KEY_GROUP: i8 = 0;
const KEY_TRANSACTION: i8 = 1;

/// Where a coordinator is: node id, host, port.
type Found = (i32, String, i32);

pub async fn handle(
    broker: &Broker,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let keys: Vec<StrBytes> = if version < 4 {
        vec![request.key.clone()]
    } else {
        request.coordinator_keys.clone()
    };
    if request.key_type == KEY_GROUP
        && !keys.is_empty()
        && broker.controller.image().topic(store::TOPIC).is_none()
    {
        if let Err(e) = broker.groups.create_topic(broker).await {
            tracing::warn!(error = %e, "cannot create __consumer_offsets");
        }
    }
    let image = broker.controller.image();
    let found: Vec<Result<Found, ResponseError>> = keys
        .iter()
        .map(|key| match request.key_type {
            KEY_GROUP => group_coordinator(broker, &image, key.as_str()),
            KEY_TRANSACTION => Ok(me(broker)),
            _ => Err(ResponseError::InvalidRequest),
        })
        .collect();
    if version < 4 {
        let r = FindCoordinatorResponse::default();
        let first = found.into_iter().next();
        return match first.unwrap_or(Err(ResponseError::InvalidRequest)) {
            Ok((node, host, port)) => r
                .with_node_id(BrokerId(node))
                .with_host(str_bytes(host))
                .with_port(port),
            Err(e) => r
                .with_error_code(e.code())
                .with_node_id(BrokerId(-1))
                .with_port(-1),
        };
    }
    let coordinators = keys
        .into_iter()
        .zip(found)
        .map(|(key, found)| {
            let c = Coordinator::default().with_key(key);
            match found {
                Ok((node, host, port)) => c
                    .with_node_id(BrokerId(node))
                    .with_host(str_bytes(host))
                    .with_port(port),
                Err(e) => c
                    .with_error_code(e.code())
                    .with_node_id(BrokerId(-1))
                    .with_port(-1),
            }
        })
        .collect();
    FindCoordinatorResponse::default().with_coordinators(coordinators)
}

/// The leader of the group's partition, as the image registers it (this
/// node as it advertises itself, like Metadata answers).
fn group_coordinator(
    broker: &Broker,
    image: &MetadataImage,
    group: &str,
) -> Result<Found, ResponseError> {
    let partitions = image
        .topic(store::TOPIC)
        .ok_or(ResponseError::CoordinatorNotAvailable)?;
    let p = broker.groups.partition_of(group);
    let leader = partitions
        .partition(p)
        .map(|s| s.leader)
        .filter(|l| *l >= 0)
        .ok_or(ResponseError::CoordinatorNotAvailable)?;
    if leader == broker.config.node_id {
        return Ok(me(broker));
    }
    image
        .brokers
        .get(&leader)
        .filter(|b| !b.fenced)
        .map(|b| (b.id, b.host.clone(), b.port as i32))
        .ok_or(ResponseError::CoordinatorNotAvailable)
}

fn me(broker: &Broker) -> Found {
    let adv = broker.config.advertised();
    (broker.config.node_id, adv.host.clone(), adv.port as i32)
}
