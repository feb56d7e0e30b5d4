//! `perf produce` and `perf consume`, like `kafka-producer-perf-test` and
//! `kafka-consumer-perf-test`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::cli::common::{parse_acks, BootstrapArgs, CompressionArg};
use crate::producer::{now_ms, DeliveryFuture};
use crate::{
    Acks, Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig, ProducerRecord,
    StartOffset,
};

/// Latency samples kept for percentiles (Kafka's tool keeps 500k too); 2 MB.
const LATENCY_SAMPLES_MAX: u64 = 500_000;
/// Deliveries waiting to be timed; bounds memory between sender and collector.
const PENDING_DELIVERIES_MAX: usize = 50_000;
/// How often a progress line is printed.
const REPORT_INTERVAL_MS: u64 = 5_000;

#[derive(Debug, clap::Args)]
pub struct PerfArgs {
    #[command(subcommand)]
    pub action: PerfAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum PerfAction {
    /// Producer throughput and latency.
    Produce(PerfProduceArgs),
    /// Consumer throughput.
    Consume(PerfConsumeArgs),
}

#[derive(Debug, clap::Args)]
pub struct PerfProduceArgs {
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
    #[arg(long)]
    pub topic: String,
    #[arg(long)]
    pub num_records: u64,
    /// Value size in bytes.
    #[arg(long)]
    pub record_size: usize,
    /// Records per second cap; -1 for none.
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub throughput: i64,
    #[arg(long, default_value = "all", value_parser = parse_acks, allow_hyphen_values = true)]
    pub acks: Acks,
    /// Batch size in bytes.
    #[arg(long, default_value_t = 16 * 1024)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    #[arg(long, value_enum, default_value = "none")]
    pub compression: CompressionArg,
}

#[derive(Debug, clap::Args)]
pub struct PerfConsumeArgs {
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
    #[arg(long)]
    pub topic: String,
    /// Records to read (from the beginning of every partition).
    #[arg(long)]
    pub messages: u64,
    /// Give up when no record arrives for this long.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
}

pub async fn run(args: PerfArgs) -> anyhow::Result<()> {
    match args.action {
        PerfAction::Produce(a) => produce(a).await,
        PerfAction::Consume(a) => consume(a).await,
    }
}

/// Running totals over a window or the whole run.
#[derive(Default)]
struct Window {
    records: u64,
    bytes: u64,
    latency_sum_ms: f64,
    latency_max_ms: f64,
}

impl Window {
    fn add(&mut self, bytes: usize, latency_ms: f64) {
        self.records += 1;
        self.bytes += bytes as u64;
        self.latency_sum_ms += latency_ms;
        self.latency_max_ms = self.latency_max_ms.max(latency_ms);
    }

    fn line(&self, elapsed: Duration) -> String {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let avg = if self.records == 0 {
            0.0
        } else {
            self.latency_sum_ms / self.records as f64
        };
        format!(
            "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, {:.1} ms max latency",
            self.records,
            self.records as f64 / secs,
            self.bytes as f64 / secs / (1024.0 * 1024.0),
            avg,
            self.latency_max_ms
        )
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    sorted[i]
}

async fn produce(a: PerfProduceArgs) -> anyhow::Result<()> {
    let client = a.bootstrap.connect().await?;
    client.topic(&a.topic).await?;
    let config = ProducerConfig {
        acks: a.acks,
        compression: a.compression.into(),
        batch_bytes_max: a.batch_size,
        linger_ms: a.linger_ms,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(client, config).await?;
    // Same payload for every record, as Kafka's tool does: random uppercase letters.
    let mut seed = now_ms() as u64 | 1;
    let payload: Bytes = (0..a.record_size)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            b'A' + (seed % 26) as u8
        })
        .collect::<Vec<u8>>()
        .into();
    let (tx, rx) = mpsc::channel::<(Instant, DeliveryFuture)>(PENDING_DELIVERIES_MAX);
    let collector = tokio::spawn(collect(rx, a.num_records, a.record_size));
    let start = Instant::now();
    for i in 0..a.num_records {
        if a.throughput > 0 {
            let due = start + Duration::from_secs_f64(i as f64 / a.throughput as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        let record = ProducerRecord {
            key: None,
            value: Some(payload.clone()),
            timestamp_ms: now_ms(),
            headers: Vec::new(),
        };
        let sent = Instant::now();
        let delivery = producer.send_record(&a.topic, None, record).await?;
        if tx.send((sent, delivery)).await.is_err() {
            break; // the collector stopped on an error; it reports it
        }
    }
    drop(tx);
    producer.flush().await?;
    let result = collector.await?;
    producer.close().await?;
    result
}

async fn collect(
    mut rx: mpsc::Receiver<(Instant, DeliveryFuture)>,
    num_records: u64,
    record_size: usize,
) -> anyhow::Result<()> {
    let sample_every = (num_records / LATENCY_SAMPLES_MAX).max(1);
    let mut samples = Vec::with_capacity(num_records.min(LATENCY_SAMPLES_MAX) as usize + 1);
    let mut total = Window::default();
    let mut window = Window::default();
    let start = Instant::now();
    let mut window_start = start;
    let mut n = 0u64;
    while let Some((sent, delivery)) = rx.recv().await {
        delivery.await?;
        let latency = sent.elapsed().as_secs_f64() * 1000.0;
        total.add(record_size, latency);
        window.add(record_size, latency);
        if n % sample_every == 0 {
            samples.push(latency);
        }
        n += 1;
        if window_start.elapsed() >= Duration::from_millis(REPORT_INTERVAL_MS) {
            say!("{}.", window.line(window_start.elapsed()));
            window = Window::default();
            window_start = Instant::now();
        }
    }
    samples.sort_by(f64::total_cmp);
    say!(
        "{}, {:.0} ms 50th, {:.0} ms 95th, {:.0} ms 99th, {:.0} ms 99.9th.",
        total.line(start.elapsed()),
        percentile(&samples, 0.5),
        percentile(&samples, 0.95),
        percentile(&samples, 0.99),
        percentile(&samples, 0.999)
    );
    Ok(())
}

async fn consume(a: PerfConsumeArgs) -> anyhow::Result<()> {
    let client = a.bootstrap.connect().await?;
    let config = ConsumerConfig {
        reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::new(client, config);
    consumer.assign_all(&a.topic, StartOffset::Earliest).await?;
    let start = Instant::now();
    let mut last = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    while records < a.messages {
        let batch = consumer.poll().await?;
        if batch.is_empty() {
            if last.elapsed() >= Duration::from_millis(a.timeout_ms) {
                eprintln!("no records for {} ms; stopping early", a.timeout_ms);
                break;
            }
            continue;
        }
        last = Instant::now();
        for r in batch.iter().take((a.messages - records) as usize) {
            records += 1;
            bytes += (r.value.as_ref().map_or(0, Bytes::len) + r.key.as_ref().map_or(0, Bytes::len))
                as u64;
        }
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    let mb = bytes as f64 / (1024.0 * 1024.0);
    say!(
        "{records} records consumed, {:.1} records/sec, {mb:.2} MB, {:.2} MB/sec, {secs:.2} s",
        records as f64 / secs,
        mb / secs
    );
    if records < a.messages {
        anyhow::bail!("read only {records} of {} records", a.messages);
    }
    Ok(())
}
