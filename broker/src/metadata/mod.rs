//! Cluster metadata: records, the immutable image, and the controller that
//! orders, persists and applies changes.
//!
//! A single node is a one-voter quorum: `Controller::propose` validates a
//! record against the current image, makes it durable in the metadata log,
//! then swaps in the new image and tells subscribers. The cluster issue puts
//! openraft behind the same `propose`/`subscribe` seam.

pub mod image;
pub mod log;
pub mod record;

use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

pub use image::{BrokerImage, JobImage, MetadataImage, PartitionImage, TopicImage, NO_LEADER};
pub use record::MetadataRecord;

/// Producer ids are reserved in blocks so that a restart never reuses one.
const PRODUCER_ID_BLOCK: i64 = 1000;

/// Why a metadata change was refused or could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("job '{0}' already exists")]
    JobExists(String),
    #[error("job '{0}' does not exist")]
    UnknownJob(String),
    #[error("{0}")]
    InvalidReplicas(String),
    #[error("{0}")]
    StalePartitionState(String),
    #[error("broker {0} is not registered")]
    UnknownBroker(i32),
    #[error("metadata log {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot encode metadata record: {0}")]
    Encode(String),
}

impl MetadataError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        MetadataError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

struct State {
    log: log::MetadataLog,
    image: Arc<MetadataImage>,
    /// Next producer id to hand out; the image's reservation is the ceiling.
    producer_id_next: i64,
}

/// The metadata controller of a single-voter quorum.
pub struct Controller {
    state: Mutex<State>,
    images: watch::Sender<Arc<MetadataImage>>,
}

impl Controller {
    /// Opens the metadata log under `dir`, replays it, and bootstraps a new cluster id if empty.
    pub fn open(dir: &Path, node_id: i32, cluster_id: Option<&str>) -> Result<Self, MetadataError> {
        let (mut log, records) = log::MetadataLog::open(dir)?;
        let mut image = MetadataImage::default();
        for r in &records {
            let current = match r {
                MetadataRecord::CreatePartitions { name, .. } => {
                    image.topic(name).map_or(0, |t| t.partitions)
                }
                _ => 0,
            };
            let r = &r.clone().with_legacy_assignments(node_id, current);
            if !image.brokers.contains_key(&node_id)
                && matches!(r, MetadataRecord::CreateTopic { .. })
            {
                // Single-node logs never registered their one broker.
                image = image.apply(&MetadataRecord::RegisterBroker {
                    id: node_id,
                    incarnation: uuid::Uuid::nil(),
                    host: String::new(),
                    port: 0,
                    rack: None,
                })?;
            }
            match image.apply(r) {
                Ok(next) => image = next,
                // Records were validated before they were written; one that no
                // longer applies means a bug, not a reason to refuse to start.
                Err(e) => {
                    tracing::error!(record = ?r, error = %e, "metadata record does not apply; skipped")
                }
            }
        }
        if records.is_empty() {
            let id = cluster_id
                .map(str::to_string)
                .unwrap_or_else(new_cluster_id);
            let r = MetadataRecord::Bootstrap { cluster_id: id };
            log.append(&r)?;
            image = image.apply(&r)?;
        } else if let Some(want) = cluster_id {
            if want != image.cluster_id {
                tracing::warn!(configured = want, stored = %image.cluster_id, "cluster.id differs from the stored one; keeping the stored id");
            }
        }
        let producer_id_next = image.producer_ids_next;
        let image = Arc::new(image);
        let (images, _) = watch::channel(image.clone());
        Ok(Self {
            state: Mutex::new(State {
                log,
                image,
                producer_id_next,
            }),
            images,
        })
    }

    /// The current image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.images.borrow().clone()
    }

    /// The node leading the metadata quorum (this one, with a single voter).
    pub fn leader_id(&self) -> Option<i32> {
        None
    }

    /// A receiver that sees every new image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.images.subscribe()
    }

    /// Validates, persists and applies one change; returns the new image.
    pub async fn propose(
        &self,
        record: MetadataRecord,
    ) -> Result<Arc<MetadataImage>, MetadataError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let next = Arc::new(state.image.apply(&record)?);
        state.log.append(&record)?;
        state.image = next.clone();
        self.images.send_replace(next.clone());
        Ok(next)
    }

    /// Checks a change without applying it (validate_only requests).
    pub fn check(&self, record: &MetadataRecord) -> Result<(), MetadataError> {
        self.image().apply(record).map(|_| ())
    }

    /// Hands out a producer id that was never used before, even across restarts.
    pub async fn next_producer_id(&self) -> Result<i64, MetadataError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.producer_id_next >= state.image.producer_ids_next {
            let record = MetadataRecord::AllocateProducerIds {
                next: state.producer_id_next + PRODUCER_ID_BLOCK,
            };
            let next = Arc::new(state.image.apply(&record)?);
            state.log.append(&record)?;
            state.image = next.clone();
            self.images.send_replace(next);
        }
        let id = state.producer_id_next;
        state.producer_id_next += 1;
        Ok(id)
    }
}

fn new_cluster_id() -> String {
    // Kafka's cluster ids are 16 random bytes in URL-safe base64 without padding.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = String::new();
    for b in bytes {
        bits = (bits << 8) | b as u32;
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            out.push(ALPHABET[((bits >> nbits) & 63) as usize] as char);
        }
    }
    if nbits > 0 {
        out.push(ALPHABET[((bits << (6 - nbits)) & 63) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    pub(crate) async fn register(c: &Controller) {
        c.propose(MetadataRecord::RegisterBroker {
            id: 1,
            incarnation: uuid::Uuid::new_v4(),
            host: "localhost".into(),
            port: 9092,
            rack: None,
        })
        .await
        .unwrap();
        c.propose(MetadataRecord::UnfenceBroker { id: 1 })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn changes_and_producer_ids_survive_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (cluster, first_pid) = {
            let c = Controller::open(dir.path(), 1, None).unwrap();
            register(&c).await;
            c.propose(MetadataRecord::CreateTopic {
                name: "t".into(),
                id: uuid::Uuid::new_v4(),
                partitions: 3,
                replication_factor: 1,
                configs: BTreeMap::new(),
                assignments: vec![vec![1]; 3],
            })
            .await
            .unwrap();
            let pid = c.next_producer_id().await.unwrap();
            assert_eq!(c.next_producer_id().await.unwrap(), pid + 1);
            (c.image().cluster_id.clone(), pid)
        };
        assert_eq!(cluster.len(), 22);
        let c = Controller::open(dir.path(), 1, None).unwrap();
        assert_eq!(c.image().cluster_id, cluster);
        assert_eq!(c.image().topic("t").unwrap().partitions, 3);
        assert!(c.next_producer_id().await.unwrap() > first_pid + 1);
    }
}
