//! Controller tests: openraft's storage suite against our log store and
//! state machine; one node; three voters in one process on 127.0.0.1
//! (replication, forwarding, refusals, failover, restart); a learner.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::testing::{StoreBuilder, Suite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::log_store::LogStore;
use super::state_machine::StateMachine;
use super::types::{Refusal, TypeConfig};
use super::{Controller, ControllerConfig};
use crate::config::Voter;
use crate::metadata::{MetadataError, MetadataImage, MetadataRecord};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), super::types::StorageError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = LogStore::open(dir.path())?;
        let (tx, _) = tokio::sync::watch::channel(Arc::new(MetadataImage::default()));
        let sm = StateMachine::open(dir.path(), tx)?;
        Ok((dir, log, sm))
    }
}

#[test]
fn storage_passes_openraft_suite() {
    Suite::test_all(Builder).expect("openraft storage suite");
}

#[test]
fn refusals_round_trip() {
    let errors = [
        MetadataError::TopicExists("t".into()),
        MetadataError::UnknownTopic("t".into()),
        MetadataError::InvalidPartitions("p".into()),
        MetadataError::JobExists("j".into()),
        MetadataError::UnknownJob("j".into()),
        MetadataError::InvalidReplicas("r".into()),
        MetadataError::StalePartitionState("s".into()),
        MetadataError::UnknownBroker(3),
        MetadataError::NoReassignment("t-0".into()),
        MetadataError::DuplicateBroker(2),
        MetadataError::NoQuorum("q".into()),
    ];
    for e in errors {
        let wire = serde_json::to_string(&Refusal::from_error(&e)).unwrap();
        let back = serde_json::from_str::<Refusal>(&wire).unwrap().into_error();
        assert_eq!(format!("{e:?}"), format!("{back:?}"));
    }
}

/// Every test step is bounded: a hang is a failure, not a stuck CI job.
async fn within<T>(secs: u64, what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Waits until `pred` holds for `c`'s image.
async fn until(c: &Controller, what: &str, pred: impl Fn(&MetadataImage) -> bool) {
    let mut rx = c.subscribe();
    within(10, what, async {
        while !pred(&rx.borrow_and_update()) {
            rx.changed().await.expect("controller alive");
        }
    })
    .await
}

fn create(name: &str) -> MetadataRecord {
    MetadataRecord::CreateTopic {
        name: name.into(),
        id: uuid::Uuid::new_v4(),
        partitions: 1,
        replication_factor: 1,
        configs: BTreeMap::new(),
        assignments: vec![vec![1]],
    }
}

fn config(
    id: i32,
    dir: &Path,
    voters: &[Voter],
    listener: Option<TcpListener>,
) -> ControllerConfig {
    let mut c =
        ControllerConfig::single(id, dir.join(format!("n{id}")).join("__cluster_metadata-0"));
    c.voters = voters.to_vec();
    c.listener = listener;
    c.port = 9000 + id as u16;
    c.heartbeat_interval = Duration::from_millis(100);
    c.session_timeout = Duration::from_millis(1000);
    c
}

async fn bind() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

async fn leader_of(nodes: &[&Arc<Controller>]) -> i32 {
    within(10, "a leader everyone agrees on", async {
        loop {
            let leaders: Vec<_> = nodes.iter().map(|c| c.leader_id()).collect();
            if let Some(Some(l)) = leaders.first() {
                if leaders.iter().all(|x| *x == Some(*l)) {
                    return *l;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// Snapshots `c` and purges its log up to the snapshot, as the snapshot
/// policy does every 1000 entries.
async fn snapshot_and_purge(c: &Controller) {
    let applied = c.status().last_applied.expect("something applied");
    c.raft.trigger().snapshot().await.unwrap();
    within(10, "snapshot built", async {
        while c.raft.metrics().borrow().snapshot.map(|l| l.index) < Some(applied) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    c.raft.trigger().purge_log(applied).await.unwrap();
    within(10, "log purged", async {
        while c.raft.metrics().borrow().purged.map(|l| l.index) < Some(applied) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_persists_changes_and_producer_ids() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, pid) = {
        let c = within(
            10,
            "start",
            Controller::start(config(1, dir.path(), &[], None), CancellationToken::new()),
        )
        .await
        .unwrap();
        assert!(c.is_leader());
        let cluster = c.image().cluster_id.clone();
        assert_eq!(cluster.len(), 22);
        let image = within(5, "propose", c.propose(create("t"))).await.unwrap();
        assert!(image.topic("t").is_some());
        let err = within(5, "refused", c.propose(create("t")))
            .await
            .unwrap_err();
        assert!(matches!(err, MetadataError::TopicExists(_)), "{err:?}");
        let pid = c.next_producer_id().await.unwrap();
        assert_eq!(c.next_producer_id().await.unwrap(), pid + 1);
        // The restart below starts from the snapshot plus a log tail.
        snapshot_and_purge(&c).await;
        within(5, "after snapshot", c.propose(create("t2")))
            .await
            .unwrap();
        within(5, "close", c.close()).await;
        (cluster, pid)
    };
    let c = within(
        10,
        "restart",
        Controller::start(config(1, dir.path(), &[], None), CancellationToken::new()),
    )
    .await
    .unwrap();
    assert_eq!(c.image().cluster_id, cluster);
    assert!(c.image().topic("t").is_some() && c.image().topic("t2").is_some());
    assert!(c.next_producer_id().await.unwrap() > pid + 1);
    until(&c, "own broker registered and unfenced", |i| {
        i.brokers.get(&1).is_some_and(|b| !b.fenced)
    })
    .await;
    within(10, "controlled shutdown", c.shutdown_broker()).await;
    assert!(c.image().brokers[&1].fenced);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_imports_the_legacy_log() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(1, dir.path(), &[], None);
    {
        let (mut log, _) = crate::metadata::log::MetadataLog::open(&cfg.metadata_dir).unwrap();
        log.append(&MetadataRecord::Bootstrap {
            cluster_id: "old".into(),
        })
        .unwrap();
        let mut old = create("legacy");
        if let MetadataRecord::CreateTopic { assignments, .. } = &mut old {
            assignments.clear();
        }
        log.append(&old).unwrap();
    }
    let mut cfg = cfg;
    cfg.cluster_id = Some("old".into());
    let meta = cfg.metadata_dir.clone();
    let c = within(
        10,
        "start",
        Controller::start(cfg, CancellationToken::new()),
    )
    .await
    .unwrap();
    assert_eq!(c.image().cluster_id, "old");
    let t = c.image().topic("legacy").cloned().expect("imported topic");
    assert_eq!(t.partition_states[0].replicas, vec![1]);
    assert!(!meta.join("metadata.log").exists());
    assert!(meta.join("metadata.log.imported").exists());
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_replicate_forward_fail_over_and_catch_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut listeners = Vec::new();
    let mut voters = Vec::new();
    for id in 1..=3 {
        let (l, port) = bind().await;
        listeners.push(l);
        voters.push(Voter {
            id,
            host: "127.0.0.1".into(),
            port,
        });
    }
    let mut nodes = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        let cfg = config(i as i32 + 1, dir.path(), &voters, Some(l));
        nodes.push(
            within(
                10,
                "start",
                Controller::start(cfg, CancellationToken::new()),
            )
            .await
            .unwrap(),
        );
    }
    let all: Vec<&Arc<Controller>> = nodes.iter().collect();
    let leader = leader_of(&all).await;
    for c in &nodes {
        until(c, "cluster id everywhere", |i| !i.cluster_id.is_empty()).await;
    }
    let follower = nodes.iter().find(|c| c.node_id() != leader).unwrap();
    // Heartbeats register and unfence every broker (topics need them).
    for c in &nodes {
        until(c, "all brokers registered and unfenced", |i| {
            (1..=3).all(|id| i.brokers.get(&id).is_some_and(|b| !b.fenced))
        })
        .await;
    }

    // A follower's proposal is forwarded; its returned image has the change.
    let image = within(10, "forwarded propose", follower.propose(create("a")))
        .await
        .unwrap();
    assert!(image.topic("a").is_some());
    for c in &nodes {
        until(c, "topic a everywhere", |i| i.topic("a").is_some()).await;
    }
    // The leader's refusal comes back to the follower as the same variant.
    let err = within(10, "refused", follower.propose(create("a")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, MetadataError::TopicExists(ref t) if t == "a"),
        "{err:?}"
    );
    // Producer id blocks reserved from two nodes never overlap.
    let p1 = follower.next_producer_id().await.unwrap();
    let p2 = nodes[(leader - 1) as usize]
        .next_producer_id()
        .await
        .unwrap();
    assert!(p1 / 1000 != p2 / 1000, "{p1} {p2}");
    // On a loaded machine an election may have moved leadership meanwhile:
    // from here on, work with the leader of now.
    let all: Vec<&Arc<Controller>> = nodes.iter().collect();
    let leader = leader_of(&all).await;
    let follower = nodes.iter().find(|c| c.node_id() != leader).unwrap();
    let status = nodes[(leader - 1) as usize].status();
    assert_eq!(status.voters, vec![1, 2, 3]);
    assert_eq!(status.leader, Some(leader));
    // A follower asks the leader, which knows every node's progress.
    let remote = within(10, "status via follower", follower.leader_status())
        .await
        .unwrap();
    assert_eq!((remote.leader, remote.voters.len()), (Some(leader), 3));
    assert_eq!(remote.matched.len(), 3);

    // The leader stops: the other two elect a new one and accept proposals.
    let old = nodes.remove((leader - 1) as usize);
    within(10, "close leader", old.close()).await;
    drop(old);
    let rest: Vec<&Arc<Controller>> = nodes.iter().collect();
    let started = std::time::Instant::now();
    let new_leader = within(5, "new leader", async {
        loop {
            let l = leader_of(&rest).await;
            if l != leader {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    within(5, "propose after failover", nodes[0].propose(create("b")))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The stopped broker is fenced once its session expires.
    for c in &nodes {
        until(c, "old leader fenced", |i| {
            i.brokers.get(&leader).is_some_and(|b| b.fenced)
        })
        .await;
    }

    // The old leader restarts from its store and catches up.
    let v = voters.iter().find(|v| v.id == leader).unwrap();
    let l = TcpListener::bind(v.addr()).await.unwrap();
    let back = within(
        10,
        "restart",
        Controller::start(
            config(leader, dir.path(), &voters, Some(l)),
            CancellationToken::new(),
        ),
    )
    .await
    .unwrap();
    until(&back, "restarted node catches up", |i| {
        i.topic("a").is_some() && i.topic("b").is_some()
    })
    .await;
    assert_ne!(new_leader, 0);
    for c in nodes.iter().chain([&back]) {
        c.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_only_node_joins_as_learner() {
    let dir = tempfile::tempdir().unwrap();
    let (l1, port) = bind().await;
    let voters = vec![Voter {
        id: 1,
        host: "127.0.0.1".into(),
        port,
    }];
    let voter = within(
        10,
        "start voter",
        Controller::start(
            config(1, dir.path(), &voters, Some(l1)),
            CancellationToken::new(),
        ),
    )
    .await
    .unwrap();
    until(&voter, "cluster id and broker 1", |i| {
        !i.cluster_id.is_empty() && i.brokers.get(&1).is_some_and(|b| !b.fenced)
    })
    .await;
    within(10, "propose", voter.propose(create("t")))
        .await
        .unwrap();
    let (l2, _) = bind().await;
    let learner = within(
        10,
        "start learner",
        Controller::start(
            config(7, dir.path(), &voters, Some(l2)),
            CancellationToken::new(),
        ),
    )
    .await
    .unwrap();
    until(&learner, "learner receives the log", |i| {
        i.topic("t").is_some()
    })
    .await;
    within(10, "learner listed", async {
        while voter.status().learners != vec![7] {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // A learner's proposal is forwarded to the leader like a follower's.
    let image = within(10, "learner propose", learner.propose(create("u")))
        .await
        .unwrap();
    assert!(image.topic("u").is_some());
    until(&voter, "learner registered as a broker", |i| {
        i.brokers.get(&7).is_some_and(|b| !b.fenced)
    })
    .await;
    let missing = Controller::start(
        config(8, dir.path(), &voters, None),
        CancellationToken::new(),
    )
    .await;
    assert!(matches!(missing, Err(MetadataError::Raft(_))));
    learner.close().await;
    voter.close().await;
}
