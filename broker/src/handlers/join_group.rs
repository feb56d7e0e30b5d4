//! JoinGroup: enter a group's rebalance; answered when the rebalance completes.

use std::time::Duration;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::ResponseError;

use super::common::{str_bytes, RequestContext};
use crate::group::member::JoinResult;
use crate::group::{Group, JoinOutcome, JoinRequest};
use crate::{now_ms, Broker};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    version: i16,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    let group_id = request.group_id.0.to_string();
    let coordinator = &broker.groups;
    let fail = |e: ResponseError| response(version, error(e, &request.member_id));
    if group_id.is_empty() {
        return fail(ResponseError::InvalidGroupId);
    }
    if !(coordinator.session_timeout_ms_min..=coordinator.session_timeout_ms_max)
        .contains(&request.session_timeout_ms)
    {
        return fail(ResponseError::InvalidSessionTimeout);
    }
    // v0 has no rebalance timeout: it is the session timeout.
    let rebalance_timeout_ms = if version == 0 {
        request.session_timeout_ms
    } else {
        request.rebalance_timeout_ms.max(0)
    };
    let join = JoinRequest {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: ctx.client_id.clone(),
        client_host: ctx.client_host(),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms,
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let (outcome, write) = {
        let mut groups = match coordinator.lock_group(&group_id) {
            Ok(groups) => groups,
            Err(e) => return fail(e),
        };
        let g = groups
            .entry(group_id.clone())
            .or_insert_with(|| Group::new(&group_id));
        let outcome = if g.is_consumer_group() {
            let topics = crate::group::mixed::topics_of(&broker.controller.image());
            JoinOutcome::Now(g.join_consumer_group(
                join,
                &topics,
                now_ms(),
                coordinator.cfg.migration,
            ))
        } else {
            g.join(join, now_ms(), coordinator.cfg)
        };
        (outcome, coordinator.persist_if_changed(broker, g))
    };
    let written = match write {
        Ok(w) => coordinator.commit(broker, w).await.map_err(|e| e.code()),
        Err(e) => Err(e.code()),
    };
    if let Err(code) = written {
        return response(version, error_code(code, &request.member_id));
    }
    let result = match outcome {
        JoinOutcome::Now(r) => r,
        JoinOutcome::Wait(rx) => {
            // The rebalance completes within the rebalance timeout (the timer
            // task enforces it); the margin covers the timer's tick.
            let wait = Duration::from_millis(rebalance_timeout_ms as u64 + 5_000);
            match tokio::time::timeout(wait, rx).await {
                Ok(Ok(r)) => r,
                // A dropped answer may mean the group was unloaded: this
                // node stopped coordinating it.
                _ => match coordinator.lock_group(&group_id) {
                    Err(e) => error(e, &request.member_id),
                    Ok(_) => error(ResponseError::RebalanceInProgress, &request.member_id),
                },
            }
        }
    };
    response(version, result)
}

fn error(e: ResponseError, member_id: &kafka_protocol::protocol::StrBytes) -> JoinResult {
    error_code(e.code(), member_id)
}

fn error_code(code: i16, member_id: &kafka_protocol::protocol::StrBytes) -> JoinResult {
    JoinResult {
        error: code,
        generation: -1,
        member_id: member_id.to_string(),
        ..Default::default()
    }
}

fn response(version: i16, r: JoinResult) -> JoinGroupResponse {
    let members = r
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            let m = JoinGroupResponseMember::default()
                .with_member_id(str_bytes(id))
                .with_metadata(metadata);
            if version >= 5 {
                m.with_group_instance_id(instance.map(str_bytes))
            } else {
                m
            }
        })
        .collect();
    JoinGroupResponse::default()
        .with_error_code(r.error)
        .with_generation_id(r.generation)
        .with_protocol_type(if version >= 7 {
            r.protocol_type.map(str_bytes)
        } else {
            None
        })
        .with_protocol_name(r.protocol_name.map(str_bytes))
        .with_leader(str_bytes(r.leader))
        .with_member_id(str_bytes(r.member_id))
        .with_members(members)
}
