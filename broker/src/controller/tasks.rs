//! Background loops of every controller: leader duties (bootstrap, fencing),
//! this broker's heartbeat, and joining as a learner for broker-only nodes.
//! Each ends when the controller's cancellation token fires.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{forward, leader, Controller};
use crate::metadata::MetadataError;

/// How often the leader looks for expired broker sessions; a fraction of
/// the session timeout so fencing is late by at most this much.
const DUTY_INTERVAL: Duration = Duration::from_millis(100);
/// Pause between join attempts of a broker-only node.
const JOIN_RETRY: Duration = Duration::from_millis(500);

pub fn spawn(c: &Arc<Controller>, is_voter: bool, own_addr: String) {
    c.tracker.spawn(duties(c.clone()));
    c.tracker.spawn(heartbeats(c.clone()));
    if !is_voter {
        c.tracker.spawn(join(c.clone(), own_addr));
    }
}

async fn duties(c: Arc<Controller>) {
    let mut tick = tokio::time::interval(DUTY_INTERVAL);
    // The last quorum leader other than this node, for a new leadership.
    let mut previous: Option<u64> = None;
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = c.cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (leader, term) = {
            let m = c.raft.metrics();
            let m = m.borrow();
            (m.current_leader, m.current_term)
        };
        if leader != Some(c.id) {
            if leader.is_some() {
                previous = leader;
            }
            c.leader_state.not_leading();
            continue;
        }
        c.leader_state
            .leading(term, previous.map(|p| p as i32), Instant::now());
        if c.image().cluster_id.is_empty() {
            if let Err(e) = leader::bootstrap_cluster_id(&c).await {
                tracing::warn!(error = %e, "cannot bootstrap the cluster id yet");
            }
        }
        leader::fence_expired(&c).await;
    }
}

async fn heartbeats(c: Arc<Controller>) {
    let mut tick = tokio::time::interval(c.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = c.cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let hb = c.own_heartbeat();
        let call = forward::heartbeat(&c, hb);
        tokio::select! {
            _ = c.cancel.cancelled() => return,
            r = call => match r {
                // Worth shouting: this process serves nothing until it clears.
                Err(e @ MetadataError::DuplicateBroker(_)) => {
                    tracing::error!(error = %e, "broker registration refused")
                }
                Err(e) => tracing::debug!(error = %e, "broker heartbeat failed"),
                Ok(_) => {}
            },
        }
    }
}

async fn join(c: Arc<Controller>, own_addr: String) {
    loop {
        let member = c
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&c.id)
            .is_some_and(|n| n.addr == own_addr);
        if member {
            return;
        }
        let call = forward::join(&c, c.id, own_addr.clone());
        tokio::select! {
            _ = c.cancel.cancelled() => return,
            r = call => match r {
                Ok(()) => tracing::info!("joined the metadata quorum as a learner"),
                Err(e) => tracing::debug!(error = %e, "cannot join the metadata quorum yet"),
            },
        }
        tokio::select! {
            _ = c.cancel.cancelled() => return,
            _ = tokio::time::sleep(JOIN_RETRY) => {}
        }
    }
}

/// Once the membership is known, compares it with this node's
/// `controller.quorum.voters`. The quorum's membership is what counts (it was
/// fixed when the cluster first formed); a node configured otherwise would
/// silently disagree about who votes, so say so loudly.
pub async fn check_voters(c: Arc<Controller>, configured: Vec<crate::config::Voter>) {
    let mut metrics = c.raft.metrics();
    loop {
        let voters: Vec<(u64, String)> = {
            let m = metrics.borrow_and_update();
            let membership = m.membership_config.membership();
            membership
                .voter_ids()
                .map(|id| {
                    let addr = membership.get_node(&id).map(|n| n.addr.clone());
                    (id, addr.unwrap_or_default())
                })
                .collect()
        };
        if !voters.is_empty() {
            let mut want: Vec<(u64, String)> =
                configured.iter().map(|v| (v.id as u64, v.addr())).collect();
            want.sort();
            let mut have = voters;
            have.sort();
            if want != have {
                tracing::error!(
                    configured = ?want,
                    quorum = ?have,
                    "controller.quorum.voters of this node disagrees with the metadata quorum's voters; the quorum's are used — fix this node's configuration"
                );
            }
            return;
        }
        tokio::select! {
            _ = c.cancel.cancelled() => return,
            r = metrics.changed() => if r.is_err() { return },
        }
    }
}
