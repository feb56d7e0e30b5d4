//! Producer batching, partitioning and idempotence against an in-process fake
//! broker that records every batch it receives.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, InitProducerIdResponse, MetadataResponse,
    ProduceRequest, ProduceResponse, ProducerId, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use millrace_client::partitioner::partition_for_key;
use millrace_client::{Acks, Client, Compression, Producer, ProducerConfig};
use millrace_protocol::{decode_request, encode_response, FrameDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PARTITIONS: i32 = 3;

/// One batch as the fake broker saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    partition: i32,
    records: i32,
    producer_id: i64,
    base_sequence: i32,
    acks: i16,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    next_offset: HashMap<i32, i64>,
}

type Shared = Arc<Mutex<State>>;

fn versions() -> ApiVersionsResponse {
    let api = |key: ApiKey, min, max| {
        ApiVersion::default()
            .with_api_key(key as i16)
            .with_min_version(min)
            .with_max_version(max)
    };
    ApiVersionsResponse::default().with_api_keys(vec![
        api(ApiKey::Produce, 3, 9),
        api(ApiKey::Metadata, 0, 9),
        api(ApiKey::ApiVersions, 0, 3),
        api(ApiKey::InitProducerId, 0, 4),
    ])
}

fn metadata(port: u16) -> MetadataResponse {
    let partitions = (0..PARTITIONS)
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(1))
                .with_replica_nodes(vec![BrokerId(1)])
                .with_isr_nodes(vec![BrokerId(1)])
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(1))
            .with_host(StrBytes::from_static_str("127.0.0.1"))
            .with_port(i32::from(port))])
        .with_topics(vec![MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("t"))))
            .with_partitions(partitions)])
}

fn produce(state: &Shared, request: &ProduceRequest) -> ProduceResponse {
    let mut state = state.lock().unwrap();
    let mut responses = Vec::new();
    for topic in &request.topic_data {
        let mut parts = Vec::new();
        for p in &topic.partition_data {
            let mut records: Bytes = p.records.clone().unwrap_or_default();
            let info = RecordBatchDecoder::decode_batch_info(&mut records).unwrap();
            let count: i32 = info.iter().map(|i| i.record_count).sum();
            state.seen.push(Seen {
                partition: p.index,
                records: count,
                producer_id: info[0].producer_id,
                base_sequence: info[0].base_sequence,
                acks: request.acks,
            });
            let next = state.next_offset.entry(p.index).or_insert(0);
            parts.push(
                PartitionProduceResponse::default()
                    .with_index(p.index)
                    .with_base_offset(*next),
            );
            *next += i64::from(count);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name.clone())
                .with_partition_responses(parts),
        );
    }
    ProduceResponse::default().with_responses(responses)
}

async fn serve(mut socket: TcpStream, state: Shared, port: u16) {
    let decoder = FrameDecoder::new(1 << 20);
    let mut buf = BytesMut::new();
    loop {
        while let Ok(Some(frame)) = decoder.decode(&mut buf) {
            let Ok(req) = decode_request(frame) else {
                return;
            };
            let answer = match &req.body {
                RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(versions()),
                RequestKind::Metadata(_) => ResponseKind::Metadata(metadata(port)),
                RequestKind::InitProducerId(_) => ResponseKind::InitProducerId(
                    InitProducerIdResponse::default().with_producer_id(ProducerId(42)),
                ),
                RequestKind::Produce(p) => {
                    let response = produce(&state, p);
                    if p.acks == 0 {
                        continue;
                    }
                    ResponseKind::Produce(response)
                }
                _ => return,
            };
            let h = &req.header;
            let out = encode_response(
                req.api_key,
                h.request_api_version,
                h.correlation_id,
                &answer,
            )
            .unwrap();
            socket.write_all(&out).await.unwrap();
        }
        match socket.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

async fn fake_broker() -> (SocketAddr, Shared) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Shared::default();
    let s = Arc::clone(&state);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, Arc::clone(&s), addr.port()));
        }
    });
    (addr, state)
}

async fn producer(addr: SocketAddr, config: ProducerConfig) -> Producer {
    let client = Arc::new(Client::connect(&addr.to_string()).await.unwrap());
    Producer::new(client, config).await.unwrap()
}

fn value(i: usize) -> Option<Bytes> {
    Some(Bytes::from(format!("value-{i}")))
}

#[tokio::test]
async fn linger_gathers_records_into_one_batch_and_offsets_follow() {
    let (addr, state) = fake_broker().await;
    let config = ProducerConfig {
        linger_ms: 60_000,
        compression: Compression::Zstd,
        ..ProducerConfig::default()
    };
    let p = producer(addr, config).await;
    let mut deliveries = Vec::new();
    for i in 0..10 {
        let record = millrace_client::ProducerRecord {
            value: value(i),
            ..Default::default()
        };
        deliveries.push(p.send_record("t", Some(1), record).await.unwrap());
    }
    p.flush().await.unwrap();
    for (i, d) in deliveries.into_iter().enumerate() {
        let meta = d.await.unwrap();
        assert_eq!((meta.partition, meta.offset), (1, i as i64));
    }
    let seen = state.lock().unwrap().seen.clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].partition, seen[0].records, seen[0].acks),
        (1, 10, -1)
    );
    assert_eq!(seen[0].base_sequence, -1);
    p.close().await.unwrap();
}

#[tokio::test]
async fn batch_size_splits_and_keys_pick_partitions() {
    let (addr, state) = fake_broker().await;
    let config = ProducerConfig {
        batch_bytes_max: 1,
        acks: Acks::Leader,
        ..ProducerConfig::default()
    };
    let p = producer(addr, config).await;
    for i in 0..6 {
        let key = Bytes::from(format!("key-{i}"));
        let meta = p
            .send("t", Some(key.clone()), value(i))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(meta.partition, partition_for_key(&key, PARTITIONS));
    }
    let seen = state.lock().unwrap().seen.clone();
    assert_eq!(seen.len(), 6, "every record is its own batch");
    assert!(seen.iter().all(|s| s.records == 1 && s.acks == 1));
    p.close().await.unwrap();
}

#[tokio::test]
async fn idempotent_batches_carry_id_and_running_sequences() {
    let (addr, state) = fake_broker().await;
    let config = ProducerConfig {
        idempotent: true,
        linger_ms: 60_000,
        ..ProducerConfig::default()
    };
    let p = producer(addr, config).await;
    for round in 0..2 {
        for i in 0..4 {
            let record = millrace_client::ProducerRecord {
                value: value(round * 4 + i),
                ..Default::default()
            };
            p.send_record("t", Some(0), record).await.unwrap();
        }
        p.flush().await.unwrap();
    }
    let seen = state.lock().unwrap().seen.clone();
    let stamps: Vec<(i64, i32, i32)> = seen
        .iter()
        .map(|s| (s.producer_id, s.base_sequence, s.records))
        .collect();
    assert_eq!(stamps, vec![(42, 0, 4), (42, 4, 4)]);
    p.close().await.unwrap();
}

#[tokio::test]
async fn acks_zero_completes_without_an_answer() {
    let (addr, state) = fake_broker().await;
    let config = ProducerConfig {
        acks: Acks::None,
        ..ProducerConfig::default()
    };
    let p = producer(addr, config).await;
    let meta = p.send("t", None, value(0)).await.unwrap().await.unwrap();
    assert_eq!(meta.offset, -1);
    p.close().await.unwrap();
    // Nothing answers, so wait (bounded) for the fake to have read the request.
    let mut seen = Vec::new();
    for _ in 0..200 {
        seen = state.lock().unwrap().seen.clone();
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].acks, 0);
}

#[tokio::test]
async fn an_idempotent_producer_needs_acks_all() {
    let (addr, _) = fake_broker().await;
    let client = Arc::new(Client::connect(&addr.to_string()).await.unwrap());
    let config = ProducerConfig {
        idempotent: true,
        acks: Acks::Leader,
        ..ProducerConfig::default()
    };
    assert!(Producer::new(client, config).await.is_err());
}
