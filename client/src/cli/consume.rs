//! `consume TOPIC`: prints record values one per line, like `kafka-console-consumer`.
//!
//! With `--group` it is a group member: each partition starts at the
//! group's committed offset (`--from-beginning` only decides where to start
//! when nothing is committed), positions are auto-committed as the console
//! consumer does, and what was printed is committed before it exits.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::common::BootstrapArgs;
use crate::{
    Client, ClientError, Consumer, ConsumerConfig, ConsumerRecord, FetchOptions, GroupConsumer,
    GroupConsumerConfig, OffsetReset, StartOffset,
};

/// Auto-commit period of a `--group` consumer (the console consumer's 5 s).
const GROUP_AUTO_COMMIT_MS: u64 = 5_000;

#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    /// Topic to read.
    pub topic: String,
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
    /// Start at the earliest offset instead of the end.
    #[arg(long)]
    pub from_beginning: bool,
    /// Read only this partition (all partitions if not given).
    #[arg(long, conflicts_with = "group")]
    pub partition: Option<i32>,
    /// Consume as a member of this consumer group (committed offsets, shared partitions).
    #[arg(long)]
    pub group: Option<String>,
    /// Start at this offset (needs --partition).
    #[arg(long, requires = "partition", conflicts_with = "from_beginning")]
    pub offset: Option<i64>,
    /// Exit after printing this many records.
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// Exit when no record arrives for this long.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Print the key before the value.
    #[arg(long)]
    pub print_key: bool,
    /// Between key and value when --print-key is given.
    #[arg(long, default_value = "\t")]
    pub key_separator: String,
}

/// Where records come from: assigned partitions, or a group membership.
enum Source {
    Assigned(Consumer),
    Group(Box<GroupConsumer>),
}

impl Source {
    async fn poll(&mut self) -> Result<Vec<ConsumerRecord>, ClientError> {
        match self {
            Source::Assigned(c) => c.poll().await,
            Source::Group(g) => g.poll().await,
        }
    }
}

pub async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let client = args.bootstrap.connect().await?;
    client.topic(&args.topic).await?;
    let mut fetch = FetchOptions::default();
    if let Some(t) = args.timeout_ms {
        fetch.max_wait_ms = fetch.max_wait_ms.min(i32::try_from(t).unwrap_or(i32::MAX));
    }
    let reset = if args.from_beginning {
        OffsetReset::Earliest
    } else {
        OffsetReset::Latest
    };
    let mut source = match &args.group {
        Some(group) => Source::Group(Box::new(group_consumer(
            client, &args, group, fetch, reset,
        )?)),
        None => Source::Assigned(assigned_consumer(client, &args, fetch, reset).await?),
    };
    let (printed, next, failure) = print_loop(&mut source, &args).await;
    let finished = match source {
        Source::Group(consumer) => finish_group(*consumer, next).await,
        Source::Assigned(_) => Ok(()),
    };
    eprintln!("Processed a total of {printed} messages");
    match failure {
        Some(e) => Err(e.into()),
        None => finished,
    }
}

async fn assigned_consumer(
    client: Arc<Client>,
    args: &ConsumeArgs,
    fetch: FetchOptions,
    reset: OffsetReset,
) -> anyhow::Result<Consumer> {
    let mut consumer = Consumer::new(client, ConsumerConfig { fetch, reset });
    let start = match (args.offset, args.from_beginning) {
        (Some(o), _) => StartOffset::Offset(o),
        (None, true) => StartOffset::Earliest,
        (None, false) => StartOffset::Latest,
    };
    match args.partition {
        Some(p) => consumer.assign(&args.topic, p, start).await?,
        None => consumer.assign_all(&args.topic, start).await?,
    }
    Ok(consumer)
}

fn group_consumer(
    client: Arc<Client>,
    args: &ConsumeArgs,
    group: &str,
    fetch: FetchOptions,
    reset: OffsetReset,
) -> anyhow::Result<GroupConsumer> {
    let mut config = GroupConsumerConfig::new(group);
    config.fetch = fetch;
    config.reset = reset;
    config.auto_commit_interval_ms = Some(GROUP_AUTO_COMMIT_MS);
    let mut consumer = GroupConsumer::new(client, config)?;
    consumer.subscribe(&[&args.topic])?;
    Ok(consumer)
}

/// Prints until the limit, the idle timeout, a closed stdout, an error or
/// Ctrl-C. Returns the count, the next offset after what was printed, and
/// the error that stopped it, if any.
async fn print_loop(
    source: &mut Source,
    args: &ConsumeArgs,
) -> (u64, BTreeMap<(String, i32), i64>, Option<ClientError>) {
    let limit = args.max_messages.unwrap_or(u64::MAX);
    let idle_max = args.timeout_ms.map(Duration::from_millis);
    let mut printed = 0u64;
    let mut next = BTreeMap::new();
    let mut last_record = Instant::now();
    let stdout = std::io::stdout();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    'outer: while printed < limit {
        let records = tokio::select! {
            r = source.poll() => r,
            _ = &mut ctrl_c => break,
        };
        let records = match records {
            Ok(r) => r,
            Err(e) => return (printed, next, Some(e)),
        };
        if records.is_empty() {
            if idle_max.is_some_and(|max| last_record.elapsed() >= max) {
                break;
            }
            continue;
        }
        last_record = Instant::now();
        let mut out = stdout.lock();
        for r in &records {
            if write_record(&mut out, r, args).is_err() {
                break 'outer; // stdout closed (e.g. piped into head): stop quietly
            }
            printed += 1;
            next.insert((r.topic.to_string(), r.partition), r.offset + 1);
            if printed >= limit {
                break;
            }
        }
        if out.flush().is_err() {
            break;
        }
    }
    (printed, next, None)
}

/// Commits exactly what was printed (a poll may have returned more), then leaves.
async fn finish_group(
    mut consumer: GroupConsumer,
    printed_next: BTreeMap<(String, i32), i64>,
) -> anyhow::Result<()> {
    let positions = consumer.positions();
    for ((topic, partition), offset) in printed_next {
        if positions
            .get(&(topic.clone(), partition))
            .is_some_and(|&p| p > offset)
        {
            consumer.seek(&topic, partition, offset);
        }
    }
    if !consumer.member_id().is_empty() {
        if let Err(e) = consumer.commit().await {
            eprintln!("error: could not commit offsets: {e}");
        }
    }
    consumer.close().await?;
    Ok(())
}

fn write_record(
    out: &mut impl Write,
    r: &ConsumerRecord,
    args: &ConsumeArgs,
) -> std::io::Result<()> {
    if args.print_key {
        match &r.key {
            Some(k) => out.write_all(k)?,
            None => out.write_all(b"null")?,
        }
        out.write_all(args.key_separator.as_bytes())?;
    }
    match &r.value {
        Some(v) => out.write_all(v)?,
        None => out.write_all(b"null")?,
    }
    out.write_all(b"\n")
}
