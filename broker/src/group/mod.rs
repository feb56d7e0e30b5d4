//! The group coordinator: classic consumer groups and committed offsets.
//!
//! Groups live in memory behind one short lock (no `.await` while held); the
//! state machine is in [`group`]. Every durable change (a committed offset, a
//! group's stable membership, a deletion) is appended to the group's
//! `__consumer_offsets` partition before it is answered, and the coordinator
//! rebuilds its state from that topic at start.

pub mod assignor;
pub mod classic;
pub mod consumer;
pub mod member;
pub mod store;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use kafka_protocol::ResponseError;

use crate::replica::ReplicaManager;
use crate::topics::NewTopic;
use crate::{Broker, BrokerError, ServerConfig};
pub use classic::{
    CommittedOffset, Group, GroupConfig, GroupState, JoinOutcome, JoinRequest, SyncOutcome,
};
use store::{StoredGroup, StoredKey, StoredMember, StoredValue};

/// Bytes read per fetch while replaying `__consumer_offsets`.
const REPLAY_READ_BYTES: usize = 1 << 20;

/// The coordinator of every group on this node.
pub struct GroupCoordinator {
    groups: Mutex<HashMap<String, Group>>,
    /// The last membership written per group, to skip writes that change nothing.
    persisted: Mutex<HashMap<String, StoredGroup>>,
    pub cfg: GroupConfig,
    pub partitions: u32,
    pub session_timeout_ms_min: i32,
    pub session_timeout_ms_max: i32,
    pub offset_metadata_bytes_max: usize,
    pub offsets_retention_ms: i64,
    pub consumer_cfg: consumer::ConsumerConfig,
    pub consumer_heartbeat_ms: i32,
}

impl GroupCoordinator {
    pub fn new(config: &ServerConfig) -> Self {
        GroupCoordinator {
            groups: Mutex::new(HashMap::new()),
            persisted: Mutex::new(HashMap::new()),
            cfg: GroupConfig {
                initial_rebalance_delay_ms: config.long("group.initial.rebalance.delay.ms").max(0),
                max_size: config.long("group.max.size").max(1) as usize,
            },
            partitions: config.long("offsets.topic.num.partitions").max(1) as u32,
            session_timeout_ms_min: config.long("group.min.session.timeout.ms") as i32,
            session_timeout_ms_max: config.long("group.max.session.timeout.ms") as i32,
            offset_metadata_bytes_max: config.long("offset.metadata.max.bytes").max(0) as usize,
            offsets_retention_ms: config.long("offsets.retention.minutes").max(1) * 60_000,
            consumer_cfg: consumer::ConsumerConfig {
                session_timeout_ms: config.long("group.consumer.session.timeout.ms").max(1),
                max_size: config.long("group.max.size").max(1) as usize,
            },
            consumer_heartbeat_ms: config
                .long("group.consumer.heartbeat.interval.ms")
                .clamp(1, i32::MAX as i64) as i32,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates `__consumer_offsets` if needed and replays it into memory.
    pub async fn load(&self, broker: &Broker) -> Result<(), BrokerError> {
        if broker.controller.image().topic(store::TOPIC).is_none() {
            let mut configs = BTreeMap::new();
            configs.insert("cleanup.policy".to_string(), "compact".to_string());
            configs.insert("segment.bytes".to_string(), "104857600".to_string());
            let created = broker
                .create_topic(
                    NewTopic {
                        name: store::TOPIC,
                        partitions: Some(self.partitions as i32),
                        replication_factor: None,
                        configs,
                        assignments: None,
                    },
                    false,
                )
                .await;
            match created {
                Ok(_) => {}
                // In a cluster every node checks at start; another won the race.
                Err(_) if broker.controller.image().topic(store::TOPIC).is_some() => {}
                Err(e) => return Err(e),
            }
        }
        let now = crate::now_ms();
        let mut groups = self.lock();
        let mut records = 0usize;
        for p in 0..self.partitions as i32 {
            let Some(partition) = broker.replicas.get(store::TOPIC, p) else {
                continue;
            };
            let mut offset = partition.offsets().log_start;
            loop {
                let (bytes, offsets) = partition.read_local(offset, REPLAY_READ_BYTES)?;
                if bytes.is_empty() {
                    break;
                }
                for batch in millrace_storage::batch::BatchIter::new(&bytes) {
                    let (_, header) = batch?;
                    offset = header.last_offset() + 1;
                    let batch_records = millrace_storage::records::BatchRecords::new(header)?;
                    for r in batch_records.iter() {
                        let r = r?;
                        if let Some((key, value)) = store::decode(r.key, r.value) {
                            apply(&mut groups, key, value, now);
                            records += 1;
                        }
                    }
                }
                if offset >= offsets.high_watermark {
                    break;
                }
            }
        }
        let mut persisted = self.persisted.lock().unwrap_or_else(|p| p.into_inner());
        for g in groups.values() {
            persisted.insert(g.id.clone(), snapshot(g));
        }
        tracing::info!(groups = groups.len(), records, "loaded consumer groups");
        Ok(())
    }

    /// Appends records for `group` to its `__consumer_offsets` partition.
    pub fn append(
        &self,
        replicas: &ReplicaManager,
        group: &str,
        entries: &[(StoredKey, Option<StoredValue>)],
    ) -> Result<(), BrokerError> {
        if entries.is_empty() {
            return Ok(());
        }
        let p = store::partition_for(group, self.partitions);
        let partition = replicas.get(store::TOPIC, p).ok_or_else(|| {
            BrokerError::invalid(
                ResponseError::CoordinatorNotAvailable,
                "__consumer_offsets is not loaded",
            )
        })?;
        let batch = store::encode_batch(entries, crate::now_ms());
        partition.append(&batch, crate::now_ms(), None)?;
        Ok(())
    }

    /// Writes the group's membership if it is at rest (Empty or Stable) and changed.
    pub fn persist_if_changed(&self, replicas: &ReplicaManager, g: &Group) {
        if !matches!(g.state, GroupState::Empty | GroupState::Stable) {
            return;
        }
        let snap = snapshot(g);
        let mut persisted = self.persisted.lock().unwrap_or_else(|p| p.into_inner());
        if persisted.get(&g.id) == Some(&snap) {
            return;
        }
        let entry = (
            StoredKey::Group {
                group: g.id.clone(),
            },
            Some(StoredValue::Group(snap.clone())),
        );
        match self.append(replicas, &g.id, &[entry]) {
            Ok(()) => {
                persisted.insert(g.id.clone(), snap);
            }
            Err(e) => tracing::error!(group = %g.id, error = %e, "cannot store group membership"),
        }
    }

    /// Forgets a group's stored state (DeleteGroups).
    pub fn forget(&self, replicas: &ReplicaManager, g: &Group) -> Result<(), BrokerError> {
        let mut entries = offset_tombstones(&g.id, g.offsets.keys());
        entries.push((
            StoredKey::Group {
                group: g.id.clone(),
            },
            None,
        ));
        self.append(replicas, &g.id, &entries)?;
        self.persisted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&g.id);
        Ok(())
    }

    /// Runs timers: session expiry, rebalance deadlines, offset retention.
    pub fn tick(&self, replicas: &ReplicaManager, now_ms: i64, expire_offsets: bool) {
        let mut groups = self.lock();
        for g in groups.values_mut() {
            if g.tick(now_ms, self.cfg) {
                self.persist_if_changed(replicas, g);
            }
            if g.consumer.expire(now_ms) {
                tracing::info!(group = %g.id, "consumer-protocol member session expired");
            }
            if expire_offsets && g.state == GroupState::Empty {
                let cutoff = now_ms - self.offsets_retention_ms;
                let expired: Vec<(String, i32)> = g
                    .offsets
                    .iter()
                    .filter(|(_, o)| o.commit_ms < cutoff)
                    .map(|(k, _)| k.clone())
                    .collect();
                let entries = offset_tombstones(&g.id, expired.iter());
                if self.append(replicas, &g.id, &entries).is_ok() {
                    for k in &expired {
                        g.offsets.remove(k);
                    }
                }
            }
        }
        // Empty groups with nothing committed are gone, as in Kafka.
        let dead: Vec<String> = groups
            .values()
            .filter(|g| g.is_empty() && g.offsets.is_empty() && g.pending.is_empty())
            .map(|g| g.id.clone())
            .collect();
        for id in dead {
            let stored = self
                .persisted
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&id);
            if let Some(g) = groups.remove(&id) {
                if !stored {
                    continue;
                }
                if let Err(e) = self.forget(replicas, &g) {
                    tracing::warn!(group = %id, error = %e, "cannot forget empty group");
                }
            }
        }
    }
}

/// Tombstones that delete committed offsets of `group`.
fn offset_tombstones<'a>(
    group: &str,
    keys: impl Iterator<Item = &'a (String, i32)>,
) -> Vec<(StoredKey, Option<StoredValue>)> {
    keys.map(|(topic, partition)| {
        let key = StoredKey::Offset {
            group: group.to_string(),
            topic: topic.clone(),
            partition: *partition,
        };
        (key, None)
    })
    .collect()
}

fn snapshot(g: &Group) -> StoredGroup {
    let mut members: Vec<StoredMember> = g
        .members
        .values()
        .map(|m| StoredMember {
            id: m.id.clone(),
            instance_id: m.instance_id.clone(),
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            session_timeout_ms: m.session_timeout_ms,
            rebalance_timeout_ms: m.rebalance_timeout_ms,
            protocols: m
                .protocols
                .iter()
                .map(|(n, b)| (n.clone(), b.to_vec()))
                .collect(),
            assignment: m.assignment.to_vec(),
        })
        .collect();
    members.sort_by(|a, b| a.id.cmp(&b.id));
    StoredGroup {
        generation: g.generation,
        protocol_type: g.protocol_type.clone(),
        protocol: g.protocol.clone(),
        leader: g.leader.clone(),
        members,
    }
}

/// Applies one replayed record to the in-memory groups.
fn apply(
    groups: &mut HashMap<String, Group>,
    key: StoredKey,
    value: Option<StoredValue>,
    now_ms: i64,
) {
    let id = key.group().to_string();
    match (key, value) {
        (
            StoredKey::Offset {
                topic, partition, ..
            },
            Some(StoredValue::Offset(o)),
        ) => {
            groups
                .entry(id.clone())
                .or_insert_with(|| Group::new(&id))
                .offsets
                .insert((topic, partition), o);
        }
        (
            StoredKey::Offset {
                topic, partition, ..
            },
            None,
        ) => {
            if let Some(g) = groups.get_mut(&id) {
                g.offsets.remove(&(topic, partition));
            }
        }
        (StoredKey::Group { .. }, Some(StoredValue::Group(s))) => {
            let g = groups.entry(id.clone()).or_insert_with(|| Group::new(&id));
            g.restore(s, now_ms);
        }
        (StoredKey::Group { .. }, None) => {
            groups.remove(&id);
        }
        (key, value) => tracing::warn!(
            ?key,
            ?value,
            "mismatched __consumer_offsets record; ignored"
        ),
    }
}
