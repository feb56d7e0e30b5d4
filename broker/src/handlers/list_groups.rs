//! ListGroups: every group this node coordinates (of loaded partitions),
//! optionally filtered by state (v4+) and type (v5+).

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::common::str_bytes;
use crate::Broker;

pub fn handle(broker: &Broker, version: i16, request: ListGroupsRequest) -> ListGroupsResponse {
    let states: Vec<String> = request
        .states_filter
        .iter()
        .map(|s| s.to_lowercase())
        .collect();
    let types: Vec<String> = request
        .types_filter
        .iter()
        .map(|s| s.to_lowercase())
        .collect();
    let groups = broker.groups.lock();
    let mut listed: Vec<ListedGroup> = groups
        .values()
        .filter(|g| broker.groups.is_loaded(&g.id))
        .filter(|g| states.is_empty() || states.contains(&g.state_name().to_lowercase()))
        .filter(|g| types.is_empty() || types.iter().any(|t| t == group_type(g)))
        .map(|g| {
            let l = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(g.id.clone())))
                .with_protocol_type(str_bytes(protocol_type(g)));
            let l = if version >= 4 {
                l.with_group_state(str_bytes(g.state_name()))
            } else {
                l
            };
            if version >= 5 {
                l.with_group_type(str_bytes(group_type(g)))
            } else {
                l
            }
        })
        .collect();
    listed.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
    ListGroupsResponse::default().with_groups(listed)
}

fn group_type(g: &crate::group::Group) -> &'static str {
    if g.consumer.members.is_empty() {
        "classic"
    } else {
        "consumer"
    }
}

fn protocol_type(g: &crate::group::Group) -> String {
    if g.consumer.members.is_empty() {
        g.protocol_type.clone().unwrap_or_default()
    } else {
        "consumer".to_string()
    }
}
