//! Consumer-group members for the group tests: an rdkafka member running its
//! poll loop on its own thread ([`GroupMember`]), and a `kcat -G` member as a
//! child process that can be SIGKILLed ([`KcatMember`]). Both record what
//! they consume so a test can check exactly-once delivery across the group.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::ClientConfig;

use crate::BrokerProcess;

/// How long stopping a member (close + LeaveGroup) may take.
const STOP_WAIT_MAX: Duration = Duration::from_secs(30);

/// One consumed record: partition, offset, key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
}

/// What a member saw, shared between its thread and the test.
#[derive(Default)]
pub struct MemberState {
    /// Partitions currently assigned (of the subscribed topic).
    pub assignment: Mutex<BTreeSet<i32>>,
    /// Assignments received (rebalance callbacks with Assign).
    pub assigns: AtomicUsize,
    /// Revocations received (rebalance callbacks with Revoke).
    pub revokes: AtomicUsize,
    /// Every record handed to the application, in order.
    pub consumed: Mutex<Vec<Consumed>>,
    /// Commits that failed (each may cause a duplicate elsewhere).
    pub commit_errors: Mutex<Vec<String>>,
    /// Consumer errors other than end-of-partition.
    pub errors: Mutex<Vec<String>>,
}

/// The rdkafka context that keeps [`MemberState`] up to date.
pub struct MemberContext(pub Arc<MemberState>);

impl ClientContext for MemberContext {}

impl ConsumerContext for MemberContext {
    fn post_rebalance(&self, c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // Incremental (cooperative, KIP-848) rebalances assign and revoke
        // parts: the consumer's own view is the whole assignment.
        let now = || -> BTreeSet<i32> {
            c.assignment()
                .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
                .unwrap_or_default()
        };
        match rebalance {
            Rebalance::Assign(_) => {
                *self.0.assignment.lock().expect("lock") = now();
                self.0.assigns.fetch_add(1, Ordering::SeqCst);
            }
            Rebalance::Revoke(_) => {
                *self.0.assignment.lock().expect("lock") = now();
                self.0.revokes.fetch_add(1, Ordering::SeqCst);
            }
            Rebalance::Error(e) => self
                .0
                .errors
                .lock()
                .expect("lock")
                .push(format!("rebalance: {e}")),
        }
    }
}

/// How a member commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Synchronously after every record, before the next poll.
    EachRecordSync,
    /// Never.
    Never,
}

/// An rdkafka group member (subscribe + poll loop) on its own thread.
pub struct GroupMember {
    pub state: Arc<MemberState>,
    stop: Arc<AtomicBool>,
    done: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
    name: String,
}

impl GroupMember {
    /// Starts a member of `group` subscribed to `topic`: no auto commit,
    /// `auto.offset.reset=earliest`, session 6 s, heartbeats every 300 ms
    /// (classic protocol only); `extra` overrides any of it.
    pub fn start(
        broker: &BrokerProcess,
        group: &str,
        topic: &str,
        commit: Commit,
        extra: &[(&str, &str)],
    ) -> GroupMember {
        Self::start_with_limit(broker, group, topic, commit, extra, usize::MAX)
    }

    /// Like [`GroupMember::start`], but the member stops polling (and closes)
    /// on its own once it has processed (and committed) `limit` records.
    pub fn start_with_limit(
        broker: &BrokerProcess,
        group: &str,
        topic: &str,
        commit: Commit,
        extra: &[(&str, &str)],
        limit: usize,
    ) -> GroupMember {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", broker.bootstrap())
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("socket.timeout.ms", "10000");
        // The consumer protocol (KIP-848) takes session and heartbeat from the
        // broker; librdkafka refuses them in the client config.
        if !extra.contains(&("group.protocol", "consumer")) {
            cfg.set("session.timeout.ms", "6000")
                .set("heartbeat.interval.ms", "300");
        }
        for (k, v) in extra {
            cfg.set(*k, *v);
        }
        let state = Arc::new(MemberState::default());
        let consumer: BaseConsumer<MemberContext> = cfg
            .create_with_context(MemberContext(state.clone()))
            .expect("create the group consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, done) = mpsc::channel();
        let name = format!("member of {group}");
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || {
                    poll_loop(&consumer, &state, &stop, commit, limit);
                    drop(consumer); // close: LeaveGroup (dynamic members)
                    let _ = tx.send(());
                })
                .expect("spawn the member thread")
        };
        GroupMember {
            state,
            stop,
            done,
            thread: Some(thread),
            name,
        }
    }

    /// The partitions assigned right now.
    pub fn assignment(&self) -> BTreeSet<i32> {
        self.state.assignment.lock().expect("lock").clone()
    }

    /// How many records this member was handed so far.
    pub fn consumed_count(&self) -> usize {
        self.state.consumed.lock().expect("lock").len()
    }

    /// Everything this member consumed so far.
    pub fn consumed(&self) -> Vec<Consumed> {
        self.state.consumed.lock().expect("lock").clone()
    }

    /// Stops after the record in hand is processed and committed, closes the
    /// consumer (LeaveGroup for a dynamic member) and waits for that (bounded).
    pub fn stop(mut self) -> Arc<MemberState> {
        self.stop_inner();
        self.state.clone()
    }

    fn stop_inner(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            match self.done.recv_timeout(STOP_WAIT_MAX) {
                Ok(()) => t.join().expect("member thread panicked"),
                Err(_) => panic!("{} did not close within {STOP_WAIT_MAX:?}", self.name),
            }
        }
    }
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        if self.thread.is_some() && !std::thread::panicking() {
            self.stop_inner();
        } else {
            // On a failing test, do not wait: the thread dies with the process.
            self.stop.store(true, Ordering::SeqCst);
        }
    }
}

fn poll_loop(
    consumer: &BaseConsumer<MemberContext>,
    state: &MemberState,
    stop: &AtomicBool,
    commit: Commit,
    limit: usize,
) {
    let mut processed = 0;
    while !stop.load(Ordering::SeqCst) && processed < limit {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                let key = m
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .unwrap_or_default();
                state.consumed.lock().expect("lock").push(Consumed {
                    partition: m.partition(),
                    offset: m.offset(),
                    key,
                });
                if commit == Commit::EachRecordSync {
                    if let Err(e) = consumer.commit_message(&m, CommitMode::Sync) {
                        state.commit_errors.lock().expect("lock").push(format!(
                            "commit {}@{}: {e}",
                            m.partition(),
                            m.offset()
                        ));
                    }
                }
                processed += 1;
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => state.errors.lock().expect("lock").push(e.to_string()),
        }
    }
}

/// Polls `cond` every 50 ms until it holds; panics with `what` after `wait`.
pub fn wait_until(what: &str, wait: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        assert!(start.elapsed() < wait, "{what}: not within {wait:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// True if the sets are pairwise disjoint, none is empty, and they cover `0..partitions`.
pub fn is_split(sets: &[BTreeSet<i32>], partitions: i32) -> bool {
    let total: usize = sets.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
    sets.iter().all(|s| !s.is_empty())
        && total == partitions as usize
        && union == (0..partitions).collect()
}

/// A `kcat -G` member as a child process, printing `partition offset key`
/// lines (unbuffered) that a reader thread collects.
pub struct KcatMember {
    child: Option<Child>,
    pub consumed: Arc<Mutex<Vec<Consumed>>>,
    pub stderr: Arc<Mutex<String>>,
}

impl KcatMember {
    /// `kcat -G group topic` with a `session_timeout_ms` session, reading
    /// from the beginning when the group has no committed offset.
    pub fn start(
        broker: &BrokerProcess,
        group: &str,
        topic: &str,
        session_timeout_ms: u32,
    ) -> Self {
        let mut child = Command::new("kcat")
            .args(["-b", &broker.bootstrap(), "-G", group, "-u", "-q"])
            .args(["-f", "%p %o %k\\n"])
            .args(["-X", "auto.offset.reset=earliest"])
            .args(["-X", &format!("session.timeout.ms={session_timeout_ms}")])
            .args(["-X", "heartbeat.interval.ms=300"])
            .args(["-X", "auto.commit.interval.ms=200"])
            .arg(topic)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kcat (apt-get install kcat)");
        let consumed = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        {
            let consumed = consumed.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let mut it = line.split(' ');
                    let (Some(p), Some(o)) = (it.next(), it.next()) else {
                        continue;
                    };
                    if let (Ok(partition), Ok(offset)) = (p.parse(), o.parse()) {
                        let key = it.next().unwrap_or("").to_string();
                        consumed.lock().expect("lock").push(Consumed {
                            partition,
                            offset,
                            key,
                        });
                    }
                }
            });
        }
        {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let mut s = stderr.lock().expect("lock");
                    s.push_str(&line);
                    s.push('\n');
                }
            });
        }
        KcatMember {
            child: Some(child),
            consumed,
            stderr,
        }
    }

    /// SIGKILL: no LeaveGroup, no final commit.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL kcat");
            c.wait().expect("reap kcat");
        }
    }

    /// Partitions this member consumed from so far.
    pub fn partitions_seen(&self) -> BTreeSet<i32> {
        self.consumed
            .lock()
            .expect("lock")
            .iter()
            .map(|c| c.partition)
            .collect()
    }
}

impl Drop for KcatMember {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Broker overrides for group tests: few `__consumer_offsets` partitions, no
/// initial rebalance delay, sessions down to 1 s.
pub const BROKER_OVERRIDES: &[&str] = &[
    "offsets.topic.num.partitions=3",
    "group.initial.rebalance.delay.ms=0",
    "group.min.session.timeout.ms=1000",
];
