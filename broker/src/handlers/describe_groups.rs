//! DescribeGroups: state, protocol and members (with metadata and assignment).

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::ResponseError;

use super::common::str_bytes;
use crate::group::GroupState;
use crate::Broker;

pub fn handle(
    broker: &Broker,
    version: i16,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let groups = broker.groups.lock();
    let described = request
        .groups
        .into_iter()
        .map(|id| {
            let d = DescribedGroup::default().with_group_id(id.clone());
            if id.0.is_empty() {
                return d.with_error_code(ResponseError::InvalidGroupId.code());
            }
            if let Err(e) = broker.groups.status(id.0.as_str()) {
                return d.with_error_code(e.code());
            }
            let Some(g) = groups.get(id.0.as_str()) else {
                // Kafka describes unknown groups as Dead, and from v6 says why.
                let d = d.with_group_state(str_bytes(GroupState::Dead.name()));
                return if version >= 6 {
                    d.with_error_code(ResponseError::GroupIdNotFound.code())
                        .with_error_message(Some(str_bytes(format!("group '{}' not found", id.0))))
                } else {
                    d
                };
            };
            if !g.consumer.members.is_empty() {
                // A consumer-protocol group: Kafka's tools use ConsumerGroupDescribe
                // for details; here it is named with its state and members.
                let members = g
                    .consumer
                    .members
                    .values()
                    .map(|m| {
                        DescribedGroupMember::default()
                            .with_member_id(str_bytes(m.id.clone()))
                            .with_client_id(str_bytes(m.client_id.clone()))
                            .with_client_host(str_bytes(m.client_host.clone()))
                    })
                    .collect();
                return d
                    .with_group_state(str_bytes(g.state_name()))
                    .with_protocol_type(str_bytes("consumer"))
                    .with_members(members);
            }
            // Member details only make sense once a protocol is chosen.
            let show_members = matches!(
                g.state,
                GroupState::Stable | GroupState::CompletingRebalance
            );
            let protocol = g.protocol.clone().unwrap_or_default();
            let mut members: Vec<_> = g.members.values().collect();
            members.sort_by_key(|m| m.joined_seq);
            let members = members
                .into_iter()
                .map(|m| {
                    let d = DescribedGroupMember::default()
                        .with_member_id(str_bytes(m.id.clone()))
                        .with_client_id(str_bytes(m.client_id.clone()))
                        .with_client_host(str_bytes(m.client_host.clone()))
                        .with_member_metadata(if show_members {
                            m.metadata_for(&protocol)
                        } else {
                            Default::default()
                        })
                        .with_member_assignment(if show_members {
                            m.assignment.clone()
                        } else {
                            Default::default()
                        });
                    if version >= 4 {
                        d.with_group_instance_id(m.instance_id.clone().map(str_bytes))
                    } else {
                        d
                    }
                })
                .collect();
            d.with_group_state(str_bytes(g.state.name()))
                .with_protocol_type(str_bytes(g.protocol_type.clone().unwrap_or_default()))
                .with_protocol_data(str_bytes(if show_members {
                    protocol
                } else {
                    String::new()
                }))
                .with_members(members)
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(described)
}
