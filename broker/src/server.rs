//! The TCP listener: accepts clients up to `max.connections`, runs one task
//! per connection, and drains them on shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connection;
use crate::Broker;

/// How long a shutdown waits for connections to finish the request they are
/// in. A produce waiting for acks=all may wait its whole timeout (30 s by
/// default in clients); a process manager's kill should not beat us to it.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on `listener` until `shutdown` is cancelled; then waits
/// (at most `DRAIN_TIMEOUT`) for open connections to finish the request they
/// are in.
pub async fn serve(broker: Arc<Broker>, listener: TcpListener, shutdown: CancellationToken) {
    let permits = Arc::new(Semaphore::new(broker.config.connections_max));
    let tracker = TaskTracker::new();
    loop {
        // Wait for a free slot before accepting: excess clients queue in the
        // kernel backlog instead of costing us a task and buffers each.
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let broker = broker.clone();
                let shutdown = shutdown.clone();
                tracker.spawn(async move {
                    connection::run(broker, stream, peer, shutdown).await;
                    drop(permit);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning or dying.
                tracing::warn!(error = %e, "accept failed; retrying shortly");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    tracker.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = tracker.len(),
            "requests still in flight after {DRAIN_TIMEOUT:?}; closing their connections"
        );
    }
}
