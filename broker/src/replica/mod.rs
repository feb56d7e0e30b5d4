//! The replica manager: the partitions this node hosts, kept in step with the
//! metadata image (opened, given their leader/follower role, removed), plus
//! the signal that wakes long-polling fetches and acks=all produces.

pub mod fetcher;
pub mod partition;
#[cfg(test)]
mod sim;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use crate::config::{topic, ServerConfig};
use crate::metadata::MetadataImage;
use crate::now_ms;
pub use partition::{Offsets, Partition, ReplicaError, Role};

type Key = (String, i32);

/// The partitions hosted on this node.
pub struct ReplicaManager {
    config: Arc<ServerConfig>,
    partitions: RwLock<HashMap<Key, Arc<Partition>>>,
    /// The topic configs each hosted topic was last opened or updated with.
    topic_configs: RwLock<HashMap<String, BTreeMap<String, String>>>,
    /// Bumped after every append, so waiting fetches re-check their partitions.
    appended: watch::Sender<u64>,
    /// One `sync` at a time (two would open two `Partition`s on one
    /// directory), holding the image version last applied: an older image
    /// arriving late must not roll roles back.
    syncing: std::sync::Mutex<u64>,
}

impl ReplicaManager {
    pub fn new(config: Arc<ServerConfig>) -> Self {
        Self {
            config,
            partitions: RwLock::new(HashMap::new()),
            topic_configs: RwLock::new(HashMap::new()),
            appended: watch::channel(0).0,
            syncing: std::sync::Mutex::new(0),
        }
    }

    pub fn get(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.read_map().get(&(topic.to_string(), index)).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.read_map().values().cloned().collect()
    }

    fn read_map(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Key, Arc<Partition>>> {
        self.partitions.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells waiting fetches that data arrived.
    pub fn notify_appended(&self) {
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn subscribe_appends(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    fn partition_dir(&self, topic: &str, index: i32) -> PathBuf {
        self.config.log_dir.join(format!("{topic}-{index}"))
    }

    /// min.insync.replicas of a topic: its override, else the broker default.
    pub fn min_insync(&self, image: &MetadataImage, topic: &str) -> usize {
        image
            .topic(topic)
            .and_then(|t| t.configs.get("min.insync.replicas"))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or_else(|| self.config.long("min.insync.replicas").max(1) as usize)
    }

    /// Opens the partitions the image assigns here and we lack, gives every
    /// hosted partition its role, applies config changes, and removes
    /// partitions of deleted topics or moved away from here (and their files).
    pub fn sync(&self, image: &MetadataImage) {
        let mut synced = self.syncing.lock().unwrap_or_else(|p| p.into_inner());
        if image.version < *synced {
            return;
        }
        *synced = image.version;
        let now = now_ms();
        let me = self.config.node_id;
        let mut opened = Vec::new();
        let mut changed = false;
        for t in image.topics.values() {
            for (index, state) in t.partition_states.iter().enumerate() {
                let index = index as i32;
                if !state.replicas.contains(&me) {
                    continue;
                }
                if let Some(p) = self.get(&t.name, index) {
                    changed |= p.apply(state, now);
                    continue;
                }
                let dir = self.partition_dir(&t.name, index);
                let config = topic::log_config(&self.config, &t.configs);
                match Partition::open(&t.name, index, t.id, &dir, config, me, now) {
                    Ok(p) => {
                        p.apply(state, now);
                        changed = true;
                        opened.push(((t.name.clone(), index), Arc::new(p)))
                    }
                    Err(e) => {
                        tracing::error!(topic = %t.name, partition = index, error = %e, "cannot open partition log")
                    }
                }
            }
            let changed = {
                let configs = self.topic_configs.read().unwrap_or_else(|p| p.into_inner());
                configs.get(&t.name).is_some_and(|c| c != &t.configs)
            };
            if changed {
                let config = topic::log_config(&self.config, &t.configs);
                for p in self.all().into_iter().filter(|p| p.topic == t.name) {
                    if let Err(e) = p.update_config(config.clone()) {
                        tracing::error!(topic = %p.topic, partition = p.index, error = %e, "cannot apply topic config");
                    }
                }
            }
        }
        let removed: Vec<Arc<Partition>> = {
            let mut map = self.partitions.write().unwrap_or_else(|p| p.into_inner());
            map.extend(opened);
            let gone: Vec<Key> = map
                .iter()
                .filter(|(_, p)| {
                    image.topic(&p.topic).is_none_or(|t| {
                        t.id != p.topic_id
                            || t.partition(p.index)
                                .is_none_or(|s| !s.replicas.contains(&me))
                    })
                })
                .map(|(k, _)| k.clone())
                .collect();
            gone.into_iter().filter_map(|k| map.remove(&k)).collect()
        };
        {
            let mut configs = self
                .topic_configs
                .write()
                .unwrap_or_else(|p| p.into_inner());
            configs.clear();
            for t in image.topics.values() {
                configs.insert(t.name.clone(), t.configs.clone());
            }
        }
        for p in removed {
            delete_partition_files(&p);
        }
        if changed {
            // Waiters re-check leadership (a produce waiting for acks=all
            // must learn that it lost the partition).
            self.notify_appended();
        }
    }

    /// Closes every log cleanly (recovery checkpoints written).
    pub fn close_all(&self) {
        for p in self.all() {
            if let Err(e) = p.close() {
                tracing::error!(topic = %p.topic, partition = p.index, error = %e, "cannot close partition log");
            }
        }
    }

    /// Directories under the log dir that belong to no known topic.
    pub fn stray_dirs(&self, image: &MetadataImage) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.config.log_dir) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .filter(|p| !is_known_dir(p, image))
            .collect()
    }
}

fn is_known_dir(path: &Path, image: &MetadataImage) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    if name.starts_with("__cluster_metadata") {
        return true;
    }
    match name.rsplit_once('-') {
        Some((topic, index)) => index
            .parse::<u32>()
            .is_ok_and(|i| image.topic(topic).is_some_and(|t| i < t.partitions)),
        None => false,
    }
}

/// Renames a deleted partition's directory out of the way (so the name can be
/// reused at once), then removes it.
fn delete_partition_files(p: &Partition) {
    let _ = p.close();
    let trash = p.dir.with_file_name(format!(
        "{}-{}.{}-delete",
        p.topic,
        p.index,
        p.topic_id.simple()
    ));
    let target = match std::fs::rename(&p.dir, &trash) {
        Ok(()) => trash,
        Err(_) => p.dir.clone(),
    };
    if let Err(e) = std::fs::remove_dir_all(&target) {
        tracing::warn!(path = %target.display(), error = %e, "cannot remove deleted partition files");
    }
}
