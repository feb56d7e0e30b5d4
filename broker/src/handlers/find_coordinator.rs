//! FindCoordinator: this node coordinates every group (and, once they exist,
//! transactions), as the leader of every `__consumer_offsets` partition.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::common::str_bytes;
use crate::Broker;

const KEY_GROUP: i8 = 0;
const KEY_TRANSACTION: i8 = 1;

pub fn handle(
    broker: &Broker,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let me = broker.config.advertised();
    let node = BrokerId(broker.config.node_id);
    let error = match request.key_type {
        KEY_GROUP | KEY_TRANSACTION => None,
        _ => Some(ResponseError::InvalidRequest),
    };
    if version < 4 {
        let r = FindCoordinatorResponse::default();
        return match error {
            Some(e) => r
                .with_error_code(e.code())
                .with_node_id(BrokerId(-1))
                .with_port(-1),
            None => r
                .with_node_id(node)
                .with_host(str_bytes(me.host.clone()))
                .with_port(me.port as i32),
        };
    }
    let coordinators = request
        .coordinator_keys
        .into_iter()
        .map(|key: StrBytes| {
            let c = Coordinator::default().with_key(key);
            match error {
                Some(e) => c
                    .with_error_code(e.code())
                    .with_node_id(BrokerId(-1))
                    .with_port(-1),
                None => c
                    .with_node_id(node)
                    .with_host(str_bytes(me.host.clone()))
                    .with_port(me.port as i32),
            }
        })
        .collect();
    FindCoordinatorResponse::default().with_coordinators(coordinators)
}
