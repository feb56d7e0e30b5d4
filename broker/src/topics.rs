//! Topic lifecycle shared by the admin handlers and auto-creation: validate,
//! propose the metadata record, then bring the hosted partitions in step.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::ResponseError;

use crate::config::topic;
use crate::handlers::common::validate_topic_name;
use crate::metadata::{MetadataRecord, TopicImage};
use crate::{Broker, BrokerError};

/// Partitions a single request may create; beyond this is an operator's typo
/// that would open that many files.
const PARTITIONS_MAX: u32 = 10_000;

/// What a new topic should look like; `None` fields take the broker defaults.
pub struct NewTopic<'a> {
    pub name: &'a str,
    pub partitions: Option<i32>,
    pub replication_factor: Option<i16>,
    pub configs: BTreeMap<String, String>,
}

impl Broker {
    /// Creates a topic (or only checks that it could be, with `validate_only`).
    pub fn create_topic(
        &self,
        t: NewTopic<'_>,
        validate_only: bool,
    ) -> Result<Arc<TopicImage>, BrokerError> {
        validate_topic_name(t.name)?;
        let partitions = t.partitions.unwrap_or(self.config.num_partitions);
        if partitions <= 0 || partitions as u32 > PARTITIONS_MAX {
            return Err(BrokerError::invalid(
                ResponseError::InvalidPartitions,
                format!(
                    "number of partitions must be between 1 and {PARTITIONS_MAX}, got {partitions}"
                ),
            ));
        }
        let rf = t
            .replication_factor
            .unwrap_or(self.config.default_replication_factor);
        let live_brokers = 1;
        if rf <= 0 || rf > live_brokers {
            return Err(BrokerError::invalid(
                ResponseError::InvalidReplicationFactor,
                format!(
                    "replication factor {rf} is not possible with {live_brokers} live broker(s)"
                ),
            ));
        }
        for (k, v) in &t.configs {
            topic::validate(k, v)
                .map_err(|m| BrokerError::invalid(ResponseError::InvalidConfig, m))?;
        }
        let record = MetadataRecord::CreateTopic {
            name: t.name.to_string(),
            id: uuid::Uuid::new_v4(),
            partitions: partitions as u32,
            replication_factor: rf as u16,
            configs: t.configs,
        };
        if validate_only {
            self.controller.check(&record)?;
            let MetadataRecord::CreateTopic {
                name,
                id,
                partitions,
                replication_factor,
                configs,
            } = record
            else {
                unreachable!("built above as CreateTopic")
            };
            return Ok(Arc::new(TopicImage {
                name,
                id,
                partitions,
                replication_factor,
                configs,
            }));
        }
        let image = self.controller.propose(record)?;
        self.replicas.sync(&image);
        tracing::info!(topic = t.name, partitions, "created topic");
        image.topic(t.name).cloned().ok_or_else(|| {
            BrokerError::invalid(
                ResponseError::UnknownServerError,
                "topic vanished after creation",
            )
        })
    }

    pub fn delete_topic(&self, name: &str) -> Result<uuid::Uuid, BrokerError> {
        if !self.config.delete_topic_enable {
            return Err(BrokerError::invalid(
                ResponseError::TopicDeletionDisabled,
                "delete.topic.enable is false on this broker",
            ));
        }
        let id = self
            .controller
            .image()
            .topic(name)
            .map(|t| t.id)
            .ok_or_else(|| {
                BrokerError::invalid(
                    ResponseError::UnknownTopicOrPartition,
                    format!("topic '{name}' does not exist"),
                )
            })?;
        let image = self.controller.propose(MetadataRecord::DeleteTopic {
            name: name.to_string(),
        })?;
        self.replicas.sync(&image);
        tracing::info!(topic = name, "deleted topic");
        Ok(id)
    }

    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        if count <= 0 || count as u32 > PARTITIONS_MAX {
            return Err(BrokerError::invalid(
                ResponseError::InvalidPartitions,
                format!("partition count must be between 1 and {PARTITIONS_MAX}, got {count}"),
            ));
        }
        let record = MetadataRecord::CreatePartitions {
            name: name.to_string(),
            count: count as u32,
        };
        if validate_only {
            return Ok(self.controller.check(&record)?);
        }
        let image = self.controller.propose(record)?;
        self.replicas.sync(&image);
        Ok(())
    }

    /// Sets (`Some`) or removes (`None`) topic overrides after validating them.
    pub fn alter_topic_configs(
        &self,
        name: &str,
        changes: BTreeMap<String, Option<String>>,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        for (k, v) in &changes {
            match v {
                Some(v) => topic::validate(k, v),
                None => topic::find(k)
                    .map(|_| ())
                    .ok_or_else(|| format!("unknown topic config '{k}'")),
            }
            .map_err(|m| BrokerError::invalid(ResponseError::InvalidConfig, m))?;
        }
        let record = MetadataRecord::AlterTopicConfigs {
            name: name.to_string(),
            changes,
        };
        if validate_only {
            return Ok(self.controller.check(&record)?);
        }
        let image = self.controller.propose(record)?;
        self.replicas.sync(&image);
        Ok(())
    }
}
