//! Import of the single-voter metadata log (`metadata.log`, see
//! `metadata::log`) into a fresh Raft store: its records are proposed in
//! order, then the file is renamed `metadata.log.imported` so it is never
//! imported twice.
//!
//! The old Bootstrap record is skipped: the cluster id comes from
//! meta.properties (passed as the configured cluster id), so it does not
//! change.

use std::path::{Path, PathBuf};

use super::Controller;
use crate::metadata::{log::MetadataLog, MetadataError, MetadataRecord};

const LEGACY: &str = "metadata.log";

/// The legacy log to import, if the Raft store is fresh and one exists.
pub fn pending(metadata_dir: &Path, fresh: bool) -> Option<PathBuf> {
    let path = metadata_dir.join(LEGACY);
    (fresh && path.is_file()).then_some(path)
}

/// Proposes every record of the legacy log, then renames it.
pub async fn import(c: &Controller, path: &Path) -> Result<(), MetadataError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let (_, records) = MetadataLog::open(dir)?;
    // A cluster may still be electing: wait for the cluster id first, so the
    // imported records follow the Bootstrap.
    let mut images = c.subscribe();
    while images.borrow_and_update().cluster_id.is_empty() {
        if images.changed().await.is_err() {
            return Err(MetadataError::NoQuorum("controller stopped".into()));
        }
    }
    // Imported topics are assigned to this broker, which must be registered.
    let id = c.node_id();
    while !images.borrow_and_update().brokers.contains_key(&id) {
        if images.changed().await.is_err() {
            return Err(MetadataError::NoQuorum("controller stopped".into()));
        }
    }
    tracing::info!(path = %path.display(), records = records.len(), "importing the single-voter metadata log");
    for record in records {
        if matches!(record, MetadataRecord::Bootstrap { .. }) {
            continue;
        }
        let current = match &record {
            MetadataRecord::CreatePartitions { name, .. } => {
                c.image().topic(name).map_or(0, |t| t.partitions)
            }
            _ => 0,
        };
        let record = record.with_legacy_assignments(id, current);
        match c.propose(record.clone()).await {
            Ok(_) => {}
            Err(e @ MetadataError::NoQuorum(_)) => return Err(e),
            // Already there (an earlier, interrupted import): keep going.
            Err(e) => tracing::warn!(?record, error = %e, "legacy metadata record not imported"),
        }
    }
    let done = path.with_extension("log.imported");
    std::fs::rename(path, &done).map_err(|e| MetadataError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    Ok(())
}
