//! KIP-848 with a real client: librdkafka members on the consumer protocol
//! (`group.protocol=consumer`, server-side assignment), and groups mixing
//! them with classic members the way Kafka's migration rules allow: a
//! consumer-protocol member joining a classic group upgrades it in place, a
//! classic member joining a consumer group gets its assignment from the
//! server through JoinGroup/SyncGroup, and when the last consumer-protocol
//! member leaves, the group goes back to the classic protocol.

use std::collections::BTreeSet;
use std::time::Duration;

use millrace_tests::clients::{bounded, create_topic, producer, topic_name};
use millrace_tests::group::{is_split, wait_until, Commit, GroupMember, BROKER_OVERRIDES};
use millrace_tests::BrokerProcess;
use rdkafka::producer::{FutureProducer, FutureRecord};

const WAIT: Duration = Duration::from_secs(40);
const PARTITIONS: i32 = 4;
const NEW: &[(&str, &str)] = &[("group.protocol", "consumer")];
const CLASSIC: &[(&str, &str)] = &[("group.protocol", "classic")];

fn start_broker() -> BrokerProcess {
    let mut overrides = BROKER_OVERRIDES.to_vec();
    overrides.push("group.consumer.heartbeat.interval.ms=500");
    overrides.push("group.consumer.session.timeout.ms=6000");
    BrokerProcess::start(&overrides)
}

async fn produce(producer: &FutureProducer, topic: &str, prefix: &str, n: usize) {
    let mut pending = Vec::new();
    for i in 0..n {
        let key = format!("{prefix}-{i}");
        let r: FutureRecord<'_, str, str> = FutureRecord::to(topic)
            .partition(i as i32 % PARTITIONS)
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

fn keys(members: &[&GroupMember]) -> Vec<String> {
    let mut all: Vec<String> = members
        .iter()
        .flat_map(|m| m.consumed().into_iter().map(|c| c.key))
        .collect();
    all.sort();
    all
}

fn expected(prefixes: &[&str], n: usize) -> Vec<String> {
    let mut all: Vec<String> = prefixes
        .iter()
        .flat_map(|p| (0..n).map(move |i| format!("{p}-{i}")))
        .collect();
    all.sort();
    all
}

fn no_errors(m: GroupMember) {
    let s = m.stop();
    let errors = s.errors.lock().unwrap().clone();
    let commits = s.commit_errors.lock().unwrap().clone();
    assert!(
        errors.is_empty() && commits.is_empty(),
        "{errors:?} {commits:?}"
    );
}

#[tokio::test]
async fn consumer_protocol_members_split_and_consume_every_record_once() {
    let broker = start_broker();
    let topic = topic_name("kip848");
    create_topic(&broker, &topic, PARTITIONS).await;
    let p = producer(&broker, &[]);
    produce(&p, &topic, "a", 40).await;
    let group = topic_name("g-kip848");
    let a = GroupMember::start(&broker, &group, &topic, Commit::EachRecordSync, NEW);
    wait_until("the first member owns every partition", WAIT, || {
        a.assignment().len() == PARTITIONS as usize
    });
    let b = GroupMember::start(&broker, &group, &topic, Commit::EachRecordSync, NEW);
    wait_until("two members split the partitions", WAIT, || {
        is_split(&[a.assignment(), b.assignment()], PARTITIONS)
    });
    produce(&p, &topic, "b", 40).await;
    wait_until("every record consumed", WAIT, || {
        keys(&[&a, &b]).len() >= 80
    });
    assert_eq!(
        keys(&[&a, &b]),
        expected(&["a", "b"], 40),
        "each record once"
    );
    no_errors(b);
    wait_until("the survivor owns every partition", WAIT, || {
        a.assignment().len() == PARTITIONS as usize
    });
    no_errors(a);
}

/// Classic member first; a consumer-protocol member upgrades the group; the
/// classic member keeps working inside it; the consumer-protocol member
/// leaves and the group is classic again with the survivor owning all.
#[tokio::test]
async fn classic_and_consumer_members_share_a_group_both_ways() {
    let broker = start_broker();
    let topic = topic_name("mixed");
    create_topic(&broker, &topic, PARTITIONS).await;
    let p = producer(&broker, &[]);
    produce(&p, &topic, "a", 40).await;
    let group = topic_name("g-mixed");
    let old = GroupMember::start(&broker, &group, &topic, Commit::EachRecordSync, CLASSIC);
    wait_until(
        "the classic member consumed the first records",
        WAIT,
        || old.consumed_count() >= 40,
    );
    let new = GroupMember::start(&broker, &group, &topic, Commit::EachRecordSync, NEW);
    wait_until(
        "classic and consumer members split the partitions",
        WAIT,
        || is_split(&[old.assignment(), new.assignment()], PARTITIONS),
    );
    produce(&p, &topic, "b", 40).await;
    wait_until("every record consumed", WAIT, || {
        keys(&[&old, &new]).len() >= 80
    });
    // A third member on the classic protocol joins the consumer group.
    let third = GroupMember::start(&broker, &group, &topic, Commit::EachRecordSync, CLASSIC);
    wait_until("three members split the partitions", WAIT, || {
        is_split(
            &[old.assignment(), new.assignment(), third.assignment()],
            PARTITIONS,
        )
    });
    produce(&p, &topic, "c", 40).await;
    wait_until("every record consumed", WAIT, || {
        keys(&[&old, &new, &third]).len() >= 120
    });
    assert_eq!(
        keys(&[&old, &new, &third]),
        expected(&["a", "b", "c"], 40),
        "each record once across the mixed group"
    );
    no_errors(new);
    wait_until(
        "the classic members own every partition again",
        WAIT,
        || is_split(&[old.assignment(), third.assignment()], PARTITIONS),
    );
    produce(&p, &topic, "d", 40).await;
    wait_until("every record consumed", WAIT, || {
        keys(&[&old, &third])
            .iter()
            .filter(|k| k.starts_with("d-"))
            .count()
            >= 40
    });
    let d: BTreeSet<String> = keys(&[&old, &third])
        .into_iter()
        .filter(|k| k.starts_with("d-"))
        .collect();
    assert_eq!(d.len(), 40);
    no_errors(third);
    no_errors(old);
}

/// A regex subscription (KIP-848 SubscribedTopicRegex) is resolved by the
/// broker: matching topics, including one created after the member joined,
/// are assigned; others are not.
#[tokio::test]
async fn regex_subscription_is_resolved_on_the_broker() {
    let broker = start_broker();
    let prefix = topic_name("re");
    let (a, b, later, other) = (
        format!("{prefix}-a"),
        format!("{prefix}-b"),
        format!("{prefix}-later"),
        topic_name("notre"),
    );
    for t in [&a, &b, &other] {
        create_topic(&broker, t, PARTITIONS).await;
    }
    let p = producer(&broker, &[]);
    produce(&p, &a, "a", 20).await;
    produce(&p, &b, "b", 20).await;
    produce(&p, &other, "x", 20).await;
    let group = topic_name("g-re");
    let regex = format!("^{prefix}-.*");
    let m = GroupMember::start(&broker, &group, &regex, Commit::EachRecordSync, NEW);
    wait_until("records of both matching topics", WAIT, || {
        keys(&[&m]).len() >= 40
    });
    create_topic(&broker, &later, PARTITIONS).await;
    produce(&p, &later, "later", 20).await;
    wait_until("records of the topic created later", WAIT, || {
        keys(&[&m]).len() >= 60
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        keys(&[&m]),
        expected(&["a", "b", "later"], 20),
        "the matching topics, each record once, nothing of {other}"
    );
    no_errors(m);
}
