//! Records per second per core: (a) stateless filter, (b) tumbling count by key with 10k keys,
//! (c) a 60 s window sliding every 5 s with 100k keys. Run:
//! `cargo bench -p millrace-processor --bench processor`.
//!
//! `b_tumbling_count_10k_keys` sees about one record per key per window, so it emits about one
//! result per input record and mostly measures result rendering; `b_tumbling_count_10k_keys_
//! 100_per_key` (1M records, each window holding ~100 records per key) is the aggregation-bound
//! case the 1M records/s/core target refers to.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use millrace_processor::{Job, Record};

const BATCH: usize = 100_000;

fn records(keys: u64, ms_per_record: f64) -> Vec<Record> {
    records_n(BATCH, keys, ms_per_record)
}

fn records_n(n: usize, keys: u64, ms_per_record: f64) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let k = (i as u64).wrapping_mul(2_654_435_761) % keys;
            Record {
                partition: 0,
                offset: i as i64,
                timestamp: (i as f64 * ms_per_record) as i64,
                key: Some(format!("user-{k}").into_bytes()),
                value: Some(format!("event {i} from user-{k} status=ok").into_bytes()),
                headers: Vec::new(),
            }
        })
        .collect()
}

fn bench_job(c: &mut Criterion, name: &str, sql: &str, input: &[Record]) {
    bench_run(c, name, sql, input, false)
}

/// `finish`: close every window at the end (when the input does not close the last ones).
fn bench_run(c: &mut Criterion, name: &str, sql: &str, input: &[Record], finish: bool) {
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    g.throughput(Throughput::Elements(input.len() as u64));
    g.bench_function("records", |b| {
        b.iter_batched(
            || Job::from_sql(sql).expect("compile"),
            |mut job| {
                let mut n = 0usize;
                for r in input {
                    n += job.process(r).map(|o| o.len()).unwrap_or(0);
                }
                if finish {
                    n += job.finish().len();
                }
                n + job.flush().1.len()
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_job(
        c,
        "a_stateless_filter",
        "CREATE JOB f AS INSERT INTO o SELECT value FROM t WHERE value LIKE '%user-1%'",
        &records(10_000, 1.0),
    );
    // 100k records over 100 s: ten 10 s windows of up to 10k keys each.
    bench_job(
        c,
        "b_tumbling_count_10k_keys",
        "CREATE JOB c AS INSERT INTO o SELECT key, count(*) AS n FROM t GROUP BY key, tumble(interval '10 seconds')",
        &records(10_000, 1.0),
    );
    // 1M records over 10 s: one 10 s window of 10k keys, ~100 records each, closed at the end.
    bench_run(
        c,
        "b_tumbling_count_10k_keys_100_per_key",
        "CREATE JOB c AS INSERT INTO o SELECT key, count(*) AS n FROM t GROUP BY key, tumble(interval '10 seconds')",
        &records_n(1_000_000, 10_000, 0.01),
        true,
    );
    // 100k keys, 100k records over 200 s: 40 slides, each window combines 12 panes.
    bench_job(
        c,
        "c_hop_60s_every_5s_100k_keys",
        "CREATE JOB h AS INSERT INTO o SELECT key, count(*) AS n FROM t GROUP BY key, hop(interval '5 seconds', interval '60 seconds')",
        &records(100_000, 2.0),
    );
    // 1M records over 120 s, 100k keys: each key recurs in most panes of a window, the case
    // where merging panes at close costs size/slide times the rows emitted.
    bench_job(
        c,
        "c_hop_60s_every_5s_100k_keys_recurring",
        "CREATE JOB h AS INSERT INTO o SELECT key, count(*) AS n FROM t GROUP BY key, hop(interval '5 seconds', interval '60 seconds')",
        &records_n(1_000_000, 100_000, 0.12),
    );
}

criterion_group!(processor, benches);
criterion_main!(processor);
