//! ConsumerGroupDescribe (KIP-848): members, epochs and assignments.

use std::collections::BTreeSet;

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName,
};
use kafka_protocol::ResponseError;

use super::common::str_bytes;
use crate::group::assignor::TopicPartition;
use crate::metadata::MetadataImage;
use crate::Broker;

pub fn handle(
    broker: &Broker,
    _version: i16,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let image = broker.controller.image();
    let groups = broker.groups.lock();
    let described = request
        .group_ids
        .into_iter()
        .map(|id| {
            let d = DescribedGroup::default().with_group_id(id.clone());
            if let Err(e) = broker.groups.status(id.0.as_str()) {
                return d.with_error_code(e.code());
            }
            let g = match groups.get(id.0.as_str()) {
                Some(g) if g.state == crate::group::GroupState::Empty => g,
                Some(_) => {
                    return d
                        .with_error_code(ResponseError::GroupIdNotFound.code())
                        .with_error_message(Some(str_bytes("the group uses the classic protocol")))
                }
                None => {
                    return d
                        .with_error_code(ResponseError::GroupIdNotFound.code())
                        .with_error_message(Some(str_bytes(format!("group '{}' not found", id.0))))
                }
            };
            let c = &g.consumer;
            let members = c
                .members
                .values()
                .map(|m| {
                    Member::default()
                        .with_member_id(str_bytes(m.id.clone()))
                        .with_instance_id(m.instance_id.clone().map(str_bytes))
                        .with_rack_id(m.rack_id.clone().map(str_bytes))
                        .with_member_epoch(m.epoch)
                        .with_client_id(str_bytes(m.client_id.clone()))
                        .with_client_host(str_bytes(m.client_host.clone()))
                        .with_subscribed_topic_names(
                            m.subscribed
                                .iter()
                                .map(|t| TopicName(str_bytes(t.clone())))
                                .collect(),
                        )
                        .with_subscribed_topic_regex(
                            m.subscribed_regex
                                .as_ref()
                                .map(|r| str_bytes(r.source.clone())),
                        )
                        .with_member_type(if m.classic.is_some() { 0 } else { 1 })
                        .with_assignment(assignment(&image, &m.assigned))
                        .with_target_assignment(assignment(
                            &image,
                            c.target.get(&m.id).unwrap_or(&BTreeSet::new()),
                        ))
                })
                .collect();
            d.with_group_state(str_bytes(g.state_name()))
                .with_group_epoch(c.epoch)
                .with_assignment_epoch(c.assignment_epoch)
                .with_assignor_name(str_bytes(crate::group::assignor::UNIFORM))
                .with_members(members)
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(described)
}

fn assignment(image: &MetadataImage, set: &BTreeSet<TopicPartition>) -> Assignment {
    let mut by_topic: std::collections::BTreeMap<uuid::Uuid, Vec<i32>> = Default::default();
    for (t, p) in set {
        by_topic.entry(*t).or_default().push(*p);
    }
    Assignment::default().with_topic_partitions(
        by_topic
            .into_iter()
            .map(|(t, ps)| {
                let name = image
                    .topic_by_id(&t)
                    .map(|t| t.name.clone())
                    .unwrap_or_default();
                TopicPartitions::default()
                    .with_topic_id(t)
                    .with_topic_name(TopicName(str_bytes(name)))
                    .with_partitions(ps)
            })
            .collect(),
    )
}
