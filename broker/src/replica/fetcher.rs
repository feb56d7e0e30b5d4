//! The follower side of replication, and the task that keeps hosted
//! partitions in step with the metadata image.
//!
//! One fetcher task per leader broker pulls every partition this node follows
//! from it with Fetch requests carrying our replica id (the leader learns our
//! log end offset from the fetch offset). A partition that became a follower
//! under a new leader epoch first asks the leader for the end offset of its
//! last epoch (OffsetForLeaderEpoch) and truncates whatever diverged.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, OffsetForLeaderEpochRequest, TopicName,
};
use kafka_protocol::ResponseError;
use millrace_client::{Connection, ConnectionConfig};
use tokio_util::sync::CancellationToken;

use super::{Partition, Role};
use crate::{now_ms, Broker};

/// Longest a follower's fetch waits at the leader for new data.
const FETCH_WAIT_MS: i32 = 500;
const FETCH_BYTES_MAX: i32 = 16 * 1024 * 1024;
const PARTITION_BYTES_MAX: i32 = 1024 * 1024;
/// Pause after an error before trying again (the image may be changing).
const BACKOFF: Duration = Duration::from_millis(100);

/// Applies every new metadata image to the hosted partitions and runs one
/// fetcher per leader that this node follows partitions of.
pub async fn run(broker: Arc<Broker>, shutdown: CancellationToken) {
    let mut images = broker.controller.subscribe();
    let mut fetchers: HashMap<i32, CancellationToken> = HashMap::new();
    loop {
        let image = images.borrow_and_update().clone();
        broker.replicas.sync(&image);
        let leaders: BTreeSet<i32> = broker
            .replicas
            .all()
            .iter()
            .filter_map(|p| match p.role() {
                Role::Follower { leader } => Some(leader),
                _ => None,
            })
            .collect();
        fetchers.retain(|id, token| {
            let keep = leaders.contains(id) && !token.is_cancelled();
            if !keep {
                token.cancel();
            }
            keep
        });
        for leader in leaders {
            fetchers.entry(leader).or_insert_with(|| {
                let token = shutdown.child_token();
                tokio::spawn(fetch_from(broker.clone(), leader, token.clone()));
                token
            });
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            r = images.changed() => if r.is_err() { break },
            // Fetchers end themselves when they run out of partitions.
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    for token in fetchers.values() {
        token.cancel();
    }
    // The image that fenced this node for a controlled shutdown may land as
    // the shutdown starts: apply it, so leaderships this node lost end their
    // waiting acks=all produces now (NOT_LEADER_OR_FOLLOWER) rather than at
    // their timeout.
    let image = images.borrow_and_update().clone();
    broker.replicas.sync(&image);
}

/// The partitions this node follows from `leader`.
fn followed(broker: &Broker, leader: i32) -> Vec<Arc<Partition>> {
    broker
        .replicas
        .all()
        .into_iter()
        .filter(|p| p.role() == Role::Follower { leader })
        .collect()
}

async fn fetch_from(broker: Arc<Broker>, leader: i32, token: CancellationToken) {
    tracing::info!(leader, "replica fetcher started");
    while !token.is_cancelled() {
        let Some(addr) = broker
            .controller
            .image()
            .brokers
            .get(&leader)
            .map(|b| format!("{}:{}", b.host, b.port))
        else {
            pause(&token).await;
            continue;
        };
        let config = ConnectionConfig {
            client_id: format!("millrace-replica-{}", broker.config.node_id),
            ..ConnectionConfig::default()
        };
        let conn = tokio::select! {
            _ = token.cancelled() => break,
            c = Connection::connect(&addr, config) => c,
        };
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(leader, %addr, error = %e, "cannot reach leader");
                pause(&token).await;
                continue;
            }
        };
        loop {
            let parts = followed(&broker, leader);
            if parts.is_empty() {
                tracing::info!(leader, "replica fetcher has nothing left to follow");
                token.cancel();
                break;
            }
            let round = async {
                reconcile(&broker, &conn, &parts).await?;
                fetch_once(&broker, &conn, &parts).await
            };
            let outcome = tokio::select! {
                _ = token.cancelled() => break,
                r = round => r,
            };
            if let Err(e) = outcome {
                tracing::debug!(leader, error = %e, "replica fetch failed; reconnecting");
                pause(&token).await;
                break;
            }
        }
    }
    tracing::info!(leader, "replica fetcher stopped");
}

async fn pause(token: &CancellationToken) {
    tokio::select! {
        _ = token.cancelled() => {}
        _ = tokio::time::sleep(BACKOFF) => {}
    }
}

/// Truncates followers that changed epoch to where their log and the
/// leader's agree (KIP-101): the end offset of their last epoch at the leader.
async fn reconcile(
    broker: &Broker,
    conn: &Connection,
    parts: &[Arc<Partition>],
) -> Result<(), millrace_client::ClientError> {
    // The epoch each partition is reconciled for, fixed before the request.
    let pending: Vec<(&Arc<Partition>, i32)> = parts
        .iter()
        .filter(|p| p.needs_truncation())
        .map(|p| (p, p.leader_epoch()))
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let mut by_topic: HashMap<&str, Vec<(&Arc<Partition>, i32)>> = HashMap::new();
    for (p, epoch) in &pending {
        by_topic
            .entry(p.topic.as_str())
            .or_default()
            .push((p, *epoch));
    }
    let topics = by_topic
        .iter()
        .map(|(topic, ps)| {
            OffsetForLeaderTopic::default()
                .with_topic(TopicName(topic.to_string().into()))
                .with_partitions(
                    ps.iter()
                        .map(|(p, epoch)| {
                            OffsetForLeaderPartition::default()
                                .with_partition(p.index)
                                .with_current_leader_epoch(*epoch)
                                .with_leader_epoch(p.latest_epoch().unwrap_or(-1))
                        })
                        .collect(),
                )
        })
        .collect();
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(broker.config.node_id))
        .with_topics(topics);
    let response = conn.send_with_timeout(request, 10_000).await?;
    for t in response.topics {
        for r in t.partitions {
            let Some((p, epoch)) = pending
                .iter()
                .find(|(p, _)| p.topic == t.topic.as_str() && p.index == r.partition)
            else {
                continue;
            };
            if r.error_code != 0 {
                tracing::debug!(partition = %format!("{}-{}", p.topic, p.index), code = r.error_code, "OffsetForLeaderEpoch refused; retrying");
                continue;
            }
            let answer = (r.end_offset >= 0 && r.leader_epoch >= 0 && p.latest_epoch().is_some())
                .then_some((r.leader_epoch, r.end_offset));
            let target = p.truncation_target(answer);
            if let Err(e) = p.truncate_to(target, *epoch) {
                tracing::info!(partition = %format!("{}-{}", p.topic, p.index), error = %e, "follower not truncated");
            }
        }
    }
    Ok(())
}

async fn fetch_once(
    broker: &Broker,
    conn: &Connection,
    parts: &[Arc<Partition>],
) -> Result<(), millrace_client::ClientError> {
    let ready: Vec<(&Arc<Partition>, i32)> = parts
        .iter()
        .filter(|p| !p.needs_truncation())
        .map(|p| (p, p.leader_epoch()))
        .collect();
    if ready.is_empty() {
        tokio::time::sleep(BACKOFF).await;
        return Ok(());
    }
    let version = conn.version(ApiKey::Fetch)?;
    let image = broker.controller.image();
    let mut by_topic: HashMap<&str, Vec<(&Arc<Partition>, i32)>> = HashMap::new();
    for (p, epoch) in &ready {
        by_topic
            .entry(p.topic.as_str())
            .or_default()
            .push((p, *epoch));
    }
    let topics = by_topic
        .iter()
        .map(|(topic, ps)| {
            FetchTopic::default()
                .with_topic(TopicName(topic.to_string().into()))
                .with_topic_id(image.topic(topic).map(|t| t.id).unwrap_or_default())
                .with_partitions(
                    ps.iter()
                        .map(|(p, epoch)| {
                            let o = p.offsets();
                            FetchPartition::default()
                                .with_partition(p.index)
                                .with_current_leader_epoch(*epoch)
                                .with_fetch_offset(o.log_end)
                                .with_log_start_offset(o.log_start)
                                .with_partition_max_bytes(PARTITION_BYTES_MAX)
                        })
                        .collect(),
                )
        })
        .collect();
    let me = BrokerId(broker.config.node_id);
    let mut request = FetchRequest::default()
        .with_max_wait_ms(FETCH_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(FETCH_BYTES_MAX)
        .with_topics(topics);
    if version >= 15 {
        request = request.with_replica_state(ReplicaState::default().with_replica_id(me));
    } else {
        request = request.with_replica_id(me);
    }
    let response = conn
        .send_with_timeout(request, FETCH_WAIT_MS as u64 + 10_000)
        .await?;
    let now = now_ms();
    let mut appended = false;
    let mut any_ok = false;
    for t in response.responses {
        let name = if version >= 13 {
            image.topic_by_id(&t.topic_id).map(|t| t.name.clone())
        } else {
            Some(t.topic.to_string())
        };
        let Some(name) = name else { continue };
        for d in t.partitions {
            let Some((p, epoch)) = ready
                .iter()
                .find(|(p, _)| p.topic == name && p.index == d.partition_index)
            else {
                continue;
            };
            if d.error_code != 0 {
                if d.error_code == ResponseError::OffsetOutOfRange.code() {
                    tracing::warn!(partition = %format!("{name}-{}", p.index), leader_log_start = d.log_start_offset, "follower is outside the leader's log");
                }
                continue;
            }
            any_ok = true;
            let records = d.records.unwrap_or_default();
            match p.append_replicated(&records, d.high_watermark, d.log_start_offset, *epoch, now) {
                Ok(info) => appended |= info.records > 0,
                Err(crate::replica::ReplicaError::FencedEpoch { .. }) => {
                    tracing::debug!(partition = %format!("{name}-{}", p.index), "stale fetch response dropped")
                }
                Err(e) => {
                    tracing::error!(partition = %format!("{name}-{}", p.index), error = %e, "cannot append replicated batches")
                }
            }
        }
    }
    if appended {
        broker.replicas.notify_appended();
    }
    if !any_ok {
        // Every partition refused (leadership moving): let the image catch up.
        tokio::time::sleep(BACKOFF).await;
    }
    Ok(())
}
