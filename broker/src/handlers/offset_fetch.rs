//! OffsetFetch: committed offsets of one group (v0-7) or of several (v8+).

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::ResponseError;

use super::common::str_bytes;
use crate::group::CommittedOffset;
use crate::Broker;

/// (topic, [(partition, committed)]) for one group.
type Found = Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>;

pub fn handle(broker: &Broker, version: i16, request: OffsetFetchRequest) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = request
            .groups
            .iter()
            .map(|g| {
                let wanted = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                        .collect::<Vec<_>>()
                });
                let (found, error) = lookup(broker, g.group_id.0.as_str(), wanted);
                let topics = found
                    .into_iter()
                    .map(|(t, ps)| {
                        let partitions = ps
                            .into_iter()
                            .map(|(p, o)| {
                                let (offset, epoch, meta) = parts(o);
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(epoch)
                                    .with_metadata(meta)
                            })
                            .collect();
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(str_bytes(t)))
                            .with_partitions(partitions)
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_topics(topics)
                    .with_error_code(error)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted = request.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect::<Vec<_>>()
    });
    let (found, error) = lookup(broker, request.group_id.0.as_str(), wanted);
    let topics = found
        .into_iter()
        .map(|(t, ps)| {
            let partitions = ps
                .into_iter()
                .map(|(p, o)| {
                    let (offset, epoch, meta) = parts(o);
                    let r = OffsetFetchResponsePartition::default()
                        .with_partition_index(p)
                        // v0-1 have no top-level error: each partition carries it.
                        .with_error_code(if version < 2 { error } else { 0 })
                        .with_committed_offset(offset)
                        .with_metadata(meta);
                    if version >= 5 {
                        r.with_committed_leader_epoch(epoch)
                    } else {
                        r
                    }
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(str_bytes(t)))
                .with_partitions(partitions)
        })
        .collect();
    let response = OffsetFetchResponse::default().with_topics(topics);
    if version >= 2 {
        response.with_error_code(error)
    } else {
        response
    }
}

fn parts(o: Option<CommittedOffset>) -> (i64, i32, Option<kafka_protocol::protocol::StrBytes>) {
    match o {
        Some(o) => (
            o.offset,
            o.leader_epoch,
            Some(str_bytes(o.metadata.unwrap_or_default())),
        ),
        None => (-1, -1, Some(str_bytes(""))),
    }
}

/// The committed offsets asked for (`None`: every committed one).
fn lookup(
    broker: &Broker,
    group_id: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> (Found, i16) {
    if group_id.is_empty() {
        return (Vec::new(), ResponseError::InvalidGroupId.code());
    }
    let groups = broker.groups.lock();
    // Not served here: the asked-for partitions without offsets, and why.
    let (g, error) = match broker.groups.status(group_id) {
        Ok(()) => (groups.get(group_id), 0),
        Err(e) => (None, e.code()),
    };
    let committed = |t: &str, p: i32| g.and_then(|g| g.offsets.get(&(t.to_string(), p)).cloned());
    let found = match wanted {
        Some(topics) => topics
            .into_iter()
            .map(|(t, ps)| {
                let ps = ps.into_iter().map(|p| (p, committed(&t, p))).collect();
                (t, ps)
            })
            .collect(),
        None => {
            let mut by_topic: std::collections::BTreeMap<
                String,
                Vec<(i32, Option<CommittedOffset>)>,
            > = Default::default();
            for ((t, p), o) in g.map(|g| g.offsets.iter()).into_iter().flatten() {
                by_topic
                    .entry(t.clone())
                    .or_default()
                    .push((*p, Some(o.clone())));
            }
            by_topic.into_iter().collect()
        }
    };
    (found, error)
}
