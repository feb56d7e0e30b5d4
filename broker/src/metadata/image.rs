//! The metadata image: an immutable snapshot of cluster metadata, rebuilt by
//! applying records in log order and shared as an `Arc`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::record::MetadataRecord;
use super::MetadataError;

/// One topic as the metadata knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicImage {
    pub name: String,
    pub id: uuid::Uuid,
    pub partitions: u32,
    pub replication_factor: u16,
    pub configs: BTreeMap<String, String>,
}

/// One stream processing job as the metadata knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobImage {
    pub name: String,
    pub sql: String,
    pub paused: bool,
}

/// Cluster metadata at one point of the log.
#[derive(Debug, Clone, Default)]
pub struct MetadataImage {
    pub cluster_id: String,
    pub topics: BTreeMap<String, Arc<TopicImage>>,
    pub topic_ids: HashMap<uuid::Uuid, String>,
    /// Producer ids below this are reserved.
    pub producer_ids_next: i64,
    /// Stream processing jobs by name.
    pub jobs: BTreeMap<String, Arc<JobImage>>,
    /// Records applied so far (the image's log position).
    pub version: u64,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics.get(name)
    }

    pub fn job(&self, name: &str) -> Option<&Arc<JobImage>> {
        self.jobs.get(name)
    }

    pub fn topic_by_id(&self, id: &uuid::Uuid) -> Option<&Arc<TopicImage>> {
        self.topic_ids.get(id).and_then(|n| self.topics.get(n))
    }

    /// The image after `record`, or why the record does not apply.
    pub fn apply(&self, record: &MetadataRecord) -> Result<MetadataImage, MetadataError> {
        let mut next = self.clone();
        next.version += 1;
        match record {
            MetadataRecord::Bootstrap { cluster_id } => next.cluster_id = cluster_id.clone(),
            MetadataRecord::CreateTopic {
                name,
                id,
                partitions,
                replication_factor,
                configs,
            } => {
                if next.topics.contains_key(name) {
                    return Err(MetadataError::TopicExists(name.clone()));
                }
                next.topic_ids.insert(*id, name.clone());
                next.topics.insert(
                    name.clone(),
                    Arc::new(TopicImage {
                        name: name.clone(),
                        id: *id,
                        partitions: *partitions,
                        replication_factor: *replication_factor,
                        configs: configs.clone(),
                    }),
                );
            }
            MetadataRecord::DeleteTopic { name } => {
                let t = next
                    .topics
                    .remove(name)
                    .ok_or_else(|| MetadataError::UnknownTopic(name.clone()))?;
                next.topic_ids.remove(&t.id);
            }
            MetadataRecord::CreatePartitions { name, count } => {
                let t = next.existing(name)?;
                if *count <= t.partitions {
                    return Err(MetadataError::InvalidPartitions(format!(
                        "topic '{name}' has {} partitions; the new count must be larger",
                        t.partitions
                    )));
                }
                let mut t = (**t).clone();
                t.partitions = *count;
                next.topics.insert(name.clone(), Arc::new(t));
            }
            MetadataRecord::AlterTopicConfigs { name, changes } => {
                let mut t = (**next.existing(name)?).clone();
                for (k, v) in changes {
                    match v {
                        Some(v) => t.configs.insert(k.clone(), v.clone()),
                        None => t.configs.remove(k),
                    };
                }
                next.topics.insert(name.clone(), Arc::new(t));
            }
            MetadataRecord::AllocateProducerIds { next: n } => {
                next.producer_ids_next = next.producer_ids_next.max(*n);
            }
            MetadataRecord::CreateJob { name, sql } => {
                if next.jobs.contains_key(name) {
                    return Err(MetadataError::JobExists(name.clone()));
                }
                next.jobs.insert(
                    name.clone(),
                    Arc::new(JobImage {
                        name: name.clone(),
                        sql: sql.clone(),
                        paused: false,
                    }),
                );
            }
            MetadataRecord::DeleteJob { name } => {
                next.jobs
                    .remove(name)
                    .ok_or_else(|| MetadataError::UnknownJob(name.clone()))?;
            }
            MetadataRecord::SetJobPaused { name, paused } => {
                let mut j = (**next
                    .jobs
                    .get(name)
                    .ok_or_else(|| MetadataError::UnknownJob(name.clone()))?)
                .clone();
                j.paused = *paused;
                next.jobs.insert(name.clone(), Arc::new(j));
            }
        }
        Ok(next)
    }

    fn existing(&self, name: &str) -> Result<&Arc<TopicImage>, MetadataError> {
        self.topics
            .get(name)
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(name: &str, partitions: u32) -> MetadataRecord {
        MetadataRecord::CreateTopic {
            name: name.into(),
            id: uuid::Uuid::new_v4(),
            partitions,
            replication_factor: 1,
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn create_grow_alter_delete() {
        let i = MetadataImage::default().apply(&create("a", 2)).unwrap();
        assert!(matches!(
            i.apply(&create("a", 1)),
            Err(MetadataError::TopicExists(_))
        ));
        let i = i
            .apply(&MetadataRecord::CreatePartitions {
                name: "a".into(),
                count: 3,
            })
            .unwrap();
        assert_eq!(i.topic("a").unwrap().partitions, 3);
        assert!(i
            .apply(&MetadataRecord::CreatePartitions {
                name: "a".into(),
                count: 3
            })
            .is_err());
        let mut changes = BTreeMap::new();
        changes.insert("retention.ms".to_string(), Some("5".to_string()));
        let i = i
            .apply(&MetadataRecord::AlterTopicConfigs {
                name: "a".into(),
                changes,
            })
            .unwrap();
        assert_eq!(i.topic("a").unwrap().configs["retention.ms"], "5");
        let id = i.topic("a").unwrap().id;
        assert!(i.topic_by_id(&id).is_some());
        let i = i
            .apply(&MetadataRecord::DeleteTopic { name: "a".into() })
            .unwrap();
        assert!(i.topic("a").is_none() && i.topic_by_id(&id).is_none());
        assert_eq!(i.version, 4);
    }

    #[test]
    fn create_pause_delete_job() {
        let create = MetadataRecord::CreateJob {
            name: "j".into(),
            sql: "CREATE JOB j AS ...".into(),
        };
        let i = MetadataImage::default().apply(&create).unwrap();
        assert_eq!(i.job("j").unwrap().sql, "CREATE JOB j AS ...");
        assert!(!i.job("j").unwrap().paused);
        assert!(matches!(i.apply(&create), Err(MetadataError::JobExists(_))));
        let i = i
            .apply(&MetadataRecord::SetJobPaused {
                name: "j".into(),
                paused: true,
            })
            .unwrap();
        assert!(i.job("j").unwrap().paused);
        assert!(matches!(
            i.apply(&MetadataRecord::SetJobPaused {
                name: "x".into(),
                paused: true
            }),
            Err(MetadataError::UnknownJob(_))
        ));
        let i = i
            .apply(&MetadataRecord::DeleteJob { name: "j".into() })
            .unwrap();
        assert!(i.job("j").is_none());
        assert!(matches!(
            i.apply(&MetadataRecord::DeleteJob { name: "j".into() }),
            Err(MetadataError::UnknownJob(_))
        ));
        assert_eq!(i.version, 3);
    }
}
