//! [`JobTask`]: runs one job. It consumes the input topic as consumer group
//! `_job.NAME` through the client crate, connected to this node's own
//! advertised listener (so the group's lag shows in the usual tools), feeds
//! the records to a [`Job`], and every commit interval writes results, then
//! the changelog (with the input positions it reflects) to the compacted
//! topic `_job.NAME.state`, then commits the input offsets: at-least-once.
//!
//! On start the state is rebuilt from `_job.NAME.state`; input records below
//! the positions stored there are already in the state and are skipped, so a
//! crash between the changelog write and the offset commit does not count
//! them twice. A crash after results were written but before the changelog
//! repeats whole results.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use millrace_client::{
    Client, Consumer, ConsumerConfig, DeliveryFuture, FetchOptions, GroupConsumer,
    GroupConsumerConfig, OffsetReset, OffsetSpec, Producer, ProducerConfig, ProducerRecord,
    StartOffset,
};
use millrace_processor::{ChangelogEntry, Job, Output, OutputRecord, Plan, ProcessorError, Record};
use tokio_util::sync::CancellationToken;

use super::status::{JobState, StatusBoard};
use crate::topics::NewTopic;
use crate::{now_ms, Broker};

/// Changelog key holding the input positions the state reflects.
const OFFSETS_KEY: &[u8] = b"\0\0millrace.input-offsets";
/// How often results, changelog and offsets are written.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// Longest wait for LeaveGroup when a job is paused or deleted.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// While idle, the changelog and status are still written this often.
const IDLE_WRITE_INTERVAL: Duration = Duration::from_secs(30);
/// Wait before a job that failed for a reason other than a bad record starts again.
const RETRY_DELAY: Duration = Duration::from_secs(3);

/// The consumer group of job `name`.
pub fn group_id(name: &str) -> String {
    format!("_job.{name}")
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
        self.ensure_topic(&state, Some(1), true).await?;
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
        let (job, restored) = restore(&client, plan.clone(), &state).await?;
        let rated_counts = (job.stats().records_in, job.stats().records_out);
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
        consumer.subscribe(&[&plan.source])?;
        let mut run = Run {
            plan,
            job,
            restored,
            pending: Vec::new(),
            generation: -1,
            partitions: Vec::new(),
            state,
            last_positions: None,
            rated_at: Instant::now(),
            rated_counts,
        };
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
        client: &Client,
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
                run.partitions = consumer
                    .assignment()
                    .iter()
                    .filter(|(t, _)| *t == run.plan.source)
                    .map(|(_, p)| p)
                    .collect();
                run.job.assign_partitions(&run.partitions);
            }
            for r in records {
                if *r.topic != *run.plan.source
                    || run
                        .restored
                        .get(&r.partition)
                        .is_some_and(|o| r.offset < *o)
                {
                    continue;
                }
                let rec = Record {
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
                };
                let out = run.job.process(&rec).map_err(Stop::Poison)?;
                run.pending.extend(out);
            }
            if last_commit.elapsed() >= COMMIT_INTERVAL {
                // With nothing read, only the wall clock moved: write when it
                // closes windows (idle partitions, processing time) or rarely.
                let idle = run.last_positions.as_ref() == Some(&consumer.positions())
                    && run.pending.is_empty()
                    && last_write.elapsed() < IDLE_WRITE_INTERVAL;
                if idle {
                    let closed = run.job.advance(now_ms());
                    run.pending.extend(closed);
                }
                if !idle || !run.pending.is_empty() {
                    self.commit(client, producer, consumer, run).await?;
                    run.last_positions = Some(consumer.positions());
                    last_write = Instant::now();
                }
                last_commit = Instant::now();
            }
        }
    }

    /// Results, then changelog with positions, then input offsets.
    async fn commit(
        &self,
        client: &Client,
        producer: &Producer,
        consumer: &mut GroupConsumer,
        run: &mut Run,
    ) -> Result<(), Stop> {
        let positions: BTreeMap<i32, i64> = consumer
            .positions()
            .into_iter()
            .filter(|((t, _), _)| *t == run.plan.source)
            .map(|((_, p), o)| (p, o))
            .collect();
        let advanced = run.job.advance(now_ms());
        run.pending.extend(advanced);
        let (flushed, mut changelog) = run.job.flush();
        let mut deliveries: Vec<DeliveryFuture> = Vec::new();
        for out in std::mem::take(&mut run.pending)
            .into_iter()
            .chain(flushed.into_iter().map(Output::Result))
        {
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
        for d in deliveries.drain(..) {
            d.await.context("writing results")?;
        }
        changelog.push(ChangelogEntry {
            key: OFFSETS_KEY.to_vec(),
            value: Some(serde_json::to_vec(&positions).context("encoding positions")?),
        });
        for e in changelog {
            let record = ProducerRecord {
                key: Some(Bytes::from(e.key)),
                value: e.value.map(Bytes::from),
                timestamp_ms: now_ms(),
                headers: Vec::new(),
            };
            deliveries.push(producer.send_record(&run.state, Some(0), record).await?);
        }
        for d in deliveries {
            d.await.context("writing the changelog")?;
        }
        let offsets = positions
            .iter()
            .map(|(p, o)| ((run.plan.source.clone(), *p), *o))
            .collect();
        if let Err(e) = consumer.commit_offsets(&offsets).await {
            tracing::debug!(job = %self.name, error = %e, "offset commit failed; the changelog holds the positions");
        }
        let mut lag = 0;
        for (p, o) in &positions {
            if let Ok(end) = client
                .list_offsets(&run.plan.source, *p, OffsetSpec::Latest)
                .await
            {
                lag += (end.offset - o).max(0);
            }
        }
        let stats = run.job.stats().clone();
        let secs = run.rated_at.elapsed().as_secs_f64().max(0.001);
        let rate = |now: u64, before: u64| {
            (now.saturating_sub(before) as f64 / secs * 10.0).round() / 10.0
        };
        let (in_rate, out_rate) = (
            rate(stats.records_in, run.rated_counts.0),
            rate(stats.records_out, run.rated_counts.1),
        );
        run.rated_at = Instant::now();
        run.rated_counts = (stats.records_in, stats.records_out);
        let watermark = run.job.watermark();
        let partitions = run.partitions.clone();
        self.set(|s| {
            s.state = JobState::Running;
            s.records_in = stats.records_in;
            s.records_out = stats.records_out;
            s.records_in_per_sec = in_rate;
            s.records_out_per_sec = out_rate;
            s.late_dropped = stats.late_dropped;
            s.errors = stats.errors;
            if let Some(e) = &stats.last_error {
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
    job: Job,
    /// Input positions the restored state already reflects.
    restored: BTreeMap<i32, i64>,
    pending: Vec<Output>,
    generation: i32,
    partitions: Vec<i32>,
    state: String,
    /// When and at which (in, out) counts the rates were last taken.
    rated_at: Instant,
    rated_counts: (u64, u64),
    /// Group positions at the last write, to skip writes while idle.
    last_positions: Option<BTreeMap<(String, i32), i64>>,
}

fn producer_record(r: OutputRecord) -> ProducerRecord {
    ProducerRecord {
        key: r.key.map(Bytes::from),
        value: r.value.map(Bytes::from),
        timestamp_ms: r.timestamp,
        headers: Vec::new(),
    }
}

/// Reads the changelog topic to its end: the job's state and the input positions it reflects.
async fn restore(
    client: &Arc<Client>,
    plan: Plan,
    topic: &str,
) -> Result<(Job, BTreeMap<i32, i64>), Stop> {
    let end = client
        .list_offsets(topic, 0, OffsetSpec::Latest)
        .await?
        .offset;
    let mut entries = Vec::new();
    let mut positions = BTreeMap::new();
    if end > 0 {
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
        c.assign_all(topic, StartOffset::Earliest).await?;
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
    }
    let n = entries.len();
    let job = Job::restore(plan, entries).map_err(|e| Stop::Other(e.into()))?;
    tracing::info!(topic, entries = n, ?positions, "job state restored");
    Ok((job, positions))
}

#[cfg(test)]
mod tests {
    use super::*;

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
