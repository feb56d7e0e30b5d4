//! Idempotent producer state (Kafka's ProducerStateManager): per producer id, the epoch and
//! the last [`PRODUCER_BATCHES_CACHED_MAX`] batches, used to drop retried duplicates and
//! refuse sequence gaps and fenced epochs. Persisted as `<offset>.snapshot` files.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use crate::batch::BatchHeader;
use crate::checkpoint;
use crate::error::{IoContext, StorageError};

/// Batches remembered per producer for duplicate detection (Kafka: 5 in-flight requests).
pub const PRODUCER_BATCHES_CACHED_MAX: usize = 5;
/// Snapshot file suffix.
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";

const SNAPSHOT_MAGIC: &[u8; 4] = b"MRPS";
const SNAPSHOT_VERSION: u16 = 1;

/// One appended batch of an idempotent producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub timestamp: i64,
}

/// What the log knows about one producer id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMetadata>,
}

/// Sequence arithmetic modulo 2^31, as Kafka wraps sequences at `i32::MAX`.
pub fn seq_add(seq: i32, delta: i32) -> i32 {
    ((i64::from(seq) + i64::from(delta)) % (i64::from(i32::MAX) + 1)) as i32
}

/// Producer id → state for one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStateManager {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Records a batch written at `first_offset..=last_offset` (no checks: replay path).
    pub fn apply(&mut self, header: &BatchHeader<'_>, first_offset: i64) {
        if !header.has_producer_sequence() {
            return;
        }
        let entry = self.producers.entry(header.producer_id()).or_default();
        apply_to(entry, header, first_offset);
    }

    /// Forgets producers whose last batch lies below `log_start_offset`.
    pub fn remove_before(&mut self, log_start_offset: i64) {
        self.producers.retain(|_, e| {
            e.batches
                .back()
                .is_some_and(|b| b.last_offset >= log_start_offset)
        });
    }

    /// Forgets batches at or above `offset` (used before a replay after truncation).
    pub fn clear(&mut self) {
        self.producers.clear();
    }

    /// Starts checking one append; staged changes land only through [`Self::commit`].
    pub fn begin(&self) -> ProducerAppend<'_> {
        ProducerAppend {
            base: self,
            staged: HashMap::new(),
        }
    }

    pub fn commit(&mut self, staged: HashMap<i64, ProducerEntry>) {
        self.producers.extend(staged);
    }

    /// Serializes the state as of `offset` (every batch below it applied).
    pub fn encode_snapshot(&self, offset: i64) -> Vec<u8> {
        let mut out = Vec::with_capacity(18 + self.producers.len() * 64);
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&offset.to_be_bytes());
        out.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let entry = &self.producers[&id];
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&entry.epoch.to_be_bytes());
            out.push(entry.batches.len() as u8);
            for b in &entry.batches {
                out.extend_from_slice(&b.first_seq.to_be_bytes());
                out.extend_from_slice(&b.last_seq.to_be_bytes());
                out.extend_from_slice(&b.first_offset.to_be_bytes());
                out.extend_from_slice(&b.last_offset.to_be_bytes());
                out.extend_from_slice(&b.timestamp.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Parses a snapshot; returns the state and the offset it was taken at.
    pub fn decode_snapshot(bytes: &[u8], path: &Path) -> Result<(Self, i64), StorageError> {
        let bad = |reason: &str| StorageError::corrupt_file(path, reason);
        if bytes.len() < 22 || &bytes[..4] != SNAPSHOT_MAGIC {
            return Err(bad("bad header"));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32c::crc32c(body).to_be_bytes() != crc {
            return Err(bad("crc mismatch"));
        }
        let mut r = Reader { buf: &body[4..] };
        if r.u16()? != SNAPSHOT_VERSION {
            return Err(bad("unknown version"));
        }
        let offset = r.i64()?;
        let count = r.u32()?;
        let mut state = Self::new();
        for _ in 0..count {
            let id = r.i64()?;
            let epoch = r.u16()? as i16;
            let n = r.u8()?;
            let mut batches = VecDeque::with_capacity(usize::from(n));
            for _ in 0..n {
                batches.push_back(BatchMetadata {
                    first_seq: r.u32()? as i32,
                    last_seq: r.u32()? as i32,
                    first_offset: r.i64()?,
                    last_offset: r.i64()?,
                    timestamp: r.i64()?,
                });
            }
            state.producers.insert(id, ProducerEntry { epoch, batches });
        }
        if !r.buf.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok((state, offset))
    }

    /// Writes `<offset>.snapshot` atomically.
    pub fn write_snapshot(&self, dir: &Path, offset: i64) -> Result<(), StorageError> {
        checkpoint::write_atomic(dir, &snapshot_name(offset), &self.encode_snapshot(offset))
    }
}

/// Name of the snapshot taken at `offset`.
pub fn snapshot_name(offset: i64) -> String {
    format!("{offset:020}{SNAPSHOT_SUFFIX}")
}

/// Snapshot files in `dir`, sorted by offset.
pub(crate) fn list_snapshots(dir: &Path) -> Result<Vec<(i64, PathBuf)>, StorageError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).ctx("list", dir)? {
        let entry = entry.ctx("list", dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(SNAPSHOT_SUFFIX) {
            if let Ok(offset) = stem.parse::<i64>() {
                out.push((offset, entry.path()));
            }
        }
    }
    out.sort_unstable_by_key(|(o, _)| *o);
    Ok(out)
}

/// Loads the newest readable snapshot at or below `max_offset`, deleting newer and
/// unreadable ones. Returns an empty state at `None` when there is none.
pub(crate) fn load_latest(
    dir: &Path,
    max_offset: i64,
) -> Result<(ProducerStateManager, Option<i64>), StorageError> {
    for (offset, path) in list_snapshots(dir)?.into_iter().rev() {
        if offset > max_offset {
            crate::index_file::remove_if_exists(&path)?;
            continue;
        }
        let bytes = std::fs::read(&path).ctx("read", &path)?;
        match ProducerStateManager::decode_snapshot(&bytes, &path) {
            Ok((state, at)) if at == offset => return Ok((state, Some(offset))),
            _ => crate::index_file::remove_if_exists(&path)?,
        }
    }
    Ok((ProducerStateManager::new(), None))
}

/// Deletes snapshots below `min_offset` except the newest one, and all above `max_offset`.
pub(crate) fn prune_snapshots(
    dir: &Path,
    min_offset: i64,
    max_offset: i64,
) -> Result<(), StorageError> {
    let snapshots = list_snapshots(dir)?;
    let newest_keepable = snapshots
        .iter()
        .rev()
        .find(|(o, _)| *o <= max_offset)
        .map(|(o, _)| *o);
    for (offset, path) in snapshots {
        let too_new = offset > max_offset;
        let too_old = offset < min_offset && Some(offset) != newest_keepable;
        if too_new || too_old {
            crate::index_file::remove_if_exists(&path)?;
        }
    }
    Ok(())
}

/// One append's producer checks, staged apart from the committed state.
pub struct ProducerAppend<'a> {
    base: &'a ProducerStateManager,
    staged: HashMap<i64, ProducerEntry>,
}

impl ProducerAppend<'_> {
    /// Checks `header` (to be written at `first_offset`). `Ok(Some(original))` marks a
    /// duplicate of an already written batch; `Ok(None)` stages the batch.
    pub fn check(
        &mut self,
        header: &BatchHeader<'_>,
        first_offset: i64,
    ) -> Result<Option<BatchMetadata>, StorageError> {
        if !header.has_producer_sequence() {
            return Ok(None);
        }
        let id = header.producer_id();
        let known = self.staged.get(&id).or_else(|| self.base.get(id));
        if let Some(entry) = known {
            if let Some(dup) = check_sequence(entry, header)? {
                return Ok(Some(dup));
            }
        }
        let mut entry = known.cloned().unwrap_or_default();
        apply_to(&mut entry, header, first_offset);
        self.staged.insert(id, entry);
        Ok(None)
    }

    /// Stages `header` written at `first_offset` without checks (a follower records what
    /// its leader accepted).
    pub fn record(&mut self, header: &BatchHeader<'_>, first_offset: i64) {
        if !header.has_producer_sequence() {
            return;
        }
        let id = header.producer_id();
        let mut entry = match self.staged.remove(&id) {
            Some(entry) => entry,
            None => self.base.get(id).cloned().unwrap_or_default(),
        };
        apply_to(&mut entry, header, first_offset);
        self.staged.insert(id, entry);
    }

    pub fn into_staged(self) -> HashMap<i64, ProducerEntry> {
        self.staged
    }
}

fn check_sequence(
    entry: &ProducerEntry,
    header: &BatchHeader<'_>,
) -> Result<Option<BatchMetadata>, StorageError> {
    let producer_id = header.producer_id();
    let epoch = header.producer_epoch();
    let first_seq = header.base_sequence();
    if epoch < entry.epoch {
        return Err(StorageError::InvalidProducerEpoch {
            producer_id,
            epoch,
            current_epoch: entry.epoch,
        });
    }
    if epoch > entry.epoch {
        if first_seq != 0 {
            return Err(StorageError::OutOfOrderSequence {
                producer_id,
                expected: 0,
                got: first_seq,
            });
        }
        return Ok(None);
    }
    let last_seq = seq_add(first_seq, header.last_offset_delta());
    if let Some(dup) = entry
        .batches
        .iter()
        .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
    {
        return Ok(Some(*dup));
    }
    if let Some(last) = entry.batches.back() {
        let expected = seq_add(last.last_seq, 1);
        if first_seq != expected {
            return Err(StorageError::OutOfOrderSequence {
                producer_id,
                expected,
                got: first_seq,
            });
        }
    }
    Ok(None)
}

fn apply_to(entry: &mut ProducerEntry, header: &BatchHeader<'_>, first_offset: i64) {
    if header.producer_epoch() != entry.epoch {
        entry.epoch = header.producer_epoch();
        entry.batches.clear();
    }
    let delta = header.last_offset_delta();
    entry.batches.push_back(BatchMetadata {
        first_seq: header.base_sequence(),
        last_seq: seq_add(header.base_sequence(), delta),
        first_offset,
        last_offset: first_offset + i64::from(delta),
        timestamp: header.max_timestamp(),
    });
    while entry.batches.len() > PRODUCER_BATCHES_CACHED_MAX {
        entry.batches.pop_front();
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], StorageError> {
        if self.buf.len() < N {
            return Err(StorageError::corrupt_file(
                Path::new("snapshot"),
                "truncated",
            ));
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[..N]);
        self.buf = &self.buf[N..];
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, StorageError> {
        Ok(self.take::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, StorageError> {
        self.take().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Result<u32, StorageError> {
        self.take().map(u32::from_be_bytes)
    }
    fn i64(&mut self) -> Result<i64, StorageError> {
        self.take().map(i64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{build_batch, ProducerFields, TestRecord};

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(seq_add(i32::MAX, 1), 0);
        assert_eq!(seq_add(i32::MAX - 1, 3), 1);
        assert_eq!(seq_add(5, 2), 7);
    }

    #[test]
    fn snapshot_round_trips_and_detects_corruption() {
        let mut state = ProducerStateManager::new();
        for (id, seq) in [(1i64, 0i32), (1, 1), (2, 10)] {
            let p = ProducerFields {
                producer_id: id,
                producer_epoch: 3,
                base_sequence: seq,
            };
            let batch = build_batch(&[TestRecord::new(Some(b"k"), Some(b"v"), 9)], p);
            state.apply(&BatchHeader::parse(&batch, 0).unwrap(), i64::from(seq) * 10);
        }
        let bytes = state.encode_snapshot(77);
        let (decoded, offset) =
            ProducerStateManager::decode_snapshot(&bytes, Path::new("x")).unwrap();
        assert_eq!((decoded, offset), (state, 77));
        let mut bad = bytes.clone();
        bad[10] ^= 1;
        assert!(ProducerStateManager::decode_snapshot(&bad, Path::new("x")).is_err());
        assert!(ProducerStateManager::decode_snapshot(&bytes[..5], Path::new("x")).is_err());
    }
}
