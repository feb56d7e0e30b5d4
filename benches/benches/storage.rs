//! Storage benchmarks: append (1 KiB / 16 KiB batches), sequential read, offset lookup,
//! open of a cleanly shut down log with 1,000 segments. Short runs: `sample_size(10)`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use millrace_storage::testkit::simple_batch;
use millrace_storage::{Log, LogConfig, PartitionLog};

fn quick(c: &mut Criterion) -> criterion::BenchmarkGroup<'_, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group("storage");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    group
}

/// A batch of about `bytes` bytes (10 records).
fn batch_of(bytes: usize) -> Vec<u8> {
    simple_batch(10, bytes / 10 - 12, 0)
}

fn append(c: &mut Criterion) {
    let mut group = quick(c);
    for size in [1024usize, 16 * 1024] {
        let batch = batch_of(size);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = PartitionLog::open(dir.path(), LogConfig::default(), 0).expect("open");
        group.throughput(Throughput::Bytes(batch.len() as u64));
        group.bench_function(format!("append_{}KiB", size / 1024), |b| {
            b.iter(|| log.append(black_box(&batch), 0, 0).expect("append"))
        });
    }
    let batch = batch_of(16 * 1024);
    let dir = tempfile::tempdir().expect("tempdir");
    let durable = LogConfig {
        fsync_every_append: true,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), durable, 0).expect("open");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.bench_function("append_16KiB_fsync_every_append", |b| {
        b.iter(|| log.append(black_box(&batch), 0, 0).expect("append"))
    });
    group.finish();
}

fn read(c: &mut Criterion) {
    let mut group = quick(c);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = PartitionLog::open(dir.path(), LogConfig::default(), 0).expect("open");
    let batch = batch_of(16 * 1024);
    for _ in 0..4096 {
        log.append(&batch, 0, 0).expect("append");
    }
    let total = log.size_bytes();
    group.throughput(Throughput::Bytes(total));
    let mut sink = Vec::with_capacity(2 << 20);
    group.bench_function("sequential_read_64MiB_1MiB_fetches", |b| {
        b.iter(|| {
            let mut offset = 0;
            let mut sum = 0u64;
            while offset < log.log_end_offset() {
                let bytes = log.read(offset, 1 << 20, i64::MAX).expect("read");
                // Copy every byte once, as a socket write would.
                sink.clear();
                sink.extend_from_slice(&bytes);
                sum += sink.len() as u64;
                let last = millrace_storage::batch::BatchIter::new(&bytes)
                    .last()
                    .and_then(Result::ok)
                    .map(|(_, h)| h.last_offset())
                    .expect("a batch");
                offset = last + 1;
            }
            black_box(sum)
        })
    });
    let leo = log.log_end_offset();
    group.throughput(Throughput::Elements(1));
    let mut x: i64 = 12345;
    group.bench_function("offset_lookup_random", |b| {
        b.iter(|| {
            x = (x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407))
                & i64::MAX;
            let bytes = log.read(x % leo, 1, i64::MAX).expect("read");
            black_box(bytes.len())
        })
    });
    group.finish();
}

fn open_many_segments(c: &mut Criterion) {
    let mut group = quick(c);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 16 * 1024,
        ..LogConfig::default()
    };
    {
        let mut log = PartitionLog::open(dir.path(), config.clone(), 0).expect("open");
        let batch = batch_of(8 * 1024);
        while log.segment_count() < 1000 {
            log.append(&batch, 0, 0).expect("append");
        }
        log.close().expect("close");
    }
    // Open consumes the clean-shutdown marker; put it back before each open.
    let marker = dir.path().join("clean-shutdown");
    let marker_bytes = std::fs::read(&marker).expect("clean-shutdown marker");
    group.bench_function("open_1000_segments_clean", |b| {
        b.iter_batched(
            || std::fs::write(&marker, &marker_bytes).expect("restore marker"),
            |_| {
                let log = PartitionLog::open(dir.path(), config.clone(), 0).expect("open");
                assert_eq!(log.segment_count(), 1000);
                log
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, append, read, open_many_segments);
criterion_main!(benches);
