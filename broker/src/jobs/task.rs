//! [`JobTask`]: runs one job. It consumes the input topic as consumer group
//! `_job.NAME` through the client crate, connected to this node's own
//! advertised listener (so the group's lag shows in the usual tools), feeds
//! the records to the job, and every commit interval writes results, then
//! the changelog (with the input positions it reflects) to the compacted
//! topic `_job.NAME.state`, then commits the input offsets: at-least-once.
//!
//! A stateless job is one unsplit instance per member. An aggregation is split
//! into shards over `_job.NAME.repartition` (see `shard`): the same group also
//! consumes that topic, so the group protocol spreads both the input partitions
//! and the shards over the members, and a shard that moves is rebuilt from its
//! changelog partition by its new owner. Input records below the positions
//! stored in the changelog are already in the state and are skipped, so a
//! crash between the changelog write and the offset commit does not count
//! them twice. A crash after results were written but before the changelog
//! repeats whole results.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use millrace_client::{
    Client, DeliveryFuture, GroupConsumer, GroupConsumerConfig, OffsetReset, OffsetSpec, Producer,
    ProducerConfig, ProducerRecord,
};
use millrace_processor::plan::Stage;
use millrace_processor::{JobStats, Output, OutputRecord, Plan, ProcessorError};
use tokio_util::sync::CancellationToken;

use super::shard::{input_record, Router, Shard};
use super::status::{JobState, StatusBoard};
use crate::topics::NewTopic;
use crate::{now_ms, Broker};

/// Committed positions by (topic, partition).
type Offsets = BTreeMap<(String, i32), i64>;

/// How often results, changelog and offsets are written.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// Longest wait for LeaveGroup when a job is paused or deleted.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// While idle, the changelog and status are still written this often.
const IDLE_WRITE_INTERVAL: Duration = Duration::from_secs(30);
/// How often consumed repartition records are deleted.
const PURGE_INTERVAL: Duration = Duration::from_secs(30);
/// Wait before a job that failed for a reason other than a bad record starts again.
const RETRY_DELAY: Duration = Duration::from_secs(3);

/// The consumer group of job `name`.
pub fn group_id(name: &str) -> String {
    format!("_job.{name}")
}

/// The repartition topic of job `name` (aggregations).
pub fn repartition_topic(name: &str) -> String {
    format!("_job.{name}.repartition")
}

/// The changelog topic of job `name`.
pub fn state_topic(name: &str) -> String {
    format!("_job.{name}.state")
}

/// Where records that fail under `on_error = 'dead_letter'` go.
pub fn dead_letter_topic(name: &str) -> String {
    format!("_job.{name}.dead_letter")
}

/// The failed record as it was, with headers saying where it came from and why.
fn dead_letter_record(d: millrace_processor::DeadLetter) -> ProducerRecord {
    let r = d.record;
    let mut headers: Vec<(String, Option<Bytes>)> = r
        .headers
        .into_iter()
        .map(|(k, v)| (k, v.map(Bytes::from)))
        .collect();
    headers.push(("millrace.error".into(), Some(Bytes::from(d.error))));
    headers.push((
        "millrace.partition".into(),
        Some(Bytes::from(r.partition.to_string())),
    ));
    headers.push((
        "millrace.offset".into(),
        Some(Bytes::from(r.offset.to_string())),
    ));
    ProducerRecord {
        key: r.key.map(Bytes::from),
        value: r.value.map(Bytes::from),
        timestamp_ms: r.timestamp,
        headers,
    }
}

/// One running job.
pub struct JobTask {
    pub broker: Arc<Broker>,
    pub status: Arc<StatusBoard>,
    pub name: String,
    pub sql: String,
    pub cancel: CancellationToken,
    /// The node's shutdown (also cancels `cancel`).
    pub shutdown: CancellationToken,
}

/// Why a run ended.
enum Stop {
    /// A record stopped the job (`on_error = 'stop'`): do not retry.
    Poison(ProcessorError),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Stop {
    fn from(e: anyhow::Error) -> Self {
        Stop::Other(e)
    }
}

impl From<millrace_client::ClientError> for Stop {
    fn from(e: millrace_client::ClientError) -> Self {
        Stop::Other(e.into())
    }
}

impl JobTask {
    /// Runs until cancelled; failures other than a poison record are retried.
    pub async fn run(self) {
        loop {
            let stop = match self.run_once().await {
                Ok(()) => return,
                Err(s) => s,
            };
            let (msg, retry) = match stop {
                Stop::Poison(e) => (e.to_string(), false),
                Stop::Other(e) => (format!("{e:#}"), true),
            };
            tracing::warn!(job = %self.name, error = %msg, retry, "job failed");
            self.set(|s| {
                s.state = JobState::Failed;
                s.last_error = Some(msg);
            });
            if !retry {
                return;
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(RETRY_DELAY) => {}
            }
        }
    }

    fn set(&self, f: impl FnOnce(&mut super::status::JobStatus)) {
        self.status.update(&self.name, &self.sql, f);
    }

    async fn run_once(&self) -> Result<(), Stop> {
        let plan = millrace_processor::compile(&self.sql).map_err(Stop::Poison)?;
        // Wait for the input topic.
        while self.broker.controller.image().topic(&plan.source).is_none() {
            self.set(|s| {
                s.state = JobState::WaitingForInput;
                s.last_error = Some(format!("input topic '{}' does not exist", plan.source));
            });
            tokio::select! {
                _ = self.cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
        self.set(|s| {
            s.state = JobState::Starting;
            s.last_error = None;
        });
        let state = state_topic(&self.name);
        self.ensure_topic(&plan.sink, None, plan.compacted_output())
            .await?;
        let shard_count = self.shard_count(&plan);
        if let Some(n) = shard_count {
            let topic = repartition_topic(&self.name);
            self.ensure_topic(&topic, Some(n as i32), false).await?;
        }
        self.ensure_topic(&state, Some(shard_count.unwrap_or(1) as i32), true)
            .await?;
        if let Some(late) = &plan.options.late_topic {
            self.ensure_topic(late, None, false).await?;
        }
        let adv = self.broker.config.advertised();
        let bootstrap = format!("{}:{}", adv.host, adv.port);
        let client = Arc::new(
            Client::connect(&bootstrap)
                .await
                .with_context(|| format!("cannot connect to {bootstrap}"))?,
        );
        let producer = Producer::new(client.clone(), ProducerConfig::default()).await?;
        let source_partitions = self
            .broker
            .controller
            .image()
            .topic(&plan.source)
            .map_or(1, |t| t.partitions);
        let mut run = Run {
            plan: plan.clone(),
            router: None,
            shards: BTreeMap::new(),
            source_partitions,
            generation: -1,
            partitions: Vec::new(),
            state: state.clone(),
            last_positions: None,
            rated_at: Instant::now(),
            rated_counts: (0, 0),
            last_purge: Instant::now(),
        };
        let mut topics = vec![plan.source.as_str()];
        let repartition = repartition_topic(&self.name);
        if let Some(count) = shard_count {
            run.router = Some(Router::new(plan.clone(), repartition.clone(), count));
            topics.push(&repartition);
        } else {
            let shard = Shard::restore(&client, plan.clone(), &state, 0, 1).await?;
            run.shards.insert(0, shard);
        }
        run.rated_counts = run.counts();
        let mut config = GroupConsumerConfig::new(group_id(&self.name));
        // Static: a restarted node takes its partitions back at once instead
        // of waiting out the dead member's session.
        config.group_instance_id = Some(format!(
            "{}.node{}",
            group_id(&self.name),
            self.broker.config.node_id
        ));
        config.reset = OffsetReset::Earliest;
        config.fetch.max_wait_ms = 200;
        let mut consumer = GroupConsumer::new(client.clone(), config)?;
        consumer.subscribe(&topics)?;
        self.set(|s| s.state = JobState::Running);
        let result = self
            .consume(&client, &producer, &mut consumer, &mut run)
            .await;
        if self.shutdown.is_cancelled() {
            // The node is stopping: stay a (static) member, so the restarted
            // node takes the partitions back at once; the listener is draining
            // and would not answer a LeaveGroup anyway.
            drop(consumer);
            drop(producer);
            return result;
        }
        // Paused or deleted: leave now (a static member's close does not).
        let leave = async {
            if let Err(e) = consumer.leave_group("the job stopped").await {
                tracing::debug!(job = %self.name, error = %e, "leaving the group failed");
            }
            let _ = consumer.close().await;
            let _ = producer.close().await;
        };
        if tokio::time::timeout(STOP_TIMEOUT, leave).await.is_err() {
            tracing::warn!(job = %self.name, "leaving the group timed out");
        }
        result
    }

    async fn consume(
        &self,
        client: &Arc<Client>,
        producer: &Producer,
        consumer: &mut GroupConsumer,
        run: &mut Run,
    ) -> Result<(), Stop> {
        let mut last_commit = Instant::now();
        let mut last_write = Instant::now();
        loop {
            let polled = tokio::select! {
                _ = self.cancel.cancelled() => return Ok(()),
                r = consumer.poll() => r,
            };
            let records = match polled {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(job = %self.name, error = %e, "poll failed; retrying");
                    self.set(|s| s.last_error = Some(e.to_string()));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Vec::new()
                }
            };
            if consumer.generation_id() != run.generation {
                run.generation = consumer.generation_id();
                self.assign(client, consumer, run).await?;
            }
            for r in records {
                if *r.topic == *run.plan.source {
                    let record = input_record(r);
                    match &mut run.router {
                        Some(router) => router.route(producer, &record).await?,
                        None => {
                            if let Some(shard) = run.shards.get_mut(&0) {
                                shard.process(&record, true).map_err(Stop::Poison)?;
                            }
                        }
                    }
                } else if let Some(shard) = run.shards.get_mut(&r.partition) {
                    if run.router.as_ref().is_some_and(|x| *x.topic == *r.topic) {
                        shard.process_routed(r).map_err(Stop::Poison)?;
                    }
                }
            }
            if let Some(router) = &mut run.router {
                router.send_markers(producer).await?;
            }
            if last_commit.elapsed() >= COMMIT_INTERVAL {
                // With nothing read, only the wall clock moved: write when it
                // closes windows (idle partitions, processing time) or rarely.
                let idle = run.last_positions.as_ref() == Some(&consumer.positions())
                    && last_write.elapsed() < IDLE_WRITE_INTERVAL;
                let mut pending = false;
                if idle {
                    for shard in run.shards.values_mut() {
                        shard.advance(now_ms());
                        pending |= shard.has_pending();
                    }
                }
                if !idle || pending {
                    self.commit(client, producer, consumer, run).await?;
                    run.last_positions = Some(consumer.positions());
                    last_write = Instant::now();
                }
                last_commit = Instant::now();
            }
        }
    }

    /// A new generation: the input partitions to read (and route), and the shards to keep.
    async fn assign(
        &self,
        client: &Arc<Client>,
        consumer: &GroupConsumer,
        run: &mut Run,
    ) -> Result<(), Stop> {
        let owned = |topic: &str| -> Vec<i32> {
            consumer
                .assignment()
                .iter()
                .filter(|(t, _)| *t == topic)
                .map(|(_, p)| p)
                .collect()
        };
        run.partitions = owned(&run.plan.source);
        let Some(router) = &run.router else {
            if let Some(shard) = run.shards.get_mut(&0) {
                shard.assign_partitions(&run.partitions, now_ms());
            }
            return Ok(());
        };
        // A shard that moved away is dropped without a last write: its new owner
        // restores it from the changelog and replays the rest of its input.
        let shards = owned(&router.topic);
        let count = router.count;
        run.shards.retain(|p, _| shards.contains(p));
        let sources: Vec<i32> = (0..run.source_partitions as i32).collect();
        for p in shards {
            if run.shards.contains_key(&p) {
                continue;
            }
            let mut shard = Shard::restore(client, run.plan.clone(), &run.state, p, count).await?;
            shard.assign_partitions(&sources, now_ms());
            run.shards.insert(p, shard);
        }
        tracing::info!(job = %self.name, input = ?run.partitions, shards = ?run.shards.keys().collect::<Vec<_>>(), "job assignment");
        Ok(())
    }

    /// Routed input acknowledged, then per shard results, then its changelog with
    /// positions; then the input (and repartition) offsets.
    async fn commit(
        &self,
        client: &Client,
        producer: &Producer,
        consumer: &mut GroupConsumer,
        run: &mut Run,
    ) -> Result<(), Stop> {
        let offsets: Offsets = consumer.positions();
        // The loop sent the markers of everything read so far.
        if let Some(router) = &mut run.router {
            router.await_acks().await?;
        }
        let mut deliveries: Vec<DeliveryFuture> = Vec::new();
        let mut changelogs = Vec::new();
        for shard in run.shards.values_mut() {
            let (outputs, changelog) = shard.flush(now_ms())?;
            changelogs.push((shard.partition, changelog));
            for out in outputs {
                let (topic, r) = match out {
                    Output::Result(r) => (run.plan.sink.as_str(), r),
                    Output::Late(r) => match &run.plan.options.late_topic {
                        Some(t) => (t.as_str(), r),
                        None => continue,
                    },
                    Output::DeadLetter(d) => {
                        let topic = dead_letter_topic(&self.name);
                        self.ensure_topic(&topic, Some(1), false).await?;
                        let record = dead_letter_record(d);
                        deliveries.push(producer.send_record(&topic, None, record).await?);
                        continue;
                    }
                };
                deliveries.push(
                    producer
                        .send_record(topic, None, producer_record(r))
                        .await?,
                );
            }
        }
        for d in deliveries.drain(..) {
            d.await.context("writing results")?;
        }
        for (partition, changelog) in changelogs {
            for e in changelog {
                let record = ProducerRecord {
                    key: Some(Bytes::from(e.key)),
                    value: e.value.map(Bytes::from),
                    timestamp_ms: now_ms(),
                    headers: Vec::new(),
                };
                deliveries.push(
                    producer
                        .send_record(&run.state, Some(partition), record)
                        .await?,
                );
            }
        }
        for d in deliveries {
            d.await.context("writing the changelog")?;
        }
        match consumer.commit_offsets(&offsets).await {
            Ok(()) => purge_routed(client, run, &offsets).await,
            Err(e) => {
                tracing::debug!(job = %self.name, error = %e, "offset commit failed; the changelog holds the positions")
            }
        }
        let mut lag = 0;
        for ((topic, p), o) in &offsets {
            if *topic != run.plan.source {
                continue;
            }
            if let Ok(end) = client.list_offsets(topic, *p, OffsetSpec::Latest).await {
                lag += (end.offset - o).max(0);
            }
        }
        let (records_in, records_out) = run.counts();
        let secs = run.rated_at.elapsed().as_secs_f64().max(0.001);
        let rate = |now: u64, before: u64| {
            (now.saturating_sub(before) as f64 / secs * 10.0).round() / 10.0
        };
        let (in_rate, out_rate) = (
            rate(records_in, run.rated_counts.0),
            rate(records_out, run.rated_counts.1),
        );
        run.rated_at = Instant::now();
        run.rated_counts = (records_in, records_out);
        let stats: Vec<JobStats> = run.shards.values().map(|s| s.job.stats().clone()).collect();
        let watermark = run.shards.values().filter_map(|s| s.job.watermark()).min();
        let partitions = run.partitions.clone();
        self.set(|s| {
            s.state = JobState::Running;
            s.records_in = records_in;
            s.records_out = records_out;
            s.records_in_per_sec = in_rate;
            s.records_out_per_sec = out_rate;
            s.late_dropped = stats.iter().map(|x| x.late_dropped).sum();
            s.errors = stats.iter().map(|x| x.errors).sum();
            if let Some(e) = stats.iter().find_map(|x| x.last_error.as_ref()) {
                s.last_error = Some(format!(
                    "partition {} offset {}: {}",
                    e.partition, e.offset, e.reason
                ));
            }
            s.watermark = watermark;
            s.partitions = partitions;
            s.lag = lag;
        });
        Ok(())
    }

    /// How many shards an aggregation's state is split into (`None`: a stateless job,
    /// one unsplit instance per member). Fixed once the job's topics exist.
    fn shard_count(&self, plan: &Plan) -> Option<u32> {
        let Stage::Aggregate(a) = &plan.stage else {
            return None;
        };
        let image = self.broker.controller.image();
        let existing = image
            .topic(&state_topic(&self.name))
            .or_else(|| image.topic(&repartition_topic(&self.name)));
        if let Some(t) = existing {
            return Some(t.partitions.max(1));
        }
        // Per-window top-N ranks all keys of a window together: one shard.
        if a.limit.is_some() || !a.order_by.is_empty() {
            return Some(1);
        }
        Some(image.topic(&plan.source).map_or(1, |t| t.partitions.max(1)))
    }

    /// Creates a topic the job writes unless it exists.
    async fn ensure_topic(
        &self,
        name: &str,
        partitions: Option<i32>,
        compacted: bool,
    ) -> anyhow::Result<()> {
        if self.broker.controller.image().topic(name).is_some() {
            return Ok(());
        }
        let mut configs = BTreeMap::new();
        if compacted {
            configs.insert("cleanup.policy".to_string(), "compact".to_string());
        }
        let t = NewTopic {
            name,
            partitions,
            replication_factor: None,
            configs,
            assignments: None,
        };
        match self.broker.create_topic(t, false).await {
            Ok(_) => Ok(()),
            Err(_) if self.broker.controller.image().topic(name).is_some() => Ok(()),
            Err(e) => Err(anyhow::anyhow!("cannot create topic '{name}': {e}")),
        }
    }
}

/// The state of one run of a job.
struct Run {
    plan: Plan,
    /// Aggregations: the routing step over the input partitions this member owns.
    router: Option<Router>,
    /// The state shards this member owns (a stateless job: shard 0 alone).
    shards: BTreeMap<i32, Shard>,
    source_partitions: u32,
    generation: i32,
    /// Input partitions this member owns.
    partitions: Vec<i32>,
    state: String,
    /// When and at which (in, out) counts the rates were last taken.
    rated_at: Instant,
    rated_counts: (u64, u64),
    /// Group positions at the last write, to skip writes while idle.
    last_positions: Option<Offsets>,
    /// When consumed repartition records were last deleted.
    last_purge: Instant,
}

impl Run {
    /// Records in and out over the shards this member owns.
    fn counts(&self) -> (u64, u64) {
        self.shards.values().fold((0, 0), |(i, o), s| {
            (i + s.job.stats().records_in, o + s.job.stats().records_out)
        })
    }
}

/// Deletes repartition records below the committed offsets of this member's shards (their
/// effect is in the changelog), every `PURGE_INTERVAL`, as Kafka Streams does: the topic
/// would otherwise keep a copy of the input for the whole retention time.
async fn purge_routed(client: &Client, run: &mut Run, committed: &Offsets) {
    let Some(router) = &run.router else { return };
    if run.last_purge.elapsed() < PURGE_INTERVAL {
        return;
    }
    run.last_purge = Instant::now();
    for ((topic, partition), offset) in committed {
        if *topic != router.topic || *offset <= 0 {
            continue;
        }
        if let Err(e) = client.delete_records(topic, *partition, *offset).await {
            tracing::debug!(topic, partition, error = %e, "purging routed records failed");
        }
    }
}

fn producer_record(r: OutputRecord) -> ProducerRecord {
    ProducerRecord {
        key: r.key.map(Bytes::from),
        value: r.value.map(Bytes::from),
        timestamp_ms: r.timestamp,
        headers: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use millrace_processor::Record;

    #[test]
    fn dead_letters_keep_the_record_and_say_why() {
        let d = millrace_processor::DeadLetter {
            record: Record {
                partition: 2,
                offset: 7,
                timestamp: 99,
                key: Some(b"k".to_vec()),
                value: Some(b"{bad".to_vec()),
                headers: vec![("h".into(), None)],
            },
            error: "invalid JSON".into(),
        };
        let r = dead_letter_record(d);
        assert_eq!(r.value.as_deref(), Some(&b"{bad"[..]));
        assert_eq!(r.timestamp_ms, 99);
        let h: Vec<(&str, Option<&[u8]>)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        assert_eq!(
            h,
            vec![
                ("h", None),
                ("millrace.error", Some(&b"invalid JSON"[..])),
                ("millrace.partition", Some(&b"2"[..])),
                ("millrace.offset", Some(&b"7"[..])),
            ]
        );
        assert_eq!(dead_letter_topic("wc"), "_job.wc.dead_letter");
        assert_eq!(state_topic("wc"), "_job.wc.state");
        assert_eq!(group_id("wc"), "_job.wc");
    }
}
