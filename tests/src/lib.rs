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
//! - [`clients`]: rdkafka producer/consumer/admin builders and bounded helpers
//!   (every call here has a timeout, so no test can hang).
//! - [`wire`]: hand-built request frames for the bad-input tests.
//!
//! The broker binary is `$MILLRACE_BROKER_BIN`, else
//! `<target dir>/<profile>/broker` next to the test executable: build it first
//! with `cargo build -p millrace-broker --bin broker` (`scripts/test.sh` does).

pub mod broker;
pub mod clients;
pub mod wire;

pub use broker::BrokerProcess;
