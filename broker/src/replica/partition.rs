//! One partition replica hosted here: the log, its role (leader, follower or
//! offline) and the offsets Kafka exposes.
//!
//! The log and the replication state have one owner, this struct, behind one
//! short `std::sync::Mutex`: appends and reads are synchronous page-cache
//! operations and never span an `.await`. As leader it tracks each follower's
//! log end offset (reported by its fetch offset) and advances the high
//! watermark to the lowest log end offset in the ISR; as follower it takes the
//! leader's batches as they are and its high watermark from the leader.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use millrace_storage::{AppendInfo, Log, LogConfig, PartitionLog, StorageError};

use crate::metadata::PartitionImage;

/// The offsets of a partition at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    pub log_start: i64,
    pub high_watermark: i64,
    pub log_end: i64,
}

/// What this node is for the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower {
        leader: i32,
    },
    /// Not a replica any more, or no leader anywhere.
    Offline,
}

/// Why a replication-level operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("this broker is not the leader of {0}")]
    NotLeader(String),
    #[error("leader epoch {got} of {partition} is older than the current {current}")]
    FencedEpoch {
        partition: String,
        got: i32,
        current: i32,
    },
    #[error("leader epoch {got} of {partition} is newer than the known {current}")]
    UnknownEpoch {
        partition: String,
        got: i32,
        current: i32,
    },
    #[error("{partition} has {isr} in-sync replicas, min.insync.replicas is {min}")]
    NotEnoughReplicas {
        partition: String,
        isr: usize,
        min: usize,
    },
}

/// A follower as its leader sees it.
#[derive(Debug, Clone, Copy)]
struct FollowerState {
    /// `None` until it fetched under the current leader epoch.
    log_end: Option<i64>,
    /// Last time it had fetched everything the leader had.
    caught_up_ms: i64,
}

struct Inner {
    log: Box<dyn Log>,
    role: Role,
    leader_epoch: i32,
    partition_epoch: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    high_watermark: i64,
    followers: HashMap<i32, FollowerState>,
    /// Set when this node became a follower under a new epoch: the fetcher
    /// must reconcile the log with the leader's before fetching.
    needs_truncation: bool,
}

/// A partition replica.
pub struct Partition {
    pub topic: String,
    pub index: i32,
    pub topic_id: uuid::Uuid,
    pub dir: PathBuf,
    node_id: i32,
    inner: Mutex<Inner>,
}

impl Partition {
    /// Opens (recovering if needed) the partition's log in `dir`. The replica
    /// starts offline until [`Partition::apply`] gives it a role.
    pub fn open(
        topic: &str,
        index: i32,
        topic_id: uuid::Uuid,
        dir: &Path,
        config: LogConfig,
        node_id: i32,
        now_ms: i64,
    ) -> Result<Self, StorageError> {
        let log = PartitionLog::open(dir, config, now_ms)?;
        Ok(Self::with_log(
            topic,
            index,
            topic_id,
            dir,
            Box::new(log),
            node_id,
        ))
    }

    /// A replica over any log (the simulation uses memory logs).
    pub fn with_log(
        topic: &str,
        index: i32,
        topic_id: uuid::Uuid,
        dir: &Path,
        log: Box<dyn Log>,
        node_id: i32,
    ) -> Self {
        let start = log.log_start_offset();
        Self {
            topic: topic.to_string(),
            index,
            topic_id,
            dir: dir.to_path_buf(),
            node_id,
            inner: Mutex::new(Inner {
                log,
                role: Role::Offline,
                leader_epoch: -1,
                partition_epoch: -1,
                replicas: Vec::new(),
                isr: Vec::new(),
                high_watermark: start,
                followers: HashMap::new(),
                needs_truncation: false,
            }),
        }
    }

    /// Gives the log back, as a process exit would leave it on disk.
    pub fn into_log(self) -> Box<dyn Log> {
        self.inner
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .log
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock must not take the partition down with it:
        // the log's own invariants are re-checked by its methods.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn name(&self) -> String {
        format!("{}-{}", self.topic, self.index)
    }

    /// Takes the role the metadata gives this node. Returns true when the
    /// role or leader epoch changed.
    pub fn apply(&self, state: &PartitionImage, now_ms: i64) -> bool {
        let mut g = self.lock();
        let role = if !state.replicas.contains(&self.node_id) || state.leader < 0 {
            Role::Offline
        } else if state.leader == self.node_id {
            Role::Leader
        } else {
            Role::Follower {
                leader: state.leader,
            }
        };
        let changed = role != g.role || state.leader_epoch != g.leader_epoch;
        g.replicas = state.replicas.clone();
        g.isr = state.isr.clone();
        g.partition_epoch = state.partition_epoch;
        if !changed {
            if g.role == Role::Leader {
                // A reassignment adds or drops followers without a new epoch.
                g.followers.retain(|id, _| state.replicas.contains(id));
                for r in state.replicas.iter().filter(|r| **r != self.node_id) {
                    g.followers.entry(*r).or_insert(FollowerState {
                        log_end: None,
                        caught_up_ms: now_ms,
                    });
                }
            }
            return false;
        }
        g.role = role;
        g.leader_epoch = state.leader_epoch;
        g.followers.clear();
        match role {
            Role::Leader => {
                // Followers get a full lag window from the moment we lead.
                for r in state.replicas.iter().filter(|r| **r != self.node_id) {
                    g.followers.insert(
                        *r,
                        FollowerState {
                            log_end: None,
                            caught_up_ms: now_ms,
                        },
                    );
                }
                g.needs_truncation = false;
                advance_hw(&mut g, self.node_id);
            }
            Role::Follower { .. } => g.needs_truncation = true,
            Role::Offline => g.needs_truncation = false,
        }
        tracing::info!(partition = %self.name(), ?role, epoch = state.leader_epoch, "replica role changed");
        true
    }

    pub fn role(&self) -> Role {
        self.lock().role
    }

    pub fn leader_epoch(&self) -> i32 {
        self.lock().leader_epoch
    }

    /// The leader path: stamps the leader epoch and appends. `min_isr` is
    /// checked first when the producer waits for all replicas (acks=all).
    pub fn append(
        &self,
        batches: &[u8],
        now_ms: i64,
        min_isr: Option<usize>,
    ) -> Result<AppendInfo, ReplicaError> {
        let mut g = self.lock();
        if g.role != Role::Leader {
            return Err(ReplicaError::NotLeader(self.name()));
        }
        if let Some(min) = min_isr {
            if g.isr.len() < min {
                return Err(ReplicaError::NotEnoughReplicas {
                    partition: self.name(),
                    isr: g.isr.len(),
                    min,
                });
            }
        }
        let epoch = g.leader_epoch;
        let info = g.log.append(batches, epoch, now_ms)?;
        advance_hw(&mut g, self.node_id);
        Ok(info)
    }

    /// Whether an acks=all append ending at `next_offset` is complete: the
    /// high watermark passed it. `Err` when this node stopped leading or the
    /// ISR fell below `min_isr` meanwhile.
    pub fn acks_all_done(&self, next_offset: i64, min_isr: usize) -> Result<bool, ReplicaError> {
        let g = self.lock();
        if g.role != Role::Leader {
            return Err(ReplicaError::NotLeader(self.name()));
        }
        if g.high_watermark >= next_offset {
            if g.isr.len() < min_isr {
                return Err(ReplicaError::NotEnoughReplicas {
                    partition: self.name(),
                    isr: g.isr.len(),
                    min: min_isr,
                });
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// Checks a client's view of the leader epoch (-1: the client has none).
    pub fn check_epoch(&self, current_leader_epoch: i32) -> Result<(), ReplicaError> {
        let g = self.lock();
        check_epoch(&g, &self.name(), current_leader_epoch)
    }

    /// A consumer's read, from the leader, bounded by the high watermark.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<(Bytes, Offsets), ReplicaError> {
        let g = self.lock();
        if g.role != Role::Leader {
            return Err(ReplicaError::NotLeader(self.name()));
        }
        let offsets = offsets_of(&g);
        let bytes = g.log.read(offset, max_bytes, offsets.high_watermark)?;
        Ok((bytes, offsets))
    }

    /// Reads the local log regardless of role, up to the log end: the group
    /// coordinator replays `__consumer_offsets` with this when it becomes
    /// leader, when its high watermark may still lag (Kafka loads to the end).
    pub fn read_local(
        &self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<(Bytes, Offsets), StorageError> {
        let g = self.lock();
        let offsets = offsets_of(&g);
        let bytes = g.log.read(offset, max_bytes, offsets.log_end)?;
        Ok((bytes, offsets))
    }

    /// The whole local log up to `max_offset` (tests and the simulation).
    #[cfg(test)]
    pub fn read_everything(&self, max_offset: i64) -> Result<(Bytes, Offsets), StorageError> {
        let g = self.lock();
        let offsets = offsets_of(&g);
        let bytes = g
            .log
            .read(g.log.log_start_offset(), usize::MAX / 2, max_offset)?;
        Ok((bytes, offsets))
    }

    /// A follower's fetch: records its position, maybe advances the high
    /// watermark, and reads up to the log end (followers copy past the HW).
    /// The flag says whether the high watermark moved.
    pub fn replica_fetch(
        &self,
        follower: i32,
        fetch_offset: i64,
        current_leader_epoch: i32,
        max_bytes: usize,
        now_ms: i64,
    ) -> Result<(Bytes, Offsets, bool), ReplicaError> {
        let mut g = self.lock();
        if g.role != Role::Leader {
            return Err(ReplicaError::NotLeader(self.name()));
        }
        check_epoch(&g, &self.name(), current_leader_epoch)?;
        let leo = g.log.log_end_offset();
        if let Some(f) = g.followers.get_mut(&follower) {
            f.log_end = Some(fetch_offset.min(leo));
            if fetch_offset >= leo {
                f.caught_up_ms = now_ms;
            }
        }
        let moved = advance_hw(&mut g, self.node_id);
        let offsets = offsets_of(&g);
        let bytes = g.log.read(fetch_offset, max_bytes, leo)?;
        Ok((bytes, offsets, moved))
    }

    /// The ISR this leader wants: followers lagging more than `lag_max_ms`
    /// out, caught-up live followers in. `None` when nothing should change.
    /// Returns the epochs the change must be proposed under.
    pub fn wanted_isr(&self, now_ms: i64, lag_max_ms: i64) -> Option<(Vec<i32>, i32, i32)> {
        let g = self.lock();
        if g.role != Role::Leader {
            return None;
        }
        let leo = g.log.log_end_offset();
        let mut isr: Vec<i32> = g
            .isr
            .iter()
            .copied()
            .filter(|r| {
                *r == self.node_id
                    || g.followers
                        .get(r)
                        .is_some_and(|f| now_ms - f.caught_up_ms <= lag_max_ms)
            })
            .collect();
        for (id, f) in &g.followers {
            // Kafka's rule: back in once it reached the high watermark, and
            // has fetched under this epoch (so it truncated to our log).
            let caught_up = f.log_end.is_some_and(|e| e >= g.high_watermark && e <= leo);
            if !isr.contains(id) && caught_up && now_ms - f.caught_up_ms <= lag_max_ms {
                isr.push(*id);
            }
        }
        let mut a = isr.clone();
        let mut b = g.isr.clone();
        a.sort_unstable();
        b.sort_unstable();
        (a != b).then_some((isr, g.leader_epoch, g.partition_epoch))
    }

    /// The follower path: the leader's batches, offsets and epochs kept.
    /// `leader_hw` and `leader_log_start` come from the same fetch response,
    /// which was asked for under `fetched_epoch`: a response that arrives
    /// after the role or epoch changed is stale and refused.
    pub fn append_replicated(
        &self,
        batches: &[u8],
        leader_hw: i64,
        leader_log_start: i64,
        fetched_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, ReplicaError> {
        let mut g = self.lock();
        self.check_following(&g, fetched_epoch)?;
        let info = g.log.append_replicated(batches, now_ms)?;
        if leader_log_start > g.log.log_start_offset() {
            let end = g.log.log_end_offset();
            if leader_log_start <= end {
                g.log.delete_records(leader_log_start)?;
            }
        }
        let leo = g.log.log_end_offset();
        let hw = leader_hw.min(leo);
        if hw > g.high_watermark {
            g.high_watermark = hw;
        }
        Ok(info)
    }

    /// Whether the follower must reconcile with the leader before fetching.
    pub fn needs_truncation(&self) -> bool {
        self.lock().needs_truncation
    }

    /// The latest leader epoch in the local log, for OffsetForLeaderEpoch.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.lock().log.latest_epoch()
    }

    /// The leader's side of OffsetForLeaderEpoch: (epoch, end offset).
    pub fn end_offset_for_epoch(
        &self,
        epoch: i32,
        current_leader_epoch: i32,
    ) -> Result<Option<(i32, i64)>, ReplicaError> {
        let g = self.lock();
        if g.role != Role::Leader {
            return Err(ReplicaError::NotLeader(self.name()));
        }
        check_epoch(&g, &self.name(), current_leader_epoch)?;
        Ok(g.log.end_offset_for_epoch(epoch))
    }

    /// Refuses follower work planned under another epoch or role.
    fn check_following(&self, g: &Inner, epoch: i32) -> Result<(), ReplicaError> {
        if !matches!(g.role, Role::Follower { .. }) || g.leader_epoch != epoch {
            return Err(ReplicaError::FencedEpoch {
                partition: self.name(),
                got: epoch,
                current: g.leader_epoch,
            });
        }
        Ok(())
    }

    /// Cuts the follower's log at `offset` (never below the log start) and
    /// marks it reconciled with the leader of `epoch`.
    pub fn truncate_to(&self, offset: i64, epoch: i32) -> Result<(), ReplicaError> {
        let mut g = self.lock();
        self.check_following(&g, epoch)?;
        let leo = g.log.log_end_offset();
        if offset < leo {
            let to = offset.max(g.log.log_start_offset());
            tracing::info!(partition = %self.name(), from = leo, to, "truncating diverged follower log");
            g.log.truncate_to(to)?;
            if g.high_watermark > to {
                g.high_watermark = to;
            }
        }
        g.needs_truncation = false;
        Ok(())
    }

    pub fn offsets(&self) -> Offsets {
        offsets_of(&self.lock())
    }

    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, StorageError> {
        self.lock().log.offset_for_timestamp(ts)
    }

    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, StorageError> {
        self.lock().log.max_timestamp()
    }

    /// DeleteRecords, on the leader; never past the high watermark.
    pub fn delete_records(&self, offset: i64) -> Result<i64, ReplicaError> {
        let mut g = self.lock();
        if g.role != Role::Leader {
            return Err(ReplicaError::NotLeader(self.name()));
        }
        let hw = g.high_watermark;
        let offset = if offset < 0 { hw } else { offset };
        if offset > hw {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: g.log.log_start_offset(),
                log_end_offset: hw,
            }
            .into());
        }
        Ok(g.log.delete_records(offset)?)
    }

    pub fn apply_retention(&self, now_ms: i64) -> Result<usize, StorageError> {
        let mut g = self.lock();
        // Followers take the log start from their leader instead.
        if g.role != Role::Leader {
            return Ok(0);
        }
        let n = g.log.apply_retention(now_ms)?;
        if g.high_watermark < g.log.log_start_offset() {
            g.high_watermark = g.log.log_start_offset();
        }
        Ok(n)
    }

    pub fn maybe_flush(&self, now_ms: i64) -> Result<(), StorageError> {
        self.lock().log.maybe_flush(now_ms)
    }

    pub fn compact(&self, now_ms: i64) -> Result<(), StorageError> {
        self.lock().log.compact(now_ms).map(|_| ())
    }

    pub fn update_config(&self, config: LogConfig) -> Result<(), StorageError> {
        self.lock().log.update_config(config)
    }

    pub fn size_bytes(&self) -> u64 {
        self.lock().log.size_bytes()
    }

    /// Flushes and writes the recovery checkpoint, for a clean shutdown.
    pub fn close(&self) -> Result<(), StorageError> {
        self.lock().log.close()
    }
}

fn check_epoch(g: &Inner, name: &str, current_leader_epoch: i32) -> Result<(), ReplicaError> {
    if current_leader_epoch < 0 || current_leader_epoch == g.leader_epoch {
        return Ok(());
    }
    if current_leader_epoch < g.leader_epoch {
        Err(ReplicaError::FencedEpoch {
            partition: name.to_string(),
            got: current_leader_epoch,
            current: g.leader_epoch,
        })
    } else {
        Err(ReplicaError::UnknownEpoch {
            partition: name.to_string(),
            got: current_leader_epoch,
            current: g.leader_epoch,
        })
    }
}

/// Leader only: the HW is the lowest log end offset in the ISR; it never
/// moves back, and waits for ISR followers not heard from in this epoch.
/// Returns whether it moved.
fn advance_hw(g: &mut Inner, me: i32) -> bool {
    if g.role != Role::Leader {
        return false;
    }
    let mut hw = g.log.log_end_offset();
    for r in g.isr.iter().filter(|r| **r != me) {
        match g.followers.get(r).and_then(|f| f.log_end) {
            Some(end) => hw = hw.min(end),
            None => return false,
        }
    }
    if hw > g.high_watermark {
        g.high_watermark = hw;
        return true;
    }
    false
}

fn offsets_of(g: &Inner) -> Offsets {
    let log_end = g.log.log_end_offset();
    let log_start = g.log.log_start_offset();
    Offsets {
        log_start,
        high_watermark: g.high_watermark.clamp(log_start, log_end),
        log_end,
    }
}
