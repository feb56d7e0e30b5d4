//! The group coordinator: classic consumer groups and committed offsets.
//!
//! Groups live in memory behind one short lock (no `.await` while held); the
//! state machine is in [`group`]. This node coordinates the groups of the
//! `__consumer_offsets` partitions it leads ([`partitions`] follows that
//! leadership and replays a partition before serving its groups). Every
//! durable change (a committed offset, a group's stable membership, a
//! deletion) is appended to the group's partition under the lock and
//! answered once committed ([`durable`]), after the lock is released.

pub mod assignor;
pub mod classic;
pub mod consumer;
pub mod durable;
pub mod load;
pub mod member;
pub mod mixed;
pub mod partitions;
pub mod store;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use kafka_protocol::ResponseError;

use crate::replica::ReplicaError;
use crate::{Broker, BrokerError, ServerConfig};
pub use classic::{
    CommittedOffset, Group, GroupConfig, GroupState, JoinOutcome, JoinRequest, SyncOutcome,
};
pub use durable::PendingWrite;
use store::{StoredGroup, StoredKey, StoredMember, StoredValue};

/// The coordinator of the groups of the `__consumer_offsets` partitions this
/// node leads.
///
/// Lock order: `groups`, then `persisted` or `loads`; never `groups` while
/// holding one of the others.
pub struct GroupCoordinator {
    groups: Mutex<HashMap<String, Group>>,
    /// The last membership written per group, to skip writes that change nothing.
    persisted: Mutex<HashMap<String, StoredGroup>>,
    /// Which partitions' groups are served, being replayed, or not ours.
    loads: Mutex<load::Loads>,
    /// Set while this node creates `__consumer_offsets`, so that concurrent
    /// FindCoordinator requests do not all propose it.
    creating: AtomicBool,
    /// offsets.topic.replication.factor, capped at the live brokers on creation.
    replication_factor: i16,
    /// offsets.commit.timeout.ms: how long a group write may wait for the ISR.
    commit_timeout: Duration,
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
            loads: Mutex::new(load::Loads::default()),
            creating: AtomicBool::new(false),
            replication_factor: config
                .long("offsets.topic.replication.factor")
                .clamp(1, i16::MAX as i64) as i16,
            commit_timeout: Duration::from_millis(
                config.long("offsets.commit.timeout.ms").max(1) as u64
            ),
            cfg: GroupConfig {
                initial_rebalance_delay_ms: config.long("group.initial.rebalance.delay.ms").max(0),
                migration: config
                    .get("group.consumer.migration.policy")
                    .and_then(|(v, _)| mixed::MigrationPolicy::parse(v))
                    .unwrap_or(mixed::MigrationPolicy::Bidirectional),
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

    fn loads(&self) -> MutexGuard<'_, load::Loads> {
        self.loads.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persisted(&self) -> MutexGuard<'_, HashMap<String, StoredGroup>> {
        self.persisted.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `__consumer_offsets` partition that holds `group`.
    pub fn partition_of(&self, group: &str) -> i32 {
        store::partition_for(group, self.partitions)
    }

    /// Whether this node serves `group` now: NOT_COORDINATOR when another
    /// node leads its partition, COORDINATOR_LOAD_IN_PROGRESS while it is
    /// replayed. Call it holding the groups lock, so that the answer holds
    /// for as long as the lock is held (unloading takes that lock).
    pub fn status(&self, group: &str) -> Result<(), ResponseError> {
        match self.loads().state(self.partition_of(group)).error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The groups, locked, provided this node serves `group` (see [`Self::status`]).
    pub fn lock_group(
        &self,
        group: &str,
    ) -> Result<MutexGuard<'_, HashMap<String, Group>>, ResponseError> {
        let groups = self.lock();
        self.status(group)?;
        Ok(groups)
    }

    /// Appends records for `group` to its `__consumer_offsets` partition, as
    /// its leader; the returned write must be waited for (see
    /// [`Self::commit`]) before the change is answered.
    pub fn append(
        &self,
        broker: &Broker,
        group: &str,
        entries: &[(StoredKey, Option<StoredValue>)],
    ) -> Result<Option<PendingWrite>, BrokerError> {
        if entries.is_empty() {
            return Ok(None);
        }
        let p = self.partition_of(group);
        let partition = broker.replicas.get(store::TOPIC, p).ok_or_else(|| {
            BrokerError::invalid(
                ResponseError::NotCoordinator,
                format!("{}-{p} is not hosted here", store::TOPIC),
            )
        })?;
        let min_isr = broker
            .replicas
            .min_insync(&broker.controller.image(), store::TOPIC);
        let batch = store::encode_batch(entries, crate::now_ms());
        let info = partition
            .append(&batch, crate::now_ms(), Some(min_isr))
            .map_err(group_write_error)?;
        broker.replicas.notify_appended();
        Ok(Some(PendingWrite {
            partition,
            next_offset: info.last_offset + 1,
            min_isr,
        }))
    }

    /// Waits (holding no lock) until `write` is committed, at most
    /// offsets.commit.timeout.ms.
    pub async fn commit(
        &self,
        broker: &Broker,
        write: Option<PendingWrite>,
    ) -> Result<(), ResponseError> {
        match write {
            Some(w) => durable::wait(&broker.replicas, w, self.commit_timeout).await,
            None => Ok(()),
        }
    }

    /// Waits for several writes, within one offsets.commit.timeout.ms.
    pub async fn commit_all(
        &self,
        broker: &Broker,
        writes: Vec<PendingWrite>,
    ) -> Result<(), ResponseError> {
        durable::wait_all(&broker.replicas, writes, self.commit_timeout).await
    }

    /// Writes the group's membership if it is at rest (Empty or Stable) and changed.
    /// The write to wait for before answering, if one was made.
    pub fn persist_if_changed(
        &self,
        broker: &Broker,
        g: &Group,
    ) -> Result<Option<PendingWrite>, BrokerError> {
        if !matches!(g.state, GroupState::Empty | GroupState::Stable) {
            return Ok(None);
        }
        let snap = snapshot(g);
        let mut persisted = self.persisted();
        if persisted.get(&g.id) == Some(&snap) {
            return Ok(None);
        }
        let entry = (
            StoredKey::Group {
                group: g.id.clone(),
            },
            Some(StoredValue::Group(snap.clone())),
        );
        match self.append(broker, &g.id, &[entry]) {
            Ok(write) => {
                persisted.insert(g.id.clone(), snap);
                Ok(write)
            }
            Err(e) => {
                tracing::warn!(group = %g.id, error = %e, "cannot store group membership");
                Err(e)
            }
        }
    }

    /// Forgets a group's stored state (DeleteGroups).
    pub fn forget(&self, broker: &Broker, g: &Group) -> Result<Option<PendingWrite>, BrokerError> {
        let mut entries = offset_tombstones(&g.id, g.offsets.keys());
        entries.push((
            StoredKey::Group {
                group: g.id.clone(),
            },
            None,
        ));
        let write = self.append(broker, &g.id, &entries)?;
        self.persisted().remove(&g.id);
        Ok(write)
    }

    /// Runs timers: session expiry, rebalance deadlines, offset retention.
    /// Its writes are not waited for: no client is waiting on them.
    pub fn tick(&self, broker: &Broker, now_ms: i64, expire_offsets: bool) {
        let mut groups = self.lock();
        for g in groups.values_mut() {
            if g.tick(now_ms, self.cfg) {
                // A failure was logged; the next change writes the membership again.
                let _ = self.persist_if_changed(broker, g);
            }
            if g.consumer.expire(now_ms) {
                tracing::info!(group = %g.id, "consumer-protocol member session expired");
                if g.maybe_downgrade(now_ms, self.cfg) {
                    let _ = self.persist_if_changed(broker, g);
                }
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
                if self.append(broker, &g.id, &entries).is_ok() {
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
            let stored = self.persisted().contains_key(&id);
            if let Some(g) = groups.remove(&id) {
                if !stored {
                    continue;
                }
                if let Err(e) = self.forget(broker, &g) {
                    tracing::warn!(group = %id, error = %e, "cannot forget empty group");
                }
            }
        }
    }
}

/// A refused group write as group APIs answer it (NOT_COORDINATOR when this
/// node lost the partition).
fn group_write_error(e: ReplicaError) -> BrokerError {
    match e {
        ReplicaError::Storage(_) => e.into(),
        _ => BrokerError::invalid(durable::error_code(&e), e.to_string()),
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
