//! [`Producer`]: batches records per partition and sends them to leaders.
//!
//! Callers talk to one background task through a bounded mailbox, so a slow
//! cluster pushes back on `send` instead of growing memory. The task owns the
//! per-partition accumulators; a batch ships when it reaches `batch_bytes_max`,
//! when its `linger_ms` runs out, or on `flush`. Shipping writes the request on
//! the leader's connection in order (so an idempotent producer's sequences
//! arrive in order) and hands the wait for the answer to a small task; the
//! connection's in-flight cap bounds how many of those exist.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::{InitProducerIdRequest, ResponseKind};
use kafka_protocol::records::Compression;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::batch::{encode_batch, ProducerStamp};
use crate::client::{retry_delay, RETRIES_MAX};
use crate::data::{parse_produce_response, produce_request};
use crate::partitioner::{partition_for_key, StickyPartitioner};
use crate::{Client, ClientError, ProducerRecord, TopicMetadata};

/// Batches sent (or retrying) and not yet answered, across all partitions.
/// Each holds one encoded batch, so this times `batch_bytes_max` bounds memory.
const IN_FLIGHT_BATCHES_MAX: usize = 64;

/// How many replicas must have a batch before the broker answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// No answer at all (fire and forget).
    None,
    /// The leader wrote it.
    Leader,
    /// Every in-sync replica has it.
    All,
}

impl Acks {
    pub fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }

    /// Parses Kafka's spelling: `0`, `1`, `-1` or `all`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "0" => Some(Acks::None),
            "1" => Some(Acks::Leader),
            "-1" | "all" => Some(Acks::All),
            _ => None,
        }
    }
}

/// Producer settings (Kafka's names in the comments).
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// `acks`.
    pub acks: Acks,
    /// `compression.type`.
    pub compression: Compression,
    /// `batch.size`: a batch ships once its records reach this many bytes.
    pub batch_bytes_max: usize,
    /// `linger.ms`: how long a non-full batch waits for more records.
    pub linger_ms: u64,
    /// `enable.idempotence`: InitProducerId, then sequence numbers per partition.
    pub idempotent: bool,
    /// Broker-side wait for acks, sent in the request.
    pub ack_timeout_ms: i32,
    /// Records waiting in the mailbox before `send` blocks (the bounded buffer).
    pub queued_records_max: usize,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            acks: Acks::All,
            compression: Compression::None,
            batch_bytes_max: 16 * 1024,
            linger_ms: 5,
            idempotent: false,
            ack_timeout_ms: 30_000,
            queued_records_max: 10_000,
        }
    }
}

/// Where a record landed. With acks=0 the offset is -1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
}

type Delivery = Result<RecordMetadata, ClientError>;

/// Resolves when the record's batch is acknowledged (or failed).
pub struct DeliveryFuture(oneshot::Receiver<Delivery>);

impl Future for DeliveryFuture {
    type Output = Delivery;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Delivery> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(ClientError::Closed("producer"))))
    }
}

enum Command {
    Send {
        topic: String,
        partition: Option<i32>,
        record: ProducerRecord,
        reply: oneshot::Sender<Delivery>,
    },
    Flush(oneshot::Sender<()>),
}

/// An async producer; cheap to share behind an `Arc`.
pub struct Producer {
    tx: mpsc::Sender<Command>,
    task: JoinHandle<()>,
}

impl Producer {
    /// Starts a producer (and, if idempotent, gets a producer id).
    pub async fn new(client: Arc<Client>, config: ProducerConfig) -> Result<Self, ClientError> {
        if config.idempotent && config.acks != Acks::All {
            return Err(ClientError::Config(
                "an idempotent producer needs acks=all".into(),
            ));
        }
        let identity = if config.idempotent {
            init_producer_id(&client).await?
        } else {
            (-1, -1)
        };
        let (tx, rx) = mpsc::channel(config.queued_records_max.max(1));
        let worker = Worker {
            client,
            config,
            identity,
            batches: HashMap::new(),
            sticky: HashMap::new(),
            sequences: HashMap::new(),
            topics: HashMap::new(),
            in_flight: JoinSet::new(),
        };
        let task = tokio::spawn(worker.run(rx));
        Ok(Self { tx, task })
    }

    /// Queues a record for `topic`, timestamped now, partitioned by key.
    pub async fn send(
        &self,
        topic: &str,
        key: Option<Bytes>,
        value: Option<Bytes>,
    ) -> Result<DeliveryFuture, ClientError> {
        let record = ProducerRecord {
            key,
            value,
            timestamp_ms: now_ms(),
            headers: Vec::new(),
        };
        self.send_record(topic, None, record).await
    }

    /// Queues a record; `partition` overrides the partitioner. Waits while
    /// the mailbox is full.
    pub async fn send_record(
        &self,
        topic: &str,
        partition: Option<i32>,
        record: ProducerRecord,
    ) -> Result<DeliveryFuture, ClientError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Send {
            topic: topic.to_owned(),
            partition,
            record,
            reply,
        };
        self.tx
            .send(cmd)
            .await
            .map_err(|_| ClientError::Closed("producer"))?;
        Ok(DeliveryFuture(rx))
    }

    /// Ships every open batch and waits until all sent batches are answered.
    pub async fn flush(&self) -> Result<(), ClientError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Flush(tx))
            .await
            .map_err(|_| ClientError::Closed("producer"))?;
        rx.await.map_err(|_| ClientError::Closed("producer"))
    }

    /// Flushes, then stops the background task.
    pub async fn close(self) -> Result<(), ClientError> {
        let flushed = self.flush().await;
        drop(self.tx);
        let _ = self.task.await;
        flushed
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn init_producer_id(client: &Client) -> Result<(i64, i16), ClientError> {
    let conn = client.any_connection().await?;
    // No transactional id (the codec's default is an empty one), and the
    // Java client's timeout for a non-transactional producer.
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(i32::MAX);
    let response = conn.send(request).await?;
    ClientError::check(response.error_code, "InitProducerId", None)?;
    Ok((response.producer_id.0, response.producer_epoch))
}

/// Records gathered for one partition.
struct OpenBatch {
    records: Vec<ProducerRecord>,
    replies: Vec<oneshot::Sender<Delivery>>,
    bytes: usize,
    created: Instant,
}

/// The background task's state.
struct Worker {
    client: Arc<Client>,
    config: ProducerConfig,
    identity: (i64, i16),
    batches: HashMap<(String, i32), OpenBatch>,
    sticky: HashMap<String, StickyPartitioner>,
    sequences: HashMap<(String, i32), i32>,
    topics: HashMap<String, TopicMetadata>,
    in_flight: JoinSet<()>,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(Command::Send { topic, partition, record, reply }) => {
                        self.append(topic, partition, record, reply).await;
                    }
                    Some(Command::Flush(done)) => {
                        self.flush().await;
                        let _ = done.send(());
                    }
                    None => break,
                },
                _ = sleep_until(deadline) => self.ship_expired().await,
                Some(_) = self.in_flight.join_next(), if !self.in_flight.is_empty() => {}
            }
        }
        self.flush().await;
    }

    fn next_deadline(&self) -> Option<Instant> {
        let linger = Duration::from_millis(self.config.linger_ms);
        self.batches.values().map(|b| b.created + linger).min()
    }

    async fn flush(&mut self) {
        let keys: Vec<(String, i32)> = self.batches.keys().cloned().collect();
        for key in keys {
            self.ship(key).await;
        }
        while self.in_flight.join_next().await.is_some() {}
    }

    async fn ship_expired(&mut self) {
        let now = Instant::now();
        let linger = Duration::from_millis(self.config.linger_ms);
        let due: Vec<(String, i32)> = self
            .batches
            .iter()
            .filter(|(_, b)| b.created + linger <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.ship(key).await;
        }
    }

    async fn topic(&mut self, name: &str) -> Result<TopicMetadata, ClientError> {
        if let Some(t) = self.topics.get(name) {
            return Ok(t.clone());
        }
        let t = self.client.topic(name).await?;
        self.topics.insert(name.to_owned(), t.clone());
        Ok(t)
    }

    async fn append(
        &mut self,
        topic: String,
        partition: Option<i32>,
        record: ProducerRecord,
        reply: oneshot::Sender<Delivery>,
    ) {
        let meta = match self.topic(&topic).await {
            Ok(m) => m,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let count = meta.partitions.len() as i32;
        let partition = match (partition, record.key.as_ref()) {
            (Some(p), _) if p >= 0 && p < count => p,
            (Some(p), _) => {
                let _ = reply.send(Err(ClientError::UnknownPartition {
                    topic,
                    partition: p,
                }));
                return;
            }
            (None, Some(key)) => partition_for_key(key, count),
            (None, None) => self
                .sticky
                .entry(topic.clone())
                .or_default()
                .partition(count),
        };
        let size = record.size_estimate();
        let key = (topic, partition);
        let batch = self
            .batches
            .entry(key.clone())
            .or_insert_with(|| OpenBatch {
                records: Vec::new(),
                replies: Vec::new(),
                bytes: 0,
                created: Instant::now(),
            });
        batch.records.push(record);
        batch.replies.push(reply);
        batch.bytes += size;
        if batch.bytes >= self.config.batch_bytes_max {
            self.ship(key).await;
        }
    }

    /// Encodes the partition's open batch and writes it to the leader.
    async fn ship(&mut self, key: (String, i32)) {
        let Some(batch) = self.batches.remove(&key) else {
            return;
        };
        let (topic, partition) = key;
        if let Some(s) = self.sticky.get_mut(&topic) {
            s.on_batch_closed(partition);
        }
        let stamp = if self.config.idempotent {
            let seq = self
                .sequences
                .entry((topic.clone(), partition))
                .or_insert(0);
            let base = *seq;
            *seq = seq.wrapping_add(batch.records.len() as i32) & i32::MAX;
            ProducerStamp {
                producer_id: self.identity.0,
                producer_epoch: self.identity.1,
                base_sequence: base,
            }
        } else {
            ProducerStamp::NONE
        };
        let timestamps: Vec<i64> = batch.records.iter().map(|r| r.timestamp_ms).collect();
        let delivery = Shipment {
            topic: topic.clone(),
            partition,
            replies: batch.replies,
            timestamps,
        };
        let encoded = match encode_batch(&batch.records, self.config.compression, stamp) {
            Ok(b) => b,
            Err(e) => return delivery.fail(e),
        };
        let meta = match self.topic(&topic).await {
            Ok(m) => m,
            Err(e) => return delivery.fail(e),
        };
        let acks = self.config.acks.wire();
        let timeout = self.config.ack_timeout_ms;
        let request = produce_request(&meta, partition, encoded.clone(), acks, timeout);
        let first = match self.client.leader_connection(&topic, partition).await {
            Ok(conn) if acks == 0 => match conn.send_no_response(request).await {
                Ok(()) => return delivery.succeed(-1),
                Err(e) => Err(e),
            },
            Ok(conn) => conn.submit(request).await,
            Err(e) => Err(e),
        };
        // Answers are bounded by the connection's in-flight cap, but batches that
        // failed to be written (and retry) are not: cap the tasks here too.
        while self.in_flight.len() >= IN_FLIGHT_BATCHES_MAX {
            let _ = self.in_flight.join_next().await;
        }
        let client = Arc::clone(&self.client);
        self.in_flight.spawn(async move {
            let result = match first {
                Ok(pending) => match pending.wait().await {
                    Ok(ResponseKind::Produce(r)) => parse_produce_response(&r, &meta, partition),
                    Ok(_) => Err(ClientError::UnexpectedResponse(
                        "not a Produce response".into(),
                    )),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            let result = match result {
                Err(e) if e.is_retriable() => {
                    tracing::debug!(error = %e, %topic, partition, "produce failed; retrying");
                    retry_produce(&client, &meta, partition, encoded, acks, timeout).await
                }
                other => other,
            };
            match result {
                Ok(r) => delivery.succeed(r.base_offset),
                Err(e) => delivery.fail(e),
            }
        });
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn retry_produce(
    client: &Client,
    meta: &TopicMetadata,
    partition: i32,
    batch: Bytes,
    acks: i16,
    timeout_ms: i32,
) -> Result<crate::ProduceResult, ClientError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        tokio::time::sleep(retry_delay(attempt)).await;
        let _ = client.refresh_metadata().await;
        let outcome = async {
            let conn = client.leader_connection(&meta.name, partition).await?;
            let request = produce_request(meta, partition, batch.clone(), acks, timeout_ms);
            let response = conn.send(request).await?;
            parse_produce_response(&response, meta, partition)
        }
        .await;
        match outcome {
            Err(e) if e.is_retriable() && attempt < RETRIES_MAX => continue,
            other => return other,
        }
    }
}

/// The callers waiting on one batch.
struct Shipment {
    topic: String,
    partition: i32,
    replies: Vec<oneshot::Sender<Delivery>>,
    timestamps: Vec<i64>,
}

impl Shipment {
    fn succeed(self, base_offset: i64) {
        for (i, (reply, ts)) in self.replies.into_iter().zip(self.timestamps).enumerate() {
            let offset = if base_offset < 0 {
                -1
            } else {
                base_offset + i as i64
            };
            let _ = reply.send(Ok(RecordMetadata {
                topic: self.topic.clone(),
                partition: self.partition,
                offset,
                timestamp_ms: ts,
            }));
        }
    }

    fn fail(self, error: ClientError) {
        for reply in self.replies {
            let _ = reply.send(Err(error.replicate()));
        }
    }
}
