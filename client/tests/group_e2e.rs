//! Consumer-group end-to-end tests against a running broker. They skip (pass
//! with a message) unless MILLRACE_TEST_BOOTSTRAP names one, e.g.
//! `MILLRACE_TEST_BOOTSTRAP=127.0.0.1:9092 cargo test -p millrace-client --test group_e2e`.
//! Start the broker with `group.initial.rebalance.delay.ms=0` to keep them fast.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::Parser;
use millrace_client::cli::Command;
use millrace_client::group::Offsets;
use millrace_client::{
    Client, ConsumerRecord, GroupConsumer, GroupConsumerConfig, OffsetReset, Producer,
    ProducerConfig,
};

fn bootstrap() -> Option<String> {
    match std::env::var("MILLRACE_TEST_BOOTSTRAP") {
        Ok(b) if !b.is_empty() => Some(b),
        _ => {
            eprintln!("skipping: set MILLRACE_TEST_BOOTSTRAP=host:port to run end-to-end tests");
            None
        }
    }
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}-{nanos}")
}

/// A topic with `partitions` partitions holding `n` keyed records "v-0".."v-{n-1}".
async fn topic_with_records(client: &Arc<Client>, partitions: i32, n: usize) -> String {
    let topic = unique("grp");
    client
        .create_topic(&topic, partitions, 1, &[])
        .await
        .unwrap();
    let producer = Producer::new(Arc::clone(client), ProducerConfig::default())
        .await
        .unwrap();
    let mut deliveries = Vec::new();
    for i in 0..n {
        let key = Some(Bytes::from(format!("k-{i}")));
        let value = Some(Bytes::from(format!("v-{i}")));
        deliveries.push(producer.send(&topic, key, value).await.unwrap());
    }
    for d in deliveries {
        d.await.unwrap();
    }
    producer.close().await.unwrap();
    topic
}

fn config(group: &str) -> GroupConsumerConfig {
    let mut c = GroupConsumerConfig::new(group);
    c.session_timeout_ms = 6_000; // heartbeats every 2 s: rebalances are noticed quickly
    c.rebalance_timeout_ms = 15_000;
    c.reset = OffsetReset::Earliest;
    c.fetch.max_wait_ms = 200;
    c
}

async fn member(client: &Arc<Client>, config: GroupConsumerConfig, topic: &str) -> GroupConsumer {
    let mut c = GroupConsumer::new(Arc::clone(client), config).unwrap();
    c.subscribe(&[topic]).unwrap();
    c
}

fn values(records: &[ConsumerRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

/// Polls until `n` records arrived or 20 s passed.
async fn read_n(c: &mut GroupConsumer, n: usize) -> Vec<ConsumerRecord> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while out.len() < n && tokio::time::Instant::now() < deadline {
        out.extend(c.poll().await.unwrap());
    }
    out
}

/// What a member running on its own task has seen so far.
#[derive(Debug, Default, Clone)]
struct Seen {
    generation_id: i32,
    partitions: BTreeSet<(String, i32)>,
    values: Vec<String>,
}

/// Polls `c` on its own task (as an application would) until `stop` is set.
fn spawn_member(
    mut c: GroupConsumer,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<GroupConsumer> {
    tokio::spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            let records = c.poll().await.unwrap();
            let mut s = seen.lock().unwrap();
            s.values.extend(values(&records));
            s.generation_id = c.generation_id();
            s.partitions = c
                .assignment()
                .iter()
                .map(|(t, p)| (t.to_owned(), p))
                .collect();
        }
        c
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_split_the_partitions_and_read_everything_once() {
    let Some(b) = bootstrap() else { return };
    let client = Arc::new(Client::connect(&b).await.unwrap());
    let topic = topic_with_records(&client, 4, 200).await;
    let group = unique("split");
    let mut a = member(&client, config(&group), &topic).await;
    a.poll().await.unwrap();
    assert_eq!(
        a.assignment().len(),
        4,
        "a lone member gets every partition"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let (seen_a, seen_b) = (Arc::default(), Arc::default());
    let task_a = spawn_member(a, Arc::clone(&seen_a), Arc::clone(&stop));
    let b_member = member(&client, config(&group), &topic).await;
    let task_b = spawn_member(b_member, Arc::clone(&seen_b), Arc::clone(&stop));

    // Until the rebalance settles at two partitions each and all 200 are read.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (sa, sb): (Seen, Seen) = (
            seen_a.lock().unwrap().clone(),
            seen_b.lock().unwrap().clone(),
        );
        let all: BTreeSet<&String> = sa.values.iter().chain(&sb.values).collect();
        let split = sa.partitions.len() == 2
            && sb.partitions.len() == 2
            && sa.generation_id == sb.generation_id
            && sa.partitions.is_disjoint(&sb.partitions);
        if split && all.len() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no balanced split: {sa:?} / {sb:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let (mut a, mut b) = (task_a.await.unwrap(), task_b.await.unwrap());
    assert_eq!(a.protocol(), "range");
    a.commit().await.unwrap();
    b.commit().await.unwrap();
    let desc = client.describe_group(&group).await.unwrap();
    assert_eq!(desc.state, "Stable");
    assert_eq!(desc.members.len(), 2);
    assert!(desc
        .members
        .iter()
        .all(|m| m.assignment.as_ref().is_some_and(|a| a.len() == 2)));

    a.close().await.unwrap();
    // b learns of a's leave at its next heartbeat and takes over all four.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while b.assignment().len() != 4 {
        assert!(tokio::time::Instant::now() < deadline, "b never took over");
        assert!(
            b.poll().await.unwrap().is_empty(),
            "everything was committed"
        );
    }
    b.close().await.unwrap();
    let desc = client.describe_group(&group).await.unwrap();
    assert_eq!(desc.state, "Empty");
    let committed = client.committed_offsets(&group, None).await.unwrap();
    assert_eq!(committed.values().sum::<i64>(), 200);
}

#[tokio::test]
async fn a_restarted_member_resumes_from_the_committed_offset() {
    let Some(b) = bootstrap() else { return };
    let client = Arc::new(Client::connect(&b).await.unwrap());
    let topic = topic_with_records(&client, 1, 10).await;
    let group = unique("resume");

    let mut c = member(&client, config(&group), &topic).await;
    let first = read_n(&mut c, 10).await;
    assert_eq!(values(&first)[0], "v-0");
    // Processed only four: commit the next offset to read, 4.
    let mut offsets = Offsets::new();
    offsets.insert((topic.clone(), 0), 4);
    c.commit_offsets(&offsets).await.unwrap();
    c.close().await.unwrap();

    let mut c = member(&client, config(&group), &topic).await;
    let again = read_n(&mut c, 6).await;
    assert_eq!(again[0].offset, 4);
    assert_eq!(
        values(&again),
        (4..10).map(|i| format!("v-{i}")).collect::<Vec<_>>()
    );
    c.commit().await.unwrap();
    c.close().await.unwrap();
    let committed = client.committed_offsets(&group, None).await.unwrap();
    assert_eq!(committed.get(&(topic.clone(), 0)), Some(&10));

    // Auto-commit on close; a static member rejoins under its instance id.
    let mut cfg = config(&group);
    cfg.auto_commit_interval_ms = Some(100);
    cfg.group_instance_id = Some(unique("instance"));
    let mut c = member(&client, cfg, &topic).await;
    assert!(
        c.poll().await.unwrap().is_empty(),
        "nothing past the committed offset"
    );
    let desc = client.describe_group(&group).await.unwrap();
    assert_eq!(desc.members.len(), 1);
    assert!(desc.members[0].group_instance_id.is_some());
    c.leave_group("test done").await.unwrap();
    assert_eq!(client.describe_group(&group).await.unwrap().state, "Empty");
}

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

async fn cli(bootstrap: &str, args: &[&str]) -> anyhow::Result<()> {
    let mut argv = vec!["broker"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["--bootstrap-server", bootstrap]);
    millrace_client::cli::run(Cli::try_parse_from(argv)?.cmd).await
}

#[tokio::test]
async fn reset_offsets_needs_an_inactive_group_and_moves_the_start() {
    let Some(b) = bootstrap() else { return };
    let client = Arc::new(Client::connect(&b).await.unwrap());
    let topic = topic_with_records(&client, 2, 20).await;
    let group = unique("reset");

    let mut c = member(&client, config(&group), &topic).await;
    read_n(&mut c, 20).await;
    c.commit().await.unwrap();
    let err = cli(
        &b,
        &[
            "group",
            "reset-offsets",
            &group,
            "--topic",
            &topic,
            "--to-earliest",
            "--execute",
        ],
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("inactive"), "{err}");
    c.close().await.unwrap();

    let before = client.committed_offsets(&group, None).await.unwrap();
    assert_eq!(before.values().sum::<i64>(), 20);
    // A dry run changes nothing.
    cli(
        &b,
        &[
            "group",
            "reset-offsets",
            &group,
            "--topic",
            &topic,
            "--to-earliest",
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        client.committed_offsets(&group, None).await.unwrap(),
        before
    );

    let spec = format!("{topic}:0");
    cli(
        &b,
        &[
            "group",
            "reset-offsets",
            &group,
            "--topic",
            &spec,
            "--to-offset",
            "1",
            "--execute",
        ],
    )
    .await
    .unwrap();
    cli(
        &b,
        &[
            "group",
            "reset-offsets",
            &group,
            "--topic",
            &format!("{topic}:1"),
            "--to-earliest",
            "--execute",
        ],
    )
    .await
    .unwrap();
    let after = client.committed_offsets(&group, None).await.unwrap();
    assert_eq!(after.get(&(topic.clone(), 0)), Some(&1));
    assert_eq!(after.get(&(topic.clone(), 1)), Some(&0));
    let end0 = before[&(topic.clone(), 0)];

    let mut c = member(&client, config(&group), &topic).await;
    let again = read_n(&mut c, (end0 - 1) as usize + (20 - end0) as usize).await;
    assert_eq!(again.len(), 19, "everything but partition 0's first record");
    assert!(again.iter().all(|r| r.partition != 0 || r.offset >= 1));
    c.close().await.unwrap();

    cli(
        &b,
        &[
            "group",
            "reset-offsets",
            &group,
            "--topic",
            &topic,
            "--to-latest",
            "--execute",
        ],
    )
    .await
    .unwrap();
    let latest = client.committed_offsets(&group, None).await.unwrap();
    assert_eq!(latest, before);
    cli(&b, &["group", "describe", &group]).await.unwrap();
    cli(&b, &["group", "delete", &group]).await.unwrap();
    let err = cli(&b, &["group", "describe", &group]).await.unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}
