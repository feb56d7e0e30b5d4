//! Group measurements, not assertions (ignored by default; run with
//! `cargo test -p millrace-tests --test group_bench -- --ignored --nocapture --test-threads=1`):
//! - how long 10 rdkafka members take from subscribe until all hold a share
//!   of the partitions (a stable group);
//! - OffsetCommit throughput over 100 groups (raw requests, 1 and 4 connections).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use millrace_tests::clients::{create_topic, topic_name};
use millrace_tests::group::{is_split, wait_until, Commit, GroupMember, BROKER_OVERRIDES};
use millrace_tests::kproto::{code, commit, RawClient};
use millrace_tests::BrokerProcess;

async fn ten_members_stabilise(overrides: &[&str], label: &str) {
    let broker = BrokerProcess::start(overrides);
    let topic = topic_name("bench-stab");
    let partitions = 20;
    create_topic(&broker, &topic, partitions).await;
    for round in 0..3 {
        let group = topic_name("g-bench-stab");
        let t0 = Instant::now();
        let members: Vec<GroupMember> = (0..10)
            .map(|_| GroupMember::start(&broker, &group, &topic, Commit::Never, &[]))
            .collect();
        let took = wait_until("10 members stable", Duration::from_secs(120), || {
            is_split(
                &members
                    .iter()
                    .map(GroupMember::assignment)
                    .collect::<Vec<_>>(),
                partitions,
            )
        });
        let assigns: usize = members
            .iter()
            .map(|m| m.state.assigns.load(Ordering::SeqCst))
            .sum();
        println!(
            "BENCH group-stabilise [{label}] round {round}: 10 members, {partitions} partitions: \
             {:.0} ms from subscribe to all assigned ({assigns} assignments handed out; \
             wall incl. member creation {:.0} ms)",
            took.as_secs_f64() * 1000.0,
            t0.elapsed().as_secs_f64() * 1000.0
        );
        for m in members {
            m.stop();
        }
    }
}

#[tokio::test]
#[ignore = "measurement: run with --ignored --nocapture"]
async fn bench_ten_members_stabilise() {
    ten_members_stabilise(BROKER_OVERRIDES, "initial delay 0 ms").await;
    ten_members_stabilise(
        &[
            "offsets.topic.num.partitions=3",
            "group.min.session.timeout.ms=1000",
        ],
        "initial delay 3000 ms (default)",
    )
    .await;
}

#[tokio::test]
#[ignore = "measurement: run with --ignored --nocapture"]
async fn bench_offset_commits_100_groups() {
    let broker = BrokerProcess::start(BROKER_OVERRIDES);
    let topic = topic_name("bench-commit");
    create_topic(&broker, &topic, 4).await;
    let groups: Vec<String> = (0..100)
        .map(|i| format!("bench-commit-group-{i}"))
        .collect();
    for connections in [1usize, 4] {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let run_for = Duration::from_secs(5);
        let threads: Vec<_> = (0..connections)
            .map(|w| {
                let (stop, done, topic, addr) =
                    (stop.clone(), done.clone(), topic.clone(), broker.addr());
                let mine: Vec<String> = groups
                    .iter()
                    .skip(w)
                    .step_by(connections)
                    .cloned()
                    .collect();
                std::thread::spawn(move || {
                    let mut c = RawClient::connect(addr);
                    let mut offset = 0i64;
                    while !stop.load(Ordering::Relaxed) {
                        for g in &mine {
                            offset += 1;
                            let r =
                                commit(&mut c, g, "", -1, &[(&topic, (offset % 4) as i32, offset)]);
                            assert_eq!(r[0].2, code::NONE, "commit {g}");
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        let t0 = Instant::now();
        std::thread::sleep(run_for);
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().expect("worker");
        }
        let secs = t0.elapsed().as_secs_f64();
        let n = done.load(Ordering::Relaxed);
        println!(
            "BENCH offset-commit: 100 groups, {connections} connection(s), 1 partition per \
             request: {n} commits in {secs:.1} s = {:.0} commits/s",
            n as f64 / secs
        );
    }
}
