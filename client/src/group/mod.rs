//! Classic consumer groups (the "consumer" protocol type), client side.
//!
//! Modules:
//! - [`protocol`]: member subscription and assignment bytes (version-prefixed).
//! - [`assignor`]: "range" and "roundrobin", pure and deterministic.
//! - [`rpc`]: coordinator requests per negotiated version.
//! - [`admin`]: list/describe/delete groups, read and overwrite offsets.
//! - [`config`]: settings, [`GroupConsumerConfig`].
//! - [`consumer`]: [`GroupConsumer`], the member state machine's async shell.
//! - `heartbeat`: the background heartbeat task.

pub mod admin;
pub mod assignor;
pub mod config;
pub mod consumer;
mod heartbeat;
pub mod protocol;
pub mod rpc;

pub use admin::{GroupDescription, GroupListing, MemberDescription};
pub use assignor::{Assignor, MemberSubscription};
pub use config::GroupConsumerConfig;
pub use consumer::GroupConsumer;
pub use protocol::{Assignment, Subscription, TopicPartitions};
pub use rpc::Offsets;
