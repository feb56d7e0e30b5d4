//! The controller: cluster metadata on an openraft quorum.
//!
//! Every metadata change is a Raft entry (a `MetadataRecord`); every node
//! applies committed entries to an immutable `MetadataImage` and swaps an
//! `Arc` (see `state_machine`). The rest of the broker uses only the
//! `Controller` API below: `image`/`subscribe` to read, `propose` to change
//! (forwarded to the leader from any node), `heartbeat`-driven broker
//! liveness, and `status` for DescribeQuorum.
//!
//! A single node is a one-voter quorum that needs no network; a cluster has
//! `controller.quorum.voters`, and nodes outside that list join as learners.
//!
//! Module map:
//! - [`types`]: openraft type config, `Outcome` and the wire form of refusals.
//! - [`files`]: atomic file replace and CRC framing.
//! - [`log_store`]: the persistent Raft log (`RaftLogStorage`).
//! - [`state_machine`]: the image and its snapshots (`RaftStateMachine`).
//! - [`wire`]: the controller protocol's frames and messages.
//! - [`network`]: Raft RPCs to peers (`RaftNetwork`).
//! - [`server`]: the CONTROLLER listener.
//! - [`forward`]: calls to the current leader, with retries.
//! - [`leader`]: what only the leader does (proposals, heartbeats, joins, fencing).
//! - [`tasks`]: the background loops every node runs.
//! - [`legacy`]: import of a single-voter `metadata.log`.

pub mod files;
pub mod forward;
pub mod leader;
pub mod legacy;
pub mod log_store;
pub mod network;
pub mod server;
pub mod state_machine;
pub mod tasks;
pub mod types;
pub mod wire;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::BasicNode;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Voter;
use crate::metadata::{MetadataError, MetadataImage, MetadataRecord};
pub use types::{NodeId, Outcome, Refusal, TypeConfig};
pub use wire::{BrokerHeartbeat, HeartbeatReply};

/// Producer ids are reserved in blocks so that a restart never reuses one.
const PRODUCER_ID_BLOCK: i64 = 1000;
/// How long a proposal may wait for a leader and a commit before the caller
/// is told there is no quorum. A failover takes under 2 s.
const PROPOSE_TIMEOUT: Duration = Duration::from_secs(8);
/// A single node elects itself in one election timeout; this is generous.
const SINGLE_NODE_START_TIMEOUT: Duration = Duration::from_secs(10);
/// Controlled shutdown gives up waiting to be fenced after this long.
const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// What a controller needs to start.
pub struct ControllerConfig {
    pub node_id: i32,
    /// `<log.dir>/__cluster_metadata-0`; the Raft store is in its `raft/`.
    pub metadata_dir: PathBuf,
    /// `controller.quorum.voters`; empty: single node, a quorum of this node.
    pub voters: Vec<Voter>,
    /// The bound CONTROLLER listener, if this node has one. A voter without
    /// one binds its address from `voters`.
    pub listener: Option<TcpListener>,
    /// The controller address peers use for this node (learners announce it
    /// when joining); default: the listener's local address.
    pub advertised_addr: Option<String>,
    /// `cluster.id` (or the one in meta.properties): used when bootstrapping.
    pub cluster_id: Option<String>,
    /// This broker's advertised client endpoint and rack, for heartbeats.
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    pub heartbeat_interval: Duration,
    pub session_timeout: Duration,
}

impl ControllerConfig {
    /// A single node with default timings (tests, tools).
    pub fn single(node_id: i32, metadata_dir: PathBuf) -> Self {
        ControllerConfig {
            node_id,
            metadata_dir,
            voters: Vec::new(),
            listener: None,
            advertised_addr: None,
            cluster_id: None,
            host: "localhost".into(),
            port: 9092,
            rack: None,
            heartbeat_interval: Duration::from_millis(250),
            session_timeout: Duration::from_millis(1500),
        }
    }
}

/// The quorum as this node sees it (DescribeQuorum, `broker cluster status`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QuorumStatus {
    pub leader: Option<i32>,
    pub term: u64,
    pub voters: Vec<i32>,
    pub learners: Vec<i32>,
    /// Per node, the last log index known replicated to it (leader only).
    pub matched: BTreeMap<i32, Option<u64>>,
    pub last_applied: Option<u64>,
    pub last_log_index: Option<u64>,
}

/// The metadata controller of this node.
pub struct Controller {
    id: NodeId,
    raft: types::Raft,
    images: watch::Sender<Arc<MetadataImage>>,
    /// Controller addresses of the configured voters (where to find a leader
    /// before this node knows the membership).
    voter_addrs: Vec<String>,
    cluster_id: Option<String>,
    /// (next id to hand out, end of the reserved block).
    producer_ids: tokio::sync::Mutex<(i64, i64)>,
    heartbeat: Mutex<BrokerHeartbeat>,
    shutting_down: AtomicBool,
    heartbeat_interval: Duration,
    session_timeout: Duration,
    pub(crate) leader_state: leader::LeaderState,
    pub(crate) pool: forward::Pool,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

fn raft_err(e: impl std::fmt::Display) -> MetadataError {
    MetadataError::Raft(e.to_string())
}

impl Controller {
    /// Opens the Raft store, starts Raft and the controller's tasks.
    ///
    /// Single node: returns once this node leads and the cluster id is set.
    /// Cluster: returns once the store is open and the listener serves; the
    /// image may still be empty (watch `subscribe`).
    pub async fn start(
        cfg: ControllerConfig,
        shutdown: CancellationToken,
    ) -> Result<Arc<Controller>, MetadataError> {
        let id = u64::try_from(cfg.node_id)
            .map_err(|_| MetadataError::Raft(format!("node.id {} is negative", cfg.node_id)))?;
        let raft_dir = cfg.metadata_dir.join("raft");
        let single_node = cfg.voters.is_empty();
        let is_voter = single_node || cfg.voters.iter().any(|v| v.id == cfg.node_id);
        let listener = match cfg.listener {
            Some(l) => Some(l),
            None if single_node => None,
            None if is_voter => {
                let addr = cfg
                    .voters
                    .iter()
                    .find(|v| v.id == cfg.node_id)
                    .map(Voter::addr)
                    .unwrap_or_default();
                Some(TcpListener::bind(&addr).await.map_err(|e| MetadataError::Io {
                    path: format!("controller listener {addr}"),
                    source: e,
                })?)
            }
            None => {
                return Err(MetadataError::Raft(format!(
                    "node {} is not in controller.quorum.voters, so it needs a CONTROLLER listener (controller.listener.names) to receive the metadata log",
                    cfg.node_id
                )))
            }
        };
        let advertised_addr = match (&cfg.advertised_addr, &listener) {
            (Some(a), _) => a.clone(),
            (None, Some(l)) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            (None, None) => String::new(),
        };

        let (images, _) = watch::channel(Arc::new(MetadataImage::default()));
        let log_store = log_store::LogStore::open(&raft_dir).map_err(raft_err)?;
        let fresh = log_store.is_fresh();
        let sm = state_machine::StateMachine::open(&raft_dir, images.clone()).map_err(raft_err)?;
        let raft = types::Raft::new(id, types::raft_config()?, network::Network, log_store, sm)
            .await
            .map_err(raft_err)?;

        let cancel = shutdown.child_token();
        let controller = Arc::new(Controller {
            id,
            raft,
            images,
            voter_addrs: cfg.voters.iter().map(Voter::addr).collect(),
            cluster_id: cfg.cluster_id.clone(),
            producer_ids: tokio::sync::Mutex::new((0, 0)),
            heartbeat: Mutex::new(BrokerHeartbeat {
                id: cfg.node_id,
                incarnation: uuid::Uuid::new_v4(),
                host: cfg.host.clone(),
                port: cfg.port,
                rack: cfg.rack.clone(),
                shutting_down: false,
            }),
            shutting_down: AtomicBool::new(false),
            heartbeat_interval: cfg.heartbeat_interval,
            session_timeout: cfg.session_timeout,
            leader_state: leader::LeaderState::default(),
            pool: forward::Pool::default(),
            tracker: TaskTracker::new(),
            cancel,
        });
        if let Some(l) = listener {
            controller.tracker.spawn(server::serve(
                controller.clone(),
                l,
                controller.cancel.clone(),
            ));
        }
        if fresh && is_voter {
            controller.initialize(&cfg.voters, &advertised_addr).await?;
        }
        tasks::spawn(&controller, is_voter, advertised_addr);
        if !single_node {
            controller
                .tracker
                .spawn(tasks::check_voters(controller.clone(), cfg.voters.clone()));
        }
        let legacy = legacy::pending(&cfg.metadata_dir, fresh);
        if single_node {
            controller.wait_single_node_ready().await?;
            if let Some(path) = legacy {
                legacy::import(&controller, &path).await?;
            }
        } else if let Some(path) = legacy {
            let c = controller.clone();
            controller.tracker.spawn(async move {
                if let Err(e) = legacy::import(&c, &path).await {
                    tracing::error!(error = %e, "cannot import the single-voter metadata log");
                }
            });
        }
        Ok(controller)
    }

    /// Initializes a fresh store with the configured voters. Every voter
    /// does it; a node that already saw a log (another initialized first)
    /// is refused with NotAllowed, which is harmless.
    async fn initialize(&self, voters: &[Voter], own_addr: &str) -> Result<(), MetadataError> {
        let members: BTreeMap<NodeId, BasicNode> = if voters.is_empty() {
            BTreeMap::from([(self.id, BasicNode::new(own_addr))])
        } else {
            voters
                .iter()
                .map(|v| (v.id as NodeId, BasicNode::new(v.addr())))
                .collect()
        };
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(openraft::error::RaftError::APIError(
                openraft::error::InitializeError::NotAllowed(_),
            )) => Ok(()),
            Err(e) => Err(raft_err(e)),
        }
    }

    /// Single node: wait to lead, then make sure the cluster id is set.
    async fn wait_single_node_ready(&self) -> Result<(), MetadataError> {
        self.raft
            .wait(Some(SINGLE_NODE_START_TIMEOUT))
            .current_leader(self.id, "single node leads")
            .await
            .map_err(|e| MetadataError::NoQuorum(e.to_string()))?;
        leader::bootstrap_cluster_id(self).await?;
        // Register and unfence this broker now rather than one heartbeat
        // interval later, so clients never see a node without brokers.
        self.heartbeat(self.own_heartbeat()).await.map(|_| ())
    }

    /// The current image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.images.borrow().clone()
    }

    /// A receiver that sees every new image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.images.subscribe()
    }

    /// Proposes one change through the quorum (forwarded to the leader if
    /// this node does not lead); returns an image that contains it.
    pub async fn propose(
        &self,
        record: MetadataRecord,
    ) -> Result<Arc<MetadataImage>, MetadataError> {
        self.propose_outcome(record).await.map(|(image, _)| image)
    }

    /// `propose`, also returning the producer id range an
    /// `AllocateProducerIds` reserved.
    async fn propose_outcome(
        &self,
        record: MetadataRecord,
    ) -> Result<(Arc<MetadataImage>, Option<(i64, i64)>), MetadataError> {
        let (index, reserved) = forward::propose(self, record).await?;
        self.wait_applied(index).await?;
        Ok((self.image(), reserved))
    }

    /// Waits until the local state machine applied `index`.
    pub(crate) async fn wait_applied(&self, index: u64) -> Result<(), MetadataError> {
        self.raft
            .wait(Some(PROPOSE_TIMEOUT))
            .applied_index_at_least(Some(index), "proposal applied here")
            .await
            .map(|_| ())
            .map_err(|e| {
                MetadataError::NoQuorum(format!("change committed but not applied here: {e}"))
            })
    }

    /// Checks a change against the current image without proposing it
    /// (validate_only requests).
    pub fn check(&self, record: &MetadataRecord) -> Result<(), MetadataError> {
        self.image().apply(record).map(|_| ())
    }

    /// Hands out a producer id that was never used before, cluster-wide and
    /// across restarts: blocks are reserved through the quorum.
    pub async fn next_producer_id(&self) -> Result<i64, MetadataError> {
        // An async mutex: the lock is held across the reservation on purpose,
        // so one caller reserves a block while the others wait for it.
        let mut ids = self.producer_ids.lock().await;
        while ids.0 >= ids.1 {
            let base = self.image().producer_ids_next;
            let record = MetadataRecord::AllocateProducerIds {
                next: base + PRODUCER_ID_BLOCK,
            };
            if let (_, Some((from, to))) = self.propose_outcome(record).await? {
                // Empty when another broker's reservation won the race: retry.
                *ids = (from, to);
            }
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }

    /// The current leader's node id, if known.
    pub fn leader_id(&self) -> Option<i32> {
        self.raft
            .metrics()
            .borrow()
            .current_leader
            .map(|l| l as i32)
    }

    /// True if this node leads the quorum.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.id)
    }

    /// This node's id.
    pub fn node_id(&self) -> i32 {
        self.id as i32
    }

    /// The quorum as this node sees it.
    pub fn status(&self) -> QuorumStatus {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: Vec<i32> = membership.voter_ids().map(|v| v as i32).collect();
        let learners: Vec<i32> = membership.learner_ids().map(|v| v as i32).collect();
        let matched = match &m.replication {
            Some(r) => r
                .iter()
                .map(|(id, l)| (*id as i32, l.map(|l| l.index)))
                .collect(),
            None => BTreeMap::new(),
        };
        QuorumStatus {
            leader: m.current_leader.map(|l| l as i32),
            term: m.current_term,
            voters,
            learners,
            matched,
            last_applied: m.last_applied.map(|l| l.index),
            last_log_index: m.last_log_index,
        }
    }

    /// The quorum as the leader sees it, asked of the leader from any node.
    pub async fn leader_status(&self) -> Result<QuorumStatus, MetadataError> {
        forward::status(self).await
    }

    /// Reports this broker's liveness to the leader (done every
    /// `broker.heartbeat.interval.ms` by the controller's own task).
    pub async fn heartbeat(&self, hb: BrokerHeartbeat) -> Result<HeartbeatReply, MetadataError> {
        forward::heartbeat(self, hb).await
    }

    /// This node's current heartbeat.
    pub(crate) fn own_heartbeat(&self) -> BrokerHeartbeat {
        let mut hb = self
            .heartbeat
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        hb.shutting_down = self.shutting_down.load(Ordering::Relaxed);
        hb
    }

    /// Controlled shutdown: asks to be fenced (so partition leadership moves
    /// away) and waits until that is applied, for a few seconds at most.
    pub async fn shutdown_broker(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + CONTROLLED_SHUTDOWN_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            let hb = self.own_heartbeat();
            let remaining = deadline - tokio::time::Instant::now();
            match tokio::time::timeout(remaining, self.heartbeat(hb)).await {
                Ok(Ok(r)) if r.fenced || !r.registered => {
                    // The leader applied the fence; this node's replicas
                    // only step down once the local image has it too.
                    let mut images = self.subscribe();
                    let id = self.node_id();
                    let applied = images.wait_for(|i| i.brokers.get(&id).is_none_or(|b| b.fenced));
                    if tokio::time::timeout_at(deadline, applied).await.is_err() {
                        tracing::warn!("controlled shutdown: the fence did not reach this node's image in time");
                    }
                    return;
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "controlled shutdown heartbeat failed"),
                Err(_) => break,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::warn!("controlled shutdown: not fenced in time; exiting anyway");
    }

    /// Stops the controller's tasks and Raft.
    pub async fn close(&self) {
        self.cancel.cancel();
        self.tracker.close();
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft did not shut down cleanly");
        }
        self.tracker.wait().await;
    }
}
