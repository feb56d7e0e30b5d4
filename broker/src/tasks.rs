//! Background work on hosted partitions: retention, time-based flushes and
//! compaction. Each runs on the blocking pool, one partition at a time, so a
//! slow disk never stalls the network threads.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::replica::Partition;
use crate::{now_ms, Broker};

/// Starts the periodic tasks; they stop when `shutdown` is cancelled.
pub fn spawn(broker: &Arc<Broker>, tracker: &TaskTracker, shutdown: &CancellationToken) {
    let c = &broker.config;
    every(
        broker,
        tracker,
        shutdown,
        c.retention_check_interval_ms,
        "retention",
        |p| {
            p.apply_retention(now_ms()).map(|n| {
            if n > 0 {
                tracing::info!(topic = %p.topic, partition = p.index, segments = n, "retention deleted segments");
            }
        })
        },
    );
    every(
        broker,
        tracker,
        shutdown,
        c.flush_scheduler_interval_ms,
        "flush",
        |p| p.maybe_flush(now_ms()),
    );
    spawn_group_timers(broker, tracker, shutdown);
    spawn_isr_updates(broker, tracker, shutdown);
    spawn_reassignment_completion(broker, tracker, shutdown);
    if broker
        .config
        .get("auto.leader.rebalance.enable")
        .is_some_and(|(v, _)| v == "true")
    {
        spawn_preferred_elections(broker, tracker, shutdown);
    }
    if c.cleaner_enable {
        every(
            broker,
            tracker,
            shutdown,
            c.cleaner_backoff_ms,
            "compaction",
            |p| p.compact(now_ms()),
        );
    }
}

fn every(
    broker: &Arc<Broker>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
    interval_ms: u64,
    what: &'static str,
    work: fn(&Partition) -> Result<(), millrace_storage::StorageError>,
) {
    let broker = broker.clone();
    let shutdown = shutdown.clone();
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(interval_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let partitions = broker.replicas.all();
            let run = tokio::task::spawn_blocking(move || {
                for p in partitions {
                    if let Err(e) = work(&p) {
                        tracing::error!(topic = %p.topic, partition = p.index, error = %e, task = what, "background task failed");
                    }
                }
            });
            if let Err(e) = run.await {
                tracing::error!(error = %e, task = what, "background task panicked");
            }
        }
    });
}

/// How often group timers (sessions, rebalance deadlines) are checked; the
/// slack this adds to a session timeout.
const GROUP_TICK_MS: u64 = 100;

fn spawn_group_timers(broker: &Arc<Broker>, tracker: &TaskTracker, shutdown: &CancellationToken) {
    let broker = broker.clone();
    let shutdown = shutdown.clone();
    let retention_check_ms = broker
        .config
        .long("offsets.retention.check.interval.ms")
        .max(1);
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(GROUP_TICK_MS));
        let mut last_retention_check = now_ms();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let now = now_ms();
            let expire = now - last_retention_check >= retention_check_ms;
            if expire {
                last_retention_check = now;
            }
            broker.groups.tick(&broker, now, expire);
        }
    });
}

/// How often leaders compare their ISR with their followers' progress.
const ISR_TICK_MS: u64 = 200;

/// Leaders ask the controller to shrink the ISR of followers lagging more
/// than `replica.lag.time.max.ms` and to expand it with caught-up ones
/// (Kafka's AlterPartition). A refused change (stale epochs: leadership
/// moved) is dropped; the next tick works from the new image.
fn spawn_isr_updates(broker: &Arc<Broker>, tracker: &TaskTracker, shutdown: &CancellationToken) {
    let broker = broker.clone();
    let shutdown = shutdown.clone();
    let lag_max_ms = broker.config.long("replica.lag.time.max.ms").max(1);
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(ISR_TICK_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let now = now_ms();
            for p in broker.replicas.all() {
                let Some((isr, leader_epoch, partition_epoch)) = p.wanted_isr(now, lag_max_ms)
                else {
                    continue;
                };
                tracing::info!(topic = %p.topic, partition = p.index, ?isr, "changing ISR");
                let record = crate::metadata::MetadataRecord::AlterIsr {
                    topic: p.topic.clone(),
                    partition: p.index as u32,
                    leader_epoch,
                    partition_epoch,
                    isr,
                };
                if let Err(e) = broker.controller.propose(record).await {
                    tracing::debug!(topic = %p.topic, partition = p.index, error = %e, "ISR change refused");
                }
            }
        }
    });
}

/// The controller leader moves leadership back to each partition's preferred
/// replica once it is alive and in sync, so that a restarted broker takes
/// its share of the load again (Kafka's auto leader rebalance).
fn spawn_preferred_elections(
    broker: &Arc<Broker>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) {
    let broker = broker.clone();
    let shutdown = shutdown.clone();
    let every = Duration::from_secs(
        broker
            .config
            .long("leader.imbalance.check.interval.seconds")
            .max(1) as u64,
    );
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if !broker.controller.is_leader() {
                continue;
            }
            let image = broker.controller.image();
            for t in image.topics.values() {
                for (index, p) in t.partition_states.iter().enumerate() {
                    if !p.adding.is_empty() || !p.removing.is_empty() {
                        continue;
                    }
                    let preferred = p.replicas[0];
                    let live = image.brokers.get(&preferred).is_some_and(|b| !b.fenced);
                    if p.leader == preferred || !live || !p.isr.contains(&preferred) {
                        continue;
                    }
                    tracing::info!(topic = %t.name, partition = index, leader = preferred, "moving leadership back to the preferred replica");
                    let record = crate::metadata::MetadataRecord::ElectLeader {
                        topic: t.name.clone(),
                        partition: index as u32,
                        leader: preferred,
                    };
                    if let Err(e) = broker.controller.propose(record).await {
                        tracing::debug!(topic = %t.name, partition = index, error = %e, "preferred election refused");
                    }
                }
            }
        }
    });
}

/// How often the controller leader looks for reassignments it can finish.
const REASSIGNMENT_TICK_MS: u64 = 500;

/// The controller leader ends each partition move whose added replicas have
/// all joined the ISR: the replicas being removed drop out (and delete their
/// copy), and leadership moves if the leader was one of them.
fn spawn_reassignment_completion(
    broker: &Arc<Broker>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) {
    let broker = broker.clone();
    let shutdown = shutdown.clone();
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(REASSIGNMENT_TICK_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if !broker.controller.is_leader() {
                continue;
            }
            let image = broker.controller.image();
            for t in image.topics.values() {
                for (index, p) in t.partition_states.iter().enumerate() {
                    let moving = !p.adding.is_empty() || !p.removing.is_empty();
                    if !moving || p.adding.iter().any(|r| !p.isr.contains(r)) {
                        continue;
                    }
                    tracing::info!(topic = %t.name, partition = index, replicas = ?p.replicas, removing = ?p.removing, "completing reassignment");
                    let record = crate::metadata::MetadataRecord::CompleteReassignment {
                        topic: t.name.clone(),
                        partition: index as u32,
                    };
                    if let Err(e) = broker.controller.propose(record).await {
                        tracing::debug!(topic = %t.name, partition = index, error = %e, "reassignment not completed");
                    }
                }
            }
        }
    });
}
