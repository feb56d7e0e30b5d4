//! The controller protocol: one u32 big-endian length then a JSON body, one
//! request then one response at a time per connection.
//!
//! It carries Raft's own RPCs (append, vote, snapshot chunks) and the
//! cluster's: proposals forwarded to the leader, broker heartbeats, and
//! broker-only nodes joining as learners.

use std::time::Duration;

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::types::{NodeId, Refusal, TypeConfig};
use crate::metadata::MetadataRecord;

/// Largest frame either side accepts. Snapshot chunks are 3 MiB by default
/// and metadata entries are small; anything bigger is a bug or an attack.
pub const FRAME_BYTES_MAX: usize = 32 << 20;

/// A broker's liveness report, sent every `broker.heartbeat.interval.ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerHeartbeat {
    pub id: i32,
    /// New at every process start: a changed incarnation means a restart.
    pub incarnation: uuid::Uuid,
    /// The advertised client endpoint.
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    /// Controlled shutdown: fence me (move leadership away) before I exit.
    pub shutting_down: bool,
}

/// The leader's answer to a heartbeat, after any change it caused applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    pub registered: bool,
    pub fenced: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    Propose(MetadataRecord),
    Heartbeat(BrokerHeartbeat),
    Join {
        id: NodeId,
        addr: String,
    },
    /// The leader's view of the quorum (DescribeQuorum from any node).
    Status,
}

/// Why the leader-only part of a request was not done here.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum NotDone {
    /// This node is not the leader; try `leader` (id, controller address) if known.
    NotLeader(Option<(NodeId, String)>),
    /// The request was refused (proposals: the image's refusal).
    Refused(Refusal),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// Ok: the log index and (for producer id blocks) the reserved range.
    Propose(Result<(u64, Option<(i64, i64)>), NotDone>),
    Heartbeat(Result<HeartbeatReply, NotDone>),
    Join(Result<(), NotDone>),
    Status(Result<super::QuorumStatus, NotDone>),
}

/// Why a call failed on the way (not a refusal by the other side).
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out")]
    Timeout,
    #[error("bad frame: {0}")]
    Frame(String),
}

/// Writes one frame.
pub async fn write_frame<T: Serialize>(s: &mut TcpStream, value: &T) -> Result<(), WireError> {
    let body = serde_json::to_vec(value).map_err(|e| WireError::Frame(e.to_string()))?;
    if body.len() > FRAME_BYTES_MAX {
        return Err(WireError::Frame(format!(
            "{} bytes is over the frame limit",
            body.len()
        )));
    }
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(&body);
    s.write_all(&buf).await?;
    Ok(())
}

/// Reads one frame; `Ok(None)` on a clean end of stream.
pub async fn read_frame<T: DeserializeOwned>(s: &mut TcpStream) -> Result<Option<T>, WireError> {
    let mut len = [0u8; 4];
    match s.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > FRAME_BYTES_MAX {
        return Err(WireError::Frame(format!(
            "{len} bytes is over the frame limit"
        )));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| WireError::Frame(e.to_string()))
}

/// Connects with a deadline.
pub async fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, WireError> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => Err(WireError::Connect(addr.to_string(), e)),
        Err(_) => Err(WireError::Connect(
            addr.to_string(),
            std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
        )),
    }
}

/// Sends one request on `s` and waits for its response, within `timeout`.
pub async fn call(
    s: &mut TcpStream,
    req: &Request,
    timeout: Duration,
) -> Result<Response, WireError> {
    let exchange = async {
        write_frame(s, req).await?;
        read_frame::<Response>(s)
            .await?
            .ok_or_else(|| WireError::Io(std::io::ErrorKind::UnexpectedEof.into()))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| WireError::Timeout)?
}
