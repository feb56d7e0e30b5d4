//! The background heartbeat of one group member.
//!
//! Runs only while the member is in a completed generation (it is stopped
//! before every JoinGroup, which would otherwise sit in front of it on the
//! coordinator connection). It never touches member state: it leaves a
//! [`Signal`] for the consumer's next poll. On REBALANCE_IN_PROGRESS it keeps
//! beating (as Kafka's heartbeat thread does), so a member that is slow to
//! poll keeps its session until the rebalance timeout; any other reason ends it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::rpc::{self, MemberIdentityRef};
use crate::{ClientError, Connection};

const REBALANCE_IN_PROGRESS: i16 = 27;

/// Pause after a heartbeat failed on the transport, before the next try.
const RETRY_BACKOFF_MS: u64 = 100;

/// Why the member must act before its next fetch.
#[derive(Debug)]
pub(crate) enum Signal {
    /// The group is rebalancing or moved on (REBALANCE_IN_PROGRESS,
    /// ILLEGAL_GENERATION): join again with the same member id.
    Rejoin(&'static str),
    /// The coordinator forgot us (UNKNOWN_MEMBER_ID): join as a new member.
    ResetMember,
    /// The coordinator moved or is unreachable: find it again, then join.
    CoordinatorLost,
    /// Nothing to retry (e.g. FENCED_INSTANCE_ID): poll fails with this.
    Fatal(ClientError),
}

/// The slot the heartbeat task writes to and `poll` takes from.
pub(crate) type SignalSlot = Arc<Mutex<Option<Signal>>>;

pub(crate) fn raise(slot: &SignalSlot, signal: Signal) {
    if let Ok(mut s) = slot.lock() {
        s.get_or_insert(signal);
    }
}

pub(crate) fn take(slot: &SignalSlot) -> Option<Signal> {
    slot.lock().ok().and_then(|mut s| s.take())
}

/// Who the heartbeats are for (owned copy for the task).
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

impl Member {
    pub fn as_ref(&self) -> MemberIdentityRef<'_> {
        MemberIdentityRef {
            group_id: &self.group_id,
            generation_id: self.generation_id,
            member_id: &self.member_id,
            group_instance_id: self.group_instance_id.as_deref(),
        }
    }
}

/// A running heartbeat task; dropping it aborts the task.
pub(crate) struct Heartbeat {
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Heartbeat {
    /// Starts heartbeating every `interval`; gives up (coordinator lost) after
    /// `session_timeout` without a successful answer.
    pub fn spawn(
        conn: Arc<Connection>,
        member: Member,
        interval: Duration,
        session_timeout: Duration,
        slot: SignalSlot,
    ) -> Self {
        let (stop, stopped) = oneshot::channel();
        let task = run(conn, member, interval, session_timeout, slot, stopped);
        Self {
            stop: Some(stop),
            handle: Some(tokio::spawn(task)),
        }
    }

    /// Stops the task, letting an in-flight heartbeat finish (within `wait`).
    pub async fn stop(mut self, wait: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            let abort = handle.abort_handle();
            if tokio::time::timeout(wait, handle).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        if let Some(h) = &self.handle {
            h.abort();
        }
    }
}

async fn run(
    conn: Arc<Connection>,
    member: Member,
    interval: Duration,
    session_timeout: Duration,
    slot: SignalSlot,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut last_ok = Instant::now();
    let mut pause = interval;
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = interval;
        let outcome = rpc::heartbeat(&conn, &member.as_ref()).await;
        let signal = match outcome {
            Ok(0) => {
                last_ok = Instant::now();
                continue;
            }
            Ok(REBALANCE_IN_PROGRESS) => {
                // Keep beating: the coordinator counts these toward the
                // session while it waits for the member's next poll to rejoin.
                last_ok = Instant::now();
                raise(&slot, Signal::Rejoin("rebalance in progress"));
                continue;
            }
            Ok(code) => match on_error_code(code, &member) {
                Some(signal) => signal,
                None => continue,
            },
            Err(e) if last_ok.elapsed() < session_timeout => {
                tracing::debug!(group = %member.group_id, error = %e, "heartbeat failed; retrying");
                pause = Duration::from_millis(RETRY_BACKOFF_MS).min(interval);
                continue;
            }
            Err(e) => {
                tracing::warn!(group = %member.group_id, error = %e, "no heartbeat answer within the session timeout");
                Signal::CoordinatorLost
            }
        };
        tracing::debug!(group = %member.group_id, ?signal, "heartbeat stops");
        raise(&slot, signal);
        return;
    }
}

/// What a heartbeat error code means for the member; `None` keeps beating.
fn on_error_code(code: i16, member: &Member) -> Option<Signal> {
    match code {
        22 => Some(Signal::Rejoin("illegal generation")),
        25 => Some(Signal::ResetMember),
        15 | 16 => Some(Signal::CoordinatorLost),
        14 => None, // COORDINATOR_LOAD_IN_PROGRESS: try again next interval
        _ => Some(Signal::Fatal(
            ClientError::from_code(
                code,
                format!("heartbeat in group '{}'", member.group_id),
                None,
            )
            .unwrap_or(ClientError::Closed("group consumer")),
        )),
    }
}
