//! [`Client`]: bootstrap, cached metadata, and one connection per broker.
//!
//! Admin helpers live in `admin.rs`, data-path calls (produce, fetch, list
//! offsets) in `data.rs`; both are `impl Client` blocks over what is here.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::{ClientConfig, ClientError, ClusterMetadata, Connection, TopicMetadata};

/// Times a call retries after a retriable error (with a metadata refresh
/// between); with [`retry_delay`] this spans about 20 s, well over a leader
/// failover (fencing plus election take a couple of seconds).
pub(crate) const RETRIES_MAX: u32 = 25;
/// First pause between retries; later ones double up to [`RETRY_BACKOFF_MAX_MS`].
pub(crate) const RETRY_BACKOFF_MS: u64 = 100;
const RETRY_BACKOFF_MAX_MS: u64 = 1_000;

/// The pause before retry number `attempt` (1-based): 100 ms, doubling, at most 1 s.
pub(crate) fn retry_delay(attempt: u32) -> Duration {
    let ms = RETRY_BACKOFF_MS.saturating_mul(1 << attempt.saturating_sub(1).min(10));
    Duration::from_millis(ms.min(RETRY_BACKOFF_MAX_MS))
}

/// A client for a cluster reached through a bootstrap list.
pub struct Client {
    bootstrap: Vec<String>,
    config: ClientConfig,
    metadata: RwLock<Arc<ClusterMetadata>>,
    /// Connections by broker id. The lock is held across connects, which
    /// serializes them; a client has few brokers, so that is acceptable.
    connections: tokio::sync::Mutex<HashMap<i32, Arc<Connection>>>,
    /// The connection used for bootstrap and admin requests.
    bootstrap_conn: tokio::sync::Mutex<Option<Arc<Connection>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("bootstrap", &self.bootstrap)
            .finish()
    }
}

impl Client {
    /// Connects with default settings. `bootstrap` is "host:port,host:port".
    pub async fn connect(bootstrap: &str) -> Result<Self, ClientError> {
        Self::connect_with(bootstrap, ClientConfig::default()).await
    }

    /// Connects to the first reachable bootstrap server and loads metadata.
    pub async fn connect_with(bootstrap: &str, config: ClientConfig) -> Result<Self, ClientError> {
        let servers: Vec<String> = bootstrap
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if servers.is_empty() {
            return Err(ClientError::Config("empty bootstrap server list".into()));
        }
        let client = Self {
            bootstrap: servers,
            config,
            metadata: RwLock::new(Arc::new(ClusterMetadata::default())),
            connections: tokio::sync::Mutex::new(HashMap::new()),
            bootstrap_conn: tokio::sync::Mutex::new(None),
        };
        client.refresh_metadata().await?;
        Ok(client)
    }

    /// Settings in use.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The last metadata snapshot.
    pub fn metadata(&self) -> Arc<ClusterMetadata> {
        match self.metadata.read() {
            Ok(m) => Arc::clone(&m),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn store_metadata(&self, m: ClusterMetadata) -> Arc<ClusterMetadata> {
        let m = Arc::new(m);
        match self.metadata.write() {
            Ok(mut slot) => *slot = Arc::clone(&m),
            Err(poisoned) => *poisoned.into_inner() = Arc::clone(&m),
        }
        m
    }

    /// Reloads metadata for all topics.
    pub async fn refresh_metadata(&self) -> Result<Arc<ClusterMetadata>, ClientError> {
        let conn = self.any_connection().await?;
        let version = conn.version(ApiKey::Metadata)?;
        let mut request = MetadataRequest::default().with_topics(if version == 0 {
            Some(Vec::new())
        } else {
            None
        });
        if version >= 4 {
            request.allow_auto_topic_creation = false;
        }
        let response = conn.send(request).await?;
        ClientError::check(response.error_code, "metadata", None)?;
        Ok(self.store_metadata(ClusterMetadata::from_response(&response)))
    }

    /// Metadata for the named topics only (merged into the cached snapshot).
    /// A topic the broker does not know is [`ClientError::UnknownTopic`].
    pub async fn topic_metadata(&self, name: &str) -> Result<TopicMetadata, ClientError> {
        let conn = self.any_connection().await?;
        let version = conn.version(ApiKey::Metadata)?;
        let topic = MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(name.to_owned()))));
        let mut request = MetadataRequest::default().with_topics(Some(vec![topic]));
        if version >= 4 {
            request.allow_auto_topic_creation = false;
        }
        let response = conn.send(request).await?;
        for t in &response.topics {
            if t.error_code == 3 {
                return Err(ClientError::UnknownTopic(name.to_owned()));
            }
            ClientError::check(t.error_code, format!("topic '{name}'"), None)?;
        }
        let fresh = ClusterMetadata::from_response(&response);
        let topic = fresh.topic(name)?.clone();
        let mut merged = (*self.metadata()).clone();
        merged.brokers = fresh.brokers;
        merged.controller_id = fresh.controller_id;
        merged.topics.insert(topic.name.clone(), topic.clone());
        self.store_metadata(merged);
        Ok(topic)
    }

    /// The topic from the cache, asking the broker if it is not there.
    pub async fn topic(&self, name: &str) -> Result<TopicMetadata, ClientError> {
        if let Ok(t) = self.metadata().topic(name) {
            return Ok(t.clone());
        }
        self.topic_metadata(name).await
    }

    /// A live connection to some broker: the bootstrap one, or any known broker.
    pub async fn any_connection(&self) -> Result<Arc<Connection>, ClientError> {
        let mut slot = self.bootstrap_conn.lock().await;
        if let Some(conn) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(conn));
        }
        let mut candidates = self.bootstrap.clone();
        for addr in self.metadata().brokers.values().map(|b| b.addr()) {
            if !candidates.contains(&addr) {
                candidates.push(addr);
            }
        }
        let mut last_error = None;
        for addr in &candidates {
            match Connection::connect(addr, self.config.connection.clone()).await {
                Ok(conn) => {
                    let conn = Arc::new(conn);
                    *slot = Some(Arc::clone(&conn));
                    return Ok(conn);
                }
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "bootstrap connect failed");
                    last_error = Some(e);
                }
            }
        }
        Err(match last_error {
            Some(e @ ClientError::Io { .. }) if candidates.len() == 1 => e,
            _ => ClientError::NoBrokerAvailable {
                tried: candidates.join(","),
            },
        })
    }

    /// A live connection to broker `node_id`.
    pub async fn broker_connection(&self, node_id: i32) -> Result<Arc<Connection>, ClientError> {
        let mut conns = self.connections.lock().await;
        if let Some(conn) = conns.get(&node_id).filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(conn));
        }
        let broker = self
            .metadata()
            .brokers
            .get(&node_id)
            .cloned()
            .ok_or_else(|| ClientError::Kafka {
                code: 8,
                name: "BROKER_NOT_AVAILABLE".into(),
                context: format!("broker {node_id} is not in metadata"),
                message: None,
            })?;
        let conn =
            Arc::new(Connection::connect(&broker.addr(), self.config.connection.clone()).await?);
        conns.insert(node_id, Arc::clone(&conn));
        Ok(conn)
    }

    /// A connection to the leader of `topic`/`partition` per cached metadata.
    pub async fn leader_connection(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<Connection>, ClientError> {
        let t = self.topic(topic).await?;
        let p = t.partition(partition)?;
        if p.leader < 0 {
            return Err(ClientError::Kafka {
                code: 5,
                name: "LEADER_NOT_AVAILABLE".into(),
                context: format!("{topic}-{partition}"),
                message: None,
            });
        }
        self.broker_connection(p.leader).await
    }

    /// Runs `op` up to [`RETRIES_MAX`] more times after retriable errors,
    /// refreshing metadata in between.
    pub(crate) async fn with_retries<T, F, Fut>(&self, mut op: F) -> Result<T, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Err(e) if e.is_retriable() && attempt < RETRIES_MAX => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "retrying after refresh");
                    tokio::time::sleep(retry_delay(attempt)).await;
                    let _ = self.refresh_metadata().await;
                }
                other => return other,
            }
        }
    }
}
