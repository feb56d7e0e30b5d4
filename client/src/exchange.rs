//! Typed request/response pairs: lets [`crate::Connection::send`] return the
//! concrete response type for the request it was given.

use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, ApiKey, ApiVersionsRequest, CreateTopicsRequest,
    DeleteGroupsRequest, DeleteRecordsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    DescribeGroupsRequest, DescribeQuorumRequest, FetchRequest, FindCoordinatorRequest,
    HeartbeatRequest, IncrementalAlterConfigsRequest, InitProducerIdRequest, JoinGroupRequest,
    LeaveGroupRequest, ListGroupsRequest, ListOffsetsRequest, ListPartitionReassignmentsRequest,
    MetadataRequest, OffsetCommitRequest, OffsetFetchRequest, OffsetForLeaderEpochRequest,
    ProduceRequest, RequestKind, ResponseKind, SyncGroupRequest,
};
use kafka_protocol::protocol::Request;

/// A request this client knows how to send, and how to take its response out
/// of the decoded [`ResponseKind`].
pub trait Exchange: Request + Into<RequestKind> {
    /// The API key as the enum.
    const API: ApiKey;
    /// The typed response, or `None` if the kind does not match.
    fn unwrap_response(kind: ResponseKind) -> Option<Self::Response>;
}

macro_rules! exchange {
    ($($req:ident => $variant:ident),* $(,)?) => {$(
        impl Exchange for $req {
            const API: ApiKey = ApiKey::$variant;
            fn unwrap_response(kind: ResponseKind) -> Option<Self::Response> {
                match kind {
                    ResponseKind::$variant(r) => Some(r),
                    _ => None,
                }
            }
        }
    )*};
}

exchange! {
    ProduceRequest => Produce,
    FetchRequest => Fetch,
    ListOffsetsRequest => ListOffsets,
    MetadataRequest => Metadata,
    ApiVersionsRequest => ApiVersions,
    CreateTopicsRequest => CreateTopics,
    DeleteTopicsRequest => DeleteTopics,
    DeleteRecordsRequest => DeleteRecords,
    InitProducerIdRequest => InitProducerId,
    DescribeConfigsRequest => DescribeConfigs,
    IncrementalAlterConfigsRequest => IncrementalAlterConfigs,
    FindCoordinatorRequest => FindCoordinator,
    JoinGroupRequest => JoinGroup,
    SyncGroupRequest => SyncGroup,
    HeartbeatRequest => Heartbeat,
    LeaveGroupRequest => LeaveGroup,
    OffsetCommitRequest => OffsetCommit,
    OffsetFetchRequest => OffsetFetch,
    DescribeGroupsRequest => DescribeGroups,
    ListGroupsRequest => ListGroups,
    DeleteGroupsRequest => DeleteGroups,
    OffsetForLeaderEpochRequest => OffsetForLeaderEpoch,
    DescribeQuorumRequest => DescribeQuorum,
    AlterPartitionReassignmentsRequest => AlterPartitionReassignments,
    ListPartitionReassignmentsRequest => ListPartitionReassignments,
}
