//! [`GroupConsumerConfig`]: Kafka's consumer-group settings, limits unit-last.

use super::assignor::Assignor;
use crate::{ClientError, FetchOptions, OffsetReset};

/// Settings of a [`super::GroupConsumer`].
#[derive(Debug, Clone)]
pub struct GroupConsumerConfig {
    /// `group.id`.
    pub group_id: String,
    /// `group.instance.id`: static membership. A restart within the session
    /// timeout keeps the member's partitions without a rebalance; such a
    /// member does not send LeaveGroup on close (Kafka's behaviour).
    pub group_instance_id: Option<String>,
    /// `partition.assignment.strategy`, in order of preference.
    pub assignors: Vec<Assignor>,
    /// `session.timeout.ms`. 10 s (Kafka's pre-3.0 default): a dead member's
    /// partitions wait this long; shorter risks eviction on a slow network.
    pub session_timeout_ms: i32,
    /// `max.poll.interval.ms` as the JoinGroup rebalance timeout: how long
    /// the coordinator waits for members to rejoin. 60 s; Kafka's 300 s holds
    /// every rebalance that long when a member dies mid-rebalance.
    pub rebalance_timeout_ms: i32,
    /// `heartbeat.interval.ms`; `None` means a third of the session timeout.
    /// Members learn of a rebalance at their next heartbeat.
    pub heartbeat_interval_ms: Option<u64>,
    /// `enable.auto.commit` + `auto.commit.interval.ms`: commit positions at
    /// the start of a poll once this much time has passed, before a rejoin,
    /// and on close. `None`: only explicit commits.
    pub auto_commit_interval_ms: Option<u64>,
    /// `auto.offset.reset`, for partitions with no committed offset and for
    /// positions outside the log.
    pub reset: OffsetReset,
    pub fetch: FetchOptions,
}

impl GroupConsumerConfig {
    /// Defaults for `group_id`: range then roundrobin, manual commits, reset to latest.
    pub fn new(group_id: impl Into<String>) -> Self {
        Self {
            group_id: group_id.into(),
            group_instance_id: None,
            assignors: vec![Assignor::Range, Assignor::RoundRobin],
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 60_000,
            heartbeat_interval_ms: None,
            auto_commit_interval_ms: None,
            reset: OffsetReset::Latest,
            fetch: FetchOptions::default(),
        }
    }

    /// The heartbeat period in ms.
    pub fn heartbeat_ms(&self) -> u64 {
        self.heartbeat_interval_ms
            .unwrap_or((self.session_timeout_ms.max(3) / 3) as u64)
    }

    /// Rejects settings the protocol cannot work with.
    pub fn validate(&self) -> Result<(), ClientError> {
        let bad = |m: &str| Err(ClientError::Config(m.to_owned()));
        if self.group_id.is_empty() {
            return bad("group.id must not be empty");
        }
        if self.assignors.is_empty() {
            return bad("at least one partition assignor is needed");
        }
        if self.session_timeout_ms <= 0 || self.rebalance_timeout_ms <= 0 {
            return bad("session and rebalance timeouts must be positive");
        }
        let hb = self.heartbeat_ms();
        if hb == 0 || hb >= self.session_timeout_ms as u64 {
            return bad("heartbeat.interval.ms must be positive and below session.timeout.ms");
        }
        if self.group_instance_id.as_deref() == Some("") {
            return bad("group.instance.id must not be empty when given");
        }
        if self.auto_commit_interval_ms == Some(0) {
            return bad("auto.commit.interval.ms must be positive");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_heartbeat_is_a_third() {
        let c = GroupConsumerConfig::new("g");
        c.validate().unwrap();
        assert_eq!(c.heartbeat_ms(), 3333);
        let mut bad = c.clone();
        bad.heartbeat_interval_ms = Some(10_000);
        assert!(bad.validate().is_err());
        let mut bad = c.clone();
        bad.assignors.clear();
        assert!(bad.validate().is_err());
        assert!(GroupConsumerConfig::new("").validate().is_err());
    }
}
