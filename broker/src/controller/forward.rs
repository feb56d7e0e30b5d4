//! Calls that must reach the leader (proposals, heartbeats, joins), from any
//! node: handled in place when this node leads, otherwise sent to the leader
//! it knows (or to the configured voters until one names the leader), with
//! bounded retries and backoff under one overall deadline.

use std::sync::Mutex;
use std::time::Duration;

use tokio::net::TcpStream;

use super::types::{NodeId, Refusal};
use super::wire::{self, BrokerHeartbeat, HeartbeatReply, NotDone, Request, Response};
use super::{leader, Controller, PROPOSE_TIMEOUT};
use crate::metadata::{MetadataError, MetadataRecord};

/// A connect to a peer that takes longer than this counts as a failure.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// First and largest pause between attempts while there is no leader.
const BACKOFF_MS_MIN: u64 = 25;
const BACKOFF_MS_MAX: u64 = 400;
/// Idle connections kept for forwarding (per process, all peers together).
const POOL_IDLE_MAX: usize = 8;

/// Idle connections to peers, reused by later calls.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<Vec<(String, TcpStream)>>,
}

impl Pool {
    fn take(&self, addr: &str) -> Option<TcpStream> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let i = idle.iter().position(|(a, _)| a == addr)?;
        Some(idle.swap_remove(i).1)
    }

    fn put(&self, addr: String, s: TcpStream) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < POOL_IDLE_MAX {
            idle.push((addr, s));
        }
    }
}

/// Where to send the next attempt.
enum Target {
    Local,
    Remote(String),
    /// No leader known: wait and look again.
    Unknown,
}

fn target(c: &Controller, attempt: usize) -> Target {
    let m = c.raft.metrics().borrow().clone();
    match m.current_leader {
        Some(l) if l == c.id => Target::Local,
        Some(l) => match m.membership_config.membership().get_node(&l) {
            Some(n) => Target::Remote(n.addr.clone()),
            None => Target::Unknown,
        },
        // Before it knows the membership (a learner not yet joined) a node
        // asks the configured voters in turn; they name the leader.
        None if !c.voter_addrs.is_empty()
            && m.membership_config.membership().nodes().count() == 0 =>
        {
            Target::Remote(c.voter_addrs[attempt % c.voter_addrs.len()].clone())
        }
        None => Target::Unknown,
    }
}

async fn call_remote(
    c: &Controller,
    addr: &str,
    req: &Request,
) -> Result<Response, wire::WireError> {
    let mut s = match c.pool.take(addr) {
        Some(s) => s,
        None => wire::connect(addr, CONNECT_TIMEOUT).await?,
    };
    let resp = wire::call(&mut s, req, call_timeout(c, req)).await?;
    c.pool.put(addr.to_string(), s);
    Ok(resp)
}

/// A heartbeat must not wait on a leader that may be gone (a blackholed
/// connection would stall it past the session timeout, and the new leader
/// would fence a live broker): it gives up early and tries the next target.
fn call_timeout(c: &Controller, req: &Request) -> Duration {
    match req {
        Request::Heartbeat(_) => (c.session_timeout / 4).max(Duration::from_millis(100)),
        _ => PROPOSE_TIMEOUT,
    }
}

async fn call_local(c: &Controller, req: &Request) -> Response {
    match req {
        Request::Propose(r) => Response::Propose(leader::propose(c, r.clone()).await),
        Request::Heartbeat(hb) => Response::Heartbeat(leader::heartbeat(c, hb.clone()).await),
        Request::Join { id, addr } => Response::Join(leader::join(c, *id, addr.clone()).await),
        Request::Status => Response::Status(leader::status(c)),
        other => Response::Join(Err(NotDone::Refused(Refusal::Other(format!(
            "not a leader request: {other:?}"
        ))))),
    }
}

/// Sends `req` to the leader until it is done or refused, or the deadline.
/// `pick` takes the leader's answer out of the response; `None` means the
/// answer was of the wrong kind.
async fn to_leader<T>(
    c: &Controller,
    req: Request,
    pick: impl Fn(Response) -> Option<Result<T, NotDone>>,
) -> Result<T, MetadataError> {
    let overall = match req {
        // The next heartbeat starts soon; a stale one is worth nothing.
        Request::Heartbeat(_) => c.session_timeout / 2,
        _ => PROPOSE_TIMEOUT,
    };
    let deadline = tokio::time::Instant::now() + overall;
    let mut backoff = BACKOFF_MS_MIN;
    let mut hint: Option<String> = None;
    let mut last_error = String::from("no leader known");
    for attempt in 0.. {
        if tokio::time::Instant::now() >= deadline || c.cancel.is_cancelled() {
            break;
        }
        let target = match hint.take() {
            Some(addr) => Target::Remote(addr),
            None => target(c, attempt),
        };
        let resp = match target {
            Target::Local => Some(call_local(c, &req).await),
            Target::Remote(addr) => match call_remote(c, &addr, &req).await {
                Ok(r) => Some(r),
                Err(e) => {
                    last_error = format!("{addr}: {e}");
                    None
                }
            },
            Target::Unknown => None,
        };
        match resp.map(&pick) {
            Some(Some(Ok(v))) => return Ok(v),
            Some(Some(Err(NotDone::Refused(r)))) => return Err(r.into_error()),
            Some(Some(Err(NotDone::NotLeader(Some((_, addr)))))) => {
                // Follow the hint at once: it is usually the new leader.
                hint = Some(addr);
                continue;
            }
            Some(Some(Err(NotDone::NotLeader(None)))) => last_error = "no leader elected".into(),
            Some(None) => last_error = "unexpected response kind".into(),
            None => {}
        }
        tokio::time::sleep(Duration::from_millis(backoff)).await;
        backoff = (backoff * 2).min(BACKOFF_MS_MAX);
    }
    Err(MetadataError::NoQuorum(format!(
        "no leader accepted the request within {PROPOSE_TIMEOUT:?}: {last_error}"
    )))
}

/// Proposes through the leader; returns the log index and reserved range.
pub async fn propose(
    c: &Controller,
    record: MetadataRecord,
) -> Result<(u64, Option<(i64, i64)>), MetadataError> {
    to_leader(c, Request::Propose(record), |r| match r {
        Response::Propose(x) => Some(x),
        _ => None,
    })
    .await
}

/// Sends a heartbeat to the leader.
pub async fn heartbeat(
    c: &Controller,
    hb: BrokerHeartbeat,
) -> Result<HeartbeatReply, MetadataError> {
    to_leader(c, Request::Heartbeat(hb), |r| match r {
        Response::Heartbeat(x) => Some(x),
        _ => None,
    })
    .await
}

/// Asks the leader to add this node as a learner.
pub async fn join(c: &Controller, id: NodeId, addr: String) -> Result<(), MetadataError> {
    to_leader(c, Request::Join { id, addr }, |r| match r {
        Response::Join(x) => Some(x),
        _ => None,
    })
    .await
}

/// The leader's view of the quorum.
pub async fn status(c: &Controller) -> Result<super::QuorumStatus, MetadataError> {
    to_leader(c, Request::Status, |r| match r {
        Response::Status(x) => Some(x),
        _ => None,
    })
    .await
}
