//! Topic lifecycle shared by the admin handlers and auto-creation: validate,
//! propose the metadata record, then bring the hosted partitions in step.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::ResponseError;

use crate::config::topic;
use crate::handlers::common::validate_topic_name;
use crate::metadata::{MetadataImage, MetadataRecord, TopicImage};
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
    /// Replicas per partition chosen by the client; `None` places them here.
    pub assignments: Option<Vec<Vec<i32>>>,
}

impl Broker {
    /// Creates a topic (or only checks that it could be, with `validate_only`).
    pub async fn create_topic(
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
        let image = self.controller.image();
        let assignments = match t.assignments {
            Some(a) => {
                check_assignments(&image, &a)?;
                a
            }
            None => place(&image, partitions as u32, rf, rand::random::<u32>())?,
        };
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
            assignments,
        };
        if validate_only {
            let checked = self.controller.image().apply(&record)?;
            return checked.topic(t.name).cloned().ok_or_else(|| {
                BrokerError::invalid(ResponseError::UnknownServerError, "topic not created")
            });
        }
        let image = self.controller.propose(record).await?;
        self.replicas.sync(&image);
        tracing::info!(topic = t.name, partitions, "created topic");
        image.topic(t.name).cloned().ok_or_else(|| {
            BrokerError::invalid(
                ResponseError::UnknownServerError,
                "topic vanished after creation",
            )
        })
    }

    pub async fn delete_topic(&self, name: &str) -> Result<uuid::Uuid, BrokerError> {
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
        let image = self
            .controller
            .propose(MetadataRecord::DeleteTopic {
                name: name.to_string(),
            })
            .await?;
        self.replicas.sync(&image);
        tracing::info!(topic = name, "deleted topic");
        Ok(id)
    }

    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        if count <= 0 || count as u32 > PARTITIONS_MAX {
            return Err(BrokerError::invalid(
                ResponseError::InvalidPartitions,
                format!("partition count must be between 1 and {PARTITIONS_MAX}, got {count}"),
            ));
        }
        let image = self.controller.image();
        let Some(current) = image.topic(name) else {
            return Err(BrokerError::invalid(
                ResponseError::UnknownTopicOrPartition,
                format!("topic '{name}' does not exist"),
            ));
        };
        let new = (count as u32).saturating_sub(current.partitions);
        let assignments = match assignments {
            Some(a) => {
                check_assignments(&image, &a)?;
                a
            }
            None => place(
                &image,
                new,
                current.replication_factor as i16,
                current.partitions,
            )?,
        };
        let record = MetadataRecord::CreatePartitions {
            name: name.to_string(),
            count: count as u32,
            assignments,
        };
        if validate_only {
            return Ok(self.controller.check(&record)?);
        }
        let image = self.controller.propose(record).await?;
        self.replicas.sync(&image);
        Ok(())
    }

    /// Sets (`Some`) or removes (`None`) topic overrides after validating them.
    pub async fn alter_topic_configs(
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
        let image = self.controller.propose(record).await?;
        self.replicas.sync(&image);
        Ok(())
    }
}

/// Spreads `partitions` x `rf` replicas over the live brokers: consecutive
/// partitions start on consecutive brokers (so leadership is spread too), and
/// the broker order alternates racks when racks are set, so a partition's
/// replicas land on different racks while there are racks to spare.
pub fn place(
    image: &MetadataImage,
    partitions: u32,
    rf: i16,
    start: u32,
) -> Result<Vec<Vec<i32>>, BrokerError> {
    let order = rack_alternating(image);
    if rf <= 0 || rf as usize > order.len() {
        return Err(BrokerError::invalid(
            ResponseError::InvalidReplicationFactor,
            format!(
                "replication factor {rf} is not possible with {} live broker(s)",
                order.len()
            ),
        ));
    }
    let n = order.len();
    Ok((0..partitions as usize)
        .map(|p| {
            (0..rf as usize)
                .map(|j| order[(start as usize + p + j) % n])
                .collect()
        })
        .collect())
}

/// Live broker ids, sorted, then interleaved rack by rack (a1, b1, c1, a2, ...).
fn rack_alternating(image: &MetadataImage) -> Vec<i32> {
    let mut by_rack: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for b in image.live_brokers() {
        by_rack
            .entry(b.rack.as_deref().unwrap_or(""))
            .or_default()
            .push(b.id);
    }
    let mut out = Vec::new();
    let mut round = 0;
    loop {
        let before = out.len();
        for ids in by_rack.values() {
            if let Some(id) = ids.get(round) {
                out.push(*id);
            }
        }
        if out.len() == before {
            return out;
        }
        round += 1;
    }
}

/// Client-chosen replicas: non-empty, distinct, registered brokers, one size.
fn check_assignments(image: &MetadataImage, a: &[Vec<i32>]) -> Result<(), BrokerError> {
    let bad = |m: String| BrokerError::invalid(ResponseError::InvalidReplicaAssignment, m);
    let rf = a.first().map(Vec::len).unwrap_or(0);
    for (i, replicas) in a.iter().enumerate() {
        if replicas.is_empty() || replicas.len() != rf {
            return Err(bad(
                "every partition needs the same, non-zero number of replicas".into(),
            ));
        }
        let mut seen = replicas.clone();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() != replicas.len() {
            return Err(bad(format!("partition {i} names a broker twice")));
        }
        if let Some(b) = replicas.iter().find(|b| !image.brokers.contains_key(b)) {
            return Err(bad(format!("broker {b} is not a registered broker")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::BrokerImage;

    fn image(racks: &[(i32, Option<&str>)]) -> MetadataImage {
        let mut i = MetadataImage::default();
        for (id, rack) in racks {
            i.brokers.insert(
                *id,
                BrokerImage {
                    id: *id,
                    incarnation: uuid::Uuid::nil(),
                    host: "h".into(),
                    port: 1,
                    rack: rack.map(str::to_string),
                    fenced: false,
                },
            );
        }
        i
    }

    #[test]
    fn placement_spreads_leaders_and_racks() {
        let i = image(&[
            (1, Some("a")),
            (2, Some("a")),
            (3, Some("b")),
            (4, Some("b")),
        ]);
        let a = place(&i, 4, 2, 0).unwrap();
        let leaders: Vec<i32> = a.iter().map(|r| r[0]).collect();
        let mut sorted = leaders.clone();
        sorted.sort();
        assert_eq!(sorted, vec![1, 2, 3, 4]);
        for r in &a {
            let racks: Vec<_> = r.iter().map(|b| i.brokers[b].rack.clone()).collect();
            assert_ne!(racks[0], racks[1], "{a:?}");
        }
        assert!(place(&i, 1, 5, 0).is_err());
        assert!(place(&i, 1, 0, 0).is_err());
        assert!(check_assignments(&i, &[vec![1, 2], vec![3]]).is_err());
        assert!(check_assignments(&i, &[vec![1, 1]]).is_err());
        assert!(check_assignments(&i, &[vec![9]]).is_err());
        assert!(check_assignments(&i, &[vec![1, 3], vec![4, 2]]).is_ok());
    }
}
