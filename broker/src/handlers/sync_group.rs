//! SyncGroup: the leader hands out assignments; every member gets its own.

use std::time::Duration;

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::ResponseError;

use super::common::str_bytes;
use crate::group::member::SyncResult;
use crate::group::SyncOutcome;
use crate::{now_ms, Broker};

pub async fn handle(broker: &Broker, version: i16, request: SyncGroupRequest) -> SyncGroupResponse {
    let coordinator = &broker.groups;
    let group_id = request.group_id.0.to_string();
    let fail = |e: ResponseError| {
        response(
            version,
            SyncResult {
                error: e.code(),
                ..Default::default()
            },
        )
    };
    if group_id.is_empty() {
        return fail(ResponseError::InvalidGroupId);
    }
    let assignments = request
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    let (outcome, wait_ms, write) = {
        let mut groups = match coordinator.lock_group(&group_id) {
            Ok(groups) => groups,
            Err(e) => return fail(e),
        };
        let Some(g) = groups.get_mut(&group_id) else {
            return fail(ResponseError::UnknownMemberId);
        };
        if g.is_consumer_group() {
            // Classic member of a consumer group: the server assigned already.
            let topics = crate::group::mixed::topics_of(&broker.controller.image());
            let r = g.sync_consumer_group(
                request.member_id.as_str(),
                request.generation_id,
                &topics,
                now_ms(),
            );
            return response(version, r);
        }
        let mismatch = |given: &Option<kafka_protocol::protocol::StrBytes>,
                        have: &Option<String>| {
            given
                .as_ref()
                .is_some_and(|x| have.as_deref() != Some(x.as_str()))
        };
        if mismatch(&request.protocol_type, &g.protocol_type)
            || mismatch(&request.protocol_name, &g.protocol)
        {
            return fail(ResponseError::InconsistentGroupProtocol);
        }
        let wait_ms = g
            .members
            .get(request.member_id.as_str())
            .map(|m| m.rebalance_timeout_ms)
            .unwrap_or(0);
        let instance = request.group_instance_id.as_ref().map(|s| s.to_string());
        let outcome = g.sync(
            request.member_id.as_str(),
            instance.as_deref(),
            request.generation_id,
            assignments,
            now_ms(),
            coordinator.cfg,
        );
        let write = coordinator.persist_if_changed(broker, g);
        (outcome, wait_ms, write)
    };
    // The leader's sync stores the new generation: answered once committed.
    let written = match write {
        Ok(w) => coordinator.commit(broker, w).await.map_err(|e| e.code()),
        Err(e) => Err(e.code()),
    };
    if let Err(code) = written {
        return response(
            version,
            SyncResult {
                error: code,
                ..Default::default()
            },
        );
    }
    let result = match outcome {
        SyncOutcome::Now(r) => r,
        SyncOutcome::Wait(rx) => {
            match tokio::time::timeout(Duration::from_millis(wait_ms as u64 + 5_000), rx).await {
                Ok(Ok(r)) => r,
                // A dropped answer may mean the group was unloaded.
                _ => {
                    let e = coordinator
                        .lock_group(&group_id)
                        .err()
                        .unwrap_or(ResponseError::RebalanceInProgress);
                    SyncResult {
                        error: e.code(),
                        ..Default::default()
                    }
                }
            }
        }
    };
    response(version, result)
}

fn response(version: i16, r: SyncResult) -> SyncGroupResponse {
    let (protocol_type, protocol_name) = if version >= 5 {
        (
            r.protocol_type.map(str_bytes),
            r.protocol_name.map(str_bytes),
        )
    } else {
        (None, None)
    };
    SyncGroupResponse::default()
        .with_error_code(r.error)
        .with_protocol_type(protocol_type)
        .with_protocol_name(protocol_name)
        .with_assignment(r.assignment)
}
