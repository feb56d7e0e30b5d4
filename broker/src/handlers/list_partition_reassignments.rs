//! ListPartitionReassignments: the moves in progress, with the replicas being
//! added and removed.

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};

use super::common::str_bytes;
use crate::metadata::TopicImage;
use crate::Broker;

pub fn handle(
    broker: &Broker,
    _version: i16,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let image = broker.controller.image();
    let wanted: Vec<(&TopicImage, Option<Vec<i32>>)> = match &request.topics {
        // Null: every partition of every topic.
        None => image.topics.values().map(|t| (&**t, None)).collect(),
        Some(list) => list
            .iter()
            .filter_map(|t| {
                image
                    .topic(t.name.as_str())
                    .map(|i| (&**i, Some(t.partition_indexes.clone())))
            })
            .collect(),
    };
    let ids = |v: &[i32]| v.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
    let topics = wanted
        .into_iter()
        .filter_map(|(t, only)| {
            let partitions: Vec<_> = t
                .partition_states
                .iter()
                .enumerate()
                .filter(|(i, p)| {
                    (!p.adding.is_empty() || !p.removing.is_empty())
                        && only.as_ref().is_none_or(|o| o.contains(&(*i as i32)))
                })
                .map(|(i, p)| {
                    OngoingPartitionReassignment::default()
                        .with_partition_index(i as i32)
                        .with_replicas(ids(&p.replicas))
                        .with_adding_replicas(ids(&p.adding))
                        .with_removing_replicas(ids(&p.removing))
                })
                .collect();
            (!partitions.is_empty()).then(|| {
                OngoingTopicReassignment::default()
                    .with_name(TopicName(str_bytes(t.name.clone())))
                    .with_partitions(partitions)
            })
        })
        .collect();
    ListPartitionReassignmentsResponse::default().with_topics(topics)
}
