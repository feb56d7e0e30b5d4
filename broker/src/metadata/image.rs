//! The metadata image: an immutable snapshot of cluster metadata, rebuilt by
//! applying records in log order and shared as an `Arc`.
//!
//! `apply` is the whole of the metadata state machine: it runs on every node
//! for every committed record, so it depends on nothing but the image and the
//! record (no clock, no node id, no randomness).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::record::MetadataRecord;
use super::MetadataError;

/// "No leader": every in-sync replica is fenced.
pub const NO_LEADER: i32 = -1;

/// One registered broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerImage {
    pub id: i32,
    pub incarnation: uuid::Uuid,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    /// Fenced brokers lead nothing and are not offered to clients.
    pub fenced: bool,
}

/// One partition's replica set and leadership.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionImage {
    /// Preferred leader first.
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    /// Bumped on every leader change; fences the old leader's writes.
    pub leader_epoch: i32,
    /// Bumped on every change of this partition (leader or ISR).
    pub partition_epoch: i32,
    /// During a reassignment: replicas being added (copying the log)...
    #[serde(default)]
    pub adding: Vec<i32>,
    /// ...and replicas to drop once every added one is in sync.
    #[serde(default)]
    pub removing: Vec<i32>,
}

impl PartitionImage {
    /// Moves leadership off `gone` replicas to the first live in-sync one left.
    fn reelect(&mut self, live: &dyn Fn(i32) -> bool) {
        if self.isr.contains(&self.leader) && live(self.leader) {
            return;
        }
        self.leader = self
            .isr
            .iter()
            .copied()
            .find(|r| live(*r))
            .unwrap_or(NO_LEADER);
        self.leader_epoch += 1;
    }
}

/// One topic as the metadata knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicImage {
    pub name: String,
    pub id: uuid::Uuid,
    pub partitions: u32,
    pub replication_factor: u16,
    pub configs: BTreeMap<String, String>,
    /// Indexed by partition; `partition_states.len() == partitions`.
    pub partition_states: Vec<PartitionImage>,
}

impl TopicImage {
    pub fn partition(&self, index: i32) -> Option<&PartitionImage> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partition_states.get(i))
    }

    fn unclean_allowed(&self) -> bool {
        self.configs
            .get("unclean.leader.election.enable")
            .is_some_and(|v| v == "true")
    }
}

/// One stream processing job as the metadata knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobImage {
    pub name: String,
    pub sql: String,
    pub paused: bool,
}

/// Cluster metadata at one point of the log.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MetadataImage {
    pub cluster_id: String,
    pub topics: BTreeMap<String, Arc<TopicImage>>,
    pub topic_ids: HashMap<uuid::Uuid, String>,
    /// Producer ids below this are reserved.
    pub producer_ids_next: i64,
    /// Stream processing jobs by name.
    pub jobs: BTreeMap<String, Arc<JobImage>>,
    /// Registered brokers by node id.
    #[serde(default)]
    pub brokers: BTreeMap<i32, BrokerImage>,
    /// Records applied so far (the image's log position).
    pub version: u64,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics.get(name)
    }

    pub fn job(&self, name: &str) -> Option<&Arc<JobImage>> {
        self.jobs.get(name)
    }

    pub fn topic_by_id(&self, id: &uuid::Uuid) -> Option<&Arc<TopicImage>> {
        self.topic_ids.get(id).and_then(|n| self.topics.get(n))
    }

    /// Registered brokers that are not fenced, by id.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerImage> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    fn is_live(&self, id: i32) -> bool {
        self.brokers.get(&id).is_some_and(|b| !b.fenced)
    }

    /// The image after `record`, or why the record does not apply.
    pub fn apply(&self, record: &MetadataRecord) -> Result<MetadataImage, MetadataError> {
        let mut next = self.clone();
        next.version += 1;
        match record {
            MetadataRecord::Bootstrap { cluster_id } => next.cluster_id = cluster_id.clone(),
            MetadataRecord::CreateTopic {
                name,
                id,
                partitions,
                replication_factor,
                configs,
                assignments,
            } => {
                if next.topics.contains_key(name) {
                    return Err(MetadataError::TopicExists(name.clone()));
                }
                if assignments.len() != *partitions as usize {
                    return Err(MetadataError::InvalidReplicas(format!(
                        "{} assignments for {partitions} partitions",
                        assignments.len()
                    )));
                }
                let states = next.new_partitions(assignments)?;
                next.topic_ids.insert(*id, name.clone());
                next.topics.insert(
                    name.clone(),
                    Arc::new(TopicImage {
                        name: name.clone(),
                        id: *id,
                        partitions: *partitions,
                        replication_factor: *replication_factor,
                        configs: configs.clone(),
                        partition_states: states,
                    }),
                );
            }
            MetadataRecord::DeleteTopic { name } => {
                let t = next
                    .topics
                    .remove(name)
                    .ok_or_else(|| MetadataError::UnknownTopic(name.clone()))?;
                next.topic_ids.remove(&t.id);
            }
            MetadataRecord::CreatePartitions {
                name,
                count,
                assignments,
            } => {
                let t = next.existing(name)?;
                if *count <= t.partitions {
                    return Err(MetadataError::InvalidPartitions(format!(
                        "topic '{name}' has {} partitions; the new count must be larger",
                        t.partitions
                    )));
                }
                if assignments.len() != (*count - t.partitions) as usize {
                    return Err(MetadataError::InvalidReplicas(format!(
                        "{} assignments for {} new partitions",
                        assignments.len(),
                        count - t.partitions
                    )));
                }
                let states = next.new_partitions(assignments)?;
                let mut t = (**t).clone();
                t.partitions = *count;
                t.partition_states.extend(states);
                next.topics.insert(name.clone(), Arc::new(t));
            }
            MetadataRecord::AlterTopicConfigs { name, changes } => {
                let mut t = (**next.existing(name)?).clone();
                for (k, v) in changes {
                    match v {
                        Some(v) => t.configs.insert(k.clone(), v.clone()),
                        None => t.configs.remove(k),
                    };
                }
                next.topics.insert(name.clone(), Arc::new(t));
            }
            MetadataRecord::AllocateProducerIds { next: n } => {
                next.producer_ids_next = next.producer_ids_next.max(*n);
            }
            MetadataRecord::CreateJob { name, sql } => {
                if next.jobs.contains_key(name) {
                    return Err(MetadataError::JobExists(name.clone()));
                }
                next.jobs.insert(
                    name.clone(),
                    Arc::new(JobImage {
                        name: name.clone(),
                        sql: sql.clone(),
                        paused: false,
                    }),
                );
            }
            MetadataRecord::DeleteJob { name } => {
                next.jobs
                    .remove(name)
                    .ok_or_else(|| MetadataError::UnknownJob(name.clone()))?;
            }
            MetadataRecord::SetJobPaused { name, paused } => {
                let mut j = (**next
                    .jobs
                    .get(name)
                    .ok_or_else(|| MetadataError::UnknownJob(name.clone()))?)
                .clone();
                j.paused = *paused;
                next.jobs.insert(name.clone(), Arc::new(j));
            }
            MetadataRecord::RegisterBroker {
                id,
                incarnation,
                host,
                port,
                rack,
            } => {
                let restarted = next
                    .brokers
                    .get(id)
                    .is_some_and(|b| b.incarnation != *incarnation);
                if restarted {
                    // Whatever it held in memory is gone: treat it as failed first.
                    next.fence(*id);
                }
                let fenced = next.brokers.get(id).is_none_or(|b| b.fenced || restarted);
                next.brokers.insert(
                    *id,
                    BrokerImage {
                        id: *id,
                        incarnation: *incarnation,
                        host: host.clone(),
                        port: *port,
                        rack: rack.clone(),
                        fenced,
                    },
                );
            }
            MetadataRecord::FenceBroker { id } => {
                if !next.brokers.contains_key(id) {
                    return Err(MetadataError::UnknownBroker(*id));
                }
                next.fence(*id);
            }
            MetadataRecord::UnfenceBroker { id } => {
                let b = next
                    .brokers
                    .get_mut(id)
                    .ok_or(MetadataError::UnknownBroker(*id))?;
                b.fenced = false;
                next.unfence(*id);
            }
            MetadataRecord::AlterIsr {
                topic,
                partition,
                leader_epoch,
                partition_epoch,
                isr,
            } => {
                let mut t = (**next.existing(topic)?).clone();
                let p = partition_mut(&mut t, topic, *partition)?;
                if p.leader_epoch != *leader_epoch || p.partition_epoch != *partition_epoch {
                    return Err(MetadataError::StalePartitionState(format!(
                        "{topic}-{partition} is at leader epoch {} / partition epoch {}, the change was for {leader_epoch} / {partition_epoch}",
                        p.leader_epoch, p.partition_epoch
                    )));
                }
                if !isr.contains(&p.leader) || isr.iter().any(|r| !p.replicas.contains(r)) {
                    return Err(MetadataError::InvalidReplicas(format!(
                        "ISR {isr:?} of {topic}-{partition} must hold the leader {} and only replicas {:?}",
                        p.leader, p.replicas
                    )));
                }
                let added = isr.iter().any(|r| !p.isr.contains(r));
                if added && isr.iter().any(|r| !p.isr.contains(r) && !self.is_live(*r)) {
                    return Err(MetadataError::InvalidReplicas(format!(
                        "ISR {isr:?} of {topic}-{partition} would add a fenced broker"
                    )));
                }
                p.isr = dedup(isr);
                p.partition_epoch += 1;
                next.topics.insert(topic.clone(), Arc::new(t));
            }
            MetadataRecord::ReassignPartition {
                topic,
                partition,
                target,
            } => {
                let mut t = (**next.existing(topic)?).clone();
                let live = |id: i32| self.is_live(id);
                let p = partition_mut(&mut t, topic, *partition)?;
                // The replicas before any move in progress.
                let original: Vec<i32> = p
                    .replicas
                    .iter()
                    .copied()
                    .filter(|r| !p.adding.contains(r))
                    .collect();
                match target {
                    None => {
                        if p.adding.is_empty() && p.removing.is_empty() {
                            return Err(MetadataError::NoReassignment(format!(
                                "{topic}-{partition}"
                            )));
                        }
                        let adding = std::mem::take(&mut p.adding);
                        p.removing.clear();
                        p.replicas = original;
                        if p.isr.len() > 1 || !adding.contains(&p.isr[0]) {
                            p.isr.retain(|r| !adding.contains(r));
                        }
                        p.reelect(&live);
                    }
                    Some(target) => {
                        if target.is_empty() || dedup(target).len() != target.len() {
                            return Err(MetadataError::InvalidReplicas(format!(
                                "target replicas {target:?} must be non-empty and distinct"
                            )));
                        }
                        if let Some(r) = target.iter().find(|r| !self.brokers.contains_key(r)) {
                            return Err(MetadataError::InvalidReplicas(format!(
                                "broker {r} is not registered"
                            )));
                        }
                        let mut replicas = target.clone();
                        replicas.extend(original.iter().filter(|r| !target.contains(r)));
                        p.adding = target
                            .iter()
                            .copied()
                            .filter(|r| !original.contains(r))
                            .collect();
                        p.removing = original
                            .iter()
                            .copied()
                            .filter(|r| !target.contains(r))
                            .collect();
                        p.replicas = replicas;
                        p.isr
                            .retain(|r| original.contains(r) || !p.adding.contains(r));
                    }
                }
                p.partition_epoch += 1;
                next.topics.insert(topic.clone(), Arc::new(t));
            }
            MetadataRecord::CompleteReassignment { topic, partition } => {
                let mut t = (**next.existing(topic)?).clone();
                let live = |id: i32| self.is_live(id);
                let p = partition_mut(&mut t, topic, *partition)?;
                if p.adding.is_empty() && p.removing.is_empty() {
                    return Err(MetadataError::NoReassignment(format!(
                        "{topic}-{partition}"
                    )));
                }
                if p.adding.iter().any(|r| !p.isr.contains(r)) {
                    return Err(MetadataError::StalePartitionState(format!(
                        "{topic}-{partition}: added replicas {:?} are not all in sync ({:?})",
                        p.adding, p.isr
                    )));
                }
                let removing = std::mem::take(&mut p.removing);
                p.adding.clear();
                p.replicas.retain(|r| !removing.contains(r));
                let kept: Vec<i32> = p
                    .isr
                    .iter()
                    .copied()
                    .filter(|r| !removing.contains(r))
                    .collect();
                if kept.is_empty() {
                    return Err(MetadataError::StalePartitionState(format!(
                        "{topic}-{partition}: no in-sync replica would remain"
                    )));
                }
                p.isr = kept;
                p.reelect(&live);
                p.partition_epoch += 1;
                next.topics.insert(topic.clone(), Arc::new(t));
            }
            MetadataRecord::ElectLeader {
                topic,
                partition,
                leader,
            } => {
                let mut t = (**next.existing(topic)?).clone();
                let p = partition_mut(&mut t, topic, *partition)?;
                if !p.isr.contains(leader) || !self.is_live(*leader) {
                    return Err(MetadataError::InvalidReplicas(format!(
                        "broker {leader} is not a live in-sync replica of {topic}-{partition}"
                    )));
                }
                if p.leader != *leader {
                    p.leader = *leader;
                    p.leader_epoch += 1;
                    p.partition_epoch += 1;
                }
                next.topics.insert(topic.clone(), Arc::new(t));
            }
        }
        Ok(next)
    }

    /// Partition states for new partitions: every replica in sync, the first
    /// live one leading.
    fn new_partitions(
        &self,
        assignments: &[Vec<i32>],
    ) -> Result<Vec<PartitionImage>, MetadataError> {
        let mut out = Vec::with_capacity(assignments.len());
        for (i, replicas) in assignments.iter().enumerate() {
            if replicas.is_empty() || dedup(replicas).len() != replicas.len() {
                return Err(MetadataError::InvalidReplicas(format!(
                    "partition {i}: replicas {replicas:?} must be non-empty and distinct"
                )));
            }
            if let Some(r) = replicas.iter().find(|r| !self.brokers.contains_key(r)) {
                return Err(MetadataError::InvalidReplicas(format!(
                    "partition {i}: broker {r} is not registered"
                )));
            }
            let isr: Vec<i32> = replicas
                .iter()
                .copied()
                .filter(|r| self.is_live(*r))
                .collect();
            let (isr, leader) = match isr.first() {
                Some(l) => (isr.clone(), *l),
                // Nobody is up: keep every replica eligible, the first to return leads.
                None => (replicas.clone(), NO_LEADER),
            };
            out.push(PartitionImage {
                replicas: replicas.clone(),
                isr,
                leader,
                leader_epoch: 0,
                partition_epoch: 0,
                adding: Vec::new(),
                removing: Vec::new(),
            });
        }
        Ok(out)
    }

    /// Marks `id` fenced, moves its leaderships to other live in-sync
    /// replicas and takes it out of every ISR it is not the last member of
    /// (the last one stays: it is the only copy known to be complete).
    fn fence(&mut self, id: i32) {
        if let Some(b) = self.brokers.get_mut(&id) {
            b.fenced = true;
        }
        let live: Vec<i32> = self.live_brokers().map(|b| b.id).collect();
        for t in self.topics.values_mut() {
            if !t.partition_states.iter().any(|p| p.replicas.contains(&id)) {
                continue;
            }
            let unclean = t.unclean_allowed();
            let t = Arc::make_mut(t);
            for p in t
                .partition_states
                .iter_mut()
                .filter(|p| p.replicas.contains(&id))
            {
                let mut changed = false;
                if p.isr.len() > 1 && p.isr.contains(&id) {
                    p.isr.retain(|r| *r != id);
                    changed = true;
                }
                if p.leader == id {
                    let candidate = p.isr.iter().copied().find(|r| live.contains(r));
                    let (leader, isr) = match candidate {
                        Some(l) => (l, p.isr.clone()),
                        None if unclean => {
                            match p.replicas.iter().copied().find(|r| live.contains(r)) {
                                Some(l) => (l, vec![l]),
                                None => (NO_LEADER, p.isr.clone()),
                            }
                        }
                        None => (NO_LEADER, p.isr.clone()),
                    };
                    p.leader = leader;
                    p.isr = isr;
                    p.leader_epoch += 1;
                    changed = true;
                }
                if changed {
                    p.partition_epoch += 1;
                }
            }
        }
    }

    /// Gives leaderless partitions whose ISR holds `id` a leader again.
    fn unfence(&mut self, id: i32) {
        for t in self.topics.values_mut() {
            let unclean = t.unclean_allowed();
            let needs = t
                .partition_states
                .iter()
                .any(|p| p.leader == NO_LEADER && p.replicas.contains(&id));
            if !needs {
                continue;
            }
            let t = Arc::make_mut(t);
            for p in t.partition_states.iter_mut() {
                if p.leader != NO_LEADER || !p.replicas.contains(&id) {
                    continue;
                }
                if p.isr.contains(&id) {
                    p.leader = id;
                } else if unclean {
                    p.leader = id;
                    p.isr = vec![id];
                } else {
                    continue;
                }
                p.leader_epoch += 1;
                p.partition_epoch += 1;
            }
        }
    }

    fn existing(&self, name: &str) -> Result<&Arc<TopicImage>, MetadataError> {
        self.topics
            .get(name)
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))
    }
}

/// One partition of a topic being changed, or UnknownTopic naming it.
fn partition_mut<'a>(
    t: &'a mut TopicImage,
    topic: &str,
    partition: u32,
) -> Result<&'a mut PartitionImage, MetadataError> {
    t.partition_states
        .get_mut(partition as usize)
        .ok_or_else(|| MetadataError::UnknownTopic(format!("{topic}-{partition}")))
}

fn dedup(ids: &[i32]) -> Vec<i32> {
    let mut out: Vec<i32> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(id) {
            out.push(*id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(name: &str, partitions: u32) -> MetadataRecord {
        MetadataRecord::CreateTopic {
            name: name.into(),
            id: uuid::Uuid::new_v4(),
            partitions,
            replication_factor: 1,
            configs: BTreeMap::new(),
            assignments: vec![vec![1]; partitions as usize],
        }
    }

    fn register(i: &MetadataImage, id: i32) -> MetadataImage {
        let i = i
            .apply(&MetadataRecord::RegisterBroker {
                id,
                incarnation: uuid::Uuid::from_u128(id as u128),
                host: "h".into(),
                port: 9092,
                rack: None,
            })
            .unwrap();
        i.apply(&MetadataRecord::UnfenceBroker { id }).unwrap()
    }

    fn cluster3() -> MetadataImage {
        let i = register(&MetadataImage::default(), 1);
        let i = register(&i, 2);
        let i = register(&i, 3);
        i.apply(&MetadataRecord::CreateTopic {
            name: "t".into(),
            id: uuid::Uuid::new_v4(),
            partitions: 2,
            replication_factor: 3,
            configs: BTreeMap::new(),
            assignments: vec![vec![1, 2, 3], vec![2, 3, 1]],
        })
        .unwrap()
    }

    fn part(i: &MetadataImage, p: i32) -> PartitionImage {
        i.topic("t").unwrap().partition(p).unwrap().clone()
    }

    #[test]
    fn fencing_moves_leaders_within_the_isr() {
        let i = cluster3();
        assert_eq!(part(&i, 0).leader, 1);
        assert_eq!(part(&i, 0).isr, vec![1, 2, 3]);
        let i = i.apply(&MetadataRecord::FenceBroker { id: 1 }).unwrap();
        let p = part(&i, 0);
        assert_eq!(
            (p.leader, p.leader_epoch, p.isr.clone()),
            (2, 1, vec![2, 3])
        );
        // Partition 1 was led by 2: only its ISR shrinks, its epoch stays.
        let p1 = part(&i, 1);
        assert_eq!(
            (p1.leader, p1.leader_epoch, p1.isr.clone()),
            (2, 0, vec![2, 3])
        );
        // Fencing the rest leaves the last in-sync replica in the ISR, leaderless.
        let i = i.apply(&MetadataRecord::FenceBroker { id: 2 }).unwrap();
        let i = i.apply(&MetadataRecord::FenceBroker { id: 3 }).unwrap();
        let p = part(&i, 0);
        assert_eq!((p.leader, p.isr.clone()), (NO_LEADER, vec![3]));
        // Broker 1 is not in the ISR any more: coming back does not make it leader.
        let i = i.apply(&MetadataRecord::UnfenceBroker { id: 1 }).unwrap();
        assert_eq!(part(&i, 0).leader, NO_LEADER);
        let i = i.apply(&MetadataRecord::UnfenceBroker { id: 3 }).unwrap();
        let p = part(&i, 0);
        assert_eq!((p.leader, p.leader_epoch), (3, 4));
    }

    #[test]
    fn unclean_election_only_when_enabled() {
        let mut i = cluster3();
        for id in [2, 3, 1] {
            i = i.apply(&MetadataRecord::FenceBroker { id }).unwrap();
        }
        assert_eq!(part(&i, 0).isr, vec![1]);
        let back = i.apply(&MetadataRecord::UnfenceBroker { id: 2 }).unwrap();
        assert_eq!(part(&back, 0).leader, NO_LEADER);
        let mut changes = BTreeMap::new();
        changes.insert(
            "unclean.leader.election.enable".to_string(),
            Some("true".to_string()),
        );
        let i = i
            .apply(&MetadataRecord::AlterTopicConfigs {
                name: "t".into(),
                changes,
            })
            .unwrap();
        let i = i.apply(&MetadataRecord::UnfenceBroker { id: 2 }).unwrap();
        let p = part(&i, 0);
        assert_eq!((p.leader, p.isr.clone()), (2, vec![2]));
    }

    #[test]
    fn isr_changes_need_the_current_epochs() {
        let i = cluster3();
        let shrink = MetadataRecord::AlterIsr {
            topic: "t".into(),
            partition: 0,
            leader_epoch: 0,
            partition_epoch: 0,
            isr: vec![1, 2],
        };
        let i = i.apply(&shrink).unwrap();
        assert_eq!(part(&i, 0).isr, vec![1, 2]);
        assert!(matches!(
            i.apply(&shrink),
            Err(MetadataError::StalePartitionState(_))
        ));
        let no_leader = MetadataRecord::AlterIsr {
            topic: "t".into(),
            partition: 0,
            leader_epoch: 0,
            partition_epoch: 1,
            isr: vec![2, 3],
        };
        assert!(matches!(
            i.apply(&no_leader),
            Err(MetadataError::InvalidReplicas(_))
        ));
        let i = i.apply(&MetadataRecord::FenceBroker { id: 3 }).unwrap();
        let add_fenced = MetadataRecord::AlterIsr {
            topic: "t".into(),
            partition: 0,
            leader_epoch: 0,
            partition_epoch: 1,
            isr: vec![1, 2, 3],
        };
        assert!(i.apply(&add_fenced).is_err());
        let elect = MetadataRecord::ElectLeader {
            topic: "t".into(),
            partition: 0,
            leader: 2,
        };
        let i = i.apply(&elect).unwrap();
        assert_eq!((part(&i, 0).leader, part(&i, 0).leader_epoch), (2, 1));
    }

    #[test]
    fn reassignment_adds_then_drops_replicas() {
        let i = register(&cluster3(), 4);
        let move_to = |target: Option<Vec<i32>>| MetadataRecord::ReassignPartition {
            topic: "t".into(),
            partition: 0,
            target,
        };
        let complete = MetadataRecord::CompleteReassignment {
            topic: "t".into(),
            partition: 0,
        };
        // Partition 0 is [1, 2, 3] led by 1; move it to [4, 2, 3].
        let i = i.apply(&move_to(Some(vec![4, 2, 3]))).unwrap();
        let p = part(&i, 0);
        assert_eq!(
            (p.replicas.clone(), p.adding.clone(), p.removing.clone()),
            (vec![4, 2, 3, 1], vec![4], vec![1])
        );
        assert_eq!((p.leader, p.isr.clone()), (1, vec![1, 2, 3]));
        // Not before 4 is in sync.
        assert!(i.apply(&complete).is_err());
        let i = i
            .apply(&MetadataRecord::AlterIsr {
                topic: "t".into(),
                partition: 0,
                leader_epoch: 0,
                partition_epoch: p.partition_epoch,
                isr: vec![1, 2, 3, 4],
            })
            .unwrap();
        let i = i.apply(&complete).unwrap();
        let p = part(&i, 0);
        assert_eq!(p.replicas, vec![4, 2, 3]);
        assert!(p.adding.is_empty() && p.removing.is_empty());
        assert!(!p.isr.contains(&1));
        assert_ne!(p.leader, 1, "the removed leader hands over");
        assert_eq!(p.leader_epoch, 1);
        // Cancelling: back to the original replicas.
        let j = i.apply(&move_to(Some(vec![1, 2, 3]))).unwrap();
        let j = j.apply(&move_to(None)).unwrap();
        // As in Kafka, a cancelled move restores the replica set, not its order.
        let mut back = part(&j, 0).replicas;
        back.sort_unstable();
        assert_eq!(back, vec![2, 3, 4]);
        assert!(matches!(
            j.apply(&move_to(None)),
            Err(MetadataError::NoReassignment(_))
        ));
        assert!(i.apply(&move_to(Some(vec![9]))).is_err());
        assert!(i.apply(&move_to(Some(vec![2, 2]))).is_err());
    }

    #[test]
    fn a_restarted_broker_comes_back_fenced_and_out_of_sync() {
        let i = cluster3();
        let i = i
            .apply(&MetadataRecord::RegisterBroker {
                id: 1,
                incarnation: uuid::Uuid::new_v4(),
                host: "h".into(),
                port: 9092,
                rack: None,
            })
            .unwrap();
        assert!(i.brokers[&1].fenced);
        let p = part(&i, 0);
        assert_eq!((p.leader, p.isr.clone()), (2, vec![2, 3]));
        assert!(i.apply(&MetadataRecord::FenceBroker { id: 9 }).is_err());
        let json = serde_json::to_string(&i).unwrap();
        let back: MetadataImage = serde_json::from_str(&json).unwrap();
        assert_eq!(part(&back, 0), p);
    }

    #[test]
    fn create_grow_alter_delete() {
        let i = register(&MetadataImage::default(), 1);
        let i = i.apply(&create("a", 2)).unwrap();
        assert!(matches!(
            i.apply(&create("a", 1)),
            Err(MetadataError::TopicExists(_))
        ));
        let i = i
            .apply(&MetadataRecord::CreatePartitions {
                name: "a".into(),
                count: 3,
                assignments: vec![vec![1]],
            })
            .unwrap();
        assert_eq!(i.topic("a").unwrap().partitions, 3);
        assert!(i
            .apply(&MetadataRecord::CreatePartitions {
                name: "a".into(),
                count: 3,
                assignments: vec![],
            })
            .is_err());
        let mut changes = BTreeMap::new();
        changes.insert("retention.ms".to_string(), Some("5".to_string()));
        let i = i
            .apply(&MetadataRecord::AlterTopicConfigs {
                name: "a".into(),
                changes,
            })
            .unwrap();
        assert_eq!(i.topic("a").unwrap().configs["retention.ms"], "5");
        let id = i.topic("a").unwrap().id;
        assert!(i.topic_by_id(&id).is_some());
        let i = i
            .apply(&MetadataRecord::DeleteTopic { name: "a".into() })
            .unwrap();
        assert!(i.topic("a").is_none() && i.topic_by_id(&id).is_none());
        assert_eq!(i.version, 6);
    }

    #[test]
    fn create_pause_delete_job() {
        let create = MetadataRecord::CreateJob {
            name: "j".into(),
            sql: "CREATE JOB j AS ...".into(),
        };
        let i = MetadataImage::default().apply(&create).unwrap();
        assert_eq!(i.job("j").unwrap().sql, "CREATE JOB j AS ...");
        assert!(!i.job("j").unwrap().paused);
        assert!(matches!(i.apply(&create), Err(MetadataError::JobExists(_))));
        let i = i
            .apply(&MetadataRecord::SetJobPaused {
                name: "j".into(),
                paused: true,
            })
            .unwrap();
        assert!(i.job("j").unwrap().paused);
        assert!(matches!(
            i.apply(&MetadataRecord::SetJobPaused {
                name: "x".into(),
                paused: true
            }),
            Err(MetadataError::UnknownJob(_))
        ));
        let i = i
            .apply(&MetadataRecord::DeleteJob { name: "j".into() })
            .unwrap();
        assert!(i.job("j").is_none());
        assert!(matches!(
            i.apply(&MetadataRecord::DeleteJob { name: "j".into() }),
            Err(MetadataError::UnknownJob(_))
        ));
        assert_eq!(i.version, 3);
    }
}
