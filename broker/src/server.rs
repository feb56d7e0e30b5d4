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

/// Accepts connections on `listener` until `shutdown` is cancelled; then waits
/// for open connections to finish the request they are in.
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
    tracker.wait().await;
}
