//! Classic consumer groups with real clients (librdkafka through the rdkafka
//! crate, kcat -G as a child process): partitions split across members,
//! rebalances when a member leaves or dies, exactly-once consumption with
//! synchronous commits, resuming from committed offsets, committed offsets
//! and group state across broker restarts (SIGTERM and kill -9), and static
//! membership.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use millrace_tests::clients::{
    admin, admin_opts, bounded, create_topic, producer, topic_name, CALL_TIMEOUT,
};
use millrace_tests::group::{
    is_split, wait_until, Commit, Consumed, GroupMember, KcatMember, BROKER_OVERRIDES,
};
use millrace_tests::BrokerProcess;
use rdkafka::admin::NewPartitions;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const WAIT: Duration = Duration::from_secs(30);

fn start_broker() -> BrokerProcess {
    BrokerProcess::start(BROKER_OVERRIDES)
}

/// Produces `n` records with keys `<prefix>-<i>`, record `i` to partition
/// `i % partitions`, and waits for every acknowledgement.
async fn produce_keyed(
    producer: &FutureProducer,
    topic: &str,
    partitions: i32,
    prefix: &str,
    n: usize,
) {
    let keys: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let mut pending = Vec::with_capacity(n);
    for (i, key) in keys.iter().enumerate() {
        let r: FutureRecord<'_, str, str> = FutureRecord::to(topic)
            .partition(i as i32 % partitions)
            .key(key.as_str())
            .payload(key.as_str());
        pending.push(
            producer
                .send_result(r)
                .map_err(|(e, _)| e)
                .expect("enqueue"),
        );
    }
    for f in pending {
        bounded("delivery", f)
            .await
            .expect("not cancelled")
            .map_err(|(e, _)| e)
            .expect("delivered");
    }
}

/// A consumer of `group` that never subscribes: for OffsetFetch.
fn offsets_reader(broker: &BrokerProcess, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("create the offsets reader")
}

/// Committed offsets of `group` for partitions `0..partitions` of `topic`
/// (OffsetFetch); -1 where nothing is committed.
fn committed(broker: &BrokerProcess, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let c = offsets_reader(broker, group);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let out = c.committed_offsets(tpl, CALL_TIMEOUT).expect("OffsetFetch");
    (0..partitions)
        .map(|p| {
            let e = out.find_partition(topic, p).expect("partition in answer");
            e.error().expect("no per-partition error");
            match e.offset() {
                Offset::Offset(o) => o,
                _ => -1,
            }
        })
        .collect()
}

/// Every (partition, offset) below `ends[partition]` consumed exactly once,
/// every key exactly once, nothing else.
fn assert_exactly_once(all: &[Consumed], ends: &[i64], keys_expected: usize) {
    let mut by_pos: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    let mut by_key: BTreeMap<&str, usize> = BTreeMap::new();
    for c in all {
        *by_pos.entry((c.partition, c.offset)).or_default() += 1;
        *by_key.entry(c.key.as_str()).or_default() += 1;
    }
    let dups: Vec<_> = by_pos.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        dups.is_empty(),
        "duplicates (partition, offset) -> times: {dups:?}"
    );
    for (p, end) in ends.iter().enumerate() {
        let got: Vec<i64> = by_pos
            .keys()
            .filter(|(pp, _)| *pp == p as i32)
            .map(|(_, o)| *o)
            .collect();
        assert_eq!(
            got,
            (0..*end).collect::<Vec<_>>(),
            "partition {p}: offsets consumed (gaps or extras)"
        );
    }
    assert_eq!(by_key.len(), keys_expected, "distinct keys");
    assert!(by_key.values().all(|n| *n == 1), "a key consumed twice");
}

fn assignments(members: &[&GroupMember]) -> Vec<BTreeSet<i32>> {
    members.iter().map(|m| m.assignment()).collect()
}

#[tokio::test]
async fn two_then_three_rdkafka_members_split_the_partitions() {
    let broker = start_broker();
    let topic = topic_name("split");
    create_topic(&broker, &topic, 6).await;
    let group = topic_name("g-split");
    let a = GroupMember::start(&broker, &group, &topic, Commit::Never, &[]);
    wait_until("first member owns all 6", WAIT, || {
        a.assignment().len() == 6
    });
    let b = GroupMember::start(&broker, &group, &topic, Commit::Never, &[]);
    wait_until("two members split 6 partitions", WAIT, || {
        is_split(&assignments(&[&a, &b]), 6)
    });
    let two = assignments(&[&a, &b]);
    assert_eq!(
        (two[0].len(), two[1].len()),
        (3, 3),
        "range/roundrobin gives 3+3: {two:?}"
    );
    let c = GroupMember::start(&broker, &group, &topic, Commit::Never, &[]);
    wait_until("three members split 6 partitions", WAIT, || {
        is_split(&assignments(&[&a, &b, &c]), 6)
    });
    let three = assignments(&[&a, &b, &c]);
    assert!(three.iter().all(|s| s.len() == 2), "2+2+2: {three:?}");
    for m in [a, b, c] {
        let s = m.stop();
        assert!(
            s.errors.lock().unwrap().is_empty(),
            "{:?}",
            s.errors.lock().unwrap()
        );
    }
}

/// The leader notices new partitions and rejoins a stable group: its new assignment
/// starts a rebalance, and the members split the grown topic.
#[tokio::test]
async fn added_partitions_are_assigned_after_the_leader_rejoins() {
    let broker = start_broker();
    let topic = topic_name("grow");
    create_topic(&broker, &topic, 2).await;
    let group = topic_name("g-grow");
    let fast = [("topic.metadata.refresh.interval.ms", "500")];
    let a = GroupMember::start(&broker, &group, &topic, Commit::Never, &fast);
    let b = GroupMember::start(&broker, &group, &topic, Commit::Never, &fast);
    wait_until("two members split 2 partitions", WAIT, || {
        is_split(&assignments(&[&a, &b]), 2)
    });
    let admin = admin(&broker);
    let grown = bounded(
        "CreatePartitions",
        admin.create_partitions([&NewPartitions::new(&topic, 4)], &admin_opts()),
    )
    .await
    .expect("CreatePartitions request");
    assert_eq!(grown, vec![Ok(topic.clone())]);
    wait_until("two members split 4 partitions", WAIT, || {
        is_split(&assignments(&[&a, &b]), 4)
    });
    for m in [a, b] {
        let s = m.stop();
        assert!(
            s.errors.lock().unwrap().is_empty(),
            "{:?}",
            s.errors.lock().unwrap()
        );
    }
}

#[tokio::test]
async fn member_that_closes_hands_its_partitions_to_the_others_at_once() {
    let broker = start_broker();
    let topic = topic_name("leave");
    create_topic(&broker, &topic, 6).await;
    let group = topic_name("g-leave");
    // A long session: only LeaveGroup (not an expiry) can explain a fast takeover.
    let long = [("session.timeout.ms", "30000")];
    let a = GroupMember::start(&broker, &group, &topic, Commit::Never, &long);
    let b = GroupMember::start(&broker, &group, &topic, Commit::Never, &long);
    let c = GroupMember::start(&broker, &group, &topic, Commit::Never, &long);
    wait_until("three members split", WAIT, || {
        is_split(&assignments(&[&a, &b, &c]), 6)
    });
    let t0 = Instant::now();
    c.stop();
    let took = wait_until("two survivors own all 6", WAIT, || {
        is_split(&assignments(&[&a, &b]), 6)
    });
    assert!(
        took < Duration::from_secs(10),
        "takeover after close took {:?} (session 30 s: LeaveGroup was not acted on)",
        t0.elapsed()
    );
    b.stop();
    wait_until("last member owns all 6", WAIT, || a.assignment().len() == 6);
    a.stop();
}

#[tokio::test]
async fn kcat_member_killed_with_sigkill_is_expired_and_the_survivor_takes_over() {
    let broker = start_broker();
    let topic = topic_name("kill");
    create_topic(&broker, &topic, 4).await;
    let p = producer(&broker, &[]);
    produce_keyed(&p, &topic, 4, "before", 40).await;
    let group = topic_name("g-kill");
    let session_ms = 3000;
    let mut kcat = KcatMember::start(&broker, &group, &topic, session_ms);
    let session = session_ms.to_string();
    let m = GroupMember::start(
        &broker,
        &group,
        &topic,
        Commit::Never,
        &[("session.timeout.ms", session.as_str())],
    );
    // Both own partitions and kcat has read from (only) its own.
    wait_until("rdkafka member and kcat split 4 partitions", WAIT, || {
        let mine = m.assignment();
        let theirs: BTreeSet<i32> = (0..4).filter(|p| !mine.contains(p)).collect();
        !mine.is_empty() && mine.len() < 4 && theirs.is_subset(&kcat.partitions_seen())
    });
    let kcat_parts: BTreeSet<i32> = (0..4).filter(|p| !m.assignment().contains(p)).collect();
    kcat.kill9();
    let took = wait_until("survivor owns all 4 after kill -9", WAIT, || {
        m.assignment().len() == 4
    });
    // Expiry needs up to one session plus a heartbeat round and the rejoin.
    assert!(
        took < Duration::from_millis(u64::from(session_ms) + 5000),
        "takeover took {took:?} for a {session_ms} ms session"
    );
    // The survivor reads new records on the partitions kcat had.
    produce_keyed(&p, &topic, 4, "after", 40).await;
    wait_until("survivor reads all 40 new records", WAIT, || {
        m.consumed()
            .iter()
            .filter(|c| c.key.starts_with("after-"))
            .count()
            == 40
    });
    let after_parts: BTreeSet<i32> = m
        .consumed()
        .iter()
        .filter(|c| c.key.starts_with("after-"))
        .map(|c| c.partition)
        .collect();
    assert!(
        kcat_parts.is_subset(&after_parts),
        "{kcat_parts:?} ⊄ {after_parts:?}"
    );
    m.stop();
}

#[tokio::test]
async fn every_record_consumed_exactly_once_across_rebalances_with_sync_commits() {
    // An initial rebalance delay lets the three members form the first
    // generation together; with none, the first member to join could drain
    // all 900 records alone before the others arrive (seen under CI load).
    let broker = BrokerProcess::start(&[
        "offsets.topic.num.partitions=3",
        "group.initial.rebalance.delay.ms=2000",
        "group.min.session.timeout.ms=1000",
    ]);
    let topic = topic_name("eos");
    let partitions = 6;
    create_topic(&broker, &topic, partitions).await;
    let total = 900;
    let p = producer(&broker, &[]);
    produce_keyed(&p, &topic, partitions, "k", total).await;
    let group = topic_name("g-eos");
    let start = |_: usize| GroupMember::start(&broker, &group, &topic, Commit::EachRecordSync, &[]);
    let a = start(0);
    let b = start(1);
    let c = start(2);
    let count = |ms: &[&GroupMember]| ms.iter().map(|m| m.consumed_count()).sum::<usize>();
    wait_until("a third consumed", WAIT, || {
        count(&[&a, &b, &c]) >= total / 3
    });
    // Controlled stop: c finishes and commits the record in hand, then leaves.
    let c_state = c.stop();
    wait_until("two thirds consumed", WAIT, || {
        count(&[&a, &b]) + c_state.consumed.lock().unwrap().len() >= 2 * total / 3
    });
    let d = start(3);
    wait_until("all consumed", Duration::from_secs(60), || {
        count(&[&a, &b, &d]) + c_state.consumed.lock().unwrap().len() >= total
    });
    // Anything redelivered would arrive now: give the members a moment.
    std::thread::sleep(Duration::from_millis(1500));
    let states = [a.stop(), b.stop(), c_state, d.stop()];
    let mut all = Vec::new();
    for s in &states {
        all.extend(s.consumed.lock().unwrap().iter().cloned());
        assert!(
            s.commit_errors.lock().unwrap().is_empty(),
            "commit errors: {:?}",
            s.commit_errors.lock().unwrap()
        );
    }
    let per = (total / partitions as usize) as i64;
    assert_exactly_once(&all, &vec![per; partitions as usize], total);
    assert!(
        states
            .iter()
            .filter(|s| !s.consumed.lock().unwrap().is_empty())
            .count()
            >= 2,
        "the work was split"
    );
    assert_eq!(committed(&broker, &group, &topic, partitions), vec![per; 6]);
}

#[tokio::test]
async fn restarted_consumer_resumes_from_the_committed_offset() {
    let broker = start_broker();
    let topic = topic_name("resume");
    create_topic(&broker, &topic, 2).await;
    let p = producer(&broker, &[]);
    produce_keyed(&p, &topic, 2, "r", 200).await;
    let group = topic_name("g-resume");
    // The first run stops by itself after 70 records (committed one by one).
    let a = GroupMember::start_with_limit(&broker, &group, &topic, Commit::EachRecordSync, &[], 70);
    wait_until("first run consumed 70", WAIT, || a.consumed_count() >= 70);
    let first = a.stop().consumed.lock().unwrap().clone();
    assert_eq!(first.len(), 70);
    let mut next: BTreeMap<i32, i64> = BTreeMap::from([(0, -1), (1, -1)]);
    for c in &first {
        next.insert(c.partition, c.offset + 1);
    }
    assert_eq!(
        committed(&broker, &group, &topic, 2),
        vec![next[&0], next[&1]],
        "committed = last consumed + 1 (-1: nothing read there)"
    );
    let b = GroupMember::start(&broker, &group, &topic, Commit::EachRecordSync, &[]);
    wait_until("second run consumed the rest", WAIT, || {
        first.len() + b.consumed_count() >= 200
    });
    std::thread::sleep(Duration::from_millis(500));
    let second = b.stop().consumed.lock().unwrap().clone();
    for part in [0, 1] {
        let first_again = second
            .iter()
            .find(|c| c.partition == part)
            .map(|c| c.offset);
        // No commit: auto.offset.reset=earliest; all read: nothing more.
        let want = Some(next[&part].max(0)).filter(|o| *o < 100);
        assert_eq!(first_again, want, "partition {part} resumes at the commit");
    }
    let all: Vec<Consumed> = first.into_iter().chain(second).collect();
    assert_exactly_once(&all, &[100, 100], 200);
}

/// A live member commits after every record while the broker restarts
/// (SIGTERM or kill -9) between two waves of records.
async fn member_survives_broker_restart(kill: bool) {
    let mut broker = start_broker();
    let topic = topic_name("brestart");
    create_topic(&broker, &topic, 3).await;
    let group = topic_name("g-brestart");
    {
        let p = producer(&broker, &[]);
        produce_keyed(&p, &topic, 3, "w1", 60).await;
    }
    let m = GroupMember::start(&broker, &group, &topic, Commit::EachRecordSync, &[]);
    wait_until("first wave consumed", WAIT, || m.consumed_count() == 60);
    // The last commit is acknowledged once consumed_count moved past it; wait for OffsetFetch.
    wait_until("first wave committed", WAIT, || {
        committed(&broker, &group, &topic, 3) == vec![20, 20, 20]
    });
    if kill {
        broker.kill9();
        broker.start_again();
    } else {
        broker.restart();
    }
    assert_eq!(
        committed(&broker, &group, &topic, 3),
        vec![20, 20, 20],
        "committed offsets after the restart"
    );
    let p = producer(&broker, &[]);
    produce_keyed(&p, &topic, 3, "w2", 60).await;
    wait_until("second wave consumed", WAIT, || m.consumed_count() >= 120);
    std::thread::sleep(Duration::from_millis(500));
    let s = m.stop();
    let all = s.consumed.lock().unwrap().clone();
    assert_exactly_once(&all, &[40, 40, 40], 120);
    assert_eq!(committed(&broker, &group, &topic, 3), vec![40, 40, 40]);
    // And a new member of the group has nothing left to read.
    let n = GroupMember::start(&broker, &group, &topic, Commit::Never, &[]);
    wait_until("new member assigned", WAIT, || n.assignment().len() == 3);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        n.consumed_count(),
        0,
        "re-read after restart: {:?}",
        n.consumed()
    );
    n.stop();
}

#[tokio::test]
async fn committed_offsets_and_a_live_member_survive_a_sigterm_restart() {
    member_survives_broker_restart(false).await;
}

#[tokio::test]
async fn committed_offsets_and_a_live_member_survive_kill_9() {
    member_survives_broker_restart(true).await;
}

#[tokio::test]
async fn static_member_restart_gets_its_partitions_back_without_rebalancing_the_other() {
    let broker = start_broker();
    let topic = topic_name("static");
    create_topic(&broker, &topic, 4).await;
    let group = topic_name("g-static");
    let cfg = |iid: &'static str| [("group.instance.id", iid), ("session.timeout.ms", "20000")];
    let a = GroupMember::start(&broker, &group, &topic, Commit::Never, &cfg("static-a"));
    let b = GroupMember::start(&broker, &group, &topic, Commit::Never, &cfg("static-b"));
    wait_until("static members split", WAIT, || {
        is_split(&assignments(&[&a, &b]), 4)
    });
    // Let any in-flight rebalance settle before taking the baseline.
    std::thread::sleep(Duration::from_millis(1000));
    assert!(is_split(&assignments(&[&a, &b]), 4));
    let a_parts = a.assignment();
    let b_parts = b.assignment();
    let b_assigns = b.state.assigns.load(Ordering::SeqCst);
    let b_revokes = b.state.revokes.load(Ordering::SeqCst);
    // A static member's close sends no LeaveGroup; it comes back within the session.
    a.stop();
    let a2 = GroupMember::start(&broker, &group, &topic, Commit::Never, &cfg("static-a"));
    wait_until("restarted static member has its partitions", WAIT, || {
        a2.assignment() == a_parts
    });
    // Several heartbeat intervals: a rebalance of b would show by now.
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(a2.assignment(), a_parts);
    assert_eq!(b.assignment(), b_parts, "b's assignment changed");
    assert_eq!(
        (
            b.state.assigns.load(Ordering::SeqCst),
            b.state.revokes.load(Ordering::SeqCst)
        ),
        (b_assigns, b_revokes),
        "b went through a rebalance"
    );
    assert_eq!(a2.state.revokes.load(Ordering::SeqCst), 0);
    a2.stop();
    b.stop();
}
