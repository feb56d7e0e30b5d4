//! rdkafka clients for a [`BrokerProcess`], and helpers that bound every call
//! in time so a broker that stops answering fails a test instead of hanging it.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::BrokerProcess;

/// The bound for one client call (metadata, admin op, delivery, list offsets).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// A topic name unique within this machine and run: `it-<tag>-<pid>-<n>-<nanos>`.
pub fn topic_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("it-{tag}-{}-{n}-{nanos}", std::process::id())
}

/// Awaits `fut`, failing the test if it takes longer than [`CALL_TIMEOUT`].
pub async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: no answer within {CALL_TIMEOUT:?}"),
    }
}

fn config(broker: &BrokerProcess, extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", broker.bootstrap())
        .set("socket.timeout.ms", "10000")
        .set("message.timeout.ms", "30000");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

/// An admin client.
pub fn admin(broker: &BrokerProcess) -> AdminClient<DefaultClientContext> {
    config(broker, &[])
        .create()
        .expect("create the admin client")
}

/// Admin options with request and operation timeouts.
pub fn admin_opts() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(15)))
        .operation_timeout(Some(Duration::from_secs(15)))
}

/// A producer with `acks=all` unless `extra` says otherwise; lingers 5 ms.
pub fn producer(broker: &BrokerProcess, extra: &[(&str, &str)]) -> FutureProducer {
    let mut c = config(broker, &[("acks", "all"), ("linger.ms", "5")]);
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("create the producer")
}

/// A consumer that never joins its group: partitions are assigned by hand and
/// nothing is committed, so these tests do not depend on the group coordinator.
/// librdkafka needs a `group.id` even for `assign`, so each gets a unique one.
pub fn consumer(broker: &BrokerProcess, extra: &[(&str, &str)]) -> BaseConsumer {
    let group = topic_name("unused-group");
    let mut c = config(
        broker,
        &[
            ("group.id", group.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "error"),
        ],
    );
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("create the consumer")
}

/// Creates `topic` with `partitions` partitions (replication 1) and waits until
/// its metadata lists every partition with a leader.
pub async fn create_topic(broker: &BrokerProcess, topic: &str, partitions: i32) {
    let admin = admin(broker);
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = bounded("CreateTopics", admin.create_topics([&new], &admin_opts()))
        .await
        .expect("CreateTopics request");
    assert_eq!(results, vec![Ok(topic.to_string())], "CreateTopics {topic}");
    wait_for_leaders(&admin, topic, partitions);
}

/// Polls metadata until `topic` has `partitions` partitions, each with a leader.
pub fn wait_for_leaders(admin: &AdminClient<DefaultClientContext>, topic: &str, partitions: i32) {
    let deadline = Instant::now() + CALL_TIMEOUT;
    loop {
        let md = admin
            .inner()
            .fetch_metadata(Some(topic), Duration::from_secs(5));
        if let Ok(md) = md {
            let ready = md.topics().iter().any(|t| {
                t.name() == topic
                    && t.error().is_none()
                    && t.partitions().len() == partitions as usize
                    && t.partitions().iter().all(|p| p.leader() >= 0)
            });
            if ready {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "topic {topic} has no leaders after {CALL_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends one record and waits for its acknowledgement: `(partition, offset)`.
pub async fn send(producer: &FutureProducer, record: FutureRecord<'_, [u8], [u8]>) -> (i32, i64) {
    match bounded("produce", producer.send(record, CALL_TIMEOUT)).await {
        Ok(d) => (d.partition, d.offset),
        Err((e, _)) => panic!("produce failed: {e}"),
    }
}

/// Sends all `values` to one partition without waiting in between, then waits
/// for every acknowledgement. Returns the offsets in send order.
pub async fn send_all(
    producer: &FutureProducer,
    topic: &str,
    partition: i32,
    values: &[Vec<u8>],
) -> Vec<i64> {
    let mut pending = Vec::with_capacity(values.len());
    for v in values {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
            .partition(partition)
            .payload(v.as_slice());
        // The local queue may be full: wait for deliveries and try again.
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            match producer.send_result(record) {
                Ok(f) => {
                    pending.push(f);
                    break;
                }
                Err((KafkaError::MessageProduction(_), r)) if Instant::now() < deadline => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((e, _)) => panic!("enqueue failed: {e}"),
            }
        }
    }
    let mut offsets = Vec::with_capacity(pending.len());
    for f in pending {
        match bounded("delivery", f).await {
            Ok(Ok(d)) => offsets.push(d.offset),
            Ok(Err((e, _))) => panic!("delivery failed: {e}"),
            Err(_) => panic!("delivery future cancelled"),
        }
    }
    offsets
}

/// Assigns `partitions` of `topic`, each starting at `offset`.
pub fn assign(consumer: &BaseConsumer, topic: &str, partitions: &[i32], offset: Offset) {
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        tpl.add_partition_offset(topic, p, offset)
            .expect("add a partition to the assignment");
    }
    consumer.assign(&tpl).expect("assign partitions");
}

/// Polls until `n` records arrived; fails on a consumer error or after `wait`.
pub fn consume_n(consumer: &BaseConsumer, n: usize, wait: Duration) -> Vec<OwnedMessage> {
    let deadline = Instant::now() + wait;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "consumed {} of {n} records within {wait:?}",
            out.len()
        );
        match consumer.poll(left.min(Duration::from_millis(500))) {
            None => {}
            Some(Ok(m)) => out.push(m.detach()),
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => panic!("consume failed after {} records: {e}", out.len()),
        }
    }
    out
}

/// Polls for `quiet` and fails if any record arrives (nothing beyond what was read).
pub fn assert_no_more(consumer: &BaseConsumer, quiet: Duration) {
    let deadline = Instant::now() + quiet;
    while Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            panic!(
                "unexpected extra record at {}:{} offset {}",
                m.topic(),
                m.partition(),
                m.offset()
            );
        }
    }
}

/// `(low, high)` watermarks of one partition.
pub fn watermarks(consumer: &BaseConsumer, topic: &str, partition: i32) -> (i64, i64) {
    consumer
        .fetch_watermarks(topic, partition, CALL_TIMEOUT)
        .expect("ListOffsets (watermarks)")
}

/// The payload of a record as bytes (empty for a null value).
pub fn payload(m: &OwnedMessage) -> Vec<u8> {
    m.payload().map(<[u8]>::to_vec).unwrap_or_default()
}
