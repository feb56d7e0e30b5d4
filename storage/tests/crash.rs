//! kill -9 crash test. The test binary re-executes itself as a child (env
//! `MILLRACE_CRASH_CHILD=<dir>`) that appends to a log with `fsync_every_append` and prints
//! every acknowledged last offset, moving to a new leader epoch every few hundred offsets.
//! The parent SIGKILLs it at random moments, reopens the log and checks it is a valid prefix
//! holding every acknowledged batch, with a leader-epoch cache that matches the batches'
//! epochs. `CRASH_SEED` replays.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use millrace_storage::batch::{validate, BatchIter};
use millrace_storage::testkit::{build_batch, ProducerFields, TestRecord};
use millrace_storage::{Log, LogConfig, PartitionLog};
use rand::{Rng, SeedableRng};

const CHILD_ENV: &str = "MILLRACE_CRASH_CHILD";
const ITERATIONS: usize = 20;
const TOTAL_BUDGET: Duration = Duration::from_secs(20);

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 * 1024,
        index_interval_bytes: 1024,
        segment_index_bytes: 4096,
        fsync_every_append: true,
        ..LogConfig::default()
    }
}

/// The batch the child writes at `first_offset`: content depends only on the offset.
fn batch_for(first_offset: i64) -> Vec<u8> {
    let count = 1 + (first_offset % 4) as usize;
    let records: Vec<TestRecord> = (0..count)
        .map(|i| {
            let offset = first_offset + i as i64;
            let len = 10 + (offset * 37 % 700) as usize;
            let value: Vec<u8> = (0..len).map(|j| (offset as usize + j) as u8).collect();
            TestRecord::new(Some(format!("k{offset}").as_bytes()), Some(&value), offset)
        })
        .collect();
    build_batch(&records, ProducerFields::default())
}

/// The leader epoch the child appends the batch at `first_offset` with.
fn epoch_for(first_offset: i64) -> i32 {
    (first_offset / 300) as i32
}

/// Child mode: append forever, acknowledging each durable append on stdout.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut log = PartitionLog::open(Path::new(&dir), config(), 0).expect("child open");
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    loop {
        let leo = log.log_end_offset();
        let info = log
            .append(&batch_for(leo), epoch_for(leo), 0)
            .expect("child append");
        writeln!(out, "ack {}", info.last_offset).expect("stdout");
        out.flush().expect("stdout");
    }
}

fn run_child_and_kill(dir: &Path, run_for: Duration) -> Option<i64> {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(offset) = line
                .strip_prefix("ack ")
                .and_then(|s| s.parse::<i64>().ok())
            {
                let _ = tx.send(offset);
            }
        }
    });
    std::thread::sleep(run_for);
    child.kill().expect("SIGKILL child");
    child.wait().expect("reap child");
    reader.join().expect("reader thread");
    rx.try_iter().max()
}

/// The recovered log must be a contiguous, CRC-valid prefix of what the child wrote,
/// reaching at least `acked`.
fn check_prefix(dir: &Path, acked: i64) -> i64 {
    let log = PartitionLog::open(dir, config(), 0).expect("reopen after kill");
    log.check_invariants();
    let leo = log.log_end_offset();
    assert!(
        leo > acked,
        "acknowledged offset {acked} lost (log end {leo})"
    );
    let mut expected = 0;
    let mut epoch_starts: Vec<(i32, i64)> = Vec::new();
    while expected < leo {
        let bytes = log.read(expected, 1 << 20, i64::MAX).expect("read");
        for item in BatchIter::new(&bytes) {
            let (pos, header) = item.expect("framing");
            validate(header.bytes(), pos).expect("crc");
            assert_eq!(header.base_offset(), expected, "offsets contiguous");
            assert_eq!(
                &header.bytes()[16..],
                &batch_for(expected)[16..],
                "payload at {expected}"
            );
            let epoch = header.partition_leader_epoch();
            assert_eq!(epoch, epoch_for(expected), "leader epoch at {expected}");
            if epoch_starts.last().is_none_or(|(e, _)| *e < epoch) {
                epoch_starts.push((epoch, expected));
            }
            expected = header.last_offset() + 1;
        }
    }
    assert_eq!(expected, leo);
    for (i, (epoch, _)) in epoch_starts.iter().enumerate() {
        let end = epoch_starts.get(i + 1).map_or(leo, |(_, start)| *start);
        assert_eq!(log.end_offset_for_epoch(*epoch), Some((*epoch, end)));
    }
    assert_eq!(log.latest_epoch(), epoch_starts.last().map(|(e, _)| *e));
    leo
}

#[test]
fn kill_9_keeps_every_acknowledged_batch() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    println!("crash test seed: CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut acked_max = -1;
    for iteration in 0..ITERATIONS {
        if started.elapsed() > TOTAL_BUDGET {
            println!("time budget reached after {iteration} iterations");
            break;
        }
        let run_for = Duration::from_millis(rng.random_range(30..400));
        if let Some(acked) = run_child_and_kill(dir.path(), run_for) {
            acked_max = acked_max.max(acked);
        }
        let leo = check_prefix(dir.path(), acked_max);
        println!("iteration {iteration}: killed after {run_for:?}, acked {acked_max}, recovered to {leo}");
    }
    assert!(acked_max > 0, "child never acknowledged an append");
}
