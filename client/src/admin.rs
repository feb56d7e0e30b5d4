//! Admin calls on [`Client`]: topics and configs.

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::{Client, ClientError, TopicMetadata};

/// Broker-side deadline for topic creation and deletion.
const ADMIN_TIMEOUT_MS: i32 = 30_000;

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    /// -1 takes the broker's `num.partitions`.
    pub partitions: i32,
    /// -1 takes the broker's `default.replication.factor`.
    pub replication_factor: i16,
    pub configs: Vec<(String, String)>,
}

/// What a config is attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigResource {
    Topic(String),
    Broker(i32),
}

impl ConfigResource {
    fn kind_and_name(&self) -> (i8, String) {
        match self {
            ConfigResource::Topic(t) => (2, t.clone()),
            ConfigResource::Broker(id) => (4, id.to_string()),
        }
    }
}

/// Where a config value comes from (Kafka's `ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    Unknown,
    DynamicTopic,
    DynamicBroker,
    DynamicDefaultBroker,
    StaticBroker,
    Default,
    DynamicBrokerLogger,
    ClientMetrics,
    Group,
}

impl ConfigSource {
    fn from_code(code: i8) -> Self {
        match code {
            1 => Self::DynamicTopic,
            2 => Self::DynamicBroker,
            3 => Self::DynamicDefaultBroker,
            4 => Self::StaticBroker,
            5 => Self::Default,
            6 => Self::DynamicBrokerLogger,
            7 => Self::ClientMetrics,
            8 => Self::Group,
            _ => Self::Unknown,
        }
    }
}

/// One described config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub read_only: bool,
    pub is_sensitive: bool,
    pub source: ConfigSource,
}

impl ConfigEntry {
    /// Whether this is a per-topic override rather than an inherited value.
    pub fn is_topic_override(&self) -> bool {
        self.source == ConfigSource::DynamicTopic
    }
}

/// One incremental config change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    Set(String, String),
    Delete(String),
    Append(String, String),
    Subtract(String, String),
}

impl AlterConfigOp {
    fn to_wire(&self) -> AlterableConfig {
        let (name, op, value) = match self {
            AlterConfigOp::Set(k, v) => (k, 0, Some(v)),
            AlterConfigOp::Delete(k) => (k, 1, None),
            AlterConfigOp::Append(k, v) => (k, 2, Some(v)),
            AlterConfigOp::Subtract(k, v) => (k, 3, Some(v)),
        };
        AlterableConfig::default()
            .with_name(str_bytes(name))
            .with_config_operation(op)
            .with_value(value.map(|v| str_bytes(v)))
    }
}

impl Client {
    /// Creates one topic; see [`Client::create_topics`].
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(String, String)],
    ) -> Result<(), ClientError> {
        self.create_topics(&[NewTopic {
            name: name.to_owned(),
            partitions,
            replication_factor,
            configs: configs.to_vec(),
        }])
        .await
    }

    /// Creates topics; the first per-topic error is returned.
    pub async fn create_topics(&self, topics: &[NewTopic]) -> Result<(), ClientError> {
        let conn = self.any_connection().await?;
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(ADMIN_TIMEOUT_MS)
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(TopicName(str_bytes(&t.name)))
                            .with_num_partitions(t.partitions)
                            .with_replication_factor(t.replication_factor)
                            .with_configs(
                                t.configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(str_bytes(k))
                                            .with_value(Some(str_bytes(v)))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let response = conn.send(request).await?;
        for r in &response.topics {
            ClientError::check(
                r.error_code,
                format!("topic '{}'", r.name.0),
                r.error_message.as_deref(),
            )?;
        }
        let _ = self.refresh_metadata().await;
        Ok(())
    }

    /// Deletes one topic.
    pub async fn delete_topic(&self, name: &str) -> Result<(), ClientError> {
        self.delete_topics(&[name]).await
    }

    /// Deletes topics by name; the first per-topic error is returned.
    pub async fn delete_topics(&self, names: &[&str]) -> Result<(), ClientError> {
        let conn = self.any_connection().await?;
        let version = conn.version(ApiKey::DeleteTopics)?;
        let mut request = DeleteTopicsRequest::default().with_timeout_ms(ADMIN_TIMEOUT_MS);
        if version >= 6 {
            request.topics = names
                .iter()
                .map(|n| DeleteTopicState::default().with_name(Some(TopicName(str_bytes(n)))))
                .collect();
        } else {
            request.topic_names = names.iter().map(|n| TopicName(str_bytes(n))).collect();
        }
        let response = conn.send(request).await?;
        for r in &response.responses {
            let name = r.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
            if r.error_code == 3 {
                return Err(ClientError::UnknownTopic(name));
            }
            ClientError::check(
                r.error_code,
                format!("topic '{name}'"),
                r.error_message.as_deref(),
            )?;
        }
        let _ = self.refresh_metadata().await;
        Ok(())
    }

    /// Names of all topics, sorted.
    pub async fn list_topics(&self) -> Result<Vec<String>, ClientError> {
        let m = self.refresh_metadata().await?;
        Ok(m.topics.keys().cloned().collect())
    }

    /// Fresh metadata for one topic.
    pub async fn describe_topic(&self, name: &str) -> Result<TopicMetadata, ClientError> {
        self.topic_metadata(name).await
    }

    /// All configs of a resource, with their sources.
    pub async fn describe_configs(
        &self,
        resource: &ConfigResource,
    ) -> Result<Vec<ConfigEntry>, ClientError> {
        let conn = self.any_connection().await?;
        let (kind, name) = resource.kind_and_name();
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(kind)
                .with_resource_name(str_bytes(&name))
                .with_configuration_keys(None),
        ]);
        let response = conn.send(request).await?;
        let mut entries = Vec::new();
        for r in response.results {
            if r.error_code == 3 {
                return Err(ClientError::UnknownTopic(name));
            }
            ClientError::check(
                r.error_code,
                format!("configs of '{name}'"),
                r.error_message.as_deref(),
            )?;
            entries.extend(r.configs.into_iter().map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                read_only: c.read_only,
                is_sensitive: c.is_sensitive,
                source: ConfigSource::from_code(c.config_source),
            }));
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Applies set/delete/append/subtract operations to a resource's configs.
    pub async fn incremental_alter_configs(
        &self,
        resource: &ConfigResource,
        ops: &[AlterConfigOp],
    ) -> Result<(), ClientError> {
        let conn = self.any_connection().await?;
        let (kind, name) = resource.kind_and_name();
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(kind)
                .with_resource_name(str_bytes(&name))
                .with_configs(ops.iter().map(AlterConfigOp::to_wire).collect()),
        ]);
        let response = conn.send(request).await?;
        for r in &response.responses {
            if r.error_code == 3 {
                return Err(ClientError::UnknownTopic(name));
            }
            ClientError::check(
                r.error_code,
                format!("configs of '{name}'"),
                r.error_message.as_deref(),
            )?;
        }
        Ok(())
    }
}
