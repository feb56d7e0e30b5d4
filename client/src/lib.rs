//! Millrace's async Kafka client and its command-line tools.
//!
//! Owns: the client side of the wire (connections, version negotiation,
//! pipelining, timeouts), cluster metadata as a client sees it, admin calls,
//! the producer (batching, partitioning, compression, idempotence), the
//! group-less consumer and the consumer-group member, plus the
//! `topic`/`produce`/`consume`/`perf`/`group` commands
//! the `broker` binary embeds. Speaks only the Kafka protocol through
//! `millrace-protocol`'s sans-IO codec; it must not depend on `storage` or
//! `broker`, so it can be used against any Kafka-compatible cluster.
//!
//! Modules:
//! - [`connection`]: one TCP connection; ApiVersions, correlation ids, bounded in-flight.
//! - [`client`]: bootstrap, metadata cache, connection per broker, retries.
//! - [`admin`]: create/delete/list/describe topics, describe/alter configs.
//! - [`data`]: list offsets, produce one batch, fetch.
//! - [`producer`]: record accumulator, linger, acks, idempotence, backpressure.
//! - [`consumer`]: assigned partitions, fetch loop, offset reset.
//! - [`group`]: consumer groups: [`GroupConsumer`], assignors, group admin.
//! - [`batch`]: v2 record batch encode/decode.
//! - [`murmur2`], [`partitioner`]: Java-compatible key partitioning.
//! - [`exchange`]: typed request/response pairs.
//! - [`config`], [`error`]: settings and the crate's error type.
//! - [`cli`]: clap commands for the `broker` binary (uses `anyhow`).

pub mod admin;
pub mod batch;
pub mod cli;
pub mod client;
pub mod config;
pub mod connection;
pub mod consumer;
pub mod data;
pub mod error;
pub mod exchange;
pub mod group;
pub mod metadata;
pub mod murmur2;
pub mod partitioner;
pub mod producer;

pub use admin::{AlterConfigOp, ConfigEntry, ConfigResource, ConfigSource, NewTopic};
pub use batch::{ConsumerRecord, ProducerRecord};
pub use client::Client;
pub use config::{ClientConfig, ConnectionConfig};
pub use connection::{Connection, PendingResponse};
pub use consumer::{Consumer, ConsumerConfig, OffsetReset, StartOffset};
pub use data::{FetchOptions, FetchTarget, FetchedData, ListedOffset, OffsetSpec, ProduceResult};
pub use error::ClientError;
pub use group::{Assignor, GroupConsumer, GroupConsumerConfig};
pub use kafka_protocol::records::Compression;
pub use metadata::{BrokerInfo, ClusterMetadata, PartitionMetadata, TopicMetadata};
pub use producer::{Acks, DeliveryFuture, Producer, ProducerConfig};
