//! One partition of a job's state (a "shard"): a [`Job`] instance, the changelog partition
//! that backs it, and how far into each input partition its state reaches. Also the routing
//! step of aggregations ([`Router`]) and the repartition record format.
//!
//! An aggregation runs in two steps, as Kafka Streams does: the members that own input
//! partitions route each record to the partitions of `_job.NAME.repartition` its group keys
//! hash to, and the member that owns repartition partition P keeps the state of those keys
//! in shard P, backed by partition P of `_job.NAME.state`. So every key's state lives in one
//! place however the input partitions are spread, and a shard moves between members by
//! replaying its changelog partition.
//!
//! A routed record is the input record as it was, with a header naming its input partition
//! and offset. Shards skip input offsets their state already reflects (stored with the
//! changelog), so a record routed twice (a routing member crashed before its commit) counts
//! once. After each batch it routes, the routing member sends every shard a watermark
//! marker with the highest event time of each input partition in the batch, so the
//! shards' windows close as a single instance's would, even for records they never see.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use millrace_client::{
    Client, Consumer, ConsumerConfig, ConsumerRecord, DeliveryFuture, FetchOptions, OffsetReset,
    OffsetSpec, Producer, ProducerRecord, StartOffset,
};
use millrace_processor::{ChangelogEntry, Job, Output, Plan, ProcessorError, Record};

/// Changelog key holding the input positions a shard's state reflects.
pub const OFFSETS_KEY: &[u8] = b"\0\0millrace.input-offsets";
/// Header of a routed record: input partition (i32), input offset (i64), primary copy (u8).
const SOURCE_HEADER: &str = "millrace.source";
/// Header of a watermark marker: input partition (i32), event time (i64).
const WATERMARK_HEADER: &str = "millrace.watermark";
/// Routed records whose acknowledgement is awaited before more are sent.
const UNACKED_MAX: usize = 10_000;

/// One shard: the state of the keys of one changelog partition.
pub struct Shard {
    /// The changelog (and repartition) partition.
    pub partition: i32,
    pub job: Job,
    /// Next input offset per input partition that the state reflects.
    seen: BTreeMap<i32, i64>,
    /// Outputs waiting for the commit.
    pending: Vec<Output>,
}

impl Shard {
    /// Rebuilds shard `partition` from its changelog partition; `count` shards in all (1: the
    /// job is not split).
    pub async fn restore(
        client: &Arc<Client>,
        plan: Plan,
        state_topic: &str,
        partition: i32,
        count: u32,
    ) -> anyhow::Result<Shard> {
        let (entries, seen) = read_changelog(client, state_topic, partition).await?;
        let n = entries.len();
        let job = Job::restore(plan, entries)
            .with_context(|| format!("restoring {state_topic}-{partition}"))?;
        let job = job.with_shard(partition as u64, u64::from(count));
        tracing::info!(topic = state_topic, partition, entries = n, positions = ?seen, "job state restored");
        Ok(Shard {
            partition,
            job,
            seen,
            pending: Vec::new(),
        })
    }

    /// Runs one input record unless the state already reflects it.
    pub fn process(&mut self, record: &Record, primary: bool) -> Result<(), ProcessorError> {
        if self
            .seen
            .get(&record.partition)
            .is_some_and(|next| record.offset < *next)
        {
            return Ok(());
        }
        self.seen.insert(record.partition, record.offset + 1);
        let out = self.job.process_routed(record, primary)?;
        self.pending.extend(out);
        Ok(())
    }

    /// A routed record or a watermark marker from the repartition topic.
    pub fn process_routed(&mut self, r: ConsumerRecord) -> Result<(), ProcessorError> {
        if let Some((partition, event_time)) = watermark_of(&r) {
            let out = self.job.observe_time(partition, event_time);
            self.pending.extend(out);
            return Ok(());
        }
        let Some((record, primary)) = unwrap_routed(r) else {
            return Ok(());
        };
        self.process(&record, primary)
    }

    /// Declares the input partitions whose clocks hold this shard's watermark back.
    pub fn assign_partitions(&mut self, partitions: &[i32], now_ms: i64) {
        self.advance(now_ms);
        self.job.assign_partitions(partitions);
    }

    /// Whether outputs are waiting for the commit.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Moves the wall clock (idle partitions, processing time) without a commit.
    pub fn advance(&mut self, now_ms: i64) {
        let out = self.job.advance(now_ms);
        self.pending.extend(out);
    }

    /// The commit point: outputs to write, then the changelog (ending with the input
    /// positions the state reflects) for this shard's partition.
    pub fn flush(&mut self, now_ms: i64) -> anyhow::Result<(Vec<Output>, Vec<ChangelogEntry>)> {
        self.advance(now_ms);
        let (flushed, mut changelog) = self.job.flush();
        let mut outputs = std::mem::take(&mut self.pending);
        outputs.extend(flushed.into_iter().map(Output::Result));
        changelog.push(ChangelogEntry {
            key: OFFSETS_KEY.to_vec(),
            value: Some(serde_json::to_vec(&self.seen).context("encoding positions")?),
        });
        Ok((outputs, changelog))
    }
}

/// The routing step of an aggregation: sends input records to the repartition topic.
pub struct Router {
    job: Job,
    pub topic: String,
    pub count: u32,
    /// Highest event time per input partition read since the last markers.
    clocks: BTreeMap<i32, i64>,
    unacked: VecDeque<DeliveryFuture>,
}

impl Router {
    pub fn new(plan: Plan, topic: String, count: u32) -> Router {
        Router {
            job: Job::new(plan),
            topic,
            count: count.max(1),
            clocks: BTreeMap::new(),
            unacked: VecDeque::new(),
        }
    }

    /// Sends `record` to the shards its keys fall in.
    pub async fn route(&mut self, producer: &Producer, record: &Record) -> anyhow::Result<()> {
        let route = self.job.route(record, self.count);
        if let Some(t) = route.event_time {
            let c = self.clocks.entry(record.partition).or_insert(t);
            *c = (*c).max(t);
        }
        for (i, shard) in route.shards.iter().enumerate() {
            let mut source = Vec::with_capacity(13);
            source.extend_from_slice(&record.partition.to_be_bytes());
            source.extend_from_slice(&record.offset.to_be_bytes());
            source.push(u8::from(i == 0));
            let mut headers: Vec<(String, Option<Bytes>)> = record
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().map(Bytes::from)))
                .collect();
            headers.push((SOURCE_HEADER.into(), Some(Bytes::from(source))));
            let routed = ProducerRecord {
                key: record.key.clone().map(Bytes::from),
                value: record.value.clone().map(Bytes::from),
                timestamp_ms: record.timestamp,
                headers,
            };
            self.send(producer, *shard as i32, routed).await?;
        }
        Ok(())
    }

    /// Waits until everything routed so far (and its markers) is acknowledged.
    pub async fn await_acks(&mut self) -> anyhow::Result<()> {
        while let Some(d) = self.unacked.pop_front() {
            d.await.context("writing the repartition topic")?;
        }
        Ok(())
    }

    /// Sends every shard the event time each input partition reached since the last
    /// markers (after the records that moved it, so a shard never sees a clock ahead of
    /// records still to come from that partition).
    pub async fn send_markers(&mut self, producer: &Producer) -> anyhow::Result<()> {
        for (partition, event_time) in std::mem::take(&mut self.clocks) {
            let mut mark = Vec::with_capacity(12);
            mark.extend_from_slice(&partition.to_be_bytes());
            mark.extend_from_slice(&event_time.to_be_bytes());
            for shard in 0..self.count {
                let marker = ProducerRecord {
                    key: None,
                    value: None,
                    timestamp_ms: crate::now_ms(),
                    headers: vec![(WATERMARK_HEADER.into(), Some(Bytes::from(mark.clone())))],
                };
                self.send(producer, shard as i32, marker).await?;
            }
        }
        Ok(())
    }

    async fn send(
        &mut self,
        producer: &Producer,
        partition: i32,
        record: ProducerRecord,
    ) -> anyhow::Result<()> {
        // Bounded: past the limit, wait for the oldest acknowledgements first.
        while self.unacked.len() >= UNACKED_MAX {
            if let Some(d) = self.unacked.pop_front() {
                d.await.context("writing the repartition topic")?;
            }
        }
        let d = producer
            .send_record(&self.topic, Some(partition), record)
            .await?;
        self.unacked.push_back(d);
        Ok(())
    }
}

/// A consumed input record as the processor sees it.
pub fn input_record(r: ConsumerRecord) -> Record {
    Record {
        partition: r.partition,
        offset: r.offset,
        timestamp: r.timestamp_ms,
        key: r.key.map(|b| b.to_vec()),
        value: r.value.map(|b| b.to_vec()),
        headers: r
            .headers
            .into_iter()
            .map(|(k, v)| (k, v.map(|b| b.to_vec())))
            .collect(),
    }
}

fn watermark_of(r: &ConsumerRecord) -> Option<(i32, i64)> {
    let (_, v) = r.headers.iter().find(|(k, _)| k == WATERMARK_HEADER)?;
    let v = v.as_deref()?;
    let partition = i32::from_be_bytes(v.get(0..4)?.try_into().ok()?);
    let event_time = i64::from_be_bytes(v.get(4..12)?.try_into().ok()?);
    Some((partition, event_time))
}

/// The input record inside a routed one, and whether this is its primary copy.
fn unwrap_routed(r: ConsumerRecord) -> Option<(Record, bool)> {
    let at = r.headers.iter().rposition(|(k, _)| k == SOURCE_HEADER);
    let Some(at) = at else {
        tracing::warn!(topic = %r.topic, partition = r.partition, offset = r.offset, "repartition record without a source header; skipped");
        return None;
    };
    let mut record = input_record(r);
    let (_, source) = record.headers.remove(at);
    let source = source?;
    let partition = i32::from_be_bytes(source.get(0..4)?.try_into().ok()?);
    let offset = i64::from_be_bytes(source.get(4..12)?.try_into().ok()?);
    let primary = source.get(12).is_some_and(|b| *b == 1);
    record.partition = partition;
    record.offset = offset;
    Some((record, primary))
}

/// Reads changelog partition `partition` to its end: the entries and the input positions
/// they reflect.
async fn read_changelog(
    client: &Arc<Client>,
    topic: &str,
    partition: i32,
) -> anyhow::Result<(Vec<ChangelogEntry>, BTreeMap<i32, i64>)> {
    let end = client
        .list_offsets(topic, partition, OffsetSpec::Latest)
        .await?
        .offset;
    let mut entries = Vec::new();
    let mut positions = BTreeMap::new();
    if end <= 0 {
        return Ok((entries, positions));
    }
    let mut c = Consumer::new(
        client.clone(),
        ConsumerConfig {
            fetch: FetchOptions {
                max_wait_ms: 100,
                ..FetchOptions::default()
            },
            reset: OffsetReset::Earliest,
        },
    );
    c.assign(topic, partition, StartOffset::Earliest).await?;
    loop {
        let at = c.positions().map(|(_, _, o)| o).min().unwrap_or(end);
        if at >= end {
            break;
        }
        for r in c.poll().await? {
            if r.offset >= end {
                continue;
            }
            let key = r.key.map(|k| k.to_vec()).unwrap_or_default();
            if key == OFFSETS_KEY {
                if let Some(v) = r.value {
                    positions = serde_json::from_slice(&v).context("bad stored positions")?;
                }
                continue;
            }
            entries.push(ChangelogEntry {
                key,
                value: r.value.map(|v| v.to_vec()),
            });
        }
    }
    Ok((entries, positions))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumed(headers: Vec<(String, Option<Bytes>)>) -> ConsumerRecord {
        ConsumerRecord {
            topic: Arc::from("_job.wc.repartition"),
            partition: 2,
            offset: 40,
            timestamp_ms: 7,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers,
        }
    }

    #[test]
    fn routed_records_carry_their_input_position() {
        let mut source = 5i32.to_be_bytes().to_vec();
        source.extend_from_slice(&123i64.to_be_bytes());
        source.push(1);
        let r = consumed(vec![
            ("user".into(), Some(Bytes::from_static(b"h"))),
            (SOURCE_HEADER.into(), Some(Bytes::from(source))),
        ]);
        let (rec, primary) = unwrap_routed(r).expect("routed");
        assert!(primary);
        assert_eq!((rec.partition, rec.offset, rec.timestamp), (5, 123, 7));
        assert_eq!(rec.headers, vec![("user".to_string(), Some(b"h".to_vec()))]);
        assert!(unwrap_routed(consumed(vec![])).is_none());
    }

    #[test]
    fn markers_carry_partition_and_event_time() {
        let mut mark = 3i32.to_be_bytes().to_vec();
        mark.extend_from_slice(&(-5i64).to_be_bytes());
        let r = consumed(vec![(WATERMARK_HEADER.into(), Some(Bytes::from(mark)))]);
        assert_eq!(watermark_of(&r), Some((3, -5)));
        let short = consumed(vec![(
            WATERMARK_HEADER.into(),
            Some(Bytes::from_static(b"xx")),
        )]);
        assert_eq!(watermark_of(&short), None);
    }
}
