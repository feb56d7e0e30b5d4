//! OffsetCommit: stores consumed positions, for group members or (with
//! generation -1) for simple consumers of an empty group. Answered once the
//! offsets are committed in `__consumer_offsets`.

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::ResponseError;

use crate::group::store::{StoredKey, StoredValue};
use crate::group::{CommittedOffset, Group, GroupState, PendingWrite};
use crate::{now_ms, Broker};

pub async fn handle(
    broker: &Broker,
    version: i16,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let (mut topics, write) = append(broker, version, &request);
    // Waited for without the lock; the offsets are visible already, in the
    // order of the log, which is what a new coordinator would replay.
    if let Err(e) = broker.groups.commit(broker, write).await {
        fail_accepted(&mut topics, e.code());
    }
    OffsetCommitResponse::default().with_topics(topics)
}

/// Checks the commit, appends the accepted offsets and applies them, all
/// under the groups lock.
fn append(
    broker: &Broker,
    version: i16,
    request: &OffsetCommitRequest,
) -> (Vec<OffsetCommitResponseTopic>, Option<PendingWrite>) {
    let coordinator = &broker.groups;
    let group_id = request.group_id.0.to_string();
    let image = broker.controller.image();
    let now = now_ms();
    let mut groups = coordinator.lock();
    let group_error = if group_id.is_empty() {
        Some(ResponseError::InvalidGroupId)
    } else if let Err(e) = coordinator.status(&group_id) {
        Some(e)
    } else {
        let g = groups
            .entry(group_id.clone())
            .or_insert_with(|| Group::new(&group_id));
        check(g, request).err()
    };
    let mut entries = Vec::new();
    let mut accepted = Vec::new();
    let topics: Vec<OffsetCommitResponseTopic> = request
        .topics
        .iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let topic = image.topic(&name);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = if let Some(e) = group_error {
                        e.code()
                    } else if topic.is_none_or(|t| {
                        p.partition_index < 0 || p.partition_index as u32 >= t.partitions
                    }) {
                        ResponseError::UnknownTopicOrPartition.code()
                    } else if p
                        .committed_metadata
                        .as_ref()
                        .is_some_and(|m| m.len() > coordinator.offset_metadata_bytes_max)
                    {
                        ResponseError::OffsetMetadataTooLarge.code()
                    } else {
                        let offset = CommittedOffset {
                            offset: p.committed_offset,
                            leader_epoch: if version >= 6 {
                                p.committed_leader_epoch
                            } else {
                                -1
                            },
                            metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                            commit_ms: now,
                        };
                        let key = StoredKey::Offset {
                            group: group_id.clone(),
                            topic: name.clone(),
                            partition: p.partition_index,
                        };
                        entries.push((key, Some(StoredValue::Offset(offset.clone()))));
                        accepted.push(((name.clone(), p.partition_index), offset));
                        0
                    };
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    // Appended first, then visible; a failed append fails every partition it carried.
    let mut topics = topics;
    match coordinator.append(broker, &group_id, &entries) {
        Ok(write) => {
            if let Some(g) = groups.get_mut(&group_id) {
                g.offsets.extend(accepted);
            }
            (topics, write)
        }
        Err(e) => {
            fail_accepted(&mut topics, e.code());
            (topics, None)
        }
    }
}

/// Fails every partition that was accepted so far.
fn fail_accepted(topics: &mut [OffsetCommitResponseTopic], code: i16) {
    for t in topics {
        for p in &mut t.partitions {
            if p.error_code == 0 {
                p.error_code = code;
            }
        }
    }
}

/// Kafka's rules: members commit within their generation; others only while
/// the group has no members (generation -1 and no member id).
fn check(g: &Group, r: &OffsetCommitRequest) -> Result<(), ResponseError> {
    let instance = r.group_instance_id.as_ref().map(|s| s.as_str());
    let simple =
        r.generation_id_or_member_epoch < 0 && r.member_id.is_empty() && instance.is_none();
    if simple {
        return if g.is_empty() {
            Ok(())
        } else {
            Err(ResponseError::UnknownMemberId)
        };
    }
    if !g.consumer.members.is_empty() {
        return g
            .consumer
            .check_commit(r.member_id.as_str(), r.generation_id_or_member_epoch);
    }
    g.check_member(
        r.member_id.as_str(),
        instance,
        r.generation_id_or_member_epoch,
    )?;
    if g.state == GroupState::CompletingRebalance {
        return Err(ResponseError::RebalanceInProgress);
    }
    Ok(())
}
