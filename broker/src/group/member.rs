//! A member of a classic consumer group and the answers it may be waiting for.

use bytes::Bytes;
use tokio::sync::oneshot;

/// The JoinGroup answer a member receives when its rebalance completes.
#[derive(Debug, Clone, Default)]
pub struct JoinResult {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// (member id, instance id, metadata): only the leader gets the list.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

/// The SyncGroup answer: the member's assignment.
#[derive(Debug, Clone, Default)]
pub struct SyncResult {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

/// One member and its session.
#[derive(Debug)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// (protocol name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    /// The member is dead if no heartbeat arrives by then.
    pub session_deadline_ms: i64,
    /// Orders members by first join; the oldest becomes leader.
    pub joined_seq: u64,
    pub awaiting_join: Option<oneshot::Sender<JoinResult>>,
    pub awaiting_sync: Option<oneshot::Sender<SyncResult>>,
}

impl Member {
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(n, _)| n == protocol)
    }

    pub fn refresh_session(&mut self, now_ms: i64) {
        self.session_deadline_ms = now_ms + self.session_timeout_ms as i64;
    }

    /// Ends a wait on JoinGroup with an error (e.g. fenced or removed).
    pub fn fail_join(&mut self, error: i16) {
        if let Some(tx) = self.awaiting_join.take() {
            let _ = tx.send(JoinResult {
                error,
                member_id: self.id.clone(),
                generation: -1,
                ..Default::default()
            });
        }
    }

    pub fn fail_sync(&mut self, error: i16) {
        if let Some(tx) = self.awaiting_sync.take() {
            let _ = tx.send(SyncResult {
                error,
                ..Default::default()
            });
        }
    }
}
