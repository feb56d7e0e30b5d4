//! End-to-end tests against a running broker. They skip (pass with a message)
//! unless MILLRACE_TEST_BOOTSTRAP names one, e.g.
//! `MILLRACE_TEST_BOOTSTRAP=127.0.0.1:9092 cargo test -p millrace-client --test e2e`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use millrace_client::partitioner::partition_for_key;
use millrace_client::{
    Acks, AlterConfigOp, Client, ClientError, Compression, ConfigResource, Consumer,
    ConsumerConfig, ConsumerRecord, OffsetReset, OffsetSpec, Producer, ProducerConfig, StartOffset,
};

fn bootstrap() -> Option<String> {
    match std::env::var("MILLRACE_TEST_BOOTSTRAP") {
        Ok(b) if !b.is_empty() => Some(b),
        _ => {
            eprintln!("skipping: set MILLRACE_TEST_BOOTSTRAP=host:port to run end-to-end tests");
            None
        }
    }
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}-{nanos}")
}

async fn read_n(consumer: &mut Consumer, n: usize) -> Vec<ConsumerRecord> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while out.len() < n && tokio::time::Instant::now() < deadline {
        out.extend(consumer.poll().await.unwrap());
    }
    out
}

#[tokio::test]
async fn topic_admin_round_trip() {
    let Some(b) = bootstrap() else { return };
    let client = Client::connect(&b).await.unwrap();
    let name = unique("admin");
    let configs = vec![("retention.ms".to_owned(), "3600000".to_owned())];
    client.create_topic(&name, 3, 1, &configs).await.unwrap();
    let err = client.create_topic(&name, 3, 1, &[]).await.unwrap_err();
    assert_eq!(err.kafka_code(), Some(36), "{err}");

    assert!(client.list_topics().await.unwrap().contains(&name));
    let t = client.describe_topic(&name).await.unwrap();
    assert_eq!(t.partitions.len(), 3);
    assert!(t
        .partitions
        .iter()
        .all(|p| p.leader >= 0 && !p.isr.is_empty()));

    let resource = ConfigResource::Topic(name.clone());
    let overrides = |entries: Vec<millrace_client::ConfigEntry>| {
        entries
            .into_iter()
            .filter(|c| c.is_topic_override())
            .map(|c| (c.name, c.value.unwrap_or_default()))
            .collect::<Vec<_>>()
    };
    let found = overrides(client.describe_configs(&resource).await.unwrap());
    assert_eq!(found, configs);
    let ops = [
        AlterConfigOp::Set("cleanup.policy".into(), "compact".into()),
        AlterConfigOp::Delete("retention.ms".into()),
    ];
    client
        .incremental_alter_configs(&resource, &ops)
        .await
        .unwrap();
    let found = overrides(client.describe_configs(&resource).await.unwrap());
    assert_eq!(
        found,
        vec![("cleanup.policy".to_owned(), "compact".to_owned())]
    );

    client.delete_topic(&name).await.unwrap();
    let err = client.describe_topic(&name).await.unwrap_err();
    assert!(matches!(err, ClientError::UnknownTopic(_)), "{err}");
}

#[tokio::test]
async fn produce_and_consume_with_every_compression() {
    let Some(b) = bootstrap() else { return };
    let client = Arc::new(Client::connect(&b).await.unwrap());
    let name = unique("data");
    client.create_topic(&name, 3, 1, &[]).await.unwrap();
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    let mut expected = Vec::new();
    for (i, compression) in codecs.into_iter().enumerate() {
        let config = ProducerConfig {
            compression,
            idempotent: i % 2 == 0,
            acks: Acks::All,
            ..ProducerConfig::default()
        };
        let producer = Producer::new(Arc::clone(&client), config).await.unwrap();
        let mut deliveries = Vec::new();
        for j in 0..50 {
            let key = format!("key-{}", j % 7);
            let value = format!("v-{i}-{j}");
            let d = producer
                .send(
                    &name,
                    Some(Bytes::from(key.clone())),
                    Some(Bytes::from(value.clone())),
                )
                .await
                .unwrap();
            deliveries.push((key, value, d));
        }
        for (key, value, d) in deliveries {
            let meta = d.await.unwrap();
            assert_eq!(meta.partition, partition_for_key(key.as_bytes(), 3));
            assert!(meta.offset >= 0);
            expected.push((meta.partition, meta.offset, key, value));
        }
        producer.close().await.unwrap();
    }

    let mut consumer = Consumer::new(Arc::clone(&client), ConsumerConfig::default());
    consumer
        .assign_all(&name, StartOffset::Earliest)
        .await
        .unwrap();
    let mut got: Vec<(i32, i64, String, String)> = read_n(&mut consumer, expected.len())
        .await
        .into_iter()
        .map(|r| {
            let text =
                |b: Option<Bytes>| String::from_utf8_lossy(&b.unwrap_or_default()).into_owned();
            (r.partition, r.offset, text(r.key), text(r.value))
        })
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);

    // Reading from the middle of a batch skips the records before the offset.
    let (p, offset) = (expected[3].0, expected[3].1);
    let mut consumer = Consumer::new(Arc::clone(&client), ConsumerConfig::default());
    consumer
        .assign(&name, p, StartOffset::Offset(offset))
        .await
        .unwrap();
    let first = read_n(&mut consumer, 1).await;
    assert_eq!(first.first().map(|r| r.offset), Some(offset));

    let latest = client
        .list_offsets(&name, p, OffsetSpec::Latest)
        .await
        .unwrap();
    let count = expected.iter().filter(|e| e.0 == p).count() as i64;
    assert_eq!(latest.offset, count);
    let earliest = client
        .list_offsets(&name, p, OffsetSpec::Earliest)
        .await
        .unwrap();
    assert_eq!(earliest.offset, 0);
    client.delete_topic(&name).await.unwrap();
}

#[tokio::test]
async fn out_of_range_position_resets_to_earliest() {
    let Some(b) = bootstrap() else { return };
    let client = Arc::new(Client::connect(&b).await.unwrap());
    let name = unique("reset");
    client.create_topic(&name, 1, 1, &[]).await.unwrap();
    let producer = Producer::new(Arc::clone(&client), ProducerConfig::default())
        .await
        .unwrap();
    for i in 0..5 {
        let d = producer
            .send(&name, None, Some(Bytes::from(format!("r{i}"))))
            .await
            .unwrap();
        producer.flush().await.unwrap();
        d.await.unwrap();
    }
    let config = ConsumerConfig {
        reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::new(Arc::clone(&client), config);
    consumer
        .assign(&name, 0, StartOffset::Offset(1_000))
        .await
        .unwrap();
    let got = read_n(&mut consumer, 5).await;
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );

    let err = producer
        .send(&unique("missing"), None, None)
        .await
        .unwrap()
        .await;
    assert!(matches!(err, Err(ClientError::UnknownTopic(_))), "{err:?}");
    client.delete_topic(&name).await.unwrap();
}
