//! The Millrace broker: the network server, one handler per Kafka API, the
//! replica manager, the metadata controller, configuration, and the `broker`
//! binary's start-up.
//!
//! Depends on `protocol` (wire codec) and `storage` (partition logs); nothing
//! depends on it. Module map:
//! - [`config`]: server.properties keys, overrides, topic-level configs.
//! - [`metadata`]: metadata records, the image, and their errors.
//! - [`controller`]: the metadata quorum (openraft): log store, state machine,
//!   network, broker liveness, and the `Controller` API the rest uses.
//! - [`group`]: the group coordinator (classic consumer groups, committed offsets).
//! - [`replica`]: hosted partitions and the append signal for long polls.
//! - [`server`], [`connection`]: listener and per-connection request loop.
//! - [`handlers`]: one file per Kafka API, all of the same shape.
//! - [`error`]: the crate's error type and the one map to Kafka error codes.
//! - [`http`]: the admin HTTP listener (health, Prometheus metrics, jobs API).
//! - [`jobs`]: stream processing jobs as metadata (create/delete/pause over the controller).
//! - [`topics`]: topic lifecycle (create, delete, grow, reconfigure) over the controller.
//! - [`tasks`]: background work (retention, flush, compaction).
//! - [`node`]: wiring all of the above for a running node.

pub mod config;
pub mod connection;
pub mod controller;
pub mod error;
pub mod group;
pub mod handlers;
pub mod http;
pub mod jobs;
pub mod metadata;
pub mod node;
pub mod replica;
pub mod server;
pub mod tasks;
pub mod topics;

use std::sync::Arc;

pub use config::ServerConfig;
pub use error::BrokerError;

/// Everything a request handler may touch, shared by all connections.
pub struct Broker {
    pub config: Arc<ServerConfig>,
    pub controller: Arc<controller::Controller>,
    pub replicas: replica::ReplicaManager,
    pub groups: group::GroupCoordinator,
    /// What each stream processing job's task last reported.
    pub job_status: Arc<jobs::StatusBoard>,
}

/// Wall-clock milliseconds since the epoch, the unit of Kafka timestamps.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
