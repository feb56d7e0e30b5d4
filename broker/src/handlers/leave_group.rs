//! LeaveGroup: members leave (one in v0-2, a batch from v3); answered once
//! the group's new membership is committed.

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::ResponseError;

use crate::{now_ms, Broker};

pub async fn handle(
    broker: &Broker,
    version: i16,
    request: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let coordinator = &broker.groups;
    let group_id = request.group_id.0.to_string();
    if group_id.is_empty() {
        return LeaveGroupResponse::default().with_error_code(ResponseError::InvalidGroupId.code());
    }
    let leaving: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let (results, write) = {
        let mut groups = match coordinator.lock_group(&group_id) {
            Ok(groups) => groups,
            Err(e) => return LeaveGroupResponse::default().with_error_code(e.code()),
        };
        let Some(g) = groups.get_mut(&group_id) else {
            return LeaveGroupResponse::default()
                .with_error_code(ResponseError::UnknownMemberId.code());
        };
        let results: Vec<(String, Option<String>, i16)> = leaving
            .into_iter()
            .map(|(member, instance)| {
                let code = g
                    .leave(&member, instance.as_deref(), now_ms(), coordinator.cfg)
                    .err()
                    .map_or(0, |e| e.code());
                (member, instance, code)
            })
            .collect();
        (results, coordinator.persist_if_changed(broker, g))
    };
    let written = match write {
        Ok(w) => coordinator.commit(broker, w).await.map_err(|e| e.code()),
        Err(e) => Err(e.code()),
    };
    if let Err(code) = written {
        return LeaveGroupResponse::default().with_error_code(code);
    }
    if version < 3 {
        return LeaveGroupResponse::default().with_error_code(results[0].2);
    }
    let members = results
        .into_iter()
        .map(|(member, instance, code)| {
            MemberResponse::default()
                .with_member_id(super::common::str_bytes(member))
                .with_group_instance_id(instance.map(super::common::str_bytes))
                .with_error_code(code)
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}
