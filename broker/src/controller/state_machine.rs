//! The metadata state machine: committed records applied to the
//! `MetadataImage`, snapshots of the image.
//!
//! Apply is deterministic on every node, so validation happens here: a record
//! the image refuses leaves the image unchanged and answers the refusal.
//! A snapshot is the serialized image plus the last applied id and
//! membership, kept in `snapshot.json` next to the log.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::files;
use super::types::{
    Entry, LogId, Outcome, Refusal, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use crate::metadata::{MetadataImage, MetadataRecord};

const SNAPSHOT: &str = "snapshot.json";

/// A snapshot as stored on disk: the metadata and the image bytes.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// The state machine; clones share one state (the snapshot builder is one).
#[derive(Clone)]
pub struct StateMachine {
    inner: Arc<Mutex<Inner>>,
    images: watch::Sender<Arc<MetadataImage>>,
}

struct Inner {
    dir: PathBuf,
    image: Arc<MetadataImage>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    snapshot: Option<StoredSnapshot>,
    /// Distinguishes snapshots built at the same log id.
    snapshot_seq: u64,
}

fn err(subject: ErrorSubject<u64>, verb: ErrorVerb) -> impl FnOnce(std::io::Error) -> StorageError {
    move |e| StorageError::from_io_error(subject, verb, e)
}

fn decode_image(bytes: &[u8]) -> std::io::Result<MetadataImage> {
    serde_json::from_slice(bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

impl StateMachine {
    /// Opens the state machine in `dir` from its last snapshot (if any).
    // StorageError is openraft's (large) error type, the one its storage
    // traits use; opening returns the same so callers need no mapping.
    #[allow(clippy::result_large_err)]
    pub fn open(
        dir: &Path,
        images: watch::Sender<Arc<MetadataImage>>,
    ) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(err(ErrorSubject::StateMachine, ErrorVerb::Write))?;
        let read = || err(ErrorSubject::StateMachine, ErrorVerb::Read);
        let snapshot: Option<StoredSnapshot> =
            files::read_json(&dir.join(SNAPSHOT)).map_err(read())?;
        let (image, last_applied, membership) = match &snapshot {
            Some(s) => (
                decode_image(&s.data).map_err(read())?,
                s.meta.last_log_id,
                s.meta.last_membership.clone(),
            ),
            None => (MetadataImage::default(), None, StoredMembership::default()),
        };
        let image = Arc::new(image);
        images.send_replace(image.clone());
        Ok(StateMachine {
            inner: Arc::new(Mutex::new(Inner {
                dir: dir.to_path_buf(),
                image,
                last_applied,
                membership,
                snapshot,
                snapshot_seq: crate::now_ms().max(0) as u64,
            })),
            images,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Applies one record; the outcome is what the proposer is told.
fn apply_record(image: &mut Arc<MetadataImage>, index: u64, record: &MetadataRecord) -> Outcome {
    let before = image.producer_ids_next;
    // The cluster id is fixed by the first Bootstrap; a second one (two
    // leaders racing to bootstrap a new cluster) must not change it.
    if let MetadataRecord::Bootstrap { cluster_id } = record {
        if !image.cluster_id.is_empty() && image.cluster_id != *cluster_id {
            return Outcome::Refused(Refusal::Other(format!(
                "the cluster id is already {}",
                image.cluster_id
            )));
        }
    }
    match image.apply(record) {
        Ok(next) => {
            let reserved = match record {
                MetadataRecord::AllocateProducerIds { .. } => {
                    Some((before, next.producer_ids_next))
                }
                _ => None,
            };
            *image = Arc::new(next);
            Outcome::Applied { index, reserved }
        }
        Err(e) => Outcome::Refused(Refusal::from_error(&e)),
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let g = self.lock();
        Ok((g.last_applied, g.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut g = self.lock();
        let mut image = g.image.clone();
        let mut out = Vec::new();
        for entry in entries {
            let index = entry.log_id.index;
            g.last_applied = Some(entry.log_id);
            let outcome = match &entry.payload {
                EntryPayload::Blank => Outcome::Applied {
                    index,
                    reserved: None,
                },
                EntryPayload::Normal(record) => apply_record(&mut image, index, record),
                EntryPayload::Membership(m) => {
                    g.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                    Outcome::Applied {
                        index,
                        reserved: None,
                    }
                }
            };
            if let Outcome::Refused(r) = &outcome {
                tracing::debug!(index, refusal = ?r, "metadata record refused");
            }
            out.push(outcome);
        }
        if !Arc::ptr_eq(&image, &g.image) {
            g.image = image.clone();
            // Subscribers see the new image as soon as it is applied.
            self.images.send_replace(image);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let write = |e| {
            StorageError::from_io_error(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Write,
                e,
            )
        };
        let image = Arc::new(decode_image(&data).map_err(write)?);
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        let mut g = self.lock();
        files::write_json(&g.dir.join(SNAPSHOT), &stored).map_err(write)?;
        g.image = image.clone();
        g.last_applied = meta.last_log_id;
        g.membership = meta.last_membership.clone();
        g.snapshot = Some(stored);
        self.images.send_replace(image);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let g = self.lock();
        Ok(g.snapshot.as_ref().map(|s| Snapshot {
            meta: s.meta.clone(),
            snapshot: Box::new(Cursor::new(s.data.clone())),
        }))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let mut g = self.lock();
        let data = serde_json::to_vec(&*g.image).map_err(|e| {
            StorageError::from_io_error(
                ErrorSubject::Snapshot(None),
                ErrorVerb::Write,
                std::io::Error::other(e),
            )
        })?;
        g.snapshot_seq += 1;
        let snapshot_id = match g.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, g.snapshot_seq),
            None => format!("--{}", g.snapshot_seq),
        };
        let meta = SnapshotMeta {
            last_log_id: g.last_applied,
            last_membership: g.membership.clone(),
            snapshot_id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        };
        files::write_json(&g.dir.join(SNAPSHOT), &stored).map_err(|e| {
            StorageError::from_io_error(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Write,
                e,
            )
        })?;
        g.snapshot = Some(stored);
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}
