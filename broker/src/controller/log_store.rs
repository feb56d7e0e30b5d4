//! The Raft log store of the metadata quorum, under
//! `<log.dir>/__cluster_metadata-0/raft/`.
//!
//! - `vote.json`, `committed.json`, `purged.json`: replaced atomically.
//! - `entries.log`: CRC-framed JSON entries, append-only; a torn tail is cut
//!   at open. Truncation (a conflicting suffix) cuts the file at the first
//!   removed entry; a purge (after a snapshot) records the purged id first,
//!   then rewrites the file without the purged prefix, so a crash in between
//!   only leaves entries that open() skips.
//!
//! Metadata logs are small (a snapshot every 1000 entries), so every entry is
//! also kept in memory and the file is only read at open. The I/O is
//! blocking on purpose: it is a few small fsyncs per commit, and the Raft
//! core waits for them anyway.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, RaftLogId, RaftLogReader, Vote};

use super::files;
use super::types::{Entry, LogId, NodeId, StorageError, TypeConfig};

const ENTRIES: &str = "entries.log";

/// The persistent Raft log; clones share one store (the reader handed to
/// replication is a clone).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    dir: PathBuf,
    file: File,
    /// Every entry after the purge point, with its offset in `entries.log`.
    entries: BTreeMap<u64, (u64, Entry)>,
    /// Bytes of `entries.log` (where the next frame goes).
    file_bytes: u64,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId>,
    purged: Option<LogId>,
}

fn err(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
) -> impl FnOnce(std::io::Error) -> StorageError {
    move |e| StorageError::from_io_error(subject, verb, e)
}

impl LogStore {
    /// Opens (or creates) the store in `dir`.
    // StorageError is openraft's (large) error type, the one its storage
    // traits use; opening returns the same so callers need no mapping.
    #[allow(clippy::result_large_err)]
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(err(ErrorSubject::Store, ErrorVerb::Write))?;
        let read = || err(ErrorSubject::Store, ErrorVerb::Read);
        let vote = files::read_json(&dir.join("vote.json")).map_err(read())?;
        let committed = files::read_json(&dir.join("committed.json")).map_err(read())?;
        let purged: Option<LogId> = files::read_json(&dir.join("purged.json")).map_err(read())?;
        let path = dir.join(ENTRIES);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(read())?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(read())?;
        let (frames, valid) = files::decode_frames::<Entry>(&bytes);
        if valid < bytes.len() {
            tracing::warn!(path = %path.display(), kept = valid, dropped = bytes.len() - valid,
                "raft log has a torn tail; truncating it");
            file.set_len(valid as u64)
                .and_then(|_| file.sync_all())
                .map_err(err(ErrorSubject::Logs, ErrorVerb::Write))?;
        }
        let purged_index = purged.as_ref().map(|l| l.index);
        let entries = frames
            .into_iter()
            .filter(|(_, e)| Some(e.log_id.index) > purged_index)
            .map(|(pos, e)| (e.log_id.index, (pos, e)))
            .collect();
        Ok(LogStore {
            inner: Arc::new(Mutex::new(Inner {
                dir: dir.to_path_buf(),
                file,
                entries,
                file_bytes: valid as u64,
                vote,
                committed,
                purged,
            })),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True when nothing was ever written (no vote, no entries, no purge).
    pub fn is_fresh(&self) -> bool {
        let g = self.lock();
        g.vote.is_none() && g.entries.is_empty() && g.purged.is_none()
    }
}

impl Inner {
    fn append(&mut self, entries: Vec<Entry>) -> std::io::Result<()> {
        let mut buf = Vec::new();
        let mut placed = Vec::with_capacity(entries.len());
        for e in entries {
            let pos = self.file_bytes + buf.len() as u64;
            buf.extend_from_slice(&files::encode_frame(&e)?);
            placed.push((pos, e));
        }
        let written = self
            .file
            .write_all(&buf)
            .and_then(|_| self.file.sync_data());
        if let Err(e) = written {
            // Leave no half entry behind for the next append to follow.
            let _ = self.file.set_len(self.file_bytes);
            return Err(e);
        }
        self.file_bytes += buf.len() as u64;
        for (pos, e) in placed {
            self.entries.insert(e.log_id.index, (pos, e));
        }
        Ok(())
    }

    fn truncate(&mut self, since: u64) -> std::io::Result<()> {
        let Some((&first, &(pos, _))) = self.entries.range(since..).next() else {
            return Ok(());
        };
        self.file.set_len(pos)?;
        self.file.sync_all()?;
        self.file_bytes = pos;
        self.entries.split_off(&first);
        Ok(())
    }

    fn purge(&mut self, upto: LogId) -> std::io::Result<()> {
        files::write_json(&self.dir.join("purged.json"), &upto)?;
        self.purged = Some(upto);
        self.entries = self.entries.split_off(&(upto.index + 1));
        // Rewrite the file without the purged prefix (it is small).
        let mut buf = Vec::new();
        for (pos, e) in self.entries.values_mut() {
            *pos = buf.len() as u64;
            buf.extend_from_slice(&files::encode_frame(e)?);
        }
        let path = self.dir.join(ENTRIES);
        files::write_atomic(&path, &buf)?;
        self.file = OpenOptions::new().read(true).append(true).open(&path)?;
        self.file_bytes = buf.len() as u64;
        Ok(())
    }

    fn range<RB: RangeBounds<u64>>(&self, range: RB) -> Vec<Entry> {
        let start = match range.start_bound() {
            Bound::Included(&s) => Bound::Included(s),
            Bound::Excluded(&s) => Bound::Excluded(s),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(&s) => Bound::Included(s),
            Bound::Excluded(&s) => Bound::Excluded(s),
            Bound::Unbounded => Bound::Unbounded,
        };
        self.entries
            .range((start, end))
            .map(|(_, (_, e))| e.clone())
            .collect()
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + openraft::OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(self.lock().range(range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let g = self.lock();
        let last = g
            .entries
            .values()
            .next_back()
            .map(|(_, e)| *e.get_log_id())
            .or(g.purged);
        Ok(LogState {
            last_purged_log_id: g.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let mut g = self.lock();
        files::write_json(&g.dir.join("vote.json"), vote)
            .map_err(err(ErrorSubject::Vote, ErrorVerb::Write))?;
        g.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        Ok(self.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let mut g = self.lock();
        files::write_json(&g.dir.join("committed.json"), &committed)
            .map_err(err(ErrorSubject::Store, ErrorVerb::Write))?;
        g.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let result = self.lock().append(entries.into_iter().collect());
        match result {
            Ok(()) => {
                // Durable (fsynced) before Raft may count it.
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::new(e.kind(), e.to_string())));
                Err(StorageError::from_io_error(
                    ErrorSubject::Logs,
                    ErrorVerb::Write,
                    e,
                ))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.lock()
            .truncate(log_id.index)
            .map_err(err(ErrorSubject::Logs, ErrorVerb::Write))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.lock()
            .purge(log_id)
            .map_err(err(ErrorSubject::Logs, ErrorVerb::Write))
    }
}
