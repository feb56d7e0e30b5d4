//! Test harness: run records through a job, render outputs as `key|value|timestamp` lines.
#![allow(dead_code)]

use millrace_processor::{ChangelogEntry, Job, Output, OutputRecord, Plan, Record};

pub fn line(r: &OutputRecord) -> String {
    let value = match &r.value {
        Some(v) => String::from_utf8_lossy(v).into_owned(),
        None => "<tombstone>".to_owned(),
    };
    format!("{}|{}|{}", r.key_str(), value, r.timestamp)
}

pub fn results(outs: Vec<Output>) -> Vec<String> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Result(r) => Some(line(r)),
            _ => None,
        })
        .collect()
}

/// Tweet JSON as the tutorials use it.
pub fn tweet(partition: i32, offset: i64, ts: i64, author: &str, text: &str) -> Record {
    let v = serde_json::json!({
        "id": offset, "created_at": "Wed Oct 10 20:19:24 +0000 2018", "text": text,
        "user": {"screen_name": author}
    });
    Record::text(partition, offset, ts, &v.to_string())
}

pub fn lines(texts: &[(i64, &str)]) -> Vec<Record> {
    texts
        .iter()
        .enumerate()
        .map(|(i, (ts, t))| Record::text(0, i as i64, *ts, t))
        .collect()
}

/// Run `records` through `job`, flushing after the records whose index is in `flush_after`
/// and at the end; then `finish` if asked. Returns every result line in order.
pub fn run_job(
    job: &mut Job,
    records: &[Record],
    flush_after: &[usize],
    finish: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    for (i, r) in records.iter().enumerate() {
        out.extend(results(job.process(r).expect("process")));
        if flush_after.contains(&i) {
            out.extend(job.flush().0.iter().map(line));
        }
    }
    if finish {
        out.extend(results(job.finish()));
    }
    out.extend(job.flush().0.iter().map(line));
    out
}

pub fn run(sql: &str, records: &[Record]) -> Vec<String> {
    let mut job = Job::from_sql(sql).expect("compile");
    run_job(&mut job, records, &[], false)
}

/// Outputs are identical when the job is restored from its changelog after each cut point.
pub fn assert_restore_equal(plan: impl Fn() -> Plan, records: &[Record], finish: bool) {
    let mut whole = Job::new(plan());
    for cut in [
        1,
        records.len() / 3,
        records.len() / 2,
        records.len().saturating_sub(1),
    ] {
        if cut == 0 || cut >= records.len() {
            continue;
        }
        let expected = {
            let mut j = Job::new(plan());
            run_job(&mut j, records, &[cut - 1], finish)
        };
        let mut first = Job::new(plan());
        let mut out = Vec::new();
        for r in &records[..cut] {
            out.extend(results(first.process(r).expect("process")));
        }
        let (flushed, changelog): (Vec<OutputRecord>, Vec<ChangelogEntry>) = first.flush();
        out.extend(flushed.iter().map(line));
        drop(first);
        let mut restored = Job::restore(plan(), changelog).expect("restore");
        out.extend(run_job(&mut restored, &records[cut..], &[], finish));
        assert_eq!(out, expected, "restore after {cut} records");
    }
    let _ = run_job(&mut whole, records, &[], finish);
}

/// The union of 3 key-sharded instances equals one instance (as sorted multisets).
pub fn assert_parallel_equal(plan: impl Fn() -> Plan, records: &[Record], finish: bool) {
    let mut single = run_job(&mut Job::new(plan()), records, &[], finish);
    let mut union = Vec::new();
    for i in 0..3 {
        let mut j = Job::new(plan()).with_shard(i, 3);
        union.extend(run_job(&mut j, records, &[], finish));
    }
    single.sort();
    union.sort();
    assert_eq!(union, single, "3 shards reading every record");
    let mut routed = run_routed(&plan, records, 3, finish);
    routed.sort();
    assert_eq!(routed, single, "3 shards fed through Job::route");
}

/// What the runtime does with a repartition topic of `count` partitions: a router job sends
/// each record to the shards `Job::route` names, and its event time to every shard (the
/// watermark marker), in record order. Returns the union of the shards' results.
pub fn run_routed(
    plan: &impl Fn() -> Plan,
    records: &[Record],
    count: u32,
    finish: bool,
) -> Vec<String> {
    let mut router = Job::new(plan());
    let mut shards: Vec<Job> = (0..count)
        .map(|i| Job::new(plan()).with_shard(u64::from(i), u64::from(count)))
        .collect();
    let mut out = Vec::new();
    for r in records {
        let route = router.route(r, count);
        for (i, s) in route.shards.iter().enumerate() {
            let job = &mut shards[*s as usize];
            out.extend(results(job.process_routed(r, i == 0).expect("process")));
        }
        if let Some(t) = route.event_time {
            for s in shards.iter_mut() {
                out.extend(results(s.observe_time(r.partition, t)));
            }
        }
    }
    for s in shards.iter_mut() {
        if finish {
            out.extend(results(s.finish()));
        }
        out.extend(s.flush().0.iter().map(line));
    }
    let counted: u64 = shards.iter().map(|s| s.stats().records_in).sum();
    assert_eq!(counted, records.len() as u64, "every record counted once");
    out
}
