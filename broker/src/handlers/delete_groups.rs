//! DeleteGroups: removes empty groups and their committed offsets; answered
//! once the tombstones are committed.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use kafka_protocol::ResponseError;

use crate::Broker;

pub async fn handle(
    broker: &Broker,
    _version: i16,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let coordinator = &broker.groups;
    // Each deletion's write, by its slot in `results`.
    let mut writes = Vec::new();
    let mut results: Vec<DeletableGroupResult> = {
        let mut groups = coordinator.lock();
        request
            .groups_names
            .into_iter()
            .enumerate()
            .map(|(slot, id)| {
                let status = coordinator.status(id.0.as_str());
                let code = match groups.get(id.0.as_str()) {
                    _ if id.0.is_empty() => ResponseError::InvalidGroupId.code(),
                    _ if status.is_err() => status.err().map_or(0, |e| e.code()),
                    None => ResponseError::GroupIdNotFound.code(),
                    Some(g) if !g.is_empty() => ResponseError::NonEmptyGroup.code(),
                    Some(g) => match coordinator.forget(broker, g) {
                        Ok(write) => {
                            groups.remove(id.0.as_str());
                            writes.extend(write.map(|w| (slot, w)));
                            0
                        }
                        Err(e) => e.code(),
                    },
                };
                DeletableGroupResult::default()
                    .with_group_id(id)
                    .with_error_code(code)
            })
            .collect()
    };
    for (slot, write) in writes {
        if let Err(e) = coordinator.commit(broker, Some(write)).await {
            results[slot].error_code = e.code();
        }
    }
    DeleteGroupsResponse::default().with_results(results)
}
