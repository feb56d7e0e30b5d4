//! Typed Kafka requests over a plain `TcpStream`, encoded with the
//! `kafka-protocol` crate: for tests that need exact error codes (the group
//! protocol's bad-input tests) and for the group benchmarks. No client library
//! in between, so nothing retries or hides an error.

use std::io::Write;
use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, RequestHeader, ResponseHeader,
    SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use crate::wire::{connect, read_frame};

/// Kafka error codes the group tests check.
pub mod code {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const NON_EMPTY_GROUP: i16 = 68;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const FENCED_INSTANCE_ID: i16 = 82;
}

/// `s` as the protocol's string type.
pub fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// `s` as a group id.
pub fn gid(s: &str) -> GroupId {
    GroupId(sb(s))
}

/// One connection sending typed requests one at a time.
pub struct RawClient {
    stream: std::net::TcpStream,
    correlation: i32,
}

impl RawClient {
    /// Connects with the read/write timeouts of [`crate::wire::connect`].
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = connect(addr);
        stream.set_nodelay(true).expect("TCP_NODELAY");
        RawClient {
            stream,
            correlation: 0,
        }
    }

    /// Sends `req` at `version` and decodes the answer (panics on I/O errors,
    /// a timeout, or a correlation id that does not match).
    pub fn call<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(sb("millrace-it-raw")));
        let mut buf = BytesMut::with_capacity(256);
        buf.put_i32(0);
        header
            .encode(&mut buf, R::header_version(version))
            .expect("encode the request header");
        req.encode(&mut buf, version).expect("encode the request");
        let size = i32::try_from(buf.len() - 4).expect("frame size fits i32");
        buf[..4].copy_from_slice(&size.to_be_bytes());
        self.stream
            .write_all(&buf)
            .unwrap_or_else(|e| panic!("send api {} v{version}: {e}", R::KEY));
        let frame = read_frame(&mut self.stream)
            .unwrap_or_else(|e| panic!("read the answer to api {} v{version}: {e}", R::KEY));
        let mut body = Bytes::from(frame);
        let h = ResponseHeader::decode(&mut body, R::Response::header_version(version))
            .expect("decode the response header");
        assert_eq!(h.correlation_id, self.correlation, "correlation id");
        R::Response::decode(&mut body, version).expect("decode the response")
    }
}

/// A group member driven by hand: JoinGroup (v5, with the MEMBER_ID_REQUIRED
/// round trip), SyncGroup, Heartbeat.
#[derive(Debug, Clone)]
pub struct RawMember {
    pub group: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
    pub leader: String,
}

/// JoinGroup v5 for `group` with one "consumer"-type protocol named `protocol`.
pub fn join_request(
    group: &str,
    member_id: &str,
    instance_id: Option<&str>,
    session_timeout_ms: i32,
    protocol: &str,
) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(gid(group))
        .with_session_timeout_ms(session_timeout_ms)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(sb(member_id))
        .with_group_instance_id(instance_id.map(sb))
        .with_protocol_type(sb("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(sb(protocol))
            .with_metadata(Bytes::from_static(b"raw-member"))])
}

impl RawMember {
    /// Joins `group` alone (the group must have no other members, or they
    /// must rejoin concurrently) and syncs with `assignment` as the leader's
    /// plan for itself. Panics on any error.
    pub fn join_alone(
        c: &mut RawClient,
        group: &str,
        instance_id: Option<&str>,
        assignment: &[u8],
    ) -> RawMember {
        let mut resp: JoinGroupResponse =
            c.call(5, &join_request(group, "", instance_id, 10_000, "range"));
        if resp.error_code == code::MEMBER_ID_REQUIRED {
            let id = resp.member_id.to_string();
            resp = c.call(5, &join_request(group, &id, instance_id, 10_000, "range"));
        }
        assert_eq!(resp.error_code, code::NONE, "JoinGroup {group}: {resp:?}");
        let m = RawMember {
            group: group.to_string(),
            member_id: resp.member_id.to_string(),
            instance_id: instance_id.map(str::to_string),
            generation: resp.generation_id,
            leader: resp.leader.to_string(),
        };
        assert_eq!(m.leader, m.member_id, "a lone member leads");
        let sync = m.sync(c, Some(Bytes::copy_from_slice(assignment)));
        assert_eq!(sync.error_code, code::NONE, "SyncGroup {group}: {sync:?}");
        assert_eq!(&sync.assignment[..], assignment);
        m
    }

    /// SyncGroup v3; as leader, `assignment` is this member's share.
    pub fn sync(&self, c: &mut RawClient, assignment: Option<Bytes>) -> SyncGroupResponse {
        let assignments = assignment
            .map(|a| {
                vec![SyncGroupRequestAssignment::default()
                    .with_member_id(sb(&self.member_id))
                    .with_assignment(a)]
            })
            .unwrap_or_default();
        c.call(
            3,
            &SyncGroupRequest::default()
                .with_group_id(gid(&self.group))
                .with_generation_id(self.generation)
                .with_member_id(sb(&self.member_id))
                .with_group_instance_id(self.instance_id.as_deref().map(sb))
                .with_assignments(assignments),
        )
    }

    /// Heartbeat v3: the error code.
    pub fn heartbeat(&self, c: &mut RawClient) -> i16 {
        heartbeat(
            c,
            &self.group,
            &self.member_id,
            self.instance_id.as_deref(),
            self.generation,
        )
    }
}

/// Heartbeat v3 with any ids: the error code.
pub fn heartbeat(
    c: &mut RawClient,
    group: &str,
    member_id: &str,
    instance_id: Option<&str>,
    generation: i32,
) -> i16 {
    c.call(
        3,
        &HeartbeatRequest::default()
            .with_group_id(gid(group))
            .with_generation_id(generation)
            .with_member_id(sb(member_id))
            .with_group_instance_id(instance_id.map(sb)),
    )
    .error_code
}

/// OffsetCommit v8 for `topic` partitions `(partition, offset)` as member
/// `member_id` of `generation` (-1 and "" for a simple consumer); returns
/// `(topic, partition, error code)` per partition, in request order.
pub fn commit(
    c: &mut RawClient,
    group: &str,
    member_id: &str,
    generation: i32,
    offsets: &[(&str, i32, i64)],
) -> Vec<(String, i32, i16)> {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{OffsetCommitRequest, TopicName};
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (t, p, o) in offsets {
        let part = OffsetCommitRequestPartition::default()
            .with_partition_index(*p)
            .with_committed_offset(*o)
            .with_committed_leader_epoch(-1);
        match topics.iter_mut().find(|x| x.name.0.as_str() == *t) {
            Some(x) => x.partitions.push(part),
            None => topics.push(
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(sb(t)))
                    .with_partitions(vec![part]),
            ),
        }
    }
    let resp = c.call(
        8,
        &OffsetCommitRequest::default()
            .with_group_id(gid(group))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(sb(member_id))
            .with_retention_time_ms(-1)
            .with_topics(topics),
    );
    resp.topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index, p.error_code))
        })
        .collect()
}

/// Committed offsets of one group in an OffsetFetch answer:
/// `(topic, partition) -> (offset, error code)`, plus the group's error code.
pub type GroupOffsets = (i16, std::collections::BTreeMap<(String, i32), (i64, i16)>);

/// One group of an OffsetFetch request: its id and the `(topic, partitions)`
/// to fetch, `None` for all committed.
pub type GroupQuery<'a> = (&'a str, Option<Vec<(&'a str, Vec<i32>)>>);

/// OffsetFetch v8 for several groups at once; `None` topics = all committed.
pub fn fetch_offsets(c: &mut RawClient, groups: &[GroupQuery<'_>]) -> Vec<(String, GroupOffsets)> {
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopics,
    };
    use kafka_protocol::messages::{OffsetFetchRequest, TopicName};
    let groups = groups
        .iter()
        .map(|(g, topics)| {
            OffsetFetchRequestGroup::default()
                .with_group_id(gid(g))
                .with_topics(topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|(t, ps)| {
                            OffsetFetchRequestTopics::default()
                                .with_name(TopicName(sb(t)))
                                .with_partition_indexes(ps.clone())
                        })
                        .collect()
                }))
        })
        .collect();
    let resp = c.call(8, &OffsetFetchRequest::default().with_groups(groups));
    resp.groups
        .iter()
        .map(|g| {
            let offsets = g
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| {
                        (
                            (t.name.0.to_string(), p.partition_index),
                            (p.committed_offset, p.error_code),
                        )
                    })
                })
                .collect();
            (g.group_id.0.to_string(), (g.error_code, offsets))
        })
        .collect()
}

/// DescribeGroups v5 of one group.
pub fn describe(
    c: &mut RawClient,
    group: &str,
) -> kafka_protocol::messages::describe_groups_response::DescribedGroup {
    use kafka_protocol::messages::DescribeGroupsRequest;
    let mut resp = c.call(
        5,
        &DescribeGroupsRequest::default().with_groups(vec![gid(group)]),
    );
    assert_eq!(resp.groups.len(), 1, "one group described");
    resp.groups.remove(0)
}

/// ListGroups v4: `(group, state)` of every group.
pub fn list_groups(c: &mut RawClient) -> std::collections::BTreeMap<String, String> {
    use kafka_protocol::messages::ListGroupsRequest;
    let resp = c.call(4, &ListGroupsRequest::default());
    assert_eq!(resp.error_code, code::NONE, "ListGroups");
    resp.groups
        .iter()
        .map(|g| (g.group_id.0.to_string(), g.group_state.to_string()))
        .collect()
}

/// DeleteGroups v2: error code per group, in request order.
pub fn delete_groups(c: &mut RawClient, groups: &[&str]) -> Vec<(String, i16)> {
    use kafka_protocol::messages::DeleteGroupsRequest;
    let resp = c.call(
        2,
        &DeleteGroupsRequest::default().with_groups_names(groups.iter().map(|g| gid(g)).collect()),
    );
    resp.results
        .iter()
        .map(|r| (r.group_id.0.to_string(), r.error_code))
        .collect()
}

/// LeaveGroup v3 of one member: (top-level code, member code).
pub fn leave(
    c: &mut RawClient,
    group: &str,
    member_id: &str,
    instance_id: Option<&str>,
) -> (i16, i16) {
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::LeaveGroupRequest;
    let resp = c.call(
        3,
        &LeaveGroupRequest::default()
            .with_group_id(gid(group))
            .with_members(vec![MemberIdentity::default()
                .with_member_id(sb(member_id))
                .with_group_instance_id(instance_id.map(sb))]),
    );
    (
        resp.error_code,
        resp.members.first().map_or(-1, |m| m.error_code),
    )
}
