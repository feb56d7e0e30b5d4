//! `consume TOPIC`: prints record values one per line, like `kafka-console-consumer`.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::cli::common::BootstrapArgs;
use crate::{Consumer, ConsumerConfig, ConsumerRecord, FetchOptions, OffsetReset, StartOffset};

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
    #[arg(long)]
    pub partition: Option<i32>,
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
    let limit = args.max_messages.unwrap_or(u64::MAX);
    let idle_max = args.timeout_ms.map(Duration::from_millis);
    let mut printed = 0u64;
    let mut last_record = Instant::now();
    let stdout = std::io::stdout();
    'outer: while printed < limit {
        let records = consumer.poll().await?;
        if records.is_empty() {
            if idle_max.is_some_and(|max| last_record.elapsed() >= max) {
                break;
            }
            continue;
        }
        last_record = Instant::now();
        let mut out = stdout.lock();
        for r in &records {
            if write_record(&mut out, r, &args).is_err() {
                break 'outer; // stdout closed (e.g. piped into head): stop quietly
            }
            printed += 1;
            if printed >= limit {
                break;
            }
        }
        if out.flush().is_err() {
            break;
        }
    }
    eprintln!("Processed a total of {printed} messages");
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
