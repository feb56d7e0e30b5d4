//! Data-path calls on [`Client`]: list offsets, produce, fetch.
//!
//! Request builders and response parsers are free functions so the
//! [`crate::Producer`] can pipeline produce requests through
//! [`crate::Connection::submit`] with the same code.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    DeleteRecordsRequest, FetchRequest, FetchResponse, ListOffsetsRequest, ProduceRequest,
    ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::{Client, ClientError, ClusterMetadata, Connection, TopicMetadata};

/// The entry of `topic`-`partition` in a response of topics by name and their
/// partitions (the generated types share the shape, not a trait), checked for
/// its error code.
macro_rules! partition_of {
    ($response:expr, $api:literal, $topic:expr, $partition:expr) => {
        $response
            .topics
            .iter()
            .filter(|t| t.name.0.as_str() == $topic)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == $partition)
            .ok_or_else(|| {
                ClientError::UnexpectedResponse(format!("{}: no {}-{}", $api, $topic, $partition))
            })
            .and_then(|p| {
                ClientError::check(p.error_code, format!("{}-{}", $topic, $partition), None)
                    .map(|()| p)
            })
    };
}

/// Which offset [`Client::list_offsets`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset (the next offset to be written).
    Latest,
    /// The first offset whose timestamp is at or after this (ms since epoch).
    Timestamp(i64),
    /// The offset of the record with the largest timestamp.
    MaxTimestamp,
}

impl OffsetSpec {
    fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::MaxTimestamp => -3,
            OffsetSpec::Timestamp(t) => t,
        }
    }
}

/// Answer to [`Client::list_offsets`]; `offset` is -1 if no record matches a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    pub offset: i64,
    pub timestamp: i64,
}

/// Answer to a produce with acks 1 or -1 (with acks 0 every field is -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceResult {
    pub base_offset: i64,
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
}

/// Fetch-wide limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchOptions {
    /// How long the broker may hold the fetch waiting for `min_bytes`.
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    /// Cap on the whole response (the broker returns at least one batch regardless).
    pub max_bytes: i32,
    /// Cap per partition.
    pub partition_max_bytes: i32,
}

impl Default for FetchOptions {
    /// Kafka consumer defaults: 500 ms, 1 byte, 50 MiB total, 1 MiB per partition.
    fn default() -> Self {
        Self {
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 50 * 1024 * 1024,
            partition_max_bytes: 1024 * 1024,
        }
    }
}

/// One partition to fetch from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTarget {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// What a fetch returned for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedData {
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// Raw record batches; may end with a partial batch, which the decoder must skip.
    pub records: Bytes,
}

/// Per-partition fetch outcome.
#[derive(Debug)]
pub struct FetchedPartition {
    pub topic: String,
    pub partition: i32,
    pub result: Result<FetchedData, ClientError>,
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

/// A Produce request carrying one batch for one partition.
pub fn produce_request(
    topic: &TopicMetadata,
    partition: i32,
    batch: Bytes,
    acks: i16,
    timeout_ms: i32,
) -> ProduceRequest {
    let data = PartitionProduceData::default()
        .with_index(partition)
        .with_records(Some(batch));
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(&topic.name))
            .with_topic_id(topic.topic_id)
            .with_partition_data(vec![data])])
}

/// The result for `topic`/`partition` in a Produce response.
pub fn parse_produce_response(
    response: &ProduceResponse,
    topic: &TopicMetadata,
    partition: i32,
) -> Result<ProduceResult, ClientError> {
    let context = format!("produce to {}-{partition}", topic.name);
    let p = response
        .responses
        .iter()
        .filter(|t| t.name.0.as_str() == topic.name || t.topic_id == topic.topic_id)
        .flat_map(|t| t.partition_responses.iter())
        .find(|p| p.index == partition)
        .ok_or_else(|| {
            ClientError::UnexpectedResponse(format!("{context}: no partition result"))
        })?;
    ClientError::check(p.error_code, context, p.error_message.as_deref())?;
    Ok(ProduceResult {
        base_offset: p.base_offset,
        log_append_time_ms: p.log_append_time_ms,
        log_start_offset: p.log_start_offset,
    })
}

impl Client {
    /// Looks up an offset on the partition leader.
    pub async fn list_offsets(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> Result<ListedOffset, ClientError> {
        self.with_retries(|| self.list_offsets_once(topic, partition, spec))
            .await
    }

    async fn list_offsets_once(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> Result<ListedOffset, ClientError> {
        let conn = self.leader_connection(topic, partition).await?;
        let request = ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_timeout_ms(self.config().connection.request_timeout_ms as i32)
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(spec.wire())])]);
        let response = conn.send(request).await?;
        let p = partition_of!(response, "ListOffsets", topic, partition)?;
        Ok(ListedOffset {
            offset: p.offset,
            timestamp: p.timestamp,
        })
    }

    /// DeleteRecords: moves the partition's log start up to `offset`; returns the new low
    /// watermark.
    pub async fn delete_records(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<i64, ClientError> {
        self.with_retries(|| self.delete_records_once(topic, partition, offset))
            .await
    }

    async fn delete_records_once(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<i64, ClientError> {
        let conn = self.leader_connection(topic, partition).await?;
        let request = DeleteRecordsRequest::default()
            .with_timeout_ms(self.config().connection.request_timeout_ms as i32)
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![DeleteRecordsPartition::default()
                    .with_partition_index(partition)
                    .with_offset(offset)])]);
        let response = conn.send(request).await?;
        let p = partition_of!(response, "DeleteRecords", topic, partition)?;
        Ok(p.low_watermark)
    }

    /// Sends one encoded record batch to the partition leader.
    pub async fn produce(
        &self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        acks: i16,
        timeout_ms: i32,
    ) -> Result<ProduceResult, ClientError> {
        self.with_retries(|| async {
            let meta = self.topic(topic).await?;
            let conn = self.leader_connection(topic, partition).await?;
            let request = produce_request(&meta, partition, batch.clone(), acks, timeout_ms);
            if acks == 0 {
                conn.send_no_response(request).await?;
                return Ok(ProduceResult {
                    base_offset: -1,
                    log_append_time_ms: -1,
                    log_start_offset: -1,
                });
            }
            let response = conn.send(request).await?;
            parse_produce_response(&response, &meta, partition)
        })
        .await
    }

    /// Fetches from one partition; an error code becomes `Err`.
    pub async fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        options: FetchOptions,
    ) -> Result<FetchedData, ClientError> {
        let target = FetchTarget {
            topic: topic.to_owned(),
            partition,
            offset,
        };
        let mut results = self.fetch_many(&[target], options).await?;
        match results.pop() {
            Some(p) => p.result,
            None => Err(ClientError::UnexpectedResponse(format!(
                "Fetch: no {topic}-{partition}"
            ))),
        }
    }

    /// Fetches from many partitions: one request per leader, all pipelined
    /// before any is awaited. Transport failures fail the whole call.
    pub async fn fetch_many(
        &self,
        targets: &[FetchTarget],
        options: FetchOptions,
    ) -> Result<Vec<FetchedPartition>, ClientError> {
        let mut by_leader: BTreeMap<i32, Vec<&FetchTarget>> = BTreeMap::new();
        for t in targets {
            let meta = self.topic(&t.topic).await?;
            let leader = meta.partition(t.partition)?.leader;
            by_leader.entry(leader).or_default().push(t);
        }
        let metadata = self.metadata();
        let mut waiting = Vec::new();
        for (leader, group) in by_leader {
            let conn: Arc<Connection> = match leader {
                l if l < 0 => self.any_connection().await?,
                l => self.broker_connection(l).await?,
            };
            let request = fetch_request(&metadata, &group, options);
            waiting.push((conn.submit(request).await?, group));
        }
        let mut out = Vec::with_capacity(targets.len());
        for (pending, group) in waiting {
            let kind = pending.wait().await?;
            let kafka_protocol::messages::ResponseKind::Fetch(response) = kind else {
                return Err(ClientError::UnexpectedResponse(
                    "not a Fetch response".into(),
                ));
            };
            ClientError::check(response.error_code, "fetch", None)?;
            for t in group {
                out.push(FetchedPartition {
                    topic: t.topic.clone(),
                    partition: t.partition,
                    result: fetched(&response, &metadata, t),
                });
            }
        }
        Ok(out)
    }
}

fn fetch_request(
    metadata: &ClusterMetadata,
    group: &[&FetchTarget],
    o: FetchOptions,
) -> FetchRequest {
    let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    for t in group {
        topics.entry(t.topic.as_str()).or_default().push(
            FetchPartition::default()
                .with_partition(t.partition)
                .with_fetch_offset(t.offset)
                .with_partition_max_bytes(o.partition_max_bytes),
        );
    }
    FetchRequest::default()
        .with_max_wait_ms(o.max_wait_ms)
        .with_min_bytes(o.min_bytes)
        .with_max_bytes(o.max_bytes)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    let id = metadata
                        .topics
                        .get(name)
                        .map(|t| t.topic_id)
                        .unwrap_or_default();
                    FetchTopic::default()
                        .with_topic(topic_name(name))
                        .with_topic_id(id)
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

fn fetched(
    response: &FetchResponse,
    metadata: &ClusterMetadata,
    target: &FetchTarget,
) -> Result<FetchedData, ClientError> {
    let topic_id = metadata.topics.get(&target.topic).map(|t| t.topic_id);
    let p = response
        .responses
        .iter()
        .filter(|t| {
            t.topic.0.as_str() == target.topic
                || (!t.topic_id.is_nil() && Some(t.topic_id) == topic_id)
        })
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == target.partition)
        .ok_or_else(|| {
            ClientError::UnexpectedResponse(format!(
                "Fetch: no {}-{}",
                target.topic, target.partition
            ))
        })?;
    ClientError::check(
        p.error_code,
        format!("{}-{}", target.topic, target.partition),
        None,
    )?;
    Ok(FetchedData {
        high_watermark: p.high_watermark,
        last_stable_offset: p.last_stable_offset,
        log_start_offset: p.log_start_offset,
        records: p.records.clone().unwrap_or_default(),
    })
}
