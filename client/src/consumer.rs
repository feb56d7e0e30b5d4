//! [`Consumer`]: reads assigned partitions (no consumer groups yet).
//!
//! Each [`Consumer::poll`] is one round of fetches (one request per leader,
//! pipelined), bounded by the fetch options' `max_bytes`. A fetch that lands
//! inside a batch returns the whole batch, so records below the position are
//! dropped here. OFFSET_OUT_OF_RANGE resets the position by the reset policy.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::batch::{decode_records, next_offset_after};
use crate::client::RETRY_BACKOFF_MS;
use crate::{Client, ClientError, ConsumerRecord, FetchOptions, FetchTarget, OffsetSpec};

/// OFFSET_OUT_OF_RANGE.
const OFFSET_OUT_OF_RANGE: i16 = 1;

/// Where an assigned partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    Earliest,
    Latest,
    Offset(i64),
    /// First offset at or after this time (ms since epoch); the end if none.
    Timestamp(i64),
}

/// What to do when the position is outside the log (Kafka's `auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
    /// Fail the poll with the broker's error.
    None,
}

/// Consumer settings.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerConfig {
    pub fetch: FetchOptions,
    pub reset: OffsetReset,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            fetch: FetchOptions::default(),
            reset: OffsetReset::Latest,
        }
    }
}

/// A group-less consumer over explicitly assigned partitions.
pub struct Consumer {
    client: Arc<Client>,
    config: ConsumerConfig,
    /// Next offset to read, per (topic, partition).
    positions: BTreeMap<(Arc<str>, i32), i64>,
}

impl Consumer {
    pub fn new(client: Arc<Client>, config: ConsumerConfig) -> Self {
        Self {
            client,
            config,
            positions: BTreeMap::new(),
        }
    }

    /// Assigns one partition, starting at `start`.
    pub async fn assign(
        &mut self,
        topic: &str,
        partition: i32,
        start: StartOffset,
    ) -> Result<(), ClientError> {
        self.client.topic(topic).await?.partition(partition)?;
        let offset = self.resolve(topic, partition, start).await?;
        self.positions.insert((topic.into(), partition), offset);
        Ok(())
    }

    /// Assigns every partition of `topic`.
    pub async fn assign_all(&mut self, topic: &str, start: StartOffset) -> Result<(), ClientError> {
        let meta = self.client.topic_metadata(topic).await?;
        for p in &meta.partitions {
            self.assign(topic, p.partition, start).await?;
        }
        Ok(())
    }

    /// Assigned partitions and their next offsets.
    pub fn positions(&self) -> impl Iterator<Item = (&str, i32, i64)> {
        self.positions.iter().map(|((t, p), o)| (&**t, *p, *o))
    }

    /// Drops every assigned partition.
    pub fn unassign_all(&mut self) {
        self.positions.clear();
    }

    /// Moves a partition's position.
    pub fn seek(&mut self, topic: &str, partition: i32, offset: i64) {
        self.positions.insert((topic.into(), partition), offset);
    }

    async fn resolve(
        &self,
        topic: &str,
        partition: i32,
        start: StartOffset,
    ) -> Result<i64, ClientError> {
        let spec = match start {
            StartOffset::Offset(o) => return Ok(o),
            StartOffset::Earliest => OffsetSpec::Earliest,
            StartOffset::Latest => OffsetSpec::Latest,
            StartOffset::Timestamp(t) => OffsetSpec::Timestamp(t),
        };
        let listed = self.client.list_offsets(topic, partition, spec).await?;
        if listed.offset < 0 {
            return Ok(self
                .client
                .list_offsets(topic, partition, OffsetSpec::Latest)
                .await?
                .offset);
        }
        Ok(listed.offset)
    }

    /// One round of fetches; returns the records read (possibly none after
    /// `max_wait_ms`). Positions advance past what is returned.
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>, ClientError> {
        if self.positions.is_empty() {
            return Err(ClientError::Config("no partitions assigned".into()));
        }
        let targets: Vec<FetchTarget> = self
            .positions
            .iter()
            .map(|((t, p), o)| FetchTarget {
                topic: t.to_string(),
                partition: *p,
                offset: *o,
            })
            .collect();
        let fetched = match self.client.fetch_many(&targets, self.config.fetch).await {
            Ok(f) => f,
            Err(e) if e.is_retriable() => {
                tracing::debug!(error = %e, "fetch failed; refreshing metadata");
                tokio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
                self.client.refresh_metadata().await?;
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        let mut refresh = false;
        for p in fetched {
            let key: (Arc<str>, i32) = (p.topic.as_str().into(), p.partition);
            let Some(&position) = self.positions.get(&key) else {
                continue;
            };
            match p.result {
                Ok(data) => {
                    let records = decode_records(&data.records, &key.0, p.partition, position)?;
                    let next = match records.last() {
                        Some(r) => r.offset + 1,
                        None => {
                            next_offset_after(&data.records).map_or(position, |n| n.max(position))
                        }
                    };
                    self.positions.insert(key, next);
                    out.extend(records);
                }
                Err(e) if e.kafka_code() == Some(OFFSET_OUT_OF_RANGE) => {
                    let start = match self.config.reset {
                        OffsetReset::Earliest => StartOffset::Earliest,
                        OffsetReset::Latest => StartOffset::Latest,
                        OffsetReset::None => return Err(e),
                    };
                    let offset = self.resolve(&p.topic, p.partition, start).await?;
                    tracing::info!(topic = %p.topic, partition = p.partition, from = position, to = offset, "offset out of range; reset");
                    self.positions.insert(key, offset);
                }
                Err(e) if e.is_retriable() => {
                    tracing::debug!(error = %e, "partition fetch failed; will refresh metadata");
                    refresh = true;
                }
                Err(e) => return Err(e),
            }
        }
        if refresh {
            tokio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
            self.client.refresh_metadata().await?;
        }
        Ok(out)
    }
}
