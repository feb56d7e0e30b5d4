//! Group coordinator requests, built for whatever version the connection
//! negotiated (fields a version lacks are left at their defaults, since the
//! codec refuses to encode them), and their answers turned into results.
//!
//! Free functions over a [`Connection`]: the group consumer keeps its own
//! coordinator connection (JoinGroup blocks the connection it is sent on
//! until the rebalance completes), admin calls use the client's pool.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::{BrokerInfo, ClientError, Connection};

/// Committed offsets by (topic, partition); partitions with none are left out.
pub type Offsets = BTreeMap<(String, i32), i64>;

pub(crate) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn group_id(s: &str) -> GroupId {
    GroupId(str_bytes(s))
}

/// Who is asking: the member's identity in its current generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberIdentityRef<'a> {
    pub group_id: &'a str,
    /// -1 with an empty member id commits as an admin (groups without members).
    pub generation_id: i32,
    pub member_id: &'a str,
    pub group_instance_id: Option<&'a str>,
}

impl MemberIdentityRef<'_> {
    fn instance(&self, version: i16, since: i16) -> Option<StrBytes> {
        self.group_instance_id
            .filter(|_| version >= since)
            .map(str_bytes)
    }
}

/// FindCoordinator for a group (key type 0).
pub async fn find_coordinator(conn: &Connection, group: &str) -> Result<BrokerInfo, ClientError> {
    let version = conn.version(ApiKey::FindCoordinator)?;
    let context = format!("find coordinator of group '{group}'");
    let response = conn.send(find_coordinator_request(version, group)).await?;
    if version >= 4 {
        let c = response.coordinators.first().ok_or_else(|| {
            ClientError::UnexpectedResponse(format!("{context}: no coordinator entry"))
        })?;
        ClientError::check(c.error_code, context, c.error_message.as_deref())?;
        return Ok(BrokerInfo {
            node_id: c.node_id.0,
            host: c.host.to_string(),
            port: c.port,
            rack: None,
        });
    }
    ClientError::check(
        response.error_code,
        context,
        response.error_message.as_deref(),
    )?;
    Ok(BrokerInfo {
        node_id: response.node_id.0,
        host: response.host.to_string(),
        port: response.port,
        rack: None,
    })
}

fn find_coordinator_request(version: i16, group: &str) -> FindCoordinatorRequest {
    let mut request = FindCoordinatorRequest::default();
    if version >= 4 {
        request.coordinator_keys = vec![str_bytes(group)];
    } else {
        request.key = str_bytes(group);
    }
    request
}

/// What a JoinGroup carries besides the member id.
#[derive(Debug, Clone)]
pub struct JoinParams<'a> {
    pub group_id: &'a str,
    pub group_instance_id: Option<&'a str>,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: &'a str,
    /// (name, metadata) in order of preference.
    pub protocols: Vec<(&'static str, Bytes)>,
    pub reason: Option<&'a str>,
}

/// Sends JoinGroup and waits up to `timeout_ms` (the broker holds it for the
/// whole rebalance). The response's error code is left for the caller.
pub async fn join_group(
    conn: &Connection,
    params: &JoinParams<'_>,
    member_id: &str,
    timeout_ms: u64,
) -> Result<JoinGroupResponse, ClientError> {
    let version = conn.version(ApiKey::JoinGroup)?;
    let request = join_request(version, params, member_id);
    conn.send_with_timeout(request, timeout_ms).await
}

fn join_request(version: i16, params: &JoinParams<'_>, member_id: &str) -> JoinGroupRequest {
    let mut request = JoinGroupRequest::default()
        .with_group_id(group_id(params.group_id))
        .with_session_timeout_ms(params.session_timeout_ms)
        .with_member_id(str_bytes(member_id))
        .with_protocol_type(str_bytes(params.protocol_type))
        .with_protocols(
            params
                .protocols
                .iter()
                .map(|(name, metadata)| {
                    JoinGroupRequestProtocol::default()
                        .with_name(StrBytes::from_static_str(name))
                        .with_metadata(metadata.clone())
                })
                .collect(),
        );
    if version >= 1 {
        request.rebalance_timeout_ms = params.rebalance_timeout_ms;
    }
    if version >= 5 {
        request.group_instance_id = params.group_instance_id.map(str_bytes);
    }
    if version >= 8 {
        request.reason = params.reason.map(str_bytes);
    }
    request
}

/// Sends SyncGroup; returns (error code, assignment bytes).
pub async fn sync_group(
    conn: &Connection,
    who: &MemberIdentityRef<'_>,
    protocol: (&str, &str),
    assignments: Vec<(String, Bytes)>,
    timeout_ms: u64,
) -> Result<(i16, Bytes), ClientError> {
    let version = conn.version(ApiKey::SyncGroup)?;
    let request = sync_request(version, who, protocol, assignments);
    let response = conn.send_with_timeout(request, timeout_ms).await?;
    Ok((response.error_code, response.assignment))
}

fn sync_request(
    version: i16,
    who: &MemberIdentityRef<'_>,
    protocol: (&str, &str),
    assignments: Vec<(String, Bytes)>,
) -> SyncGroupRequest {
    let mut request = SyncGroupRequest::default()
        .with_group_id(group_id(who.group_id))
        .with_generation_id(who.generation_id)
        .with_member_id(str_bytes(who.member_id))
        .with_group_instance_id(who.instance(version, 3))
        .with_assignments(
            assignments
                .into_iter()
                .map(|(member, bytes)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(StrBytes::from_string(member))
                        .with_assignment(bytes)
                })
                .collect(),
        );
    if version >= 5 {
        request.protocol_type = Some(str_bytes(protocol.0));
        request.protocol_name = Some(str_bytes(protocol.1));
    }
    request
}

/// Sends Heartbeat; returns the error code.
pub async fn heartbeat(conn: &Connection, who: &MemberIdentityRef<'_>) -> Result<i16, ClientError> {
    let version = conn.version(ApiKey::Heartbeat)?;
    let request = HeartbeatRequest::default()
        .with_group_id(group_id(who.group_id))
        .with_generation_id(who.generation_id)
        .with_member_id(str_bytes(who.member_id))
        .with_group_instance_id(who.instance(version, 3));
    Ok(conn.send(request).await?.error_code)
}

/// Sends LeaveGroup for one member (batched form on v3+).
pub async fn leave_group(
    conn: &Connection,
    who: &MemberIdentityRef<'_>,
    reason: &str,
) -> Result<(), ClientError> {
    let version = conn.version(ApiKey::LeaveGroup)?;
    let response = conn.send(leave_request(version, who, reason)).await?;
    let context = format!("leave group '{}'", who.group_id);
    ClientError::check(response.error_code, context.clone(), None)?;
    for m in &response.members {
        ClientError::check(m.error_code, context.clone(), None)?;
    }
    Ok(())
}

fn leave_request(version: i16, who: &MemberIdentityRef<'_>, reason: &str) -> LeaveGroupRequest {
    let mut request = LeaveGroupRequest::default().with_group_id(group_id(who.group_id));
    if version >= 3 {
        let mut member = MemberIdentity::default()
            .with_member_id(str_bytes(who.member_id))
            .with_group_instance_id(who.group_instance_id.map(str_bytes));
        if version >= 5 {
            member.reason = Some(str_bytes(reason));
        }
        request.members = vec![member];
    } else {
        request.member_id = str_bytes(who.member_id);
    }
    request
}

/// Commits `offsets`; the first partition error is returned.
pub async fn commit_offsets(
    conn: &Connection,
    who: &MemberIdentityRef<'_>,
    offsets: &Offsets,
) -> Result<(), ClientError> {
    if offsets.is_empty() {
        return Ok(());
    }
    let version = conn.version(ApiKey::OffsetCommit)?;
    let response = conn.send(commit_request(version, who, offsets)).await?;
    for t in &response.topics {
        for p in &t.partitions {
            let context = format!(
                "commit offset of {}-{} for group '{}'",
                t.name.0, p.partition_index, who.group_id
            );
            ClientError::check(p.error_code, context, None)?;
        }
    }
    Ok(())
}

fn commit_request(
    version: i16,
    who: &MemberIdentityRef<'_>,
    offsets: &Offsets,
) -> OffsetCommitRequest {
    let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((topic, partition), offset) in offsets {
        topics.entry(topic).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset),
        );
    }
    OffsetCommitRequest::default()
        .with_group_id(group_id(who.group_id))
        .with_generation_id_or_member_epoch(who.generation_id)
        .with_member_id(str_bytes(who.member_id))
        .with_group_instance_id(who.instance(version, 7))
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(str_bytes(name)))
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

/// Committed offsets of `group`: for the given topics and partitions, or for
/// everything the group has committed when `topics` is `None`.
pub async fn fetch_offsets(
    conn: &Connection,
    group: &str,
    topics: Option<&BTreeMap<String, Vec<i32>>>,
) -> Result<Offsets, ClientError> {
    let version = conn.version(ApiKey::OffsetFetch)?;
    let request =
        fetch_request(version, group, topics).ok_or_else(|| ClientError::UnsupportedApi {
            api: "OffsetFetch (all topics, v2+)",
            addr: conn.addr().to_owned(),
        })?;
    let response = conn.send(request).await?;
    let context = format!("fetch committed offsets of group '{group}'");
    let mut out = Offsets::new();
    let mut keep = |topic: &str, partition: i32, offset: i64, code: i16| {
        let ctx = format!("{context}: {topic}-{partition}");
        ClientError::check(code, ctx, None)?;
        if offset >= 0 {
            out.insert((topic.to_owned(), partition), offset);
        }
        Ok::<(), ClientError>(())
    };
    if version >= 8 {
        for g in &response.groups {
            ClientError::check(g.error_code, context.clone(), None)?;
            for t in &g.topics {
                for p in &t.partitions {
                    let name = t.name.0.as_str();
                    keep(name, p.partition_index, p.committed_offset, p.error_code)?;
                }
            }
        }
        return Ok(out);
    }
    ClientError::check(response.error_code, context.clone(), None)?;
    for t in &response.topics {
        for p in &t.partitions {
            let name = t.name.0.as_str();
            keep(name, p.partition_index, p.committed_offset, p.error_code)?;
        }
    }
    Ok(out)
}

/// `None` when asking for all topics at v1, which cannot express it.
fn fetch_request(
    version: i16,
    group: &str,
    topics: Option<&BTreeMap<String, Vec<i32>>>,
) -> Option<OffsetFetchRequest> {
    if version >= 8 {
        let wanted = topics.map(|ts| {
            ts.iter()
                .map(|(t, ps)| {
                    OffsetFetchRequestTopics::default()
                        .with_name(TopicName(str_bytes(t)))
                        .with_partition_indexes(ps.clone())
                })
                .collect()
        });
        // v8+ leaves the top-level topics empty (the codec wants Some(empty), not None).
        return Some(OffsetFetchRequest::default().with_groups(
            vec![OffsetFetchRequestGroup::default()
                .with_group_id(group_id(group))
                .with_topics(wanted)],
        ));
    }
    let wanted = match topics {
        Some(ts) => Some(
            ts.iter()
                .map(|(t, ps)| {
                    OffsetFetchRequestTopic::default()
                        .with_name(TopicName(str_bytes(t)))
                        .with_partition_indexes(ps.clone())
                })
                .collect(),
        ),
        None if version >= 2 => None,
        None => return None,
    };
    Some(
        OffsetFetchRequest::default()
            .with_group_id(group_id(group))
            .with_topics(wanted),
    )
}

#[cfg(test)]
mod tests {
    use kafka_protocol::protocol::{Encodable, Message};

    use super::*;

    fn encodes<M: Encodable + Message>(build: impl Fn(i16) -> Option<M>) {
        for v in M::VERSIONS.min..=M::VERSIONS.max {
            if let Some(m) = build(v) {
                let mut buf = bytes::BytesMut::new();
                m.encode(&mut buf, v)
                    .unwrap_or_else(|e| panic!("{} v{v}: {e}", std::any::type_name::<M>()));
            }
        }
    }

    /// Every request this module builds encodes at every version the codec
    /// knows: a field set on a version that lacks it is an encode error.
    #[test]
    fn requests_encode_at_every_version() {
        let who = MemberIdentityRef {
            group_id: "g",
            generation_id: 3,
            member_id: "m-1",
            group_instance_id: Some("i-1"),
        };
        let params = JoinParams {
            group_id: "g",
            group_instance_id: Some("i-1"),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 60_000,
            protocol_type: "consumer",
            protocols: vec![("range", Bytes::from_static(b"x"))],
            reason: Some("r"),
        };
        let mut offsets = Offsets::new();
        offsets.insert(("t".to_owned(), 0), 5);
        let topics: BTreeMap<String, Vec<i32>> = [("t".to_owned(), vec![0, 1])].into();
        encodes(|v| Some(find_coordinator_request(v, "g")));
        encodes(|v| Some(join_request(v, &params, "m-1")));
        encodes(|v| {
            Some(sync_request(
                v,
                &who,
                ("consumer", "range"),
                vec![("m-1".into(), Bytes::new())],
            ))
        });
        encodes(|v| Some(leave_request(v, &who, "bye")));
        encodes(|v| Some(commit_request(v, &who, &offsets)));
        encodes(|v| fetch_request(v, "g", Some(&topics)));
        encodes(|v| fetch_request(v, "g", None));
        assert!(fetch_request(1, "g", None).is_none());
    }
}
