//! Following `__consumer_offsets` leadership: the topic's lazy creation, the
//! replay of a partition this node starts to lead, the unload of one it
//! stopped leading, and the task that watches the roles.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::store::{self, StoredKey, StoredValue};
use super::{apply, snapshot, GroupCoordinator};
use crate::replica::{Partition, Role};
use crate::topics::NewTopic;
use crate::{Broker, BrokerError};

/// Bytes read per read while replaying `__consumer_offsets`.
const REPLAY_READ_BYTES: usize = 1 << 20;
/// Longest the watcher sleeps without a wake-up: retries failed replays.
const RECHECK: Duration = Duration::from_secs(1);
/// Shortest gap between two role checks: the append signal it listens to
/// fires on every produce.
const MIN_GAP: Duration = Duration::from_millis(20);

type Records = Vec<(StoredKey, Option<StoredValue>)>;

impl GroupCoordinator {
    /// At node start: a single node creates `__consumer_offsets` at once (a
    /// cluster creates it on the first FindCoordinator, when the brokers have
    /// registered), then replays the partitions this node leads, so that a
    /// restarted single node serves its groups from the first request.
    pub async fn load(&self, broker: &Broker) -> Result<(), BrokerError> {
        if single_voter(broker) && broker.controller.image().topic(store::TOPIC).is_none() {
            self.create_topic(broker).await?;
        }
        self.follow_leadership(broker).await;
        Ok(())
    }

    /// Creates `__consumer_offsets` unless another request of this node is
    /// creating it already (then nothing: the caller answers
    /// COORDINATOR_NOT_AVAILABLE and the client retries).
    pub async fn create_topic(&self, broker: &Broker) -> Result<(), BrokerError> {
        if self.creating.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let created = self.propose_topic(broker).await;
        self.creating.store(false, Ordering::Release);
        created
    }

    async fn propose_topic(&self, broker: &Broker) -> Result<(), BrokerError> {
        let image = broker.controller.image();
        if image.topic(store::TOPIC).is_some() {
            return Ok(());
        }
        let live = image.live_brokers().count().max(1);
        let mut rf = self.replication_factor;
        if rf as usize > live {
            // Kafka does the same: a young cluster still gets its offsets topic.
            tracing::warn!(
                wanted = rf,
                live,
                "offsets.topic.replication.factor exceeds the live brokers; creating __consumer_offsets with fewer replicas"
            );
            rf = live as i16;
        }
        let mut configs = BTreeMap::new();
        configs.insert("cleanup.policy".to_string(), "compact".to_string());
        configs.insert("segment.bytes".to_string(), "104857600".to_string());
        let created = broker
            .create_topic(
                NewTopic {
                    name: store::TOPIC,
                    partitions: Some(self.partitions as i32),
                    replication_factor: Some(rf),
                    configs,
                    assignments: None,
                },
                false,
            )
            .await;
        match created {
            Ok(_) => Ok(()),
            // Another node created it first.
            Err(_) if broker.controller.image().topic(store::TOPIC).is_some() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Compares every partition's role with its load state: unloads the
    /// partitions this node stopped leading, then replays the ones it now
    /// leads, one after the other.
    pub async fn follow_leadership(&self, broker: &Broker) {
        let leading: Vec<(i32, Option<i32>, Option<Arc<Partition>>)> = (0..self.partitions as i32)
            .map(|p| {
                let partition = broker.replicas.get(store::TOPIC, p);
                let epoch = partition
                    .as_ref()
                    .filter(|r| r.role() == Role::Leader)
                    .map(|r| r.leader_epoch());
                (p, epoch, partition)
            })
            .collect();
        // Most wake-ups change nothing: decide that without the groups lock.
        {
            let loads = self.loads();
            if leading
                .iter()
                .all(|(p, epoch, _)| loads.settled(*p, *epoch))
            {
                return;
            }
        }
        let mut to_load = Vec::new();
        {
            let mut groups = self.lock();
            let mut loads = self.loads();
            let mut persisted = self.persisted();
            for (p, epoch, partition) in leading {
                let step = loads.observe(p, epoch);
                if step.unload {
                    let before = groups.len();
                    groups.retain(|id, _| self.partition_of(id) != p);
                    persisted.retain(|id, _| self.partition_of(id) != p);
                    tracing::info!(
                        partition = p,
                        groups = before - groups.len(),
                        "no longer coordinating the groups of __consumer_offsets-{p}"
                    );
                }
                if let (Some(epoch), Some(partition)) = (step.load, partition) {
                    to_load.push((p, epoch, partition));
                }
            }
        }
        for (p, epoch, partition) in to_load {
            let read = tokio::task::spawn_blocking(move || read_all(&partition)).await;
            let error = match read {
                Ok(Ok(records)) => {
                    self.finish_load(p, epoch, records);
                    continue;
                }
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            tracing::error!(partition = p, %error, "cannot replay __consumer_offsets; retrying");
            self.loads().fail(p, epoch);
        }
    }

    /// Applies a replayed partition, unless leadership moved on meanwhile.
    fn finish_load(&self, p: i32, epoch: i32, records: Records) {
        let now = crate::now_ms();
        let mut groups = self.lock();
        if !self.loads().finish(p, epoch) {
            return;
        }
        let count = records.len();
        for (key, value) in records {
            apply(&mut groups, key, value, now);
        }
        let mut persisted = self.persisted();
        let mut loaded = 0usize;
        for g in groups.values().filter(|g| self.partition_of(&g.id) == p) {
            persisted.insert(g.id.clone(), snapshot(g));
            loaded += 1;
        }
        tracing::info!(
            partition = p,
            epoch,
            groups = loaded,
            records = count,
            "coordinating the groups of __consumer_offsets-{p}"
        );
    }

    /// Whether ListGroups may show `group`: its partition is loaded here.
    pub fn is_loaded(&self, group: &str) -> bool {
        self.loads().is_loaded(self.partition_of(group))
    }
}

/// Whether this node is the whole metadata quorum (controller.quorum.voters
/// unset or naming one voter).
fn single_voter(broker: &Broker) -> bool {
    broker
        .config
        .get("controller.quorum.voters")
        .is_none_or(|(v, _)| v.split(',').filter(|s| !s.trim().is_empty()).count() <= 1)
}

/// Every group record of a partition, from its log start to its log end (a
/// new leader's high watermark may lag; Kafka also loads to the end).
fn read_all(partition: &Partition) -> Result<Records, BrokerError> {
    let mut records = Vec::new();
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
                if let Some(decoded) = store::decode(r.key, r.value) {
                    records.push(decoded);
                }
            }
        }
        if offset >= offsets.log_end {
            break;
        }
    }
    Ok(records)
}

/// Follows `__consumer_offsets` leadership for as long as the node runs:
/// woken by new metadata images and by the replicas' signal (bumped when
/// `ReplicaManager::sync` changed a role, which happens after the image).
pub async fn run(broker: Arc<Broker>, shutdown: CancellationToken) {
    let mut images = broker.controller.subscribe();
    let mut roles = broker.replicas.subscribe_appends();
    loop {
        images.borrow_and_update();
        roles.borrow_and_update();
        broker.groups.follow_leadership(&broker).await;
        tokio::select! {
            _ = shutdown.cancelled() => break,
            r = images.changed() => if r.is_err() { break },
            r = roles.changed() => if r.is_err() { break },
            _ = tokio::time::sleep(RECHECK) => {}
        }
        tokio::time::sleep(MIN_GAP).await;
    }
}
