//! ConsumerGroupHeartbeat (KIP-848): join, stay, reconcile and leave in one API.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::ResponseError;

use super::common::{str_bytes, RequestContext};
use crate::group::consumer::Heartbeat;
use crate::group::{Group, GroupState};
use crate::{now_ms, Broker};

pub fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    version: i16,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let coordinator = &broker.groups;
    let group_id = request.group_id.0.to_string();
    let fail = |e: ResponseError, why: &str| {
        ConsumerGroupHeartbeatResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(str_bytes(why)))
            .with_member_epoch(-1)
    };
    if group_id.is_empty() {
        return fail(ResponseError::InvalidGroupId, "group id is empty");
    }
    // v0: the coordinator names new members; v1+: the client does (KIP-1082).
    let member_id = if request.member_id.is_empty() && request.member_epoch == 0 && version == 0 {
        uuid::Uuid::new_v4().to_string()
    } else {
        request.member_id.to_string()
    };
    let topics = crate::group::mixed::topics_of(&broker.controller.image());
    let hb = Heartbeat {
        member_id,
        epoch: request.member_epoch,
        instance_id: request.instance_id.as_ref().map(|s| s.to_string()),
        rack_id: request.rack_id.as_ref().map(|s| s.to_string()),
        client_id: ctx.client_id.clone(),
        client_host: ctx.client_host(),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed: request
            .subscribed_topic_names
            .as_ref()
            .map(|ts| ts.iter().map(|t| t.0.to_string()).collect()),
        subscribed_regex: request
            .subscribed_topic_regex
            .as_ref()
            .map(|s| s.to_string()),
        server_assignor: request.server_assignor.as_ref().map(|s| s.to_string()),
        owned: request.topic_partitions.as_ref().map(|tps| {
            tps.iter()
                .flat_map(|tp| tp.partitions.iter().map(move |p| (tp.topic_id, *p)))
                .collect::<BTreeSet<_>>()
        }),
    };
    let mut groups = match coordinator.lock_group(&group_id) {
        Ok(groups) => groups,
        Err(e) => return fail(e, "this node does not coordinate the group now"),
    };
    let g = groups
        .entry(group_id.clone())
        .or_insert_with(|| Group::new(&group_id));
    if g.state != GroupState::Empty || !g.members.is_empty() {
        if let Err(e) = g.upgrade(&topics, coordinator.cfg.migration) {
            return fail(
                e,
                "the group uses the classic protocol and cannot be converted \
                 (group.consumer.migration.policy, or members not on the consumer protocol type)",
            );
        }
    }
    let leaving = request.member_epoch < 0;
    let result = g
        .consumer
        .heartbeat(hb, &topics, now_ms(), coordinator.consumer_cfg);
    if leaving {
        g.maybe_downgrade(now_ms(), coordinator.cfg);
    }
    match result {
        Ok(reply) => {
            let assignment = reply.assignment.map(|set| {
                let mut by_topic: BTreeMap<uuid::Uuid, Vec<i32>> = BTreeMap::new();
                for (t, p) in set {
                    by_topic.entry(t).or_default().push(p);
                }
                Assignment::default().with_topic_partitions(
                    by_topic
                        .into_iter()
                        .map(|(t, ps)| {
                            TopicPartitions::default()
                                .with_topic_id(t)
                                .with_partitions(ps)
                        })
                        .collect(),
                )
            });
            ConsumerGroupHeartbeatResponse::default()
                .with_member_id(Some(str_bytes(reply.member_id)))
                .with_member_epoch(reply.epoch)
                .with_heartbeat_interval_ms(coordinator.consumer_heartbeat_ms)
                .with_assignment(assignment)
        }
        Err(e) => fail(e, "heartbeat refused"),
    }
}
