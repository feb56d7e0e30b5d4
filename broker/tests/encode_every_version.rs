//! Every advertised API answers a plausible request at every advertised
//! version with a response the codec can encode at that version. The codec
//! refuses fields that a version lacks, so this catches handlers that set them.

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use millrace_broker::node::Node;
use millrace_broker::{handlers, ServerConfig};
use millrace_protocol::versions::SUPPORTED;
use millrace_protocol::{encode_response, DecodedRequest};

fn sample(key: ApiKey, topic: &str) -> RequestKind {
    let name = TopicName(StrBytes::from_string(topic.to_string()));
    match key {
        ApiKey::Produce => {
            RequestKind::Produce(ProduceRequest::default().with_acks(1).with_topic_data(vec![
                produce_request::TopicProduceData::default()
                    .with_name(name)
                    .with_partition_data(vec![produce_request::PartitionProduceData::default()]),
            ]))
        }
        ApiKey::Fetch => {
            RequestKind::Fetch(FetchRequest::default().with_max_bytes(1 << 20).with_topics(
                vec![fetch_request::FetchTopic::default()
                    .with_topic(name)
                    .with_partitions(vec![
                        fetch_request::FetchPartition::default().with_partition_max_bytes(1 << 20)
                    ])],
            ))
        }
        ApiKey::ListOffsets => {
            RequestKind::ListOffsets(ListOffsetsRequest::default().with_topics(vec![
                list_offsets_request::ListOffsetsTopic::default()
                    .with_name(name)
                    .with_partitions(vec![
                        list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1)
                    ]),
            ]))
        }
        ApiKey::Metadata => RequestKind::Metadata(MetadataRequest::default()),
        ApiKey::ApiVersions => RequestKind::ApiVersions(ApiVersionsRequest::default()),
        ApiKey::CreateTopics => {
            RequestKind::CreateTopics(CreateTopicsRequest::default().with_topics(vec![
            create_topics_request::CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(format!("{topic}-new"))))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ]))
        }
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(DeleteTopicsRequest::default()),
        ApiKey::DeleteRecords => {
            RequestKind::DeleteRecords(DeleteRecordsRequest::default().with_topics(vec![
            delete_records_request::DeleteRecordsTopic::default()
                .with_name(name)
                .with_partitions(vec![delete_records_request::DeleteRecordsPartition::default()]),
        ]))
        }
        ApiKey::InitProducerId => RequestKind::InitProducerId(InitProducerIdRequest::default()),
        ApiKey::DescribeConfigs => {
            RequestKind::DescribeConfigs(DescribeConfigsRequest::default().with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_string(topic.to_string())),
            describe_configs_request::DescribeConfigsResource::default().with_resource_type(4),
        ]))
        }
        ApiKey::AlterConfigs => RequestKind::AlterConfigs(AlterConfigsRequest::default()),
        ApiKey::CreatePartitions => {
            RequestKind::CreatePartitions(CreatePartitionsRequest::default())
        }
        ApiKey::IncrementalAlterConfigs => {
            RequestKind::IncrementalAlterConfigs(IncrementalAlterConfigsRequest::default())
        }
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(DescribeClusterRequest::default()),
        ApiKey::FindCoordinator => RequestKind::FindCoordinator(
            FindCoordinatorRequest::default()
                .with_key(StrBytes::from_static_str("g"))
                .with_coordinator_keys(vec![StrBytes::from_static_str("g")]),
        ),
        ApiKey::JoinGroup => RequestKind::JoinGroup(
            JoinGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(topic.to_string())))
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
                )
                .with_name(StrBytes::from_static_str("range"))]),
        ),
        ApiKey::SyncGroup => RequestKind::SyncGroup(
            SyncGroupRequest::default().with_group_id(GroupId(StrBytes::from_static_str("g"))),
        ),
        ApiKey::Heartbeat => RequestKind::Heartbeat(
            HeartbeatRequest::default().with_group_id(GroupId(StrBytes::from_static_str("g"))),
        ),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(
            LeaveGroupRequest::default().with_group_id(GroupId(StrBytes::from_static_str("g"))),
        ),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(
            OffsetCommitRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("simple")))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(name)
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_committed_offset(3),
                        ]),
                ]),
        ),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(
            OffsetFetchRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("simple")))
                .with_groups(vec![
                    offset_fetch_request::OffsetFetchRequestGroup::default()
                        .with_group_id(GroupId(StrBytes::from_static_str("simple")))
                        .with_topics(None),
                ]),
        ),
        ApiKey::DescribeGroups => {
            RequestKind::DescribeGroups(DescribeGroupsRequest::default().with_groups(vec![
                GroupId(StrBytes::from_static_str("simple")),
                GroupId(StrBytes::from_static_str("none")),
            ]))
        }
        ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
        ApiKey::ConsumerGroupHeartbeat => RequestKind::ConsumerGroupHeartbeat(
            ConsumerGroupHeartbeatRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(format!("cg-{topic}"))))
                .with_member_id(StrBytes::from_string(format!("m-{topic}")))
                .with_rebalance_timeout_ms(30_000)
                .with_subscribed_topic_names(Some(vec![name])),
        ),
        ApiKey::ConsumerGroupDescribe => RequestKind::ConsumerGroupDescribe(
            ConsumerGroupDescribeRequest::default()
                .with_group_ids(vec![GroupId(StrBytes::from_string("cg-t68v1".to_string()))]),
        ),
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(
            DeleteGroupsRequest::default()
                .with_groups_names(vec![GroupId(StrBytes::from_static_str("none"))]),
        ),
        ApiKey::OffsetDelete => RequestKind::OffsetDelete(
            OffsetDeleteRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("simple"))),
        ),
        ApiKey::ElectLeaders => RequestKind::ElectLeaders(
            ElectLeadersRequest::default().with_topic_partitions(Some(vec![
                elect_leaders_request::TopicPartitions::default()
                    .with_topic(name)
                    .with_partitions(vec![0]),
            ])),
        ),
        ApiKey::DescribeQuorum => {
            RequestKind::DescribeQuorum(DescribeQuorumRequest::default().with_topics(vec![
                describe_quorum_request::TopicData::default()
                    .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
                    .with_partitions(vec![
                        describe_quorum_request::PartitionData::default().with_partition_index(0),
                    ]),
            ]))
        }
        ApiKey::AlterPartitionReassignments => RequestKind::AlterPartitionReassignments(
            AlterPartitionReassignmentsRequest::default().with_topics(vec![
                alter_partition_reassignments_request::ReassignableTopic::default()
                    .with_name(name)
                    .with_partitions(vec![
                        alter_partition_reassignments_request::ReassignablePartition::default()
                            .with_partition_index(0)
                            .with_replicas(None),
                    ]),
            ]),
        ),
        ApiKey::ListPartitionReassignments => {
            RequestKind::ListPartitionReassignments(ListPartitionReassignmentsRequest::default())
        }
        ApiKey::OffsetForLeaderEpoch => RequestKind::OffsetForLeaderEpoch(
            OffsetForLeaderEpochRequest::default().with_topics(vec![
                offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                    .with_topic(name)
                    .with_partitions(vec![
                        offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                            .with_leader_epoch(0),
                    ]),
            ]),
        ),
        other => panic!("advertised {other:?} has no sample request here; add one"),
    }
}

#[tokio::test]
async fn every_advertised_version_encodes() {
    let dir = tempfile::tempdir().unwrap();
    let overrides = vec![
        format!("log.dirs={}", dir.path().display()),
        "listeners=PLAINTEXT://127.0.0.1:0".to_string(),
        "group.initial.rebalance.delay.ms=0".to_string(),
        "offsets.topic.num.partitions=3".to_string(),
    ];
    let (config, _) = ServerConfig::load(None, &overrides, Vec::new()).unwrap();
    let node = Node::start(config).await.unwrap();
    let broker = node.broker.clone();
    let ctx = handlers::RequestContext {
        client_id: "test".into(),
        peer: "127.0.0.1:1".parse().unwrap(),
    };
    for range in SUPPORTED {
        for version in range.min..=range.max {
            // A topic (and group) per version, so that no request waits on another's state.
            let topic = format!("t{}v{version}", range.key as i16);
            let request = DecodedRequest {
                api_key: range.key,
                header: RequestHeader::default()
                    .with_request_api_key(range.key as i16)
                    .with_request_api_version(version),
                body: sample(range.key, &topic),
            };
            // Auto-create the topic the request names so handlers take their success paths.
            handlers::handle(
                &broker,
                &ctx,
                DecodedRequest {
                    api_key: ApiKey::Metadata,
                    header: RequestHeader::default().with_request_api_version(12),
                    body: RequestKind::Metadata(
                        MetadataRequest::default()
                            .with_topics(Some(vec![
                                metadata_request::MetadataRequestTopic::default().with_name(Some(
                                    TopicName(StrBytes::from_string(topic.clone())),
                                )),
                            ]))
                            .with_allow_auto_topic_creation(true),
                    ),
                },
            )
            .await;
            let response = handlers::handle(&broker, &ctx, request).await;
            let Some(response) = response else {
                panic!("{:?} v{version} gave no response", range.key);
            };
            encode_response(range.key, version, 7, &response)
                .unwrap_or_else(|e| panic!("{:?} v{version}: {e}", range.key));
        }
    }
}
