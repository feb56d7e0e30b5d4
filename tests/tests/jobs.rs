//! Stream processing jobs end to end: a job submitted over the admin HTTP API
//! consumes its input as group `_job.NAME`, and its results are read back
//! with rdkafka. Record timestamps are set explicitly so that windows close
//! deterministically (grace 0; a last record far ahead moves the watermark).

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use millrace_tests::clients::{assign, consumer, create_topic, producer, send, topic_name};
use millrace_tests::BrokerProcess;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Offset;

/// A multiple of 10 s, so the tumbling windows start at T0.
const T0: i64 = 1_700_000_000_000;

/// A unique topic name that is also a plain SQL identifier.
fn sql_name(tag: &str) -> String {
    topic_name(tag).replace('-', "_")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A broker with its admin listener on a free port; returns it and the admin address.
fn start() -> (BrokerProcess, String) {
    let admin = format!("127.0.0.1:{}", free_port());
    let broker = BrokerProcess::start(&[&format!("admin.listener={admin}")]);
    (broker, admin)
}

/// One HTTP/1.1 request; returns the status and body.
fn http(admin: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut s = loop {
        match TcpStream::connect(admin) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("cannot connect to the admin listener {admin}: {e}"),
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {admin}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or_default();
    (status, body.to_string())
}

/// Waits until the job's status JSON contains `"state": "<state>"`.
fn wait_state(admin: &str, job: &str, state: &str) {
    wait_status(admin, job, &format!("\"state\": \"{state}\""));
}

/// Waits until the job's status JSON contains `needle`.
fn wait_status(admin: &str, job: &str, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, body) = http(admin, "GET", &format!("/v1/jobs/{job}"), "");
        if code == 200 && body.contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "job {job} status has no {needle} after 60 s: {code} {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

async fn send_at(p: &FutureProducer, topic: &str, ts: i64, value: &str) {
    let r: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
        .partition(0)
        .payload(value.as_bytes())
        .timestamp(ts);
    send(p, r).await;
}

/// Reads `topic` (4 partitions) until the distinct values equal `want`, or 60 s pass.
fn read_distinct(c: &BaseConsumer, want: &BTreeSet<String>) -> BTreeSet<String> {
    let mut got = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && &got != want {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            if let Some(v) = m.payload() {
                got.insert(String::from_utf8_lossy(v).into_owned());
            }
        }
    }
    got
}

fn wordcount_sql(input: &str, output: &str) -> String {
    format!(
        "CREATE JOB wordcount WITH (emit = 'final', grace = '0 seconds') AS
INSERT INTO {output}
SELECT word, window_start, window_end, count(*) AS n
FROM {input}, unnest(split(lower(value), ' ')) AS word
GROUP BY word, tumble(interval '10 seconds');"
    )
}

fn wc(word: &str, start: i64, n: u32) -> String {
    format!(
        "{{\"word\":\"{word}\",\"window_start\":{},\"window_end\":{},\"n\":{n}}}",
        T0 + start,
        T0 + start + 10_000
    )
}

fn wordcount_golden() -> BTreeSet<String> {
    [
        wc("the", 0, 2),
        wc("quick", 0, 1),
        wc("fox", 0, 1),
        wc("lazy", 0, 1),
        wc("dog", 0, 1),
        wc("the", 10_000, 1),
        wc("fox", 10_000, 1),
        wc("cat", 10_000, 1),
    ]
    .into_iter()
    .collect()
}

const FIRST: [(i64, &str); 2] = [(1_000, "the quick fox"), (2_000, "The lazy dog")];
const SECOND: [(i64, &str); 2] = [(11_000, "the FOX"), (12_500, "cat")];
/// Far ahead: closes both windows above, its own stays open.
const LAST: (i64, &str) = (100_000, "end");

#[tokio::test]
async fn wordcount_job_over_http() {
    let (broker, admin) = start();
    let input = sql_name("lines");
    let output = sql_name("wordcount_10s");
    let sql = wordcount_sql(&input, &output);
    assert_eq!(http(&admin, "GET", "/healthz", "").0, 200);
    let (code, body) = http(&admin, "POST", "/v1/jobs", &sql);
    assert_eq!(code, 201, "{body}");
    let (code, body) = http(&admin, "POST", "/v1/jobs", &sql);
    assert_eq!(code, 409, "{body}");
    let (code, body) = http(
        &admin,
        "POST",
        "/v1/jobs",
        "CREATE JOB bad AS INSERT INTO o SELECT value FROM t WHERE (value",
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("line 1, column"), "{body}");
    wait_state(&admin, "wordcount", "waiting_for_input");

    create_topic(&broker, &input, 1).await;
    wait_state(&admin, "wordcount", "running");
    let p = producer(&broker, &[]);
    for (t, line) in FIRST.iter().chain(SECOND.iter()).chain([LAST].iter()) {
        send_at(&p, &input, T0 + t, line).await;
    }
    let c = consumer(&broker, &[]);
    assign(&c, &output, &[0, 1, 2, 3], Offset::Beginning);
    let want = wordcount_golden();
    assert_eq!(read_distinct(&c, &want), want);

    wait_status(&admin, "wordcount", "\"records_in\": 5,");
    let (_, metrics) = http(&admin, "GET", "/metrics", "");
    assert!(
        metrics.contains("millrace_job_records_in_total{job=\"wordcount\"} 5"),
        "{metrics}"
    );
    assert!(metrics.contains("millrace_partitions "), "{metrics}");

    let (code, _) = http(&admin, "POST", "/v1/jobs/wordcount/pause", "");
    assert_eq!(code, 200);
    wait_state(&admin, "wordcount", "paused");
    let (code, _) = http(&admin, "DELETE", "/v1/jobs/wordcount", "");
    assert_eq!(code, 200);
    assert_eq!(http(&admin, "GET", "/v1/jobs/wordcount", "").0, 404);
}

#[tokio::test]
async fn wordcount_survives_kill9() {
    let (mut broker, admin) = start();
    let input = sql_name("lines");
    let output = sql_name("wordcount_10s");
    create_topic(&broker, &input, 1).await;
    let (code, body) = http(&admin, "POST", "/v1/jobs", &wordcount_sql(&input, &output));
    assert_eq!(code, 201, "{body}");
    wait_state(&admin, "wordcount", "running");
    let p = producer(&broker, &[]);
    for (t, line) in FIRST {
        send_at(&p, &input, T0 + t, line).await;
    }
    // Let some of it be processed and committed, then crash mid-stream.
    std::thread::sleep(Duration::from_millis(1_500));
    broker.kill9();
    broker.start_again();
    let p = producer(&broker, &[]);
    for (t, line) in SECOND.iter().chain([LAST].iter()) {
        send_at(&p, &input, T0 + t, line).await;
    }
    let c = consumer(&broker, &[]);
    assign(&c, &output, &[0, 1, 2, 3], Offset::Beginning);
    let want = wordcount_golden();
    assert_eq!(read_distinct(&c, &want), want);
}

#[tokio::test]
async fn tracked_tweets_pass_through() {
    let (mut broker, admin) = start();
    let input = sql_name("tweets");
    let output = sql_name("tracked");
    create_topic(&broker, &input, 1).await;
    let sql = format!(
        "CREATE JOB tracked AS
INSERT INTO {output}
SELECT value FROM {input}
WHERE lower(json_value(value, '$.text')) LIKE '%#barcelona%'
   OR lower(json_value(value, '$.text')) LIKE '%#messi%';"
    );
    let (code, body) = http(&admin, "POST", "/v1/jobs", &sql);
    assert_eq!(code, 201, "{body}");
    let tweets = [
        r##"{"text":"Visca #Barcelona","user":{"screen_name":"a"}}"##,
        r##"{"text":"nothing to see","user":{"screen_name":"b"}}"##,
        r##"{"text":"GOAL #MESSI","user":{"screen_name":"c"}}"##,
        "not json at all",
    ];
    let p = producer(&broker, &[]);
    for (i, t) in tweets.iter().enumerate() {
        send_at(&p, &input, T0 + i as i64, t).await;
    }
    wait_state(&admin, "tracked", "running");
    let c = consumer(&broker, &[]);
    assign(&c, &output, &[0, 1, 2, 3], Offset::Beginning);
    let want: BTreeSet<String> = [tweets[0], tweets[2]]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(read_distinct(&c, &want), want);
    wait_status(&admin, "tracked", "\"records_in\": 4,");

    // A clean stop with a running job is quick, and the job resumes after it.
    let started = Instant::now();
    broker.restart();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    wait_state(&admin, "tracked", "running");
    wait_status(&admin, "tracked", "\"records_in\": 4,");
}
