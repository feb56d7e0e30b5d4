//! What only the leader does: commit proposals, track broker liveness from
//! heartbeats (register, unfence, fence), add joining nodes as learners, set
//! the cluster id of a new cluster.
//!
//! Every function here answers `NotLeader` when this node does not lead, so
//! a caller that reached a stale leader is pointed at the new one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use openraft::error::{ClientWriteError, RaftError};
use openraft::BasicNode;

use super::types::{NodeId, Outcome, Refusal};
use super::wire::{BrokerHeartbeat, HeartbeatReply, NotDone};
use super::Controller;
use crate::metadata::{MetadataError, MetadataRecord};

/// The leader's memory of broker liveness (not replicated: a new leader
/// starts empty and waits one session timeout before fencing anyone).
#[derive(Default)]
pub struct LeaderState {
    inner: Mutex<Liveness>,
}

#[derive(Default)]
struct Liveness {
    /// The term this memory belongs to, and when this node began leading it.
    term: u64,
    since: Option<Instant>,
    /// The node that led the quorum before this one, if another: the
    /// followers stopped hearing from it, so its broker is likely gone too.
    suspect: Option<i32>,
    /// Per broker id: the incarnation last heard from, and when.
    last_seen: HashMap<i32, (uuid::Uuid, Instant)>,
}

impl LeaderState {
    fn lock(&self) -> std::sync::MutexGuard<'_, Liveness> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes that this node leads `term` (resets the memory on a new term);
    /// `previous` is the quorum leader it saw before.
    pub fn leading(&self, term: u64, previous: Option<i32>, now: Instant) {
        let mut l = self.lock();
        if l.term != term || l.since.is_none() {
            l.term = term;
            l.since = Some(now);
            l.suspect = previous;
            l.last_seen.clear();
        }
    }

    /// Notes that this node no longer leads.
    pub fn not_leading(&self) {
        let mut l = self.lock();
        l.since = None;
        l.last_seen.clear();
    }

    fn seen(&self, id: i32, incarnation: uuid::Uuid, now: Instant) {
        self.lock().last_seen.insert(id, (incarnation, now));
    }

    /// Whether `incarnation` of broker `id` was heard from within `timeout`.
    fn alive(
        &self,
        id: i32,
        incarnation: uuid::Uuid,
        timeout: std::time::Duration,
        now: Instant,
    ) -> bool {
        self.lock()
            .last_seen
            .get(&id)
            .is_some_and(|(inc, t)| *inc == incarnation && now.duration_since(*t) < timeout)
    }

    /// Unfenced brokers in `candidates` not heard from within the session
    /// timeout, if this node has led for at least that long. The previous
    /// quorum leader's broker gets only `suspect_grace`: a new leader was
    /// elected because it went silent, and waiting a whole session timeout
    /// again would double the failover of its partitions. Live brokers
    /// re-target their heartbeats well within that grace; a wrong guess costs
    /// one leadership move, undone by its next heartbeat.
    fn expired(
        &self,
        candidates: &[i32],
        timeout: std::time::Duration,
        suspect_grace: std::time::Duration,
        now: Instant,
    ) -> Vec<i32> {
        let l = self.lock();
        if let (Some(since), Some(suspect)) = (l.since, l.suspect) {
            let led = now.duration_since(since);
            if led >= suspect_grace && led < timeout && candidates.contains(&suspect) {
                let heard = l.last_seen.get(&suspect).is_some_and(|(_, t)| *t >= since);
                if !heard {
                    return vec![suspect];
                }
            }
        }
        match l.since {
            Some(since) if now.duration_since(since) >= timeout => candidates
                .iter()
                .copied()
                .filter(|id| {
                    l.last_seen
                        .get(id)
                        .is_none_or(|(_, t)| now.duration_since(*t) >= timeout)
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

fn not_leader(
    c: &Controller,
    f: Option<openraft::error::ForwardToLeader<NodeId, BasicNode>>,
) -> NotDone {
    let hint = match f {
        Some(f) => f.leader_id.zip(f.leader_node.map(|n| n.addr)),
        None => {
            let m = c.raft.metrics().borrow().clone();
            m.current_leader.and_then(|l| {
                m.membership_config
                    .membership()
                    .get_node(&l)
                    .map(|n| (l, n.addr.clone()))
            })
        }
    };
    // Never point a caller back at ourselves.
    NotDone::NotLeader(hint.filter(|(id, _)| *id != c.id))
}

/// Commits `record` if this node leads.
pub async fn propose(
    c: &Controller,
    record: MetadataRecord,
) -> Result<(u64, Option<(i64, i64)>), NotDone> {
    match c.raft.client_write(record).await {
        Ok(resp) => match resp.data {
            Outcome::Applied { index, reserved } => Ok((index, reserved)),
            Outcome::Refused(r) => Err(NotDone::Refused(r)),
        },
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            Err(not_leader(c, Some(f)))
        }
        Err(e) => Err(NotDone::Refused(Refusal::NoQuorum(e.to_string()))),
    }
}

/// Proposes on the leader and waits until it is applied here.
async fn propose_here(c: &Controller, record: MetadataRecord) -> Result<(), NotDone> {
    let (index, _) = propose(c, record).await?;
    c.wait_applied(index)
        .await
        .map_err(|e| NotDone::Refused(Refusal::from_error(&e)))
}

/// Handles a broker's heartbeat: registers, unfences or fences it as needed;
/// answers once the resulting change is applied.
pub async fn heartbeat(c: &Controller, hb: BrokerHeartbeat) -> Result<HeartbeatReply, NotDone> {
    if !c.is_leader() {
        return Err(not_leader(c, None));
    }
    let now = Instant::now();
    if let Some(b) = c.image().brokers.get(&hb.id) {
        // Another process with this node.id is alive: refuse rather than let
        // the two re-register in turn (each time fencing the other). A broker
        // restarted within the session timeout waits here for its old
        // session to expire, as Kafka's DUPLICATE_BROKER_REGISTRATION does.
        if b.incarnation != hb.incarnation
            && !b.fenced
            && c.leader_state
                .alive(hb.id, b.incarnation, c.session_timeout, now)
        {
            return Err(NotDone::Refused(Refusal::DuplicateBroker(hb.id)));
        }
    }
    c.leader_state.seen(hb.id, hb.incarnation, now);
    // At most: register, then unfence (or fence); bounded, never a loop.
    for _ in 0..3 {
        let image = c.image();
        let record = match image.brokers.get(&hb.id) {
            None => Some(register(&hb)),
            Some(b)
                if b.incarnation != hb.incarnation
                    || b.host != hb.host
                    || b.port != hb.port
                    || b.rack != hb.rack =>
            {
                Some(register(&hb))
            }
            Some(b) if hb.shutting_down && !b.fenced => {
                Some(MetadataRecord::FenceBroker { id: hb.id })
            }
            Some(b) if !hb.shutting_down && b.fenced => {
                Some(MetadataRecord::UnfenceBroker { id: hb.id })
            }
            Some(b) => {
                return Ok(HeartbeatReply {
                    registered: true,
                    fenced: b.fenced,
                })
            }
        };
        if let Some(r) = record {
            propose_here(c, r).await?;
        }
    }
    let image = c.image();
    Ok(HeartbeatReply {
        registered: image.brokers.contains_key(&hb.id),
        fenced: image.brokers.get(&hb.id).is_none_or(|b| b.fenced),
    })
}

fn register(hb: &BrokerHeartbeat) -> MetadataRecord {
    MetadataRecord::RegisterBroker {
        id: hb.id,
        incarnation: hb.incarnation,
        host: hb.host.clone(),
        port: hb.port,
        rack: hb.rack.clone(),
    }
}

/// Fences every unfenced broker whose session expired (leader only).
pub async fn fence_expired(c: &Controller) {
    // The leader's own broker is alive by definition, whatever its
    // heartbeat task is waiting on.
    c.leader_state
        .seen(c.id as i32, c.own_heartbeat().incarnation, Instant::now());
    let image = c.image();
    let unfenced: Vec<i32> = image
        .brokers
        .values()
        .filter(|b| !b.fenced)
        .map(|b| b.id)
        .collect();
    for id in c.leader_state.expired(
        &unfenced,
        c.session_timeout,
        suspect_grace(c.heartbeat_interval),
        Instant::now(),
    ) {
        tracing::info!(broker = id, "broker session expired; fencing it");
        if let Err(e) = propose(c, MetadataRecord::FenceBroker { id }).await {
            tracing::debug!(broker = id, error = ?e, "cannot fence broker");
        }
    }
}

/// The quorum as the leader sees it (only the leader knows how far each
/// node has replicated).
pub fn status(c: &Controller) -> Result<super::QuorumStatus, NotDone> {
    if !c.is_leader() {
        return Err(not_leader(c, None));
    }
    Ok(c.status())
}

/// Adds a joining node as a learner (non-blocking: it catches up in the
/// background).
pub async fn join(c: &Controller, id: NodeId, addr: String) -> Result<(), NotDone> {
    if !c.is_leader() {
        return Err(not_leader(c, None));
    }
    let known = c
        .raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .get_node(&id)
        .map(|n| n.addr == addr);
    if known == Some(true) {
        return Ok(());
    }
    tracing::info!(node = id, %addr, "adding node as a learner");
    match c.raft.add_learner(id, BasicNode::new(addr), false).await {
        Ok(_) => Ok(()),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            Err(not_leader(c, Some(f)))
        }
        Err(e) => Err(NotDone::Refused(Refusal::Other(e.to_string()))),
    }
}

/// Sets the cluster id of a new cluster (leader only; no-op once set).
pub async fn bootstrap_cluster_id(c: &Controller) -> Result<(), MetadataError> {
    // See every committed entry first: a previous leader may have set it.
    c.raft
        .ensure_linearizable()
        .await
        .map_err(|e| MetadataError::NoQuorum(e.to_string()))?;
    if !c.image().cluster_id.is_empty() {
        return Ok(());
    }
    let cluster_id = c
        .cluster_id
        .clone()
        .unwrap_or_else(crate::metadata::new_cluster_id);
    tracing::info!(%cluster_id, "bootstrapping the cluster metadata");
    match propose_here(c, MetadataRecord::Bootstrap { cluster_id }).await {
        Ok(()) => Ok(()),
        // Start-up and the duties task may both bootstrap; one of the two
        // proposals is refused because the other already set the id.
        Err(NotDone::Refused(_)) if !c.image().cluster_id.is_empty() => Ok(()),
        Err(NotDone::Refused(r)) => Err(r.into_error()),
        Err(NotDone::NotLeader(_)) => Err(MetadataError::NoQuorum(
            "lost leadership while bootstrapping".into(),
        )),
    }
}

/// How long a new quorum leader waits to hear from the previous leader's
/// broker before fencing it: three heartbeat intervals.
fn suspect_grace(heartbeat: std::time::Duration) -> std::time::Duration {
    heartbeat * 3
}

#[cfg(test)]
mod liveness_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_previous_leader_is_fenced_early_others_wait_a_session() {
        let s = LeaderState::default();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        s.leading(2, Some(1), t0);
        let live = uuid::Uuid::from_u128(3);
        s.seen(3, live, t0 + ms(100));
        let all = [1, 2, 3];
        assert!(s.expired(&all, ms(1500), ms(750), t0 + ms(500)).is_empty());
        assert_eq!(s.expired(&all, ms(1500), ms(750), t0 + ms(800)), vec![1]);
        // Heard from after all: not fenced early.
        s.seen(1, uuid::Uuid::from_u128(1), t0 + ms(700));
        assert!(s.expired(&all, ms(1500), ms(750), t0 + ms(800)).is_empty());
        // After a session timeout the usual rule: 2 never heard from.
        s.seen(3, live, t0 + ms(1000));
        assert_eq!(s.expired(&all, ms(1500), ms(750), t0 + ms(1600)), vec![2]);
    }
}
