//! Multi-node clusters of real broker processes driven by real clients:
//! replication under kill -9 of partition leaders (every acknowledged record
//! kept, exactly once, in order; replicas byte-identical), failover time,
//! controlled shutdown, min.insync.replicas, a consumer group across a
//! coordinator crash, and a network partition (namespaces; skipped where
//! they cannot be made).
//!
//! Each test starts its own three nodes; clusters run one at a time (see
//! `millrace_tests::cluster`). Randomised choices print their seed; set
//! `MILLRACE_SEED` to replay one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use millrace_tests::cluster::{raw_produce, Cluster};
use rdkafka::admin::{AdminClient, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{
    BaseRecord, DeliveryResult, FutureProducer, FutureRecord, Producer, ProducerContext,
    ThreadedProducer,
};
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Every node of every test: fast liveness, a short ISR lag, RF 3, min ISR 2.
const COMMON: &[&str] = &[
    "broker.heartbeat.interval.ms=250",
    "broker.session.timeout.ms=1500",
    "replica.lag.time.max.ms=5000",
    "default.replication.factor=3",
    "min.insync.replicas=2",
    "offsets.topic.replication.factor=3",
    "offsets.topic.num.partitions=6",
];
const READY: Duration = Duration::from_secs(40);
const ISR_WAIT: Duration = Duration::from_secs(40);

fn overrides(extra: &[&'static str]) -> Vec<&'static str> {
    let mut v = COMMON.to_vec();
    v.extend_from_slice(extra);
    v
}

fn start(extra: &[&'static str]) -> Cluster {
    let mut c = Cluster::start(3, &overrides(extra));
    c.wait_ready(READY);
    c
}

fn seed() -> u64 {
    let s = std::env::var("MILLRACE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("seed={s} (replay with MILLRACE_SEED={s})");
    s
}

/// xorshift64*: enough randomness to vary kill targets and timings.
struct Rng(u64);
impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % below
    }
}

fn client_config(cluster: &Cluster, extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", cluster.bootstrap())
        .set("socket.timeout.ms", "10000")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .set("retry.backoff.ms", "100");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

/// Creates `topic` (RF 3, min.insync.replicas 2) and waits until every node
/// knows all partitions with a leader and a full ISR.
fn create_topic(cluster: &mut Cluster, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        client_config(cluster, &[]).create().expect("admin client");
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(3))
        .set("min.insync.replicas", "2");
    let opts = rdkafka::admin::AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(15)))
        .operation_timeout(Some(Duration::from_secs(15)));
    // On a thread of its own: some callers are inside a tokio runtime.
    let results = std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(30), admin.create_topics([&new], &opts))
                    .await
            })
        })
        .join()
        .expect("CreateTopics thread")
    })
    .unwrap_or_else(|_| panic!("CreateTopics {topic}: no answer in 30 s"))
    .expect("CreateTopics request");
    assert_eq!(results, vec![Ok(topic.to_string())], "CreateTopics {topic}");
    let took = cluster.wait_full_isr(topic, partitions, ISR_WAIT);
    println!("topic {topic}: {partitions} partitions with full ISR after {took:?}");
}

// ---------------------------------------------------------------------------
// A continuous acks=all idempotent producer that records every acknowledgement.

#[derive(Default)]
struct Acks {
    /// (partition, offset, sequence number) of every acknowledged record.
    acked: Mutex<Vec<(i32, i64, u64)>>,
    /// (sequence number, error) of every record the producer gave up on.
    failed: Mutex<Vec<(u64, String)>>,
    /// Client-level errors (fatal idempotence errors show up here).
    errors: Mutex<Vec<String>>,
}

struct AckContext(Arc<Acks>);

impl ClientContext for AckContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.0
            .errors
            .lock()
            .unwrap()
            .push(format!("{error}: {reason}"));
    }
}

impl ProducerContext for AckContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                let seq = seq_of(m.payload().unwrap_or_default());
                self.0
                    .acked
                    .lock()
                    .unwrap()
                    .push((m.partition(), m.offset(), seq));
            }
            Err((e, m)) => {
                let seq = seq_of(m.payload().unwrap_or_default());
                self.0.failed.lock().unwrap().push((seq, e.to_string()));
            }
        }
    }
}

/// Payloads are `seq-<n>-<padding>`.
fn payload_of(seq: u64) -> Vec<u8> {
    format!("seq-{seq:09}-{}", "x".repeat(80)).into_bytes()
}

fn seq_of(payload: &[u8]) -> u64 {
    std::str::from_utf8(payload)
        .ok()
        .and_then(|s| s.strip_prefix("seq-"))
        .and_then(|s| s.get(..9))
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX)
}

struct Workload {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    acks: Arc<Acks>,
    thread: Option<JoinHandle<ThreadedProducer<AckContext>>>,
}

impl Workload {
    /// Sends `seq-0`, `seq-1`, ... to partition `seq % partitions`, about
    /// 1000 records a second, until [`Workload::finish`].
    fn start(cluster: &Cluster, topic: &str, partitions: i32) -> Workload {
        let acks = Arc::new(Acks::default());
        let producer: ThreadedProducer<AckContext> = client_config(
            cluster,
            &[
                ("acks", "all"),
                ("enable.idempotence", "true"),
                ("message.timeout.ms", "60000"),
                ("linger.ms", "5"),
            ],
        )
        .create_with_context(AckContext(acks.clone()))
        .expect("create the producer");
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (stop2, sent2, topic) = (stop.clone(), sent.clone(), topic.to_string());
        let thread = std::thread::spawn(move || {
            let mut seq = 0u64;
            while !stop2.load(Ordering::Relaxed) {
                for _ in 0..10 {
                    let value = payload_of(seq);
                    let p = (seq % partitions as u64) as i32;
                    let mut record: BaseRecord<'_, [u8], [u8]> =
                        BaseRecord::to(&topic).partition(p).payload(&value);
                    loop {
                        match producer.send(record) {
                            Ok(()) => break,
                            Err((
                                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                                r,
                            )) => {
                                record = r;
                                std::thread::sleep(Duration::from_millis(10));
                                if stop2.load(Ordering::Relaxed) {
                                    return producer;
                                }
                            }
                            Err((e, _)) => panic!("producer refused seq {seq}: {e}"),
                        }
                    }
                    seq += 1;
                    sent2.store(seq, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            producer
        });
        Workload {
            stop,
            sent,
            acks,
            thread: Some(thread),
        }
    }

    fn acked_count(&self) -> usize {
        self.acks.acked.lock().unwrap().len()
    }

    /// Waits (bounded) until at least `more` further records are acknowledged.
    fn wait_progress(&self, more: usize, timeout: Duration, what: &str) {
        let target = self.acked_count() + more;
        let start = Instant::now();
        while self.acked_count() < target {
            assert!(
                start.elapsed() < timeout,
                "{what}: fewer than {more} acks in {timeout:?} (acked {}, sent {}, failed {}, errors {:?})",
                self.acked_count(),
                self.sent.load(Ordering::Relaxed),
                self.acks.failed.lock().unwrap().len(),
                self.acks.errors.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops sending, waits for every outstanding delivery; returns
    /// (acknowledged, number sent).
    fn finish(mut self) -> (Vec<(i32, i64, u64)>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let producer = self.thread.take().unwrap().join().expect("producer thread");
        producer
            .flush(Timeout::After(Duration::from_secs(70)))
            .expect("flush: every delivery reported within 70 s");
        let failed = self.acks.failed.lock().unwrap().clone();
        let errors = self.acks.errors.lock().unwrap().clone();
        let acked = self.acks.acked.lock().unwrap().clone();
        let sent = self.sent.load(Ordering::Relaxed);
        println!(
            "workload: sent {sent}, acked {}, failed {} (first: {:?}), client errors {} (first: {:?})",
            acked.len(),
            failed.len(),
            failed.first(),
            errors.len(),
            errors.first()
        );
        (acked, sent)
    }
}

// ---------------------------------------------------------------------------
// Checks.

/// Reads every partition from the start up to its high watermark: per
/// partition the (offset, value) list in log order.
fn read_partitions(
    cluster: &Cluster,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, Vec<(i64, Vec<u8>)>> {
    let group = format!("verify-{topic}");
    let c: BaseConsumer = client_config(
        cluster,
        &[
            ("group.id", group.as_str()),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "error"),
        ],
    )
    .create()
    .expect("consumer");
    let mut ends = BTreeMap::new();
    for p in 0..partitions {
        let (lo, hi) = c
            .fetch_watermarks(topic, p, Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("watermarks of {topic}-{p}: {e}"));
        assert_eq!(lo, 0, "{topic}-{p}: log start offset");
        ends.insert(p, hi);
    }
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("add partition");
    }
    c.assign(&tpl).expect("assign");
    let mut out: BTreeMap<i32, Vec<(i64, Vec<u8>)>> =
        (0..partitions).map(|p| (p, Vec::new())).collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    let done = |out: &BTreeMap<i32, Vec<(i64, Vec<u8>)>>| {
        ends.iter()
            .all(|(p, hi)| *hi == 0 || out[p].last().is_some_and(|(o, _)| o + 1 >= *hi))
    };
    while !done(&out) {
        assert!(
            Instant::now() < deadline,
            "reading {topic} back: not at the high watermarks {ends:?} after 90 s; read {:?}",
            out.iter().map(|(p, v)| (*p, v.len())).collect::<Vec<_>>()
        );
        match c.poll(Duration::from_millis(500)) {
            Some(Ok(m)) if m.offset() < ends[&m.partition()] => {
                out.get_mut(&m.partition())
                    .unwrap()
                    .push((m.offset(), m.payload().unwrap_or_default().to_vec()));
            }
            None | Some(Ok(_)) | Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => panic!("consume {topic}: {e}"),
        }
    }
    out
}

/// Every acknowledged record is in the log exactly once at its acknowledged
/// offset, in send order; offsets have no gaps; nothing in the log was never sent.
fn verify_acked(
    cluster: &Cluster,
    topic: &str,
    partitions: i32,
    acked: &[(i32, i64, u64)],
    sent: u64,
) {
    let logs = read_partitions(cluster, topic, partitions);
    let mut problems = Vec::new();
    for (p, log) in &logs {
        let mut last_seq: Option<u64> = None;
        for (i, (off, value)) in log.iter().enumerate() {
            if *off != i as i64 {
                problems.push(format!(
                    "{topic}-{p}: record #{i} is at offset {off} (gap or reorder)"
                ));
                break;
            }
            let seq = seq_of(value);
            if seq >= sent || seq % partitions as u64 != *p as u64 {
                problems.push(format!(
                    "{topic}-{p} offset {off}: a record never sent to this partition: {:?}",
                    String::from_utf8_lossy(&value[..value.len().min(20)])
                ));
            }
            if last_seq.is_some_and(|l| seq <= l) {
                problems.push(format!(
                    "{topic}-{p} offset {off}: seq {seq} after seq {} (duplicate or out of order)",
                    last_seq.unwrap()
                ));
            }
            last_seq = Some(seq);
        }
    }
    let mut per_partition: BTreeMap<i32, usize> = BTreeMap::new();
    for (p, off, seq) in acked {
        *per_partition.entry(*p).or_default() += 1;
        let at = logs.get(p).and_then(|l| l.get(*off as usize));
        match at {
            Some((o, v)) if *o == *off && seq_of(v) == *seq => {}
            Some((o, v)) => problems.push(format!(
                "acked seq {seq} at {topic}-{p} offset {off}, but the log has seq {} at offset {o}",
                seq_of(v)
            )),
            None => problems.push(format!(
                "acked seq {seq} at {topic}-{p} offset {off} is missing (log has {} records)",
                logs.get(p).map_or(0, Vec::len)
            )),
        }
    }
    let sizes: Vec<(i32, usize)> = logs.iter().map(|(p, l)| (*p, l.len())).collect();
    println!("log sizes per partition: {sizes:?}; acked per partition: {per_partition:?}");
    if !problems.is_empty() {
        let n = problems.len();
        problems.truncate(20);
        panic!(
            "{n} problems with acknowledged records (first 20):\n{}",
            problems.join("\n")
        );
    }
    for p in 0..partitions {
        assert!(
            per_partition.get(&p).copied().unwrap_or(0) > 0,
            "{topic}-{p}: nothing was acknowledged"
        );
    }
}

/// Waits until the concatenated `.log` segments of every partition are
/// byte-identical on every node holding a replica (all nodes of a three-node
/// cluster; callers first wait for a full ISR). Topics here have RF 3.
fn verify_identical_replicas(cluster: &Cluster, topic: &str, partitions: i32) {
    let start = Instant::now();
    loop {
        let mut diffs = Vec::new();
        for p in 0..partitions {
            let ids: Vec<i32> = cluster
                .ids()
                .into_iter()
                .filter(|id| cluster.data_dir(*id).join(format!("{topic}-{p}")).is_dir())
                .collect();
            assert_eq!(
                ids.len(),
                3,
                "{topic}-{p}: replicas on nodes {ids:?}, expected 3"
            );
            let logs: Vec<Vec<u8>> = ids
                .iter()
                .map(|id| cluster.partition_log_bytes(*id, topic, p))
                .collect();
            for (k, log) in logs.iter().enumerate().skip(1) {
                if *log != logs[0] {
                    let first_diff = log
                        .iter()
                        .zip(&logs[0])
                        .position(|(a, b)| a != b)
                        .unwrap_or(log.len().min(logs[0].len()));
                    diffs.push(format!(
                        "{topic}-{p}: node {} has {} bytes, node {} has {} bytes, first difference at byte {first_diff}",
                        ids[0],
                        logs[0].len(),
                        ids[k],
                        log.len()
                    ));
                }
            }
            assert!(
                !logs[0].is_empty(),
                "{topic}-{p}: no log bytes on node {}",
                ids[0]
            );
        }
        if diffs.is_empty() {
            println!("replicas byte-identical after {:?}", start.elapsed());
            return;
        }
        if start.elapsed() > Duration::from_secs(20) {
            panic!(
                "replicas differ 20 s after a full ISR with no writes:\n{}\ndata dirs: {:?}",
                diffs.join("\n"),
                cluster
                    .ids()
                    .iter()
                    .map(|id| cluster.data_dir(*id))
                    .collect::<Vec<_>>(),
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A plain producer (no idempotence) for single sends.
fn single_producer(cluster: &Cluster, acks: &str, timeout_ms: &str) -> FutureProducer {
    client_config(
        cluster,
        &[
            ("acks", acks),
            ("enable.idempotence", "false"),
            ("message.timeout.ms", timeout_ms),
            ("request.timeout.ms", "5000"),
            ("linger.ms", "0"),
        ],
    )
    .create()
    .expect("producer")
}

async fn send_one(
    producer: &FutureProducer,
    topic: &str,
    partition: i32,
    value: &[u8],
    bound: Duration,
) -> Result<(i32, i64), String> {
    let r = FutureRecord::<[u8], [u8]>::to(topic)
        .partition(partition)
        .payload(value);
    match tokio::time::timeout(bound, producer.send(r, Duration::from_secs(5))).await {
        Err(_) => Err(format!("no delivery report within {bound:?}")),
        Ok(Ok(d)) => Ok((d.partition, d.offset)),
        Ok(Err((e, _))) => Err(e.to_string()),
    }
}

// ---------------------------------------------------------------------------
// Tests.

/// a. kill -9 partition leaders (3+ times, restarting each) under a
/// continuous acks=all idempotent producer: every acknowledged record is
/// kept exactly once at its offset, in order, and the replicas end up
/// byte-identical.
#[test]
fn leader_kills_lose_no_acknowledged_record() {
    let mut rng = Rng(seed() | 1);
    let mut cluster = start(&[]);
    let topic = "kills";
    let partitions = 6;
    create_topic(&mut cluster, topic, partitions);
    let work = Workload::start(&cluster, topic, partitions);
    work.wait_progress(500, Duration::from_secs(30), "before the first kill");
    for round in 0..3 {
        let p = rng.next(partitions as u64) as i32;
        let leader = cluster.wait_leader(topic, p, Duration::from_secs(20), |_| true);
        let down = Duration::from_millis(1500 + rng.next(5500));
        println!(
            "round {round}: kill -9 node {leader} (leader of {topic}-{p}) at {} acked; down for {down:?}",
            work.acked_count()
        );
        cluster.kill9(leader);
        std::thread::sleep(down);
        cluster.restart(leader);
        let took = cluster.wait_full_isr(topic, partitions, ISR_WAIT);
        println!("round {round}: node {leader} back in every ISR after {took:?}");
        work.wait_progress(
            300,
            Duration::from_secs(30),
            &format!("after round {round}"),
        );
    }
    let (acked, sent) = work.finish();
    verify_acked(&cluster, topic, partitions, &acked, sent);
    cluster.wait_full_isr(topic, partitions, ISR_WAIT);
    verify_identical_replicas(&cluster, topic, partitions);
}

/// b. Time from kill -9 of a partition leader to the first acknowledged
/// acks=all produce to that partition.
#[tokio::test]
async fn failover_time_after_leader_kill() {
    let mut cluster = start(&[]);
    let topic = "failover";
    create_topic(&mut cluster, topic, 3);
    let producer = single_producer(&cluster, "all", "30000");
    let (_, before) = send_one(&producer, topic, 0, b"before", Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("produce before the kill: {e}"));
    let leader = cluster.wait_leader(topic, 0, Duration::from_secs(20), |_| true);
    cluster.kill9(leader);
    let killed = Instant::now();
    let after = send_one(&producer, topic, 0, b"after", Duration::from_secs(35)).await;
    let failover = killed.elapsed();
    println!(
        "failover_ms={} (killed node {leader}, leader of {topic}-0)",
        failover.as_millis()
    );
    let (_, after) =
        after.unwrap_or_else(|e| panic!("acks=all produce after killing the leader: {e}"));
    assert!(after > before, "offset after failover {after} <= {before}");
    assert!(
        failover < Duration::from_secs(20),
        "failover took {failover:?}"
    );
    let new_leader = cluster.wait_leader(topic, 0, Duration::from_secs(10), |l| l != leader);
    println!("new leader of {topic}-0: node {new_leader}");
    cluster.restart(leader);
    cluster.wait_full_isr(topic, 3, ISR_WAIT);
    let logs = read_partitions(&cluster, topic, 1);
    let values: Vec<&[u8]> = logs[&0].iter().map(|(_, v)| v.as_slice()).collect();
    assert_eq!(
        values,
        vec![&b"before"[..], &b"after"[..]],
        "{topic}-0 after failover"
    );
}

/// c. SIGTERM a partition leader: its leaderships have moved by the time it
/// has exited (the session timeout is 10 s here, so fencing cannot explain
/// it), and no acknowledged record is lost.
#[test]
fn controlled_shutdown_moves_leadership_first() {
    let mut cluster = start(&["broker.session.timeout.ms=10000"]);
    let topic = "shutdown";
    let partitions = 6;
    create_topic(&mut cluster, topic, partitions);
    let work = Workload::start(&cluster, topic, partitions);
    work.wait_progress(500, Duration::from_secs(30), "before the shutdown");
    let leader = cluster.wait_leader(topic, 0, Duration::from_secs(20), |_| true);
    let led: Vec<i32> = (0..partitions)
        .filter(|p| {
            cluster
                .partition_info(topic, *p, &[])
                .is_some_and(|i| i.leader == leader)
        })
        .collect();
    println!("SIGTERM node {leader}, leader of {topic} partitions {led:?}");
    let status = cluster.stop(leader);
    let exited = Instant::now();
    assert!(
        status.success(),
        "node {leader} exited with {status} on SIGTERM"
    );
    let others: Vec<i32> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    let mut last = String::new();
    let moved = loop {
        let ok = others.iter().all(|id| {
            cluster.metadata_from(*id, Some(topic)).is_ok_and(|m| {
                last = format!("node {id}: {:?}", m.partitions);
                led.iter().all(|p| {
                    m.partitions
                        .iter()
                        .find(|i| i.partition == *p)
                        .is_some_and(|i| i.leader >= 0 && i.leader != leader)
                })
            })
        });
        if ok {
            break exited.elapsed();
        }
        assert!(
            exited.elapsed() < Duration::from_secs(1),
            "1 s after node {leader} exited, its partitions {led:?} have no other leader: {last}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    println!("leadership of {led:?} seen elsewhere {moved:?} after exit");
    work.wait_progress(300, Duration::from_secs(20), "after the shutdown");
    cluster.restart(leader);
    cluster.wait_full_isr(topic, partitions, ISR_WAIT);
    work.wait_progress(300, Duration::from_secs(20), "after the restart");
    let (acked, sent) = work.finish();
    verify_acked(&cluster, topic, partitions, &acked, sent);
    verify_identical_replicas(&cluster, topic, partitions);
}

/// d. With two of three nodes down, acks=all to an RF 3 / min ISR 2 topic
/// fails while acks=1 still succeeds on the surviving leader; after the
/// restarts acks=all works again.
#[tokio::test]
async fn min_insync_replicas_blocks_acks_all() {
    let mut cluster = start(&[]);
    let topic = "minisr";
    create_topic(&mut cluster, topic, 3);
    let all = single_producer(&cluster, "all", "8000");
    send_one(&all, topic, 0, b"first", Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("acks=all with every node up: {e}"));
    let survivor = cluster.wait_leader(topic, 0, Duration::from_secs(20), |_| true);
    let dead: Vec<i32> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != survivor)
        .collect();
    for id in &dead {
        cluster.kill9(*id);
    }
    println!("killed nodes {dead:?}; node {survivor} leads {topic}-0");
    let r = send_one(&all, topic, 0, b"acks-all-alone", Duration::from_secs(20)).await;
    println!("acks=all with one node of three: {r:?}");
    assert!(
        r.is_err(),
        "acks=all succeeded with two of three replicas down: {r:?}"
    );
    let raw = raw_produce(
        cluster.addr(survivor),
        topic,
        0,
        -1,
        3000,
        b"raw-acks-all-alone",
    );
    println!("raw acks=-1 Produce to node {survivor}: {raw:?}");
    assert!(
        !matches!(raw, Ok((0, _))),
        "node {survivor} acknowledged acks=-1 with two of three replicas down: {raw:?}"
    );
    let still_leads = cluster
        .metadata_from(survivor, Some(topic))
        .ok()
        .and_then(|m| m.partitions.into_iter().find(|p| p.partition == 0))
        .is_some_and(|p| p.leader == survivor);
    let one = single_producer(&cluster, "1", "10000");
    let r1 = send_one(&one, topic, 0, b"acks-1", Duration::from_secs(15)).await;
    println!("acks=1 with one node of three (survivor still leads: {still_leads}): {r1:?}");
    if still_leads {
        r1.unwrap_or_else(|e| panic!("acks=1 to the surviving leader failed: {e}"));
    }
    for id in &dead {
        cluster.restart(*id);
    }
    cluster.wait_ready(READY);
    let again = single_producer(&cluster, "all", "30000");
    send_one(&again, topic, 0, b"acks-all-again", Duration::from_secs(35))
        .await
        .unwrap_or_else(|e| panic!("acks=all after the restarts: {e}"));
    cluster.wait_full_isr(topic, 3, ISR_WAIT);
    // Only partition 0 was written.
    verify_identical_replicas(&cluster, topic, 1);
}

/// e. A group consumer keeps consuming (and committing) after its group
/// coordinator's node is killed.
#[tokio::test]
async fn group_consumer_survives_coordinator_kill() {
    let mut cluster = start(&[]);
    let topic = "groupkill";
    create_topic(&mut cluster, topic, 3);
    let group = "cluster-group";
    let producer = single_producer(&cluster, "all", "30000");
    for i in 0..300 {
        send_one(
            &producer,
            topic,
            i % 3,
            format!("v{i}").as_bytes(),
            Duration::from_secs(20),
        )
        .await
        .unwrap_or_else(|e| panic!("produce v{i}: {e}"));
    }
    let consumer: StreamConsumer = client_config(
        &cluster,
        &[
            ("group.id", group),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "6000"),
        ],
    )
    .create()
    .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut seen = BTreeSet::new();
    consume_until(&mut seen, 300, &consumer).await;
    let coordinator = find_coordinator(&cluster, group);
    println!("coordinator of {group}: node {coordinator}; kill -9");
    cluster.kill9(coordinator);
    for i in 300..600 {
        send_one(
            &producer,
            topic,
            i % 3,
            format!("v{i}").as_bytes(),
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|e| panic!("produce v{i}: {e}"));
    }
    consume_until(&mut seen, 600, &consumer).await;
    // The commit must go through once the coordinator has moved (bounded retries).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                println!("commit after the coordinator kill: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("no commit within 20 s of the coordinator kill: {e}"),
        }
    }
    let committed = consumer
        .committed(Duration::from_secs(10))
        .expect("OffsetFetch after the coordinator kill");
    for p in 0..3 {
        let off = committed
            .find_partition(topic, p)
            .map(|e| e.offset())
            .unwrap_or(Offset::Invalid);
        assert_eq!(off, Offset::Offset(200), "committed offset of {topic}-{p}");
    }
    let moved = find_coordinator(&cluster, group);
    assert_ne!(moved, coordinator, "coordinator did not move");
    cluster.restart(coordinator);
}

/// Receives (and commits each) until `seen` holds `until` distinct values; 60 s bound.
async fn consume_until(seen: &mut BTreeSet<String>, until: usize, consumer: &StreamConsumer) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut errors = 0;
    while seen.len() < until {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "consumed {} of {until} in 60 s",
            seen.len()
        );
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(m)) => {
                seen.insert(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
                consumer
                    .commit_message(&m, CommitMode::Async)
                    .expect("commit");
            }
            Ok(Err(e)) => {
                errors += 1;
                if errors <= 3 {
                    println!("consumer error #{errors} (continuing): {e}");
                }
            }
            Err(_) => {}
        }
    }
    if errors > 3 {
        println!("{errors} consumer errors in all (transient while a node was down)");
    }
}

fn find_coordinator(cluster: &Cluster, group: &str) -> i32 {
    use kafka_protocol::messages::FindCoordinatorRequest;
    use kafka_protocol::protocol::StrBytes;
    let req = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(group.to_string()))
        .with_key_type(0);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for id in cluster.ids() {
            if let Ok(r) = millrace_tests::cluster::raw_call(cluster.addr(id), 3, &req) {
                if r.error_code == 0 && r.node_id.0 >= 0 {
                    return r.node_id.0;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no coordinator for {group} in 20 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// f. Network partition (namespaces): the isolated leader stops
/// acknowledging acks=all, the majority elects a new leader and accepts
/// writes; after healing, the old leader's unacknowledged appends are gone
/// and the replicas converge byte for byte.
#[test]
fn network_partition_isolates_the_leader() {
    let Some(mut cluster) = Cluster::start_in_netns(3, &overrides(&[])) else {
        println!("SKIP network_partition_isolates_the_leader: no network namespaces here");
        return;
    };
    cluster.wait_ready(READY);
    let topic = "netsplit";
    create_topic(&mut cluster, topic, 3);
    let leader = cluster.wait_leader(topic, 0, Duration::from_secs(20), |_| true);
    let before = raw_produce(cluster.addr(leader), topic, 0, -1, 5000, b"before-cut");
    assert!(
        matches!(before, Ok((0, 0))),
        "first acks=all produce: {before:?}"
    );
    let majority: Vec<i32> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    cluster.isolate(leader);
    let cut = Instant::now();
    println!("isolated node {leader} (leader of {topic}-0) from {majority:?}");
    let mut minority_tries = Vec::new();
    let r = raw_produce(cluster.addr(leader), topic, 0, -1, 3000, b"minority-1");
    println!("acks=-1 to the isolated leader right after the cut: {r:?}");
    assert!(
        !matches!(r, Ok((0, _))),
        "isolated leader acknowledged acks=-1: {r:?}"
    );
    minority_tries.push(b"minority-1".to_vec());
    let mut new_leader = -1;
    cluster.wait_until(
        "a new leader of netsplit-0 in the majority",
        Duration::from_secs(20),
        |c| {
            let leaders: Vec<i32> = majority
                .iter()
                .map(|id| {
                    c.metadata_from(*id, Some(topic))
                        .ok()
                        .and_then(|m| m.partitions.into_iter().find(|p| p.partition == 0))
                        .map_or(-1, |p| p.leader)
                })
                .collect();
            new_leader = leaders[0];
            majority.contains(&new_leader) && leaders.iter().all(|l| *l == new_leader)
        },
    );
    println!(
        "majority elected node {new_leader} after {:?}",
        cut.elapsed()
    );
    let r = raw_produce(cluster.addr(leader), topic, 0, -1, 3000, b"minority-2");
    println!("acks=-1 to the isolated old leader after the election: {r:?}");
    assert!(
        !matches!(r, Ok((0, _))),
        "isolated old leader acknowledged acks=-1: {r:?}"
    );
    minority_tries.push(b"minority-2".to_vec());
    let mut acked_offset = -1;
    cluster.wait_until(
        "acks=-1 accepted by the majority leader",
        Duration::from_secs(20),
        |c| match raw_produce(c.addr(new_leader), topic, 0, -1, 3000, b"majority") {
            Ok((0, off)) => {
                acked_offset = off;
                true
            }
            _ => false,
        },
    );
    println!(
        "majority acknowledged at offset {acked_offset}, {:?} after the cut",
        cut.elapsed()
    );
    cluster.heal();
    let took = cluster.wait_full_isr(topic, 3, ISR_WAIT);
    println!("healed; full ISR after {took:?}");
    let logs = read_partitions(&cluster, topic, 1);
    let values: Vec<Vec<u8>> = logs[&0].iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(values.first().map(Vec::as_slice), Some(&b"before-cut"[..]));
    assert_eq!(
        logs[&0]
            .iter()
            .find(|(_, v)| v == b"majority")
            .map(|(o, _)| *o),
        Some(acked_offset),
        "the majority's acknowledged record at its offset"
    );
    for m in &minority_tries {
        assert!(
            !values.contains(m),
            "{:?}, never acknowledged by the isolated leader, survived the heal",
            String::from_utf8_lossy(m)
        );
    }
    // Only partition 0 was written.
    verify_identical_replicas(&cluster, topic, 1);
}

/// Five nodes: two brokers (one leading a partition, the other leading the
/// metadata quorum when that is another node) die together with kill -9 while an acks=all producer
/// runs. The three survivors keep a metadata majority; partitions that lose
/// two of their three replicas stop taking acks=all writes (min.insync=2)
/// until the nodes return; no acknowledged record is lost, and every replica
/// ends byte-identical.
#[test]
fn five_nodes_survive_two_simultaneous_kills() {
    let mut cluster = Cluster::start(5, &overrides(&[]));
    cluster.wait_ready(READY);
    let topic = "five";
    let partitions = 5;
    create_topic(&mut cluster, topic, partitions);
    let work = Workload::start(&cluster, topic, partitions);
    work.wait_progress(500, Duration::from_secs(30), "before the kills");
    let first = cluster.wait_leader(topic, 0, Duration::from_secs(20), |_| true);
    // The metadata quorum's leader too, when it is another node.
    let controller = cluster
        .metadata_from(first, None)
        .map(|m| m.controller)
        .unwrap_or(-1);
    let second = if controller > 0 && controller != first {
        controller
    } else {
        cluster
            .ids()
            .into_iter()
            .find(|id| *id != first)
            .expect("five nodes")
    };
    println!(
        "kill -9 nodes {first} and {second} at {} acked",
        work.acked_count()
    );
    cluster.kill9(first);
    cluster.kill9(second);
    // Partitions with a surviving in-sync majority keep taking writes.
    work.wait_progress(200, Duration::from_secs(30), "with two nodes down");
    std::thread::sleep(Duration::from_secs(2));
    cluster.restart(first);
    cluster.restart(second);
    let took = cluster.wait_full_isr(topic, partitions, ISR_WAIT);
    println!("nodes {first} and {second} back in every ISR after {took:?}");
    work.wait_progress(300, Duration::from_secs(30), "after the restarts");
    let (acked, sent) = work.finish();
    verify_acked(&cluster, topic, partitions, &acked, sent);
    cluster.wait_full_isr(topic, partitions, ISR_WAIT);
    verify_identical_replicas(&cluster, topic, partitions);
}
