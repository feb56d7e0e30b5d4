//! The CONTROLLER listener: one task per connection, one request at a time
//! per connection, connections capped.

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::wire::{self, Request, Response};
use super::{leader, Controller};

/// Peers use a handful of connections each (Raft replication, forwarding);
/// more than this is a misconfiguration or an attack.
const CONNECTIONS_MAX: usize = 256;

/// Accepts connections until `shutdown`.
pub async fn serve(c: Arc<Controller>, listener: TcpListener, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let c = c.clone();
                let shutdown = shutdown.clone();
                c.tracker.clone().spawn(async move {
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        r = connection(&c, stream) => if let Err(e) = r {
                            tracing::debug!(%peer, error = %e, "controller connection closed");
                        },
                    }
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "controller listener accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(c: &Controller, mut stream: TcpStream) -> Result<(), wire::WireError> {
    while let Some(req) = wire::read_frame::<Request>(&mut stream).await? {
        let resp = handle(c, req).await;
        wire::write_frame(&mut stream, &resp).await?;
    }
    Ok(())
}

/// Answers one request.
async fn handle(c: &Controller, req: Request) -> Response {
    match req {
        Request::AppendEntries(rpc) => Response::AppendEntries(c.raft.append_entries(rpc).await),
        Request::Vote(rpc) => Response::Vote(c.raft.vote(rpc).await),
        Request::InstallSnapshot(rpc) => {
            Response::InstallSnapshot(c.raft.install_snapshot(rpc).await)
        }
        Request::Propose(r) => Response::Propose(leader::propose(c, r).await),
        Request::Heartbeat(hb) => Response::Heartbeat(leader::heartbeat(c, hb).await),
        Request::Join { id, addr } => Response::Join(leader::join(c, id, addr).await),
        Request::Status => Response::Status(leader::status(c)),
    }
}
