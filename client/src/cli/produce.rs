//! `produce TOPIC`: lines from stdin become records, like `kafka-console-producer`.

use std::collections::VecDeque;

use anyhow::Context;
use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::cli::common::{parse_acks, BootstrapArgs, CompressionArg};
use crate::producer::{now_ms, DeliveryFuture};
use crate::{Acks, Producer, ProducerConfig, ProducerRecord};

/// Deliveries awaited at most this far behind the line being read; bounds memory
/// while keeping batches full.
const PENDING_DELIVERIES_MAX: usize = 10_000;

#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    /// Topic to write to.
    pub topic: String,
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
    /// Split each line into key and value at the first occurrence of this.
    #[arg(long)]
    pub key_separator: Option<String>,
    /// Write every record to this partition instead of partitioning by key.
    #[arg(long)]
    pub partition: Option<i32>,
    /// 0, 1, or -1/all.
    #[arg(long, default_value = "all", value_parser = parse_acks, allow_hyphen_values = true)]
    pub acks: Acks,
    #[arg(long, value_enum, default_value = "none")]
    pub compression: CompressionArg,
    /// Wait up to this long to fill a batch.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// Use an idempotent producer (needs --acks all).
    #[arg(long)]
    pub idempotent: bool,
}

pub async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let client = args.bootstrap.connect().await?;
    client.topic(&args.topic).await?;
    let config = ProducerConfig {
        acks: args.acks,
        compression: args.compression.into(),
        linger_ms: args.linger_ms,
        idempotent: args.idempotent,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(client, config).await?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut pending: VecDeque<DeliveryFuture> = VecDeque::new();
    let mut line_no = 0u64;
    while let Some(line) = lines.next_line().await.context("reading stdin")? {
        line_no += 1;
        let (key, value) = match &args.key_separator {
            Some(sep) => match line.split_once(sep.as_str()) {
                Some((k, v)) => (Some(Bytes::from(k.to_owned())), v.to_owned()),
                None => anyhow::bail!("line {line_no} has no key separator '{sep}'"),
            },
            None => (None, line),
        };
        let record = ProducerRecord {
            key,
            value: Some(Bytes::from(value)),
            timestamp_ms: now_ms(),
            headers: Vec::new(),
        };
        pending.push_back(
            producer
                .send_record(&args.topic, args.partition, record)
                .await?,
        );
        if pending.len() >= PENDING_DELIVERIES_MAX {
            if let Some(d) = pending.pop_front() {
                d.await?;
            }
        }
    }
    producer.flush().await?;
    for d in pending {
        d.await?;
    }
    producer.close().await?;
    Ok(())
}
