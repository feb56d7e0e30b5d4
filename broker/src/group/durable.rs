//! Group writes are answered only once they are committed: appended on the
//! leader of the group's `__consumer_offsets` partition and below its high
//! watermark (acks=all with the topic's min.insync.replicas), so that a new
//! coordinator elected from the ISR replays every answered write.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;

use crate::replica::{Partition, ReplicaError, ReplicaManager};

/// A group write appended on the leader, not yet known to be committed.
pub struct PendingWrite {
    pub(super) partition: Arc<Partition>,
    pub(super) next_offset: i64,
    pub(super) min_isr: usize,
}

/// The group-API error for a refused or failed group write. Kafka answers
/// NOT_COORDINATOR when the partition is not led here and
/// COORDINATOR_NOT_AVAILABLE when the ISR is too small.
pub fn error_code(e: &ReplicaError) -> ResponseError {
    match e {
        ReplicaError::NotLeader(_) => ResponseError::NotCoordinator,
        ReplicaError::NotEnoughReplicas { .. } => ResponseError::CoordinatorNotAvailable,
        _ => ResponseError::UnknownServerError,
    }
}

/// Waits until `write` is below the high watermark, at most `timeout`
/// (REQUEST_TIMED_OUT then). Holds no lock: the caller released the
/// coordinator's before waiting.
pub async fn wait(
    replicas: &ReplicaManager,
    write: PendingWrite,
    timeout: Duration,
) -> Result<(), ResponseError> {
    let deadline = tokio::time::Instant::now() + timeout;
    // Subscribed before the first check, so no high watermark move is missed.
    let mut progress = replicas.subscribe_appends();
    loop {
        progress.borrow_and_update();
        match write
            .partition
            .acks_all_done(write.next_offset, write.min_isr)
        {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => return Err(error_code(&e)),
        }
        let woke = tokio::time::timeout_at(deadline, progress.changed()).await;
        if !matches!(woke, Ok(Ok(()))) {
            return Err(ResponseError::RequestTimedOut);
        }
    }
}

/// Waits for every write in turn; the first failure is the answer.
pub async fn wait_all(
    replicas: &ReplicaManager,
    writes: Vec<PendingWrite>,
    timeout: Duration,
) -> Result<(), ResponseError> {
    let deadline = tokio::time::Instant::now() + timeout;
    for w in writes {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        wait(replicas, w, left).await?;
    }
    Ok(())
}
