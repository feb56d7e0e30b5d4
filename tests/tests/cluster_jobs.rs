//! A stream job on a three-node cluster: every node runs a member of group
//! `_job.NAME`, the word counts are split into shards over the repartition
//! topic, and the results equal what one instance of the same job computes
//! from the same records (the processor library is the oracle), also when a
//! node is killed with SIGKILL mid-stream and restarted, and when another one
//! dies for good and its shards are restored on the survivors.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use millrace_processor::{Job, Output, Record};
use millrace_tests::cluster::Cluster;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const COMMON: &[&str] = &[
    "broker.heartbeat.interval.ms=250",
    "broker.session.timeout.ms=1500",
    "default.replication.factor=3",
    "min.insync.replicas=2",
    "offsets.topic.replication.factor=3",
    "offsets.topic.num.partitions=6",
    "group.initial.rebalance.delay.ms=500",
];
const PARTITIONS: i32 = 3;
/// A multiple of 10 s, so the tumbling windows start at T0.
const T0: i64 = 1_700_000_000_000;
const WORDS: [&str; 7] = ["the", "fox", "dog", "cat", "owl", "elk", "emu"];

fn sql() -> String {
    "CREATE JOB clusterwc WITH (emit = 'final', grace = '0 seconds') AS
INSERT INTO clusterwc_out
SELECT word, window_start, window_end, count(*) AS n
FROM clusterwc_lines, unnest(split(value, ' ')) AS word
GROUP BY word, tumble(interval '10 seconds');"
        .to_string()
}

/// Line `i`: partition i % 3, 400 ms apart, three words from a fixed rotation.
fn line(i: i64) -> Record {
    let w = |k: i64| WORDS[((i * 3 + k * 5 + i / 7) % WORDS.len() as i64) as usize];
    let text = format!("{} {} {}", w(0), w(1), w(2));
    Record::text((i % 3) as i32, i, T0 + i * 400, &text)
}

/// One record per partition far ahead: closes every window before it.
fn closer(p: i32) -> Record {
    Record::text(p, 0, T0 + 1_000_000, "end")
}

fn golden(records: &[Record]) -> BTreeSet<String> {
    let mut job = Job::from_sql(&sql()).expect("compile");
    job.assign_partitions(&[0, 1, 2]);
    let mut out = BTreeSet::new();
    for r in records {
        for o in job.process(r).expect("process") {
            if let Output::Result(r) = o {
                out.insert(String::from_utf8_lossy(&r.value.unwrap_or_default()).into_owned());
            }
        }
    }
    out
}

fn config(cluster: &Cluster) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", cluster.bootstrap())
        .set("socket.timeout.ms", "10000")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .set("retry.backoff.ms", "100");
    c
}

fn create_topic(cluster: &Cluster, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = config(cluster).create().expect("admin");
    let new = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(3));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(15)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let r = rt.block_on(admin.create_topics([&new], &opts));
    let r = r.expect("create topics");
    assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
}

fn produce(cluster: &Cluster, topic: &str, records: &[Record]) {
    let p: FutureProducer = config(cluster)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "60000")
        .create()
        .expect("producer");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for r in records {
            let value = r.value.clone().unwrap_or_default();
            let rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
                .partition(r.partition)
                .payload(value.as_slice())
                .timestamp(r.timestamp);
            p.send(rec, Duration::from_secs(60))
                .await
                .unwrap_or_else(|(e, _)| panic!("produce: {e}"));
        }
    });
}

/// Reads `topic` from the beginning until the distinct values equal `want`, or 90 s pass.
fn read_distinct(cluster: &Cluster, topic: &str, want: &BTreeSet<String>) -> BTreeSet<String> {
    let c: BaseConsumer = config(cluster)
        .set("group.id", "cluster-jobs-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut got = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut assigned = false;
    while Instant::now() < deadline && &got != want {
        if !assigned {
            // The output topic appears once the job starts.
            if let Ok(m) = c.fetch_metadata(Some(topic), Duration::from_secs(5)) {
                let n = m.topics().first().map_or(0, |t| t.partitions().len());
                if n > 0 {
                    let mut tpl = TopicPartitionList::new();
                    for p in 0..n as i32 {
                        tpl.add_partition_offset(topic, p, Offset::Beginning)
                            .expect("offset");
                    }
                    c.assign(&tpl).expect("assign");
                    assigned = true;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            if let Some(v) = m.payload() {
                got.insert(String::from_utf8_lossy(v).into_owned());
            }
        }
    }
    got
}

/// How many nodes logged owning at least one shard of the job.
fn nodes_with_shards(cluster: &Cluster) -> usize {
    cluster
        .ids()
        .into_iter()
        .filter(|id| {
            let log = std::fs::read_to_string(cluster.log_path(*id)).unwrap_or_default();
            log.lines().any(|l| {
                l.contains("job assignment") && l.contains("clusterwc") && !l.contains("shards=[]")
            })
        })
        .count()
}

/// The shards node `id` logged owning last.
fn last_shards(cluster: &Cluster, id: i32) -> Vec<i32> {
    let log = std::fs::read_to_string(cluster.log_path(id)).unwrap_or_default();
    let Some(line) = log
        .lines()
        .rfind(|l| l.contains("job assignment") && l.contains("clusterwc"))
    else {
        return Vec::new();
    };
    let list = line
        .split("shards=[")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_default();
    list.split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

#[test]
fn wordcount_on_three_nodes_survives_a_kill9() {
    let jobs = tempfile::tempdir().expect("jobs dir");
    std::fs::write(jobs.path().join("clusterwc.sql"), sql()).expect("job file");
    let jobs_dir = format!("processor.jobs.dir={}", jobs.path().display());
    let mut overrides = COMMON.to_vec();
    overrides.push(&jobs_dir);
    let mut cluster = Cluster::start(3, &overrides);
    cluster.wait_ready(Duration::from_secs(40));
    create_topic(&cluster, "clusterwc_lines");

    let first: Vec<Record> = (0..60).map(line).collect();
    let second: Vec<Record> = (60..120).map(line).collect();
    let third: Vec<Record> = (120..180).map(line).collect();
    let closers: Vec<Record> = (0..PARTITIONS).map(closer).collect();
    let all: Vec<Record> = [&first, &second, &third, &closers]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let want = golden(&all);
    assert!(want.len() > 20, "a meaningful golden: {want:?}");

    produce(&cluster, "clusterwc_lines", &first);
    // Let the members take their shards and commit some of it, then crash one.
    let deadline = Instant::now() + Duration::from_secs(30);
    while nodes_with_shards(&cluster) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(1_500));
    println!(
        "{} nodes own shards before the kill",
        nodes_with_shards(&cluster)
    );
    cluster.kill9(2);
    cluster.restart(2);
    produce(&cluster, "clusterwc_lines", &second);
    // Node 3 goes for good: once its session ends, its shards are restored elsewhere.
    std::thread::sleep(Duration::from_millis(1_500));
    cluster.kill9(3);
    produce(&cluster, "clusterwc_lines", &third);
    produce(&cluster, "clusterwc_lines", &closers);

    let got = read_distinct(&cluster, "clusterwc_out", &want);
    let missing: Vec<_> = want.difference(&got).collect();
    let wrong: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && wrong.is_empty(),
        "missing {missing:?}\nwrong {wrong:?}\n{}",
        cluster.describe()
    );
    let spread = nodes_with_shards(&cluster);
    assert!(spread >= 2, "the shards stayed on {spread} node(s)");
    let mut survivors: BTreeSet<i32> = BTreeSet::new();
    for id in [1, 2] {
        survivors.extend(last_shards(&cluster, id));
    }
    let survivors_own_all = survivors == (0..PARTITIONS).collect::<BTreeSet<i32>>();
    assert!(
        survivors_own_all,
        "the survivors own shards {survivors:?}, not all of node 3's"
    );
}
