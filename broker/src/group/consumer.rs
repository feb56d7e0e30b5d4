//! Groups on the KIP-848 consumer protocol: members heartbeat with their
//! subscriptions and owned partitions; the coordinator computes the target
//! assignment and hands partitions over only once their previous owner has
//! given them up. Pure state: time and topic metadata come in as arguments.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kafka_protocol::ResponseError;

use super::assignor::{self, AssignorMember, TopicPartition};

/// One member on the consumer protocol.
#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub subscribed: BTreeSet<String>,
    /// KIP-848 regex subscription, matched against whole topic names.
    pub subscribed_regex: Option<SubscriptionRegex>,
    pub server_assignor: Option<String>,
    pub epoch: i32,
    /// The epoch before the last bump, accepted once in case a response was lost.
    pub previous_epoch: i32,
    /// What the member was last told it owns.
    pub assigned: BTreeSet<TopicPartition>,
    /// What the member last said it owns.
    pub owned: BTreeSet<TopicPartition>,
    pub session_deadline_ms: i64,
    /// Set for a classic-protocol member of this group (see `mixed`).
    pub classic: Option<ClassicInfo>,
    /// A partition is being taken from this member: it must confirm by then
    /// or it is removed (Kafka's rebalance timeout for revocation).
    pub revoke_deadline_ms: Option<i64>,
}

/// A subscription regex as sent and compiled.
#[derive(Debug, Clone)]
pub struct SubscriptionRegex {
    pub source: String,
    matcher: regex::Regex,
}

impl SubscriptionRegex {
    /// Kafka matches the whole topic name (RE2/J `matches()`).
    pub fn parse(source: &str) -> Result<Self, ResponseError> {
        let matcher = regex::Regex::new(&format!("^(?:{source})$"))
            .map_err(|_| ResponseError::InvalidRegularExpression)?;
        Ok(SubscriptionRegex {
            source: source.to_string(),
            matcher,
        })
    }
}

impl ConsumerMember {
    /// Starts (or ends) the revocation clock: while the member still owns a
    /// partition outside its target it has its rebalance timeout to let go.
    pub(super) fn watch_revocation(&mut self, target: &BTreeSet<TopicPartition>, now_ms: i64) {
        if self.owned.is_subset(target) {
            self.revoke_deadline_ms = None;
        } else if self.revoke_deadline_ms.is_none() {
            self.revoke_deadline_ms = Some(now_ms + self.rebalance_timeout_ms.max(0) as i64);
        }
    }

    /// Topics the member subscribes to: its names, and the existing topics
    /// its regex matches (internal topics never match, as in Kafka).
    pub fn topics<'a>(
        &'a self,
        topics: &'a BTreeMap<String, (uuid::Uuid, i32)>,
    ) -> BTreeSet<&'a str> {
        let mut out: BTreeSet<&str> = self.subscribed.iter().map(String::as_str).collect();
        if let Some(r) = &self.subscribed_regex {
            out.extend(
                topics
                    .keys()
                    .filter(|t| !t.starts_with("__") && r.matcher.is_match(t))
                    .map(String::as_str),
            );
        }
        out
    }
}

/// What a classic member of a consumer group sent in its last JoinGroup.
#[derive(Debug, Clone)]
pub struct ClassicInfo {
    pub protocols: Vec<(String, bytes::Bytes)>,
    pub session_timeout_ms: i32,
}

/// State of a group on the consumer protocol.
#[derive(Debug, Default)]
pub struct ConsumerGroup {
    pub epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    pub target: HashMap<String, BTreeSet<TopicPartition>>,
    /// Partition counts of subscribed topics when the target was computed.
    pub topics_seen: BTreeMap<uuid::Uuid, i32>,
}

/// A heartbeat, as the state machine needs it.
pub struct Heartbeat {
    pub member_id: String,
    pub epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub subscribed: Option<Vec<String>>,
    /// None: unchanged; an empty string clears it.
    pub subscribed_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub owned: Option<BTreeSet<TopicPartition>>,
}

/// The answer: epoch, and the assignment when the member must (re)learn it.
#[derive(Debug, Default, PartialEq)]
pub struct HeartbeatReply {
    pub member_id: String,
    pub epoch: i32,
    pub assignment: Option<BTreeSet<TopicPartition>>,
}

/// Knobs from the broker config.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerConfig {
    pub session_timeout_ms: i64,
    pub max_size: usize,
}

const LEAVE: i32 = -1;
const STATIC_LEAVE: i32 = -2;

impl ConsumerGroup {
    /// Handles one heartbeat. `topics` maps topic names to (id, partitions).
    pub fn heartbeat(
        &mut self,
        hb: Heartbeat,
        topics: &BTreeMap<String, (uuid::Uuid, i32)>,
        now_ms: i64,
        cfg: ConsumerConfig,
    ) -> Result<HeartbeatReply, ResponseError> {
        if let Some(a) = &hb.server_assignor {
            if !assignor::is_known(a) {
                return Err(ResponseError::UnsupportedAssignor);
            }
        }
        if hb.epoch == LEAVE || hb.epoch == STATIC_LEAVE {
            if self.members.remove(&hb.member_id).is_some() {
                self.epoch += 1;
            }
            return Ok(HeartbeatReply {
                member_id: hb.member_id,
                epoch: hb.epoch,
                assignment: None,
            });
        }
        let full = hb.epoch == 0 || hb.owned.is_some();
        if hb.epoch == 0 {
            self.join(&hb, now_ms, cfg)?;
        }
        let member = self
            .members
            .get_mut(&hb.member_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        if hb.epoch != 0 && hb.epoch != member.epoch && hb.epoch != member.previous_epoch {
            return Err(ResponseError::FencedMemberEpoch);
        }
        member.session_deadline_ms = now_ms + cfg.session_timeout_ms;
        if hb.rebalance_timeout_ms > 0 {
            member.rebalance_timeout_ms = hb.rebalance_timeout_ms;
        }
        if hb.server_assignor.is_some() {
            member.server_assignor = hb.server_assignor.clone();
        }
        if let Some(owned) = hb.owned {
            member.owned = owned;
        }
        if let Some(r) = hb.subscribed_regex.as_deref() {
            let regex = if r.is_empty() {
                None
            } else {
                Some(SubscriptionRegex::parse(r)?)
            };
            if regex.as_ref().map(|r| &r.source)
                != member.subscribed_regex.as_ref().map(|r| &r.source)
            {
                member.subscribed_regex = regex;
                self.epoch += 1;
            }
        }
        if let Some(subscribed) = hb.subscribed {
            let subscribed: BTreeSet<String> = subscribed.into_iter().collect();
            if subscribed != member.subscribed {
                member.subscribed = subscribed;
                self.epoch += 1;
            }
        }
        self.refresh_target(topics);
        let before = self.members.get(&hb.member_id).map(|m| m.assigned.clone());
        self.reconcile(&hb.member_id, now_ms);
        let m = &self.members[&hb.member_id];
        let changed = before.as_ref() != Some(&m.assigned);
        Ok(HeartbeatReply {
            member_id: m.id.clone(),
            epoch: m.epoch,
            assignment: (full || changed).then(|| m.assigned.clone()),
        })
    }

    fn join(
        &mut self,
        hb: &Heartbeat,
        now_ms: i64,
        cfg: ConsumerConfig,
    ) -> Result<(), ResponseError> {
        if hb.member_id.is_empty() {
            return Err(ResponseError::UnknownMemberId);
        }
        // A static member's new incarnation replaces the old one.
        if let Some(iid) = &hb.instance_id {
            let old: Vec<String> = self
                .members
                .values()
                .filter(|m| m.instance_id.as_ref() == Some(iid) && m.id != hb.member_id)
                .map(|m| m.id.clone())
                .collect();
            for id in old {
                self.members.remove(&id);
                self.target.remove(&id);
            }
        }
        if !self.members.contains_key(&hb.member_id) {
            if self.members.len() >= cfg.max_size {
                return Err(ResponseError::GroupMaxSizeReached);
            }
            let regex = match hb.subscribed_regex.as_deref() {
                Some(r) if !r.is_empty() => Some(SubscriptionRegex::parse(r)?),
                _ => None,
            };
            let subscribed = match (&hb.subscribed, &regex) {
                (Some(names), _) => names.clone(),
                (None, Some(_)) => Vec::new(),
                (None, None) => return Err(ResponseError::InvalidRequest),
            };
            self.members.insert(
                hb.member_id.clone(),
                ConsumerMember {
                    id: hb.member_id.clone(),
                    instance_id: hb.instance_id.clone(),
                    rack_id: hb.rack_id.clone(),
                    client_id: hb.client_id.clone(),
                    client_host: hb.client_host.clone(),
                    rebalance_timeout_ms: hb.rebalance_timeout_ms,
                    subscribed: subscribed.into_iter().collect(),
                    subscribed_regex: regex,
                    server_assignor: hb.server_assignor.clone(),
                    epoch: 0,
                    previous_epoch: 0,
                    assigned: BTreeSet::new(),
                    owned: BTreeSet::new(),
                    session_deadline_ms: now_ms + cfg.session_timeout_ms,
                    classic: None,
                    revoke_deadline_ms: None,
                },
            );
            self.epoch += 1;
        }
        Ok(())
    }

    /// Recomputes the target when membership, subscriptions or partition counts changed.
    pub(super) fn refresh_target(&mut self, topics: &BTreeMap<String, (uuid::Uuid, i32)>) {
        let subscribed: BTreeMap<uuid::Uuid, i32> = self
            .members
            .values()
            .flat_map(|m| m.topics(topics))
            .filter_map(|name| topics.get(name).copied())
            .collect();
        if subscribed != self.topics_seen {
            self.topics_seen = subscribed.clone();
            self.epoch += 1;
        }
        if self.assignment_epoch == self.epoch {
            return;
        }
        let empty = BTreeSet::new();
        let inputs: Vec<AssignorMember<'_>> = self
            .members
            .values()
            .map(|m| AssignorMember {
                id: &m.id,
                topics: m
                    .topics(topics)
                    .into_iter()
                    .filter_map(|n| topics.get(n).map(|t| t.0))
                    .collect(),
                current: self.target.get(&m.id).unwrap_or(&empty),
            })
            .collect();
        let name = self
            .members
            .values()
            .find_map(|m| m.server_assignor.clone())
            .unwrap_or_else(|| assignor::UNIFORM.to_string());
        self.target = assignor::assign(&name, &inputs, &subscribed);
        self.assignment_epoch = self.epoch;
    }

    /// The part of a member's target that no other member holds now.
    pub(super) fn free_target(&self, id: &str) -> BTreeSet<TopicPartition> {
        let held: BTreeSet<TopicPartition> = self
            .members
            .values()
            .filter(|m| m.id != id)
            .flat_map(|m| m.assigned.iter().chain(m.owned.iter()).copied())
            .collect();
        self.target
            .get(id)
            .map(|t| t.difference(&held).copied().collect())
            .unwrap_or_default()
    }

    /// Moves one member toward its target: drop what it must give up at once;
    /// take new partitions only once no other member still holds them.
    fn reconcile(&mut self, id: &str, now_ms: i64) {
        let target = self.target.get(id).cloned().unwrap_or_default();
        let held_by_others: BTreeSet<TopicPartition> = self
            .members
            .values()
            .filter(|m| m.id != id)
            .flat_map(|m| m.assigned.iter().chain(m.owned.iter()).copied())
            .collect();
        let assignment_epoch = self.assignment_epoch;
        let Some(m) = self.members.get_mut(id) else {
            return;
        };
        let mut next: BTreeSet<TopicPartition> =
            m.assigned.intersection(&target).copied().collect();
        let revoking = next.len() < m.assigned.len();
        if !revoking {
            next.extend(
                target
                    .difference(&m.assigned)
                    .filter(|tp| !held_by_others.contains(tp)),
            );
        }
        m.assigned = next;
        m.watch_revocation(&target, now_ms);
        // As Kafka: the member moves to the new epoch once it has nothing
        // left to give up; partitions other members still hold come later.
        if !revoking && m.epoch != assignment_epoch {
            m.previous_epoch = m.epoch;
            m.epoch = assignment_epoch;
        }
    }

    /// Removes members whose session expired or that did not give up a
    /// revoked partition within their rebalance timeout; returns whether any did.
    pub fn expire(&mut self, now_ms: i64) -> bool {
        let before = self.members.len();
        self.members.retain(|_, m| {
            let stuck = m.revoke_deadline_ms.is_some_and(|d| d <= now_ms);
            if stuck {
                tracing::info!(member = %m.id, "member did not revoke its partitions within the rebalance timeout");
            }
            m.session_deadline_ms > now_ms && !stuck
        });
        let expired = self.members.len() != before;
        if expired {
            self.epoch += 1;
        }
        expired
    }

    /// Kafka's names: Empty, Assigning, Reconciling, Stable.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.assignment_epoch != self.epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.epoch != self.assignment_epoch)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// OffsetCommit's membership check for this protocol.
    pub fn check_commit(&self, member_id: &str, epoch: i32) -> Result<(), ResponseError> {
        let m = self
            .members
            .get(member_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        if epoch != m.epoch {
            // A classic member's epoch is its generation.
            return Err(if m.classic.is_some() {
                ResponseError::IllegalGeneration
            } else {
                ResponseError::StaleMemberEpoch
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: ConsumerConfig = ConsumerConfig {
        session_timeout_ms: 45_000,
        max_size: 100,
    };

    fn hb(id: &str, epoch: i32, owned: Option<&BTreeSet<TopicPartition>>) -> Heartbeat {
        Heartbeat {
            member_id: id.into(),
            epoch,
            instance_id: None,
            rack_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            rebalance_timeout_ms: 30_000,
            subscribed: (epoch == 0).then(|| vec!["t".to_string()]),
            subscribed_regex: None,
            server_assignor: None,
            owned: owned.cloned(),
        }
    }

    #[test]
    fn partitions_move_only_after_the_old_owner_gives_them_up() {
        let t = uuid::Uuid::new_v4();
        let topics: BTreeMap<_, _> = [("t".to_string(), (t, 4))].into_iter().collect();
        let mut g = ConsumerGroup::default();
        let a = g.heartbeat(hb("a", 0, None), &topics, 0, CFG).unwrap();
        assert_eq!(a.assignment.as_ref().map(BTreeSet::len), Some(4));
        let a_owned = a.assignment.clone().unwrap();
        assert!(a.epoch > 0);
        // b joins: it gets nothing until a has revoked.
        let b = g.heartbeat(hb("b", 0, None), &topics, 1, CFG).unwrap();
        assert_eq!(b.assignment, Some(BTreeSet::new()));
        let a2 = g
            .heartbeat(hb("a", a.epoch, Some(&a_owned)), &topics, 2, CFG)
            .unwrap();
        let a_kept = a2.assignment.clone().unwrap();
        assert_eq!(a_kept.len(), 2, "a is told to give up two partitions");
        // a confirms (owned shrinks), then b can take them.
        let a3 = g
            .heartbeat(hb("a", a2.epoch, Some(&a_kept)), &topics, 3, CFG)
            .unwrap();
        let b2 = g
            .heartbeat(hb("b", b.epoch, Some(&BTreeSet::new())), &topics, 4, CFG)
            .unwrap();
        let b_got = b2.assignment.clone().unwrap();
        assert_eq!(b_got.len(), 2);
        assert!(b_got.is_disjoint(&a_kept));
        assert_eq!(a3.epoch, b2.epoch, "both converge on the group epoch");
        assert_eq!(g.state_name(), "Stable");
    }

    #[test]
    fn leave_expiry_and_fencing() {
        let t = uuid::Uuid::new_v4();
        let topics: BTreeMap<_, _> = [("t".to_string(), (t, 2))].into_iter().collect();
        let mut g = ConsumerGroup::default();
        let a = g.heartbeat(hb("a", 0, None), &topics, 0, CFG).unwrap();
        assert_eq!(
            g.heartbeat(hb("a", a.epoch + 5, None), &topics, 1, CFG),
            Err(ResponseError::FencedMemberEpoch)
        );
        assert_eq!(
            g.heartbeat(hb("zz", 3, None), &topics, 1, CFG),
            Err(ResponseError::UnknownMemberId)
        );
        assert!(g.expire(50_000));
        assert_eq!(g.state_name(), "Empty");
        g.heartbeat(hb("b", 0, None), &topics, 60_000, CFG).unwrap();
        let left = g
            .heartbeat(hb("b", LEAVE, None), &topics, 60_001, CFG)
            .unwrap();
        assert_eq!(left.epoch, LEAVE);
        assert!(g.members.is_empty());
    }

    #[test]
    fn a_member_that_never_revokes_is_removed_after_its_rebalance_timeout() {
        let t = uuid::Uuid::new_v4();
        let topics: BTreeMap<_, _> = [("t".to_string(), (t, 2))].into_iter().collect();
        let mut g = ConsumerGroup::default();
        let a = g.heartbeat(hb("a", 0, None), &topics, 0, CFG).unwrap();
        let owned = a.assignment.unwrap();
        g.heartbeat(hb("a", a.epoch, Some(&owned)), &topics, 1, CFG)
            .unwrap();
        g.heartbeat(hb("b", 0, None), &topics, 2, CFG).unwrap();
        // a is told to give one up but keeps reporting both.
        g.heartbeat(hb("a", a.epoch, Some(&owned)), &topics, 3, CFG)
            .unwrap();
        assert!(!g.expire(3 + 29_999), "within the rebalance timeout");
        g.heartbeat(hb("a", a.epoch, Some(&owned)), &topics, 20_000, CFG)
            .unwrap();
        assert!(g.expire(3 + 30_000), "stuck in revocation");
        assert!(!g.members.contains_key("a") && g.members.contains_key("b"));
    }

    #[test]
    fn regex_subscriptions_match_whole_names_and_bad_ones_are_refused() {
        let (x, y) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let topics: BTreeMap<_, _> = [
            ("orders".to_string(), (x, 1)),
            ("orders-eu".to_string(), (y, 1)),
            ("__consumer_offsets".to_string(), (uuid::Uuid::new_v4(), 1)),
        ]
        .into_iter()
        .collect();
        let mut g = ConsumerGroup::default();
        let mut h = hb("a", 0, None);
        h.subscribed = None;
        h.subscribed_regex = Some("orders-.*|__.*".into());
        let r = g.heartbeat(h, &topics, 0, CFG).unwrap();
        assert_eq!(r.assignment, Some([(y, 0)].into_iter().collect()));
        let mut bad = hb("b", 0, None);
        bad.subscribed_regex = Some("(unclosed".into());
        assert_eq!(
            g.heartbeat(bad, &topics, 1, CFG),
            Err(ResponseError::InvalidRegularExpression)
        );
    }
}
