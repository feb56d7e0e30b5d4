//! DeleteGroups: removes empty groups and their committed offsets.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use kafka_protocol::ResponseError;

use crate::Broker;

pub fn handle(
    broker: &Broker,
    _version: i16,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let coordinator = &broker.groups;
    let mut groups = coordinator.lock();
    let results = request
        .groups_names
        .into_iter()
        .map(|id| {
            let code = match groups.get(id.0.as_str()) {
                _ if id.0.is_empty() => ResponseError::InvalidGroupId.code(),
                None => ResponseError::GroupIdNotFound.code(),
                Some(g) if !g.is_empty() => ResponseError::NonEmptyGroup.code(),
                Some(g) => match coordinator.forget(&broker.replicas, g) {
                    Ok(()) => {
                        groups.remove(id.0.as_str());
                        0
                    }
                    Err(e) => e.code(),
                },
            };
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(code)
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
