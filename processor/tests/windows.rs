//! Window semantics: every window type, both emit modes, late and out-of-order records, idle
//! partitions, processing time, bad input, SQL errors, and the builder.

mod common;

use common::*;
use millrace_processor::{
    compile, Job, OnError, Output, Pipeline, ProcessorError, Record, Value, Window,
};

fn keyed(partition: i32, offset: i64, ts: i64, key: &str) -> Record {
    Record {
        partition,
        offset,
        timestamp: ts,
        key: Some(key.as_bytes().to_vec()),
        value: Some(b"{}".to_vec()),
        headers: Vec::new(),
    }
}

const COUNT_BY_KEY: &str = "CREATE JOB c WITH (grace = '1 second') AS INSERT INTO o
SELECT key, window_start, count(*) AS n FROM t GROUP BY key, tumble(interval '10 seconds')";

#[test]
fn out_of_order_within_grace_counts_late_after_is_dropped() {
    let recs = vec![
        keyed(0, 0, 1_000, "a"),
        keyed(0, 1, 10_500, "a"), // watermark 9_500: window [0,10s) still open
        keyed(0, 2, 9_000, "a"),  // out of order, within grace
        keyed(0, 3, 11_500, "b"), // watermark 10_500: [0,10s) closes
        keyed(0, 4, 9_999, "a"),  // late: dropped and counted
        keyed(0, 5, 30_000, "z"),
    ];
    let mut job = Job::from_sql(COUNT_BY_KEY).expect("compile");
    let out = run_job(&mut job, &recs, &[], false);
    assert_eq!(
        out,
        vec![
            r#"a|{"key":"a","window_start":0,"n":2}|10000"#,
            r#"a|{"key":"a","window_start":10000,"n":1}|20000"#,
            r#"b|{"key":"b","window_start":10000,"n":1}|20000"#,
        ]
    );
    assert_eq!(job.stats().late_dropped, 1);
    assert_restore_equal(|| compile(COUNT_BY_KEY).expect("compile"), &recs, true);
    assert_parallel_equal(|| compile(COUNT_BY_KEY).expect("compile"), &recs, true);
}

#[test]
fn late_records_go_to_late_topic() {
    let sql = "CREATE JOB c WITH (late_topic = 'late') AS INSERT INTO o
        SELECT key, count(*) AS n FROM t GROUP BY key, tumble(interval '10 seconds')";
    let mut job = Job::from_sql(sql).expect("compile");
    job.process(&keyed(0, 0, 1_000, "a")).expect("ok");
    let closed = job.process(&keyed(0, 1, 12_000, "a")).expect("ok");
    assert_eq!(results(closed), vec![r#"a|{"key":"a","n":1}|10000"#]);
    let late = job.process(&keyed(0, 2, 5_000, "a")).expect("ok");
    assert!(
        matches!(&late[..], [Output::Late(r)] if r.timestamp == 5_000 && r.key.as_deref() == Some(&b"a"[..]))
    );
    assert_eq!(job.stats().late_routed, 1);
}

#[test]
fn watermark_is_min_over_partitions_until_one_goes_idle() {
    let sql = "CREATE JOB c WITH (idle_timeout = '5 seconds') AS INSERT INTO o
        SELECT count(*) AS n, window_end FROM t GROUP BY tumble(interval '10 seconds')";
    let mut job = Job::from_sql(sql).expect("compile");
    job.advance(100);
    assert!(job
        .process(&keyed(0, 0, 1_000, "a"))
        .expect("ok")
        .is_empty());
    assert!(job
        .process(&keyed(1, 0, 2_000, "b"))
        .expect("ok")
        .is_empty());
    // Partition 0 moves on; partition 1 holds the watermark at 2_000.
    assert!(job
        .process(&keyed(0, 1, 15_000, "a"))
        .expect("ok")
        .is_empty());
    assert_eq!(job.watermark(), Some(2_000));
    job.advance(4_000);
    assert!(job
        .process(&keyed(0, 2, 16_000, "a"))
        .expect("ok")
        .is_empty());
    // Partition 1 idle for 5 s of wall clock: it stops holding the watermark back.
    assert!(job.advance(5_000).is_empty());
    assert_eq!(
        results(job.advance(5_100)),
        vec![r#"|{"n":2,"window_end":10000}|10000"#]
    );
}

#[test]
fn session_windows_merge() {
    let sql = "CREATE JOB s AS INSERT INTO o
        SELECT key, window_start, window_end, count(*) AS n, max(timestamp) AS last
        FROM t GROUP BY key, session(interval '5 seconds')";
    let recs = vec![
        keyed(0, 0, 1_000, "a"),
        keyed(0, 1, 10_000, "a"), // a new session
        keyed(0, 2, 4_000, "a"),  // within 5 s of 1_000 (open: watermark 10_000 < 6_000? no)
        keyed(0, 3, 11_000, "b"),
        keyed(0, 4, 7_000, "a"), // 7_000 + 5 s > watermark 11_000: joins the session at 10_000
        keyed(0, 5, 40_000, "z"),
    ];
    let mut job = Job::from_sql(sql).expect("compile");
    let out = run_job(&mut job, &recs, &[], false);
    // Record 2 (4_000) arrives with the watermark at 10_000 >= 4_000 + 5_000: late.
    // Record 4 (7_000): 12_000 > 11_000, not late, merges with the session [10_000, 15_000).
    assert_eq!(
        out,
        vec![
            r#"a|{"key":"a","window_start":1000,"window_end":6000,"n":1,"last":1000}|6000"#,
            r#"a|{"key":"a","window_start":7000,"window_end":15000,"n":2,"last":10000}|15000"#,
            r#"b|{"key":"b","window_start":11000,"window_end":16000,"n":1,"last":11000}|16000"#,
        ]
    );
    assert_eq!(job.stats().late_dropped, 1);
    assert_restore_equal(|| compile(sql).expect("compile"), &recs, true);
    assert_parallel_equal(|| compile(sql).expect("compile"), &recs, true);
}

#[test]
fn hopping_changes_mode_and_aggregates() {
    let sql = "CREATE JOB h WITH (emit = 'changes') AS INSERT INTO o
        SELECT key, window_start, sum(CAST(value ->> 'v' AS int)) AS total, avg(CAST(value ->> 'v' AS int)) AS mean,
               min(value ->> 'v') AS lo, count(distinct value ->> 'v') AS kinds
        FROM t GROUP BY key, hop(interval '5 seconds', interval '10 seconds')";
    let rec = |o: i64, ts: i64, v: i64| Record {
        key: Some(b"k".to_vec()),
        ..Record::text(0, o, ts, &format!(r#"{{"v":{v}}}"#))
    };
    let recs = vec![rec(0, 1_000, 2), rec(1, 6_000, 4), rec(2, 7_000, 4)];
    let mut job = Job::from_sql(sql).expect("compile");
    let out = run_job(&mut job, &recs, &[0], false);
    assert_eq!(
        out,
        vec![
            r#"k|{"key":"k","window_start":-5000,"total":2,"mean":2.0,"lo":"2","kinds":1}|5000"#,
            r#"k|{"key":"k","window_start":0,"total":2,"mean":2.0,"lo":"2","kinds":1}|10000"#,
            // window [-5s, 5s) closed at watermark 6_000 with no change since the last flush
            r#"k|{"key":"k","window_start":0,"total":10,"mean":3.3333333333333335,"lo":"2","kinds":2}|10000"#,
            r#"k|{"key":"k","window_start":5000,"total":8,"mean":4.0,"lo":"4","kinds":1}|15000"#,
        ]
    );
    assert_restore_equal(|| compile(sql).expect("compile"), &recs, false);
}

#[test]
fn processing_time_windows_use_the_injected_clock() {
    let sql = "CREATE JOB p WITH (time = 'processing') AS INSERT INTO o
        SELECT window_start, count(*) AS n FROM t GROUP BY tumble(interval '1 second')";
    let mut job = Job::from_sql(sql).expect("compile");
    job.advance(10_100);
    job.process(&keyed(0, 0, 1, "a")).expect("ok");
    job.process(&keyed(0, 1, 999_999, "b")).expect("ok");
    job.advance(10_900);
    job.process(&keyed(0, 2, 5, "c")).expect("ok");
    assert_eq!(
        results(job.advance(11_000)),
        vec![r#"|{"window_start":10000,"n":3}|11000"#]
    );
}

#[test]
fn bad_records_follow_on_error() {
    let base = "INSERT INTO o SELECT json_value(value, '$.user.name') AS u, count(*) AS n FROM t GROUP BY u";
    let bad = vec![
        Record::text(0, 0, 1, "not json"),
        Record {
            value: Some(vec![0xff, 0xfe]),
            ..Record::text(0, 1, 2, "")
        },
        Record::text(0, 2, 3, r#"{"user":{}}"#),
        Record::text(0, 3, 4, r#"{"user":{"name":"ok"}}"#),
    ];
    let mut skip = Job::from_sql(&format!("CREATE JOB b AS {base}")).expect("compile");
    let out = run_job(&mut skip, &bad, &[], false);
    assert_eq!(out, vec![r#"ok|{"u":"ok","n":1}|4"#]);
    assert_eq!(skip.stats().errors, 3);
    let sample = skip.stats().last_error.clone().expect("sample");
    assert_eq!(
        (sample.offset, sample.reason.as_str()),
        (2, "missing field $.user.name")
    );

    let mut dl = Job::from_sql(&format!(
        "CREATE JOB b WITH (on_error = 'dead_letter') AS {base}"
    ))
    .expect("compile");
    let outs = dl.process(&bad[0]).expect("ok");
    assert!(
        matches!(&outs[..], [Output::DeadLetter(d)] if d.record.offset == 0 && d.error.contains("not valid JSON"))
    );

    let mut stop = Job::from_sql(&format!("CREATE JOB b WITH (on_error = 'stop') AS {base}"))
        .expect("compile");
    let err = stop.process(&bad[1]).expect_err("stops");
    assert!(
        matches!(err, ProcessorError::Stopped { offset: 1, .. }),
        "{err}"
    );
    assert_eq!(
        compile(&format!("CREATE JOB b WITH (on_error = 'stop') AS {base}"))
            .map(|p| p.options.on_error)
            .ok(),
        Some(OnError::Stop)
    );
}

#[test]
fn sql_errors_carry_position_and_reason() {
    let e = compile("CREATE JOB x AS\nINSERT INTO o\nSELECT count(*) OVER () FROM t")
        .expect_err("over");
    assert_eq!(
        e.to_string(),
        "line 3, column 8: window function OVER is not supported"
    );
    let e = compile("CREATE JOB x AS\nINSERT INTO o SELECT nope FROM t").expect_err("col");
    assert_eq!(e.to_string(), "line 2, column 22: unknown column nope");
    let e = compile("CREATE JOB x AS INSERT INTO o SELECT value FROM t WHERE value =")
        .expect_err("syntax");
    assert!(matches!(e, ProcessorError::Sql { line: 1, .. }), "{e}");
    let e = compile("CREATE JOB x WITH (emit = 'sometimes') AS INSERT INTO o SELECT value FROM t")
        .expect_err("opt");
    assert!(
        e.to_string().starts_with("line 1, column 20: option emit"),
        "{e}"
    );
    let e =
        compile("CREATE JOB x AS INSERT INTO o SELECT a.value FROM t a JOIN u b ON a.key = b.key")
            .expect_err("join");
    assert!(e.to_string().contains("JOIN is not supported"), "{e}");
}

#[test]
fn expressions_evaluate() {
    let sql = r#"CREATE JOB e AS INSERT INTO o
        SELECT upper(trim(value ->> 'name')) AS up, length(value ->> 'name') AS len,
               CASE WHEN CAST(value ->> 'n' AS int) % 2 = 0 THEN 'even' ELSE 'odd' END AS parity,
               value -> 'tags' AS tags, regexp_match(value ->> 'name', '([a-z]+)') AS m,
               strpos(value ->> 'name', 'b') AS p, concat('x', value ->> 'n', 'y') AS c,
               (value ->> 'n')::int * 2 + 1 AS calc, (value ->> 'n') IN ('1', '2') AS small
        FROM t WHERE (value ->> 'name') LIKE '%b%' AND NOT contains(value ->> 'name', 'zz')"#;
    let recs = vec![
        Record::text(0, 0, 1, r#"{"name":" abc ","n":2,"tags":["a"]}"#),
        Record::text(0, 1, 2, r#"{"name":"zzb","n":3,"tags":[]}"#),
    ];
    let mut job = Job::from_sql(sql).expect("compile");
    let out = run_job(&mut job, &recs, &[], false);
    assert_eq!(job.stats().last_error, None);
    assert_eq!(
        out,
        vec![
            r#"|{"up":"ABC","len":5,"parity":"even","tags":["a"],"m":["abc"],"p":3,"c":"x2y","calc":5,"small":true}|1"#
        ]
    );
}

#[test]
fn builder_compiles_to_the_same_results_as_sql() {
    let sql = "CREATE JOB w AS INSERT INTO out
        SELECT word AS key, window_start, window_end, count(*) AS count
        FROM lines, unnest(split(lower(value), ' ')) AS word
        WHERE word <> 'the'
        GROUP BY word, tumble(interval '10 seconds')";
    let recs = lines(&[
        (1_000, "The cat"),
        (2_000, "the Dog cat"),
        (12_000, "x"),
        (30_000, "y"),
    ]);
    let plan = || {
        Pipeline::from_topic("lines")
            .flat_map(|v| match v {
                Value::String(s) => s
                    .to_lowercase()
                    .split(' ')
                    .map(|w| Value::String(w.to_owned()))
                    .collect(),
                _ => Vec::new(),
            })
            .filter(|w| *w != Value::String("the".into()))
            .key_by(|w| w.clone())
            .window(Window::tumbling(10_000))
            .count()
            .to_topic("out")
    };
    let built = run_job(&mut Job::new(plan()), &recs, &[], false);
    assert_eq!(built, run(sql, &recs));
    assert_eq!(
        built[0],
        r#"cat|{"key":"cat","window_start":0,"window_end":10000,"count":2}|10000"#
    );
    assert_restore_equal(plan, &recs, true);
    assert_parallel_equal(plan, &recs, true);
}

/// Hopping counts keep running rows (`sliding`); other aggregates merge panes at close. The two
/// must agree on out-of-order input, gaps, restore, sharding and keys whose group values
/// differ (`1` and `"1"` encode alike).
#[test]
fn running_hopping_counts_equal_pane_merging() {
    let mut recs = Vec::new();
    let mut ts = 0i64;
    for i in 0..600i64 {
        ts += (i * 7919) % 173;
        if i == 300 {
            ts += 95_000; // a gap longer than a window: the running rows start over
        }
        let jitter = (i * 104_729) % 1_500; // out of order, within grace
        let k = (i * 31) % 23;
        let v = if k == 5 && i % 2 == 0 {
            r#"{"k":"5"}"#.to_owned()
        } else {
            format!(r#"{{"k":{k}}}"#)
        };
        recs.push(Record::text((i % 2) as i32, i, ts - jitter, &v));
    }
    for hop in [
        "interval '2 seconds', interval '10 seconds'",
        "interval '4 seconds', interval '10 seconds'",
    ] {
        let running = format!(
            "CREATE JOB r WITH (grace = '2 seconds') AS INSERT INTO o
             SELECT json_value(value, '$.k') AS k, window_start, count(*) AS n FROM t
             GROUP BY k, hop({hop})"
        );
        let merging = format!(
            "CREATE JOB m WITH (grace = '2 seconds') AS INSERT INTO o
             SELECT json_value(value, '$.k') AS k, window_start, count(*) AS n FROM t
             GROUP BY k, hop({hop}) HAVING min(offset) >= 0"
        );
        let a = run_job(
            &mut Job::from_sql(&running).expect("compile"),
            &recs,
            &[100, 400],
            true,
        );
        let b = run_job(
            &mut Job::from_sql(&merging).expect("compile"),
            &recs,
            &[100, 400],
            true,
        );
        assert!(a.len() > 100, "{hop}: {} rows", a.len());
        assert_eq!(a, b, "{hop}");
        assert_restore_equal(|| compile(&running).expect("compile"), &recs, true);
        assert_parallel_equal(|| compile(&running).expect("compile"), &recs, true);
    }
}
