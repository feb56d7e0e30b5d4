//! Heartbeat: keeps a member's session alive and tells it about rebalances.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use kafka_protocol::ResponseError;

use crate::{now_ms, Broker};

pub fn handle(broker: &Broker, _version: i16, request: HeartbeatRequest) -> HeartbeatResponse {
    let group_id = request.group_id.0.as_str();
    if group_id.is_empty() {
        return HeartbeatResponse::default().with_error_code(ResponseError::InvalidGroupId.code());
    }
    let mut groups = match broker.groups.lock_group(group_id) {
        Ok(groups) => groups,
        Err(e) => return HeartbeatResponse::default().with_error_code(e.code()),
    };
    let result = match groups.get_mut(group_id) {
        None => Err(ResponseError::UnknownMemberId),
        Some(g) => {
            let instance = request.group_instance_id.as_ref().map(|s| s.to_string());
            g.heartbeat(
                request.member_id.as_str(),
                instance.as_deref(),
                request.generation_id,
                now_ms(),
            )
        }
    };
    HeartbeatResponse::default().with_error_code(result.err().map_or(0, |e| e.code()))
}
