//! [`GroupConsumer`]: a member of a classic consumer group.
//!
//! `poll` drives everything on the caller's task: it (re)joins when needed
//! (FindCoordinator, JoinGroup with the MEMBER_ID_REQUIRED round trip, the
//! leader's assignment, SyncGroup), starts each assigned partition at its
//! committed offset or per `auto.offset.reset`, auto-commits if asked, then
//! fetches through a plain [`Consumer`]. A background task heartbeats and
//! leaves a signal when the group moves on. The member keeps its own
//! coordinator connection: the broker answers a connection's requests in
//! order, and JoinGroup waits for the whole rebalance.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::JoinGroupResponse;

use super::assignor::{Assignor, MemberSubscription};
use super::config::GroupConsumerConfig;
use super::heartbeat::{self, Heartbeat, Member, Signal, SignalSlot};
use super::protocol::{Assignment, Subscription};
use super::rpc::{self, JoinParams, Offsets};
use crate::client::RETRY_BACKOFF_MS;
use crate::{
    Client, ClientError, Connection, Consumer, ConsumerConfig, ConsumerRecord, OffsetReset,
    StartOffset,
};

/// JoinGroup/SyncGroup rounds one rejoin may take before giving up (each
/// retriable failure costs one, with a short backoff between).
const JOIN_ATTEMPTS_MAX: u32 = 20;
/// Extra time over the rebalance timeout for a JoinGroup answer (Kafka's 5 s).
const JOIN_TIMEOUT_SLACK_MS: u64 = 5_000;

const REBALANCE_IN_PROGRESS: i16 = 27;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const MEMBER_ID_REQUIRED: i16 = 79;

/// What the caller should do after a failed JoinGroup/SyncGroup round.
enum Retry {
    /// Join again as is.
    Again,
    /// Join again as a new member (the coordinator forgot our id).
    AsNewMember,
    /// Find the coordinator again first.
    Rediscover,
}

/// Maps a group error code to a retry, or `None` when it is fatal.
fn retry_for(code: i16) -> Option<Retry> {
    match code {
        REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION | 14 => Some(Retry::Again),
        UNKNOWN_MEMBER_ID => Some(Retry::AsNewMember),
        15 | 16 => Some(Retry::Rediscover),
        _ => None,
    }
}

/// A consumer-group member over subscribed topics.
pub struct GroupConsumer {
    client: Arc<Client>,
    config: GroupConsumerConfig,
    topics: Vec<String>,
    fetcher: Consumer,
    coordinator: Option<Arc<Connection>>,
    member_id: String,
    generation_id: i32,
    protocol: String,
    assignment: Assignment,
    /// Set until positions of the current assignment are known.
    positions_pending: bool,
    needs_join: bool,
    heartbeat: Option<Heartbeat>,
    signal: SignalSlot,
    last_commit: Instant,
    closed: bool,
}

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("group", &self.config.group_id)
            .field("member_id", &self.member_id)
            .field("generation_id", &self.generation_id)
            .finish()
    }
}

impl GroupConsumer {
    /// A member of `config.group_id`; nothing is sent until the first poll.
    pub fn new(client: Arc<Client>, config: GroupConsumerConfig) -> Result<Self, ClientError> {
        config.validate()?;
        let fetcher = Consumer::new(
            Arc::clone(&client),
            ConsumerConfig {
                fetch: config.fetch,
                reset: config.reset,
            },
        );
        Ok(Self {
            client,
            config,
            topics: Vec::new(),
            fetcher,
            coordinator: None,
            member_id: String::new(),
            generation_id: -1,
            protocol: String::new(),
            assignment: Assignment::default(),
            positions_pending: false,
            needs_join: false,
            heartbeat: None,
            signal: Arc::new(Mutex::new(None)),
            last_commit: Instant::now(),
            closed: false,
        })
    }

    /// Subscribes to `topics` (replacing any earlier subscription); the next
    /// poll joins or rejoins the group.
    pub fn subscribe(&mut self, topics: &[&str]) -> Result<(), ClientError> {
        if topics.is_empty() {
            return Err(ClientError::Config(
                "subscribe to at least one topic".into(),
            ));
        }
        let mut topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        topics.sort();
        topics.dedup();
        self.topics = topics;
        self.needs_join = true;
        Ok(())
    }

    /// The partitions of the current generation.
    pub fn assignment(&self) -> &Assignment {
        &self.assignment
    }

    /// The current generation, -1 before the first join.
    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    /// The id the coordinator gave this member ("" before the first join).
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The assignor the group chose ("" before the first join).
    pub fn protocol(&self) -> &str {
        &self.protocol
    }

    /// Next offset to read per assigned partition.
    pub fn positions(&self) -> Offsets {
        self.fetcher
            .positions()
            .map(|(t, p, o)| ((t.to_owned(), p), o))
            .collect()
    }

    /// Moves the position of an assigned partition.
    pub fn seek(&mut self, topic: &str, partition: i32, offset: i64) {
        self.fetcher.seek(topic, partition, offset);
    }

    /// Joins if needed, then one round of fetches. With no partitions
    /// assigned it waits `max_wait_ms` and returns nothing.
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>, ClientError> {
        if self.closed {
            return Err(ClientError::Closed("group consumer"));
        }
        if self.topics.is_empty() {
            return Err(ClientError::Config("not subscribed to any topic".into()));
        }
        self.ensure_active().await?;
        self.maybe_auto_commit().await;
        if self.assignment.is_empty() || self.needs_join || self.positions_pending {
            let wait = self.config.fetch.max_wait_ms.max(0) as u64;
            tokio::time::sleep(Duration::from_millis(wait)).await;
            return Ok(Vec::new());
        }
        self.fetcher.poll().await
    }

    /// Commits the position of every assigned partition and waits for it.
    pub async fn commit(&mut self) -> Result<(), ClientError> {
        let positions = self.positions();
        self.commit_offsets(&positions).await
    }

    /// Commits the given next-offsets-to-read. Fails (and schedules a rejoin)
    /// when the group has moved to another generation, like Kafka's
    /// `CommitFailedException`.
    pub async fn commit_offsets(&mut self, offsets: &Offsets) -> Result<(), ClientError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let Some(conn) = self.live_coordinator() else {
            self.needs_join = true;
            return Err(ClientError::Closed("group membership (rejoin pending)"));
        };
        let member = self.member();
        let result = rpc::commit_offsets(&conn, &member.as_ref(), offsets).await;
        match result.as_ref().map_err(ClientError::kafka_code) {
            Ok(()) => self.last_commit = Instant::now(),
            Err(Some(UNKNOWN_MEMBER_ID)) => self.reset_member(),
            Err(Some(REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION)) => self.needs_join = true,
            Err(Some(15 | 16)) | Err(None) => self.coordinator = None,
            Err(Some(_)) => {}
        }
        result
    }

    /// Ends membership: stops heartbeats, commits when auto-commit is on, and
    /// leaves the group unless the member is static (Kafka's behaviour: a
    /// static member keeps its partitions until its session times out).
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.stop_heartbeat().await;
        if self.config.auto_commit_interval_ms.is_some() && !self.member_id.is_empty() {
            if let Err(e) = self.commit().await {
                tracing::warn!(group = %self.config.group_id, error = %e, "commit on close failed");
            }
        }
        self.closed = true;
        if self.config.group_instance_id.is_some() {
            return Ok(());
        }
        self.leave_group("the consumer is closing").await
    }

    /// Sends LeaveGroup now (also for a static member) and forgets the
    /// member id; a later poll joins as a new member.
    pub async fn leave_group(&mut self, reason: &str) -> Result<(), ClientError> {
        self.stop_heartbeat().await;
        let Some(conn) = self
            .live_coordinator()
            .filter(|_| !self.member_id.is_empty())
        else {
            return Ok(());
        };
        let member = self.member();
        let result = rpc::leave_group(&conn, &member.as_ref(), reason).await;
        self.reset_member();
        result
    }

    fn member(&self) -> Member {
        Member {
            group_id: self.config.group_id.clone(),
            generation_id: self.generation_id,
            member_id: self.member_id.clone(),
            group_instance_id: self.config.group_instance_id.clone(),
        }
    }

    fn live_coordinator(&self) -> Option<Arc<Connection>> {
        self.coordinator
            .as_ref()
            .filter(|c| !c.is_closed())
            .cloned()
    }

    fn reset_member(&mut self) {
        self.member_id.clear();
        self.generation_id = -1;
        self.needs_join = true;
    }

    async fn stop_heartbeat(&mut self) {
        if let Some(hb) = self.heartbeat.take() {
            let wait = self.client.config().connection.request_timeout_ms;
            hb.stop(Duration::from_millis(wait)).await;
        }
    }

    /// Applies what the heartbeat reported, then rejoins and positions as needed.
    async fn ensure_active(&mut self) -> Result<(), ClientError> {
        match heartbeat::take(&self.signal) {
            None => {}
            Some(Signal::Rejoin(why)) => {
                tracing::info!(group = %self.config.group_id, why, "rejoining");
                self.needs_join = true;
            }
            Some(Signal::ResetMember) => self.reset_member(),
            Some(Signal::CoordinatorLost) => {
                self.coordinator = None;
                self.needs_join = true;
            }
            Some(Signal::Fatal(e)) => {
                self.needs_join = true;
                return Err(e);
            }
        }
        if self.needs_join || self.live_coordinator().is_none() {
            self.rejoin().await?;
        }
        if self.positions_pending {
            match self.start_positions().await {
                Ok(()) => {}
                // Coordinator loading or moving, leader elections: the next poll retries.
                Err(e) if e.is_retriable() => {
                    tracing::debug!(group = %self.config.group_id, error = %e, "positions not known yet");
                    if matches!(e.kafka_code(), None | Some(15 | 16)) {
                        self.coordinator = None;
                        self.needs_join = true;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn rejoin(&mut self) -> Result<(), ClientError> {
        self.stop_heartbeat().await;
        // The join supersedes whatever the stopped heartbeat reported last; a
        // stale "rebalance in progress" would otherwise cause one more rebalance.
        let _ = heartbeat::take(&self.signal);
        if self.config.auto_commit_interval_ms.is_some() && self.generation_id >= 0 {
            self.commit_quietly("before rejoining").await;
        }
        self.needs_join = true;
        let mut last_error = None;
        for attempt in 0..JOIN_ATTEMPTS_MAX {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
            }
            match self.join_round().await {
                Ok(None) => {
                    self.needs_join = false;
                    self.positions_pending = true;
                    self.start_heartbeat();
                    return Ok(());
                }
                Ok(Some(e)) => {
                    tracing::debug!(group = %self.config.group_id, error = %e, attempt, "join round failed; retrying");
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or(ClientError::Closed("group membership")))
    }

    /// One FindCoordinator/JoinGroup/SyncGroup round: `Ok(None)` joined,
    /// `Ok(Some(e))` retriable, `Err` fatal.
    async fn join_round(&mut self) -> Result<Option<ClientError>, ClientError> {
        let conn = match self.connect_coordinator().await {
            Ok(c) => c,
            Err(e) if e.is_retriable() => return Ok(Some(e)),
            Err(e) => return Err(e),
        };
        let joined = match self.send_join(&conn).await {
            Ok(r) => r,
            Err(e) => return self.classify(e),
        };
        self.generation_id = joined.generation_id;
        self.member_id = joined.member_id.to_string();
        let protocol = joined.protocol_name.as_ref().map(|p| p.to_string());
        self.protocol = protocol.unwrap_or_default();
        let assignments = if joined.leader == joined.member_id && !joined.skip_assignment {
            self.lead(&joined).await?
        } else {
            Vec::new()
        };
        let member = self.member();
        let timeout = self.join_timeout_ms();
        let protocol = ("consumer", self.protocol.as_str());
        let (code, bytes) =
            match rpc::sync_group(&conn, &member.as_ref(), protocol, assignments, timeout).await {
                Ok(r) => r,
                Err(e) => return self.classify(e),
            };
        if code != 0 {
            let context = format!("sync group '{}'", self.config.group_id);
            let e =
                ClientError::from_code(code, context, None).unwrap_or(ClientError::Closed("sync"));
            return self.classify(e);
        }
        self.assignment = Assignment::decode(bytes)?;
        tracing::info!(group = %self.config.group_id, generation = self.generation_id, member = %self.member_id, partitions = self.assignment.len(), "joined");
        Ok(None)
    }

    /// Sorts a failed round's error into retry (adjusting state) or fatal.
    fn classify(&mut self, e: ClientError) -> Result<Option<ClientError>, ClientError> {
        let retry = match e.kafka_code() {
            Some(code) => retry_for(code),
            None if e.is_retriable() => Some(Retry::Rediscover),
            None => None,
        };
        match retry {
            Some(Retry::Again) => {}
            Some(Retry::AsNewMember) => self.member_id.clear(),
            Some(Retry::Rediscover) => self.coordinator = None,
            None => return Err(e),
        }
        Ok(Some(e))
    }

    async fn connect_coordinator(&mut self) -> Result<Arc<Connection>, ClientError> {
        if let Some(conn) = self.live_coordinator() {
            return Ok(conn);
        }
        let info = self.client.find_coordinator(&self.config.group_id).await?;
        let config = self.client.config().connection.clone();
        let conn = Arc::new(Connection::connect(&info.addr(), config).await?);
        tracing::debug!(group = %self.config.group_id, coordinator = info.node_id, "coordinator connected");
        self.coordinator = Some(Arc::clone(&conn));
        Ok(conn)
    }

    fn join_timeout_ms(&self) -> u64 {
        self.config.rebalance_timeout_ms as u64 + JOIN_TIMEOUT_SLACK_MS
    }

    /// JoinGroup, answering MEMBER_ID_REQUIRED once with the id it hands out.
    async fn send_join(&mut self, conn: &Connection) -> Result<JoinGroupResponse, ClientError> {
        let metadata = Subscription {
            topics: self.topics.clone(),
            owned: self.assignment.partitions.clone(),
            generation_id: self.generation_id,
            rack_id: None,
            user_data: None,
        }
        .encode()?;
        let params = JoinParams {
            group_id: &self.config.group_id,
            group_instance_id: self.config.group_instance_id.as_deref(),
            session_timeout_ms: self.config.session_timeout_ms,
            rebalance_timeout_ms: self.config.rebalance_timeout_ms,
            protocol_type: "consumer",
            protocols: self
                .config
                .assignors
                .iter()
                .map(|a| (a.name(), metadata.clone()))
                .collect(),
            reason: Some("joining or rejoining"),
        };
        let timeout = self.join_timeout_ms();
        let context = format!("join group '{}'", self.config.group_id);
        let mut response = rpc::join_group(conn, &params, &self.member_id, timeout).await?;
        if response.error_code == MEMBER_ID_REQUIRED {
            self.member_id = response.member_id.to_string();
            response = rpc::join_group(conn, &params, &self.member_id, timeout).await?;
        }
        ClientError::check(response.error_code, context, None)?;
        Ok(response)
    }

    /// The leader's part: decode subscriptions, run the chosen assignor.
    async fn lead(&self, joined: &JoinGroupResponse) -> Result<Vec<(String, Bytes)>, ClientError> {
        let assignor = Assignor::from_name(&self.protocol).ok_or_else(|| {
            ClientError::GroupProtocol(format!(
                "the group chose unknown assignor '{}'",
                self.protocol
            ))
        })?;
        let mut members = Vec::with_capacity(joined.members.len());
        for m in &joined.members {
            let topics = match Subscription::decode(m.metadata.clone()) {
                Ok(s) => s.topics,
                Err(e) => {
                    tracing::warn!(member = %m.member_id, error = %e, "undecodable subscription; assigning nothing");
                    Vec::new()
                }
            };
            members.push(MemberSubscription {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
                topics,
            });
        }
        let mut counts = BTreeMap::new();
        for topic in members.iter().flat_map(|m| m.topics.iter()) {
            if counts.contains_key(topic) {
                continue;
            }
            match self.client.topic_metadata(topic).await {
                Ok(t) => {
                    counts.insert(topic.clone(), t.partitions.len() as i32);
                }
                Err(ClientError::UnknownTopic(_)) => {
                    tracing::warn!(%topic, "subscribed topic does not exist; skipped");
                }
                Err(e) => return Err(e),
            }
        }
        let plan = assignor.assign(&members, &counts);
        tracing::debug!(group = %self.config.group_id, ?plan, "assignment computed");
        plan.into_iter()
            .map(|(member, partitions)| {
                let bytes = Assignment {
                    partitions,
                    user_data: None,
                }
                .encode()?;
                Ok((member, bytes))
            })
            .collect()
    }

    fn start_heartbeat(&mut self) {
        let Some(conn) = self.live_coordinator() else {
            return;
        };
        self.heartbeat = Some(Heartbeat::spawn(
            conn,
            self.member(),
            Duration::from_millis(self.config.heartbeat_ms()),
            Duration::from_millis(self.config.session_timeout_ms as u64),
            Arc::clone(&self.signal),
        ));
    }

    /// Positions every assigned partition at its committed offset, or per
    /// the reset policy when nothing is committed.
    async fn start_positions(&mut self) -> Result<(), ClientError> {
        self.fetcher.unassign_all();
        let conn = self
            .live_coordinator()
            .ok_or(ClientError::Closed("group membership"))?;
        let committed = rpc::fetch_offsets(
            &conn,
            &self.config.group_id,
            Some(&self.assignment.partitions),
        )
        .await?;
        let assigned: Vec<(String, i32)> = self
            .assignment
            .iter()
            .map(|(t, p)| (t.to_owned(), p))
            .collect();
        for (topic, partition) in assigned {
            let start = match committed.get(&(topic.clone(), partition)) {
                Some(&offset) => StartOffset::Offset(offset),
                None => match self.config.reset {
                    OffsetReset::Earliest => StartOffset::Earliest,
                    OffsetReset::Latest => StartOffset::Latest,
                    OffsetReset::None => return Err(ClientError::NoOffset { topic, partition }),
                },
            };
            self.fetcher.assign(&topic, partition, start).await?;
        }
        self.positions_pending = false;
        self.last_commit = Instant::now();
        Ok(())
    }

    async fn maybe_auto_commit(&mut self) {
        let Some(every) = self.config.auto_commit_interval_ms else {
            return;
        };
        if self.last_commit.elapsed() >= Duration::from_millis(every) && !self.positions_pending {
            self.commit_quietly("auto-commit").await;
        }
    }

    async fn commit_quietly(&mut self, why: &'static str) {
        if let Err(e) = self.commit().await {
            tracing::warn!(group = %self.config.group_id, why, error = %e, "commit failed");
        }
    }
}
