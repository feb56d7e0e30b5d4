//! Integration tests for Millrace: the real `broker` binary runs as a child
//! process and real Kafka clients (librdkafka through the `rdkafka` crate, and
//! raw TCP frames) talk to it over loopback.
//!
//! This crate owns nothing of the broker: it must not depend on `millrace-*`
//! crates, so every test sees the broker exactly as a user does.
//!
//! Module map:
//! - [`broker`]: [`BrokerProcess`], one broker node on a free port and a
//!   temporary data dir (start, SIGTERM restart, kill -9, kill on drop).
//! - [`cluster`]: [`cluster::Cluster`], n nodes of one metadata quorum (loopback
//!   or one network namespace per node), kill -9 / SIGTERM / restart per node,
//!   per-node raw Metadata and Produce, network cuts.
//! - [`clients`]: rdkafka producer/consumer/admin builders and bounded helpers
//!   (every call here has a timeout, so no test can hang).
//! - [`wire`]: hand-built request frames for the bad-input tests.
//! - [`kproto`]: typed requests (the `kafka-protocol` crate) over a `TcpStream`,
//!   and a hand-driven group member, for exact error codes.
//! - [`group`]: consumer-group members (rdkafka on a thread, `kcat -G` as a
//!   child process) that record what they consume.
//!
//! The broker binary is `$MILLRACE_BROKER_BIN`, else
//! `<target dir>/<profile>/broker` next to the test executable: build it first
//! with `cargo build -p millrace-broker --bin broker` (`scripts/test.sh` does).

pub mod broker;
pub mod clients;
pub mod cluster;
pub mod group;
pub mod kproto;
pub mod wire;

pub use broker::BrokerProcess;
