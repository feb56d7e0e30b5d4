//! The classic group state machine (Kafka's GroupMetadata + the join/sync
//! parts of its GroupCoordinator), without I/O: callers pass the time in, and
//! answers go to members through their waiting channels.
//!
//! States: Empty -> PreparingRebalance -> CompletingRebalance -> Stable, and
//! back to PreparingRebalance whenever membership or subscriptions change.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::member::{JoinResult, Member, SyncResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name Kafka's tools show.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub commit_ms: i64,
}

/// What a JoinGroup call leads to.
pub enum JoinOutcome {
    Now(JoinResult),
    Wait(oneshot::Receiver<JoinResult>),
}

/// What a SyncGroup call leads to.
pub enum SyncOutcome {
    Now(SyncResult),
    Wait(oneshot::Receiver<SyncResult>),
}

/// A JoinGroup request, as the state machine needs it.
pub struct JoinRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a new member must first fetch its id (MEMBER_ID_REQUIRED).
    pub require_known_member_id: bool,
}

/// Timing knobs from the broker config.
#[derive(Debug, Clone, Copy)]
pub struct GroupConfig {
    pub initial_rebalance_delay_ms: i64,
    pub migration: super::mixed::MigrationPolicy,
    pub max_size: usize,
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

/// One consumer group.
#[derive(Debug)]
pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: HashMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, valid until the deadline.
    pub pending: HashMap<String, i64>,
    /// group.instance.id -> member id of static members.
    pub statics: HashMap<String, String>,
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// Members on the KIP-848 consumer protocol (a group uses one protocol at a time).
    pub consumer: super::consumer::ConsumerGroup,
    /// The current rebalance phase ends (at the latest) at this time.
    pub phase_deadline_ms: i64,
    /// A new group waits this long for more members before its first generation.
    pub initial_delay_until_ms: i64,
    join_seq: u64,
}

impl Group {
    pub fn new(id: &str) -> Self {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: HashMap::new(),
            pending: HashMap::new(),
            statics: HashMap::new(),
            offsets: BTreeMap::new(),
            consumer: Default::default(),
            phase_deadline_ms: 0,
            initial_delay_until_ms: 0,
            join_seq: 0,
        }
    }

    fn new_member_id(prefix: &str) -> String {
        let prefix = if prefix.is_empty() { "member" } else { prefix };
        format!("{prefix}-{}", uuid::Uuid::new_v4())
    }

    fn error_join(error: ResponseError, member_id: &str) -> JoinOutcome {
        JoinOutcome::Now(JoinResult {
            error: code(error),
            generation: -1,
            member_id: member_id.to_string(),
            ..Default::default()
        })
    }

    /// Whether the protocols fit the group (same type, a protocol all share).
    fn compatible(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols
            .iter()
            .any(|(name, _)| self.members.values().all(|m| m.supports(name)))
    }

    /// No members on either protocol.
    pub fn is_empty(&self) -> bool {
        self.state == GroupState::Empty && self.consumer.members.is_empty()
    }

    /// The state name tools show, whichever protocol the group uses.
    pub fn state_name(&self) -> &'static str {
        if self.consumer.members.is_empty() {
            self.state.name()
        } else {
            self.consumer.state_name()
        }
    }

    pub fn join(&mut self, req: JoinRequest, now_ms: i64, cfg: GroupConfig) -> JoinOutcome {
        if !self.consumer.members.is_empty() {
            // Mixing protocols in one group (KIP-848 migration) is not supported yet.
            return Self::error_join(ResponseError::InconsistentGroupProtocol, &req.member_id);
        }
        if self.state == GroupState::Dead {
            return Self::error_join(ResponseError::CoordinatorNotAvailable, &req.member_id);
        }
        if req.protocol_type.is_empty()
            || req.protocols.is_empty()
            || !self.compatible(&req.protocol_type, &req.protocols)
        {
            return Self::error_join(ResponseError::InconsistentGroupProtocol, &req.member_id);
        }
        if req.member_id.is_empty() {
            return self.join_unknown(req, now_ms, cfg);
        }
        if self.pending.remove(&req.member_id).is_some() {
            return self.add_and_rebalance(req.member_id.clone(), req, now_ms, cfg);
        }
        let Some(member) = self.members.get(&req.member_id) else {
            return Self::error_join(ResponseError::UnknownMemberId, &req.member_id);
        };
        if let Some(iid) = &req.instance_id {
            if self.statics.get(iid) != Some(&req.member_id) {
                return Self::error_join(ResponseError::FencedInstanceId, &req.member_id);
            }
        }
        let unchanged = member.protocols == req.protocols;
        match self.state {
            // Kafka rebalances when the leader of a stable group rejoins, so the leader
            // can assign partitions its metadata newly shows. Here the leader gets the
            // current generation back and its next SyncGroup rebalances only if the
            // assignment it sends differs (see `sync`). kafka-python 3.0 drops a join
            // that completed while no poll() waited on it and joins again: under
            // Kafka's rule each of its leader's re-joins rebalanced the whole group,
            // round after round, and the members never settled.
            GroupState::CompletingRebalance | GroupState::Stable if unchanged => {
                if let Some(m) = self.members.get_mut(&req.member_id) {
                    m.refresh_session(now_ms);
                }
                JoinOutcome::Now(self.join_result_for(&req.member_id))
            }
            _ => self.rejoin(req, now_ms, cfg),
        }
    }

    fn join_unknown(&mut self, req: JoinRequest, now_ms: i64, cfg: GroupConfig) -> JoinOutcome {
        if let Some(iid) = req.instance_id.clone() {
            if let Some(old_id) = self.statics.get(&iid).cloned() {
                return self.replace_static(old_id, iid, req, now_ms, cfg);
            }
            let id = Self::new_member_id(&iid);
            return self.add_and_rebalance(id, req, now_ms, cfg);
        }
        let id = Self::new_member_id(&req.client_id);
        if req.require_known_member_id {
            self.pending
                .insert(id.clone(), now_ms + req.session_timeout_ms as i64);
            return Self::error_join(ResponseError::MemberIdRequired, &id);
        }
        self.add_and_rebalance(id, req, now_ms, cfg)
    }

    /// A static member came back with a new process: it takes over the old
    /// member's place, fencing the old id, and keeps its assignment.
    fn replace_static(
        &mut self,
        old_id: String,
        iid: String,
        req: JoinRequest,
        now_ms: i64,
        cfg: GroupConfig,
    ) -> JoinOutcome {
        let Some(mut old) = self.members.remove(&old_id) else {
            self.statics.remove(&iid);
            return self.add_and_rebalance(Self::new_member_id(&iid), req, now_ms, cfg);
        };
        old.fail_join(code(ResponseError::FencedInstanceId));
        old.fail_sync(code(ResponseError::FencedInstanceId));
        let new_id = Self::new_member_id(&iid);
        // Kafka rebalances a returning static member's group only if the
        // protocol it would select changes; new metadata alone (clients send
        // fresh bytes on every start) does not.
        let protocol_kept = self
            .protocol
            .as_ref()
            .is_some_and(|p| req.protocols.iter().any(|(n, _)| n == p));
        old.protocols = req.protocols.clone();
        old.id = new_id.clone();
        old.client_id = req.client_id.clone();
        old.client_host = req.client_host.clone();
        old.session_timeout_ms = req.session_timeout_ms;
        old.rebalance_timeout_ms = req.rebalance_timeout_ms;
        old.refresh_session(now_ms);
        self.members.insert(new_id.clone(), old);
        self.statics.insert(iid, new_id.clone());
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(new_id.clone());
        }
        if self.state == GroupState::Stable
            && protocol_kept
            && self.select_protocol() == self.protocol
        {
            // Same subscription: no rebalance for the others (KIP-345).
            let mut result = self.join_result_for(&new_id);
            result.members.clear();
            return JoinOutcome::Now(result);
        }
        self.rejoin(
            JoinRequest {
                member_id: new_id,
                ..req
            },
            now_ms,
            cfg,
        )
    }

    fn add_and_rebalance(
        &mut self,
        id: String,
        req: JoinRequest,
        now_ms: i64,
        cfg: GroupConfig,
    ) -> JoinOutcome {
        if self.members.len() >= cfg.max_size {
            return Self::error_join(ResponseError::GroupMaxSizeReached, &id);
        }
        self.join_seq += 1;
        if let Some(iid) = &req.instance_id {
            self.statics.insert(iid.clone(), id.clone());
        }
        let member = Member {
            id: id.clone(),
            instance_id: req.instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocols: Vec::new(),
            assignment: Bytes::new(),
            session_deadline_ms: now_ms + req.session_timeout_ms as i64,
            joined_seq: self.join_seq,
            awaiting_join: None,
            awaiting_sync: None,
        };
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        self.members.insert(id.clone(), member);
        self.rejoin(
            JoinRequest {
                member_id: id,
                ..req
            },
            now_ms,
            cfg,
        )
    }

    /// Records the member's join and moves the group into (or on in) a rebalance.
    fn rejoin(&mut self, req: JoinRequest, now_ms: i64, cfg: GroupConfig) -> JoinOutcome {
        let (tx, rx) = oneshot::channel();
        if let Some(m) = self.members.get_mut(&req.member_id) {
            m.protocols = req.protocols;
            m.session_timeout_ms = req.session_timeout_ms;
            m.rebalance_timeout_ms = req.rebalance_timeout_ms;
            m.refresh_session(now_ms);
            // A member that joins twice only gets the latest answer.
            m.fail_join(code(ResponseError::UnknownMemberId));
            m.awaiting_join = Some(tx);
        }
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now_ms, cfg);
        }
        self.try_complete_join(now_ms);
        JoinOutcome::Wait(rx)
    }

    pub(super) fn prepare_rebalance(&mut self, now_ms: i64, cfg: GroupConfig) {
        if self.state == GroupState::CompletingRebalance {
            for m in self.members.values_mut() {
                m.fail_sync(code(ResponseError::RebalanceInProgress));
            }
        }
        let rebalance_timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms as i64)
            .max()
            .unwrap_or(0);
        if self.state == GroupState::Empty {
            self.initial_delay_until_ms =
                now_ms + cfg.initial_rebalance_delay_ms.min(rebalance_timeout);
        }
        self.state = GroupState::PreparingRebalance;
        self.phase_deadline_ms = now_ms + rebalance_timeout;
    }

    /// Completes the join phase once every member has rejoined (after the
    /// initial delay of a new group) or the rebalance timeout has passed.
    pub fn try_complete_join(&mut self, now_ms: i64) -> bool {
        if self.state != GroupState::PreparingRebalance {
            return false;
        }
        let all_joined = self.members.values().all(|m| m.awaiting_join.is_some());
        let timed_out = now_ms >= self.phase_deadline_ms;
        if !(timed_out || (all_joined && now_ms >= self.initial_delay_until_ms)) {
            return false;
        }
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.become_empty();
            return true;
        }
        self.protocol = self.select_protocol();
        let leader_alive = self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l));
        if !leader_alive {
            self.leader = self
                .members
                .values()
                .min_by_key(|m| m.joined_seq)
                .map(|m| m.id.clone());
        }
        self.state = GroupState::CompletingRebalance;
        let rebalance_timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms as i64)
            .max()
            .unwrap_or(0);
        self.phase_deadline_ms = now_ms + rebalance_timeout;
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.join_result_for(&id);
            if let Some(m) = self.members.get_mut(&id) {
                m.refresh_session(now_ms);
                if let Some(tx) = m.awaiting_join.take() {
                    let _ = tx.send(result);
                }
            }
        }
        true
    }

    /// No members left. The protocol type stays, as in Kafka, so that tools
    /// listing consumer groups still see an empty one.
    fn become_empty(&mut self) {
        self.state = GroupState::Empty;
        self.protocol = None;
        self.leader = None;
    }

    /// The protocol most members rank highest among those all members support.
    fn select_protocol(&self) -> Option<String> {
        let candidates: Vec<&String> = self
            .members
            .values()
            .min_by_key(|m| m.joined_seq)?
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| self.members.values().all(|m| m.supports(n)))
            .collect();
        let mut votes: HashMap<&String, usize> = HashMap::new();
        for m in self.members.values() {
            if let Some((n, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(&n)) {
                *votes.entry(n).or_default() += 1;
            }
        }
        // Ties go to the first candidate in the oldest member's order.
        candidates
            .iter()
            .max_by_key(|n| {
                (
                    votes.get(*n).copied().unwrap_or(0),
                    std::cmp::Reverse(candidates.iter().position(|c| c == *n)),
                )
            })
            .map(|n| (*n).clone())
    }

    fn join_result_for(&self, member_id: &str) -> JoinResult {
        let protocol = self.protocol.clone().unwrap_or_default();
        let is_leader = self.leader.as_deref() == Some(member_id);
        let mut members: Vec<&Member> = self.members.values().collect();
        members.sort_by_key(|m| m.joined_seq);
        JoinResult {
            error: 0,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if is_leader {
                members
                    .iter()
                    .map(|m| {
                        (
                            m.id.clone(),
                            m.instance_id.clone(),
                            m.metadata_for(&protocol),
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    fn remove_member(&mut self, id: &str) {
        if let Some(mut m) = self.members.remove(id) {
            m.fail_join(code(ResponseError::UnknownMemberId));
            m.fail_sync(code(ResponseError::UnknownMemberId));
            if let Some(iid) = &m.instance_id {
                if self.statics.get(iid).map(String::as_str) == Some(id) {
                    self.statics.remove(iid);
                }
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
    }

    /// Checks membership and generation the way Heartbeat, SyncGroup and
    /// OffsetCommit all do.
    pub fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        if matches!(self.state, GroupState::Empty | GroupState::Dead)
            || !self.members.contains_key(member_id)
        {
            return Err(ResponseError::UnknownMemberId);
        }
        if let Some(iid) = instance_id {
            if self.statics.get(iid).map(String::as_str) != Some(member_id) {
                return Err(ResponseError::FencedInstanceId);
            }
        }
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now_ms: i64,
        cfg: GroupConfig,
    ) -> SyncOutcome {
        let fail = |e: ResponseError| {
            SyncOutcome::Now(SyncResult {
                error: code(e),
                ..Default::default()
            })
        };
        if let Err(e) = self.check_member(member_id, instance_id, generation) {
            return fail(e);
        }
        match self.state {
            GroupState::PreparingRebalance => fail(ResponseError::RebalanceInProgress),
            GroupState::Stable => {
                let leader = self.leader.as_deref() == Some(member_id);
                if leader && !assignments.is_empty() && self.assignment_differs(assignments) {
                    // The leader re-joined a stable group and assigned anew.
                    self.prepare_rebalance(now_ms, cfg);
                    return fail(ResponseError::RebalanceInProgress);
                }
                SyncOutcome::Now(self.sync_result(member_id))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = self.members.get_mut(member_id) {
                    m.refresh_session(now_ms);
                    m.fail_sync(code(ResponseError::RebalanceInProgress));
                    m.awaiting_sync = Some(tx);
                }
                if self.leader.as_deref() == Some(member_id) {
                    let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = given.remove(&m.id).unwrap_or_default();
                    }
                    self.state = GroupState::Stable;
                    let ids: Vec<String> = self.members.keys().cloned().collect();
                    for id in ids {
                        let result = self.sync_result(&id);
                        if let Some(tx) = self
                            .members
                            .get_mut(&id)
                            .and_then(|m| m.awaiting_sync.take())
                        {
                            let _ = tx.send(result);
                        }
                    }
                }
                SyncOutcome::Wait(rx)
            }
            GroupState::Empty | GroupState::Dead => fail(ResponseError::UnknownMemberId),
        }
    }

    /// Whether `given` assigns any member something other than it has.
    fn assignment_differs(&self, given: Vec<(String, Bytes)>) -> bool {
        let given: HashMap<String, Bytes> = given.into_iter().collect();
        self.members.values().any(|m| {
            given
                .get(&m.id)
                .map_or(!m.assignment.is_empty(), |a| *a != m.assignment)
        })
    }

    fn sync_result(&self, member_id: &str) -> SyncResult {
        SyncResult {
            error: 0,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now_ms: i64,
    ) -> Result<(), ResponseError> {
        if self.is_consumer_group() {
            return self.heartbeat_consumer_group(member_id, generation, now_ms);
        }
        self.check_member(member_id, instance_id, generation)?;
        if let Some(m) = self.members.get_mut(member_id) {
            m.refresh_session(now_ms);
        }
        match self.state {
            GroupState::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// Removes a member that leaves; finds it by instance id when given.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now_ms: i64,
        cfg: GroupConfig,
    ) -> Result<(), ResponseError> {
        if self.is_consumer_group() {
            return self.leave_consumer_group(member_id, instance_id);
        }
        let id = match instance_id {
            Some(iid) => {
                let known = self
                    .statics
                    .get(iid)
                    .cloned()
                    .ok_or(ResponseError::UnknownMemberId)?;
                if !member_id.is_empty() && member_id != known {
                    return Err(ResponseError::FencedInstanceId);
                }
                known
            }
            None => member_id.to_string(),
        };
        if !self.members.contains_key(&id) {
            return Err(ResponseError::UnknownMemberId);
        }
        self.remove_member(&id);
        self.membership_changed(now_ms, cfg);
        Ok(())
    }

    fn membership_changed(&mut self, now_ms: i64, cfg: GroupConfig) {
        if self.members.is_empty() {
            if self.state != GroupState::Empty {
                self.generation += 1;
            }
            self.become_empty();
        } else {
            if self.state != GroupState::PreparingRebalance {
                self.prepare_rebalance(now_ms, cfg);
            }
            self.try_complete_join(now_ms);
        }
    }

    /// Expires dead sessions, stale pending ids and overdue rebalance phases.
    /// Returns whether anything changed (the group should be persisted).
    pub fn tick(&mut self, now_ms: i64, cfg: GroupConfig) -> bool {
        self.pending.retain(|_, deadline| *deadline > now_ms);
        let state_before = (self.state, self.generation);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.awaiting_join.is_none()
                    && m.awaiting_sync.is_none()
                    && m.session_deadline_ms <= now_ms
            })
            .map(|m| m.id.clone())
            .collect();
        let mut changed = !expired.is_empty();
        for id in &expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            self.remove_member(id);
        }
        if changed {
            self.membership_changed(now_ms, cfg);
        }
        match self.state {
            GroupState::PreparingRebalance => changed |= self.try_complete_join(now_ms),
            GroupState::CompletingRebalance if now_ms >= self.phase_deadline_ms => {
                // The leader never sent its assignment: start over without the
                // members that did not sync.
                let stale: Vec<String> = self
                    .members
                    .values()
                    .filter(|m| m.awaiting_sync.is_none())
                    .map(|m| m.id.clone())
                    .collect();
                for id in stale {
                    self.remove_member(&id);
                }
                self.membership_changed(now_ms, cfg);
                changed = true;
            }
            _ => {}
        }
        changed || state_before != (self.state, self.generation)
    }
}

impl Group {
    /// Restores stored membership after a restart: the members get a fresh
    /// session to come back in; those that do not are expired as usual.
    pub fn restore(&mut self, s: super::store::StoredGroup, now_ms: i64) {
        self.generation = s.generation;
        self.protocol_type = s.protocol_type;
        self.protocol = s.protocol;
        self.leader = s.leader;
        self.members.clear();
        self.statics.clear();
        for m in s.members {
            self.join_seq += 1;
            if let Some(iid) = &m.instance_id {
                self.statics.insert(iid.clone(), m.id.clone());
            }
            self.members.insert(
                m.id.clone(),
                Member {
                    id: m.id,
                    instance_id: m.instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: m
                        .protocols
                        .into_iter()
                        .map(|(n, b)| (n, Bytes::from(b)))
                        .collect(),
                    assignment: Bytes::from(m.assignment),
                    session_deadline_ms: now_ms + m.session_timeout_ms as i64,
                    joined_seq: self.join_seq,
                    awaiting_join: None,
                    awaiting_sync: None,
                },
            );
        }
        self.state = if self.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
    }
}
