//! Groups that mix the two protocols, by Kafka's migration rules
//! (`group.consumer.migration.policy`): a KIP-848 member joining a classic
//! group converts it in place (upgrade); classic members of a consumer group
//! keep speaking JoinGroup/SyncGroup/Heartbeat but get their partitions from
//! the server-side assignor; when the last KIP-848 member leaves, the group
//! becomes classic again (downgrade) and its members rebalance the old way.
//!
//! A classic member's JoinGroup is answered at once with its own epoch as the
//! generation and no leader (nobody runs a client-side assignor); SyncGroup
//! returns what it may own now; Heartbeat says REBALANCE_IN_PROGRESS while it
//! must give partitions up or can take more, and the client rejoins.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use millrace_client::group::{Assignment, Subscription};

use super::assignor::TopicPartition;
use super::classic::{Group, GroupConfig, GroupState, JoinRequest};
use super::consumer::{ClassicInfo, ConsumerMember};
use super::member::{JoinResult, Member, SyncResult};

/// Topic name -> (id, partition count), from the metadata image.
pub type Topics = BTreeMap<String, (uuid::Uuid, i32)>;

/// The topics of `image` as the consumer-protocol assignors need them.
pub fn topics_of(image: &crate::metadata::MetadataImage) -> Topics {
    image
        .topics
        .values()
        .map(|t| (t.name.clone(), (t.id, t.partitions as i32)))
        .collect()
}

/// `group.consumer.migration.policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationPolicy {
    Disabled,
    Upgrade,
    Downgrade,
    Bidirectional,
}

impl MigrationPolicy {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "disabled" => Some(Self::Disabled),
            "upgrade" => Some(Self::Upgrade),
            "downgrade" => Some(Self::Downgrade),
            "bidirectional" => Some(Self::Bidirectional),
            _ => None,
        }
    }
    fn upgrade(self) -> bool {
        matches!(self, Self::Upgrade | Self::Bidirectional)
    }
    fn downgrade(self) -> bool {
        matches!(self, Self::Downgrade | Self::Bidirectional)
    }
}

const CONSUMER: &str = "consumer";

fn failed_join(e: ResponseError, member_id: &str) -> JoinResult {
    JoinResult {
        error: e.code(),
        generation: -1,
        member_id: member_id.to_string(),
        ..Default::default()
    }
}

/// The subscription a classic member sent, with owned partitions as ids.
fn parse_subscription(
    metadata: &Bytes,
    topics: &Topics,
) -> Option<(BTreeSet<String>, BTreeSet<TopicPartition>)> {
    let s = Subscription::decode(metadata.clone()).ok()?;
    let owned = s
        .owned
        .iter()
        .filter_map(|(t, ps)| topics.get(t).map(|(id, _)| (*id, ps)))
        .flat_map(|(id, ps)| ps.iter().map(move |p| (id, *p)))
        .collect();
    Some((s.topics.into_iter().collect(), owned))
}

fn encode_assignment(set: &BTreeSet<TopicPartition>, topics: &Topics) -> Bytes {
    let names: BTreeMap<uuid::Uuid, &str> = topics
        .iter()
        .map(|(name, (id, _))| (*id, name.as_str()))
        .collect();
    let mut a = Assignment::default();
    for (id, p) in set {
        if let Some(name) = names.get(id) {
            a.partitions.entry(name.to_string()).or_default().push(*p);
        }
    }
    a.encode().unwrap_or_default()
}

fn decode_assignment(bytes: &Bytes, topics: &Topics) -> BTreeSet<TopicPartition> {
    let Ok(a) = Assignment::decode(bytes.clone()) else {
        return BTreeSet::new();
    };
    a.iter()
        .filter_map(|(t, p)| topics.get(t).map(|(id, _)| (*id, p)))
        .collect()
}

impl Group {
    /// Whether classic requests go to the consumer-protocol state machine.
    pub fn is_consumer_group(&self) -> bool {
        !self.consumer.members.is_empty()
    }

    /// A ConsumerGroupHeartbeat reached a group with classic members: convert
    /// it if the policy and the members allow, as Kafka's online upgrade does.
    pub fn upgrade(
        &mut self,
        topics: &Topics,
        policy: MigrationPolicy,
    ) -> Result<(), ResponseError> {
        if self.members.is_empty() {
            return Ok(());
        }
        if !policy.upgrade() || self.protocol_type.as_deref() != Some(CONSUMER) {
            return Err(ResponseError::GroupIdNotFound);
        }
        let protocol = self.protocol.clone().unwrap_or_default();
        let mut converted = Vec::new();
        for m in self.members.values() {
            let meta = m.metadata_for(&protocol);
            let (subscribed, _) =
                parse_subscription(&meta, topics).ok_or(ResponseError::GroupIdNotFound)?;
            let assigned = decode_assignment(&m.assignment, topics);
            converted.push(ConsumerMember {
                id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                rack_id: None,
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                subscribed,
                server_assignor: None,
                // The classic generation stays valid for its heartbeats and commits.
                epoch: self.generation,
                previous_epoch: self.generation,
                owned: assigned.clone(),
                assigned,
                session_deadline_ms: m.session_deadline_ms,
                classic: Some(ClassicInfo {
                    protocols: m.protocols.clone(),
                    session_timeout_ms: m.session_timeout_ms,
                }),
                subscribed_regex: None,
                revoke_deadline_ms: None,
            });
        }
        tracing::info!(group = %self.id, members = converted.len(), "classic group upgraded to the consumer protocol");
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            if let Some(mut m) = self.members.remove(&id) {
                m.fail_join(ResponseError::RebalanceInProgress.code());
                m.fail_sync(ResponseError::RebalanceInProgress.code());
            }
        }
        self.statics.clear();
        self.pending.clear();
        let c = &mut self.consumer;
        c.epoch = c.epoch.max(self.generation) + 1;
        for m in converted {
            c.target.insert(m.id.clone(), m.assigned.clone());
            c.members.insert(m.id.clone(), m);
        }
        self.state = GroupState::Empty;
        self.protocol = None;
        self.leader = None;
        Ok(())
    }

    /// After a KIP-848 member left or expired: with only classic members
    /// left, the group becomes classic again and they rebalance.
    pub fn maybe_downgrade(&mut self, now_ms: i64, cfg: GroupConfig) -> bool {
        let c = &self.consumer;
        if c.members.is_empty()
            || c.members.values().any(|m| m.classic.is_none())
            || !cfg.migration.downgrade()
        {
            return false;
        }
        let epoch = c.epoch;
        let members: Vec<ConsumerMember> = std::mem::take(&mut self.consumer.members)
            .into_values()
            .collect();
        self.consumer = Default::default();
        self.protocol_type = Some(CONSUMER.to_string());
        self.generation = self.generation.max(epoch);
        for (seq, m) in members.into_iter().enumerate() {
            let Some(classic) = m.classic else { continue };
            if let Some(iid) = &m.instance_id {
                self.statics.insert(iid.clone(), m.id.clone());
            }
            self.members.insert(
                m.id.clone(),
                Member {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: classic.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: classic.protocols,
                    assignment: Bytes::new(),
                    session_deadline_ms: m.session_deadline_ms,
                    joined_seq: seq as u64,
                    awaiting_join: None,
                    awaiting_sync: None,
                },
            );
        }
        tracing::info!(group = %self.id, members = self.members.len(), "consumer group downgraded to the classic protocol");
        // Every member learns of the rebalance from its next heartbeat; no
        // initial delay, these members are already here.
        self.state = GroupState::Stable;
        self.prepare_rebalance(now_ms, cfg);
        true
    }

    /// JoinGroup of a classic member in a consumer group: answered at once.
    pub fn join_consumer_group(
        &mut self,
        req: JoinRequest,
        topics: &Topics,
        now_ms: i64,
        policy: MigrationPolicy,
    ) -> JoinResult {
        if req.protocol_type != CONSUMER || req.protocols.is_empty() {
            return failed_join(ResponseError::InconsistentGroupProtocol, &req.member_id);
        }
        let Some((subscribed, owned)) = parse_subscription(&req.protocols[0].1, topics) else {
            return failed_join(ResponseError::InconsistentGroupProtocol, &req.member_id);
        };
        let mut id = req.member_id.clone();
        let known = self
            .consumer
            .members
            .get(&id)
            .is_some_and(|m| m.classic.is_some());
        if !known {
            if policy == MigrationPolicy::Disabled {
                // Nothing could ever bring the group back to one protocol.
                return failed_join(ResponseError::InconsistentGroupProtocol, &id);
            }
            if id.is_empty() {
                let prefix = req.instance_id.as_deref().unwrap_or(&req.client_id);
                let prefix = if prefix.is_empty() { "member" } else { prefix };
                id = format!("{prefix}-{}", uuid::Uuid::new_v4());
                if req.require_known_member_id && req.instance_id.is_none() {
                    self.pending
                        .insert(id.clone(), now_ms + req.session_timeout_ms as i64);
                    return failed_join(ResponseError::MemberIdRequired, &id);
                }
            } else if self.pending.remove(&id).is_none() {
                return failed_join(ResponseError::UnknownMemberId, &id);
            }
            if let Some(iid) = &req.instance_id {
                // A static member's new process replaces the old one.
                let old: Vec<String> = self
                    .consumer
                    .members
                    .values()
                    .filter(|m| m.instance_id.as_ref() == Some(iid))
                    .map(|m| m.id.clone())
                    .collect();
                for o in old {
                    self.consumer.members.remove(&o);
                    self.consumer.target.remove(&o);
                }
            }
            self.consumer.members.insert(
                id.clone(),
                ConsumerMember {
                    id: id.clone(),
                    instance_id: req.instance_id.clone(),
                    rack_id: None,
                    client_id: req.client_id.clone(),
                    client_host: req.client_host.clone(),
                    rebalance_timeout_ms: req.rebalance_timeout_ms,
                    subscribed: BTreeSet::new(),
                    server_assignor: None,
                    epoch: 0,
                    previous_epoch: 0,
                    assigned: BTreeSet::new(),
                    owned: BTreeSet::new(),
                    session_deadline_ms: 0,
                    classic: None,
                    subscribed_regex: None,
                    revoke_deadline_ms: None,
                },
            );
        }
        let c = &mut self.consumer;
        // Every join is a new generation for this member.
        c.epoch += 1;
        let Some(m) = c.members.get_mut(&id) else {
            return failed_join(ResponseError::UnknownMemberId, &id);
        };
        m.subscribed = subscribed;
        // Eager clients gave everything up before joining; cooperative ones
        // list what they still hold.
        m.owned = owned;
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.session_deadline_ms = now_ms + req.session_timeout_ms as i64;
        m.classic = Some(ClassicInfo {
            protocols: req.protocols.clone(),
            session_timeout_ms: req.session_timeout_ms,
        });
        c.refresh_target(topics);
        let free = c.free_target(&id);
        let epoch = c.assignment_epoch;
        let Some(m) = c.members.get_mut(&id) else {
            return failed_join(ResponseError::UnknownMemberId, &id);
        };
        m.assigned = free;
        let target = c.target.get(&id).cloned().unwrap_or_default();
        if let Some(m) = c.members.get_mut(&id) {
            m.watch_revocation(&target, now_ms);
        }
        let Some(m) = c.members.get_mut(&id) else {
            return failed_join(ResponseError::UnknownMemberId, &id);
        };
        m.previous_epoch = m.epoch;
        m.epoch = epoch;
        JoinResult {
            error: 0,
            generation: epoch,
            protocol_type: Some(CONSUMER.to_string()),
            protocol_name: Some(req.protocols[0].0.clone()),
            leader: String::new(),
            member_id: id,
            members: Vec::new(),
        }
    }

    /// SyncGroup of a classic member in a consumer group.
    pub fn sync_consumer_group(
        &mut self,
        member_id: &str,
        generation: i32,
        topics: &Topics,
        now_ms: i64,
    ) -> SyncResult {
        let fail = |e: ResponseError| SyncResult {
            error: e.code(),
            ..Default::default()
        };
        let Some(m) = self.consumer.members.get_mut(member_id) else {
            return fail(ResponseError::UnknownMemberId);
        };
        let Some(classic) = &m.classic else {
            return fail(ResponseError::UnknownMemberId);
        };
        if generation != m.epoch {
            return fail(ResponseError::IllegalGeneration);
        }
        m.session_deadline_ms = now_ms + classic.session_timeout_ms as i64;
        let protocol = classic.protocols.first().map(|(n, _)| n.clone());
        m.owned.extend(m.assigned.iter().copied());
        SyncResult {
            error: 0,
            protocol_type: Some(CONSUMER.to_string()),
            protocol_name: protocol,
            assignment: encode_assignment(&m.assigned, topics),
        }
    }

    /// Heartbeat of a classic member in a consumer group.
    pub fn heartbeat_consumer_group(
        &mut self,
        member_id: &str,
        generation: i32,
        now_ms: i64,
    ) -> Result<(), ResponseError> {
        let c = &mut self.consumer;
        let m = c
            .members
            .get_mut(member_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        let classic = m.classic.as_ref().ok_or(ResponseError::UnknownMemberId)?;
        if generation != m.epoch {
            return Err(ResponseError::IllegalGeneration);
        }
        m.session_deadline_ms = now_ms + classic.session_timeout_ms as i64;
        let target = c.target.get(member_id).cloned().unwrap_or_default();
        let m = &c.members[member_id];
        let must_give_up = !m.owned.is_subset(&target);
        let can_take = c.free_target(member_id) != m.assigned;
        if let Some(m) = c.members.get_mut(member_id) {
            m.watch_revocation(&target, now_ms);
        }
        if must_give_up || can_take {
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// LeaveGroup of a classic member in a consumer group; found by
    /// instance id when given.
    pub fn leave_consumer_group(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        let c = &mut self.consumer;
        let id = match instance_id {
            Some(iid) => {
                let m = c
                    .members
                    .values()
                    .find(|m| m.instance_id.as_deref() == Some(iid))
                    .ok_or(ResponseError::UnknownMemberId)?;
                if !member_id.is_empty() && member_id != m.id {
                    return Err(ResponseError::FencedInstanceId);
                }
                m.id.clone()
            }
            None => member_id.to_string(),
        };
        match c.members.get(&id) {
            Some(m) if m.classic.is_some() => {
                c.members.remove(&id);
                c.target.remove(&id);
                c.epoch += 1;
                Ok(())
            }
            _ => Err(ResponseError::UnknownMemberId),
        }
    }
}
