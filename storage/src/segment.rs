//! One segment: `<base>.log` with its `.index` and `.timeindex`.
//!
//! Reads hand out `Bytes` backed by a read-only mmap of the log file. The file is never
//! shrunk below bytes a reader could have seen: truncation rewrites the kept prefix into a
//! new file and renames it over the old one (outstanding maps keep the old inode alive);
//! only bytes past the logical end (a failed partial write) are cut with `set_len`.

use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use memmap2::{Mmap, MmapOptions};

use crate::append_plan::AppendPlan;
use crate::batch::{self, BatchHeader, BatchIter};
use crate::checkpoint;
use crate::config::LogConfig;
use crate::error::{IoContext, StorageError};
use crate::failpoints::{self, FailPoint};
use crate::index::OffsetIndex;
use crate::index_file::remove_if_exists;
use crate::records::BatchRecords;
use crate::time_index::TimeIndex;

pub(crate) const LOG_SUFFIX: &str = ".log";
pub(crate) const INDEX_SUFFIX: &str = ".index";
pub(crate) const TIME_INDEX_SUFFIX: &str = ".timeindex";

/// `<dir>/<base offset, 20 digits><suffix>`.
pub(crate) fn segment_path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}{suffix}"))
}

/// Keeps the mapping alive for as long as any `Bytes` slice of it.
struct MapOwner(Arc<Mmap>);

impl AsRef<[u8]> for MapOwner {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

pub(crate) struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    /// Append handle; `Some` only while the segment is active.
    writer: Option<File>,
    /// Logical end of the log file: bytes below it are whole valid batches.
    size_bytes: u64,
    pub(crate) offset_index: OffsetIndex,
    pub(crate) time_index: TimeIndex,
    /// Largest batch max timestamp and the base offset of that batch (-1 when empty).
    max_timestamp: i64,
    max_timestamp_offset: i64,
    first_append_ms: Option<i64>,
    bytes_since_index: u64,
    map: Mutex<Option<Arc<Mmap>>>,
    /// Length to map an active segment with, so appends rarely force a remap.
    map_len_hint: u64,
    /// An index file did not exist at open (it must be rebuilt).
    indexes_were_missing: bool,
}

impl Segment {
    /// Creates a new empty active segment (any file with that name is replaced).
    pub fn create(dir: &Path, base_offset: i64, config: &LogConfig) -> Result<Self, StorageError> {
        let log_path = segment_path(dir, base_offset, LOG_SUFFIX);
        let writer = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .ctx("create segment", &log_path)?;
        drop(writer);
        let offset_index = OffsetIndex::create(
            &segment_path(dir, base_offset, crate::segment::INDEX_SUFFIX),
            base_offset,
            config.segment_index_bytes,
        )?;
        let time_index = TimeIndex::create(
            &segment_path(dir, base_offset, TIME_INDEX_SUFFIX),
            base_offset,
            config.segment_index_bytes,
        )?;
        let mut segment = Self::assemble(base_offset, log_path, 0, offset_index, time_index);
        segment.activate(config)?;
        Ok(segment)
    }

    /// Opens an existing segment without reading its log data; indexes are trusted.
    pub fn open(dir: &Path, base_offset: i64) -> Result<Self, StorageError> {
        let log_path = segment_path(dir, base_offset, LOG_SUFFIX);
        let size_bytes = std::fs::metadata(&log_path)
            .ctx("stat segment", &log_path)?
            .len();
        let index_path = segment_path(dir, base_offset, INDEX_SUFFIX);
        let time_index_path = segment_path(dir, base_offset, TIME_INDEX_SUFFIX);
        let missing = !index_path.exists() || !time_index_path.exists();
        let offset_index = OffsetIndex::open(&index_path, base_offset, None)?;
        let time_index = TimeIndex::open(&time_index_path, base_offset, None)?;
        let mut segment =
            Self::assemble(base_offset, log_path, size_bytes, offset_index, time_index);
        segment.indexes_were_missing = missing;
        if let Some((ts, offset)) = segment.time_index.last() {
            segment.max_timestamp = ts;
            segment.max_timestamp_offset = offset;
        }
        Ok(segment)
    }

    fn assemble(
        base_offset: i64,
        log_path: PathBuf,
        size_bytes: u64,
        offset_index: OffsetIndex,
        time_index: TimeIndex,
    ) -> Self {
        Segment {
            base_offset,
            log_path,
            writer: None,
            size_bytes,
            offset_index,
            time_index,
            max_timestamp: -1,
            max_timestamp_offset: -1,
            first_append_ms: None,
            bytes_since_index: 0,
            map: Mutex::new(None),
            map_len_hint: size_bytes,
            indexes_were_missing: false,
        }
    }

    /// Makes the segment writable: open the append handle and regrow the indexes.
    pub fn activate(&mut self, config: &LogConfig) -> Result<(), StorageError> {
        let writer = OpenOptions::new()
            .append(true)
            .open(&self.log_path)
            .ctx("open segment", &self.log_path)?;
        self.writer = Some(writer);
        self.offset_index
            .reopen_for_append(config.segment_index_bytes)?;
        self.time_index
            .reopen_for_append(config.segment_index_bytes)?;
        self.map_len_hint = config
            .segment_bytes
            .saturating_add(u64::from(config.max_message_bytes))
            .max(self.size_bytes);
        Ok(())
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }
    pub fn is_empty(&self) -> bool {
        self.size_bytes == 0
    }
    pub fn is_active(&self) -> bool {
        self.writer.is_some()
    }
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }
    pub fn max_timestamp_offset(&self) -> i64 {
        self.max_timestamp_offset
    }
    pub fn indexes_were_missing(&self) -> bool {
        self.indexes_were_missing
    }
    pub fn set_first_append_ms(&mut self, now_ms: i64) {
        self.first_append_ms.get_or_insert(now_ms);
    }

    /// Should the next append of `append_bytes` ending at `last_offset` go to a new segment?
    pub fn should_roll(
        &self,
        config: &LogConfig,
        append_bytes: usize,
        last_offset: i64,
        now_ms: i64,
    ) -> bool {
        if self.is_empty() {
            return false;
        }
        let too_big = self.size_bytes + append_bytes as u64 > config.segment_bytes;
        let too_old = self
            .first_append_ms
            .is_some_and(|t| now_ms.saturating_sub(t) > config.segment_ms);
        let index_full = self.offset_index.is_full() || self.time_index.is_full();
        let offset_overflow = last_offset - self.base_offset > i64::from(u32::MAX);
        too_big || too_old || index_full || offset_overflow
    }

    /// Writes the planned batches (patched headers from the stack, bodies from `input`)
    /// and indexes them. On error nothing past the old end stays in the file.
    pub fn append(
        &mut self,
        plan: &AppendPlan,
        input: &[u8],
        config: &LogConfig,
    ) -> Result<(), StorageError> {
        let prefixes: Vec<[u8; 16]> = plan
            .batches
            .iter()
            .map(|b| {
                batch::patched_prefix(b.source(input), b.base_offset, b.partition_leader_epoch)
            })
            .collect();
        let mut slices = Vec::with_capacity(plan.batches.len() * 2);
        for (b, prefix) in plan.batches.iter().zip(&prefixes) {
            slices.push(IoSlice::new(prefix));
            slices.push(IoSlice::new(&b.source(input)[16..]));
        }
        if let Err(e) = self.write_all(&mut slices) {
            self.rollback_partial_write()?;
            return Err(e);
        }
        let mut position = self.size_bytes;
        for b in &plan.batches {
            let len = b.source(input).len() as u64;
            self.index_batch(b.base_offset, position, b.max_timestamp, len, config);
            position += len;
        }
        self.size_bytes = position;
        Ok(())
    }

    fn write_all(&mut self, slices: &mut [IoSlice<'_>]) -> Result<(), StorageError> {
        let writer = self.writer.as_mut().ok_or_else(|| StorageError::Io {
            op: "append to sealed segment",
            path: self.log_path.clone(),
            source: std::io::ErrorKind::PermissionDenied.into(),
        })?;
        let mut slices = slices;
        if failpoints::should_fail(FailPoint::AppendPartialWrite) {
            let half = slices.iter().map(|s| s.len()).sum::<usize>() / 2;
            let first = &slices[0][..half.min(slices[0].len())];
            writer.write_all(first).ctx("append", &self.log_path)?;
            return Err(StorageError::Io {
                op: "append",
                path: self.log_path.clone(),
                source: std::io::Error::from_raw_os_error(28), // ENOSPC
            });
        }
        while !slices.is_empty() {
            match writer.write_vectored(slices) {
                Ok(0) => {
                    return Err(std::io::Error::from(std::io::ErrorKind::WriteZero))
                        .ctx("append", &self.log_path)
                }
                Ok(n) => IoSlice::advance_slices(&mut slices, n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).ctx("append", &self.log_path),
            }
        }
        Ok(())
    }

    /// Cuts a failed write back to the logical end. Safe with readers: no reader was ever
    /// given bytes at or past `size_bytes`.
    fn rollback_partial_write(&mut self) -> Result<(), StorageError> {
        let writer = self.writer.as_ref().ok_or_else(|| StorageError::Io {
            op: "rollback sealed segment",
            path: self.log_path.clone(),
            source: std::io::ErrorKind::PermissionDenied.into(),
        })?;
        writer
            .set_len(self.size_bytes)
            .ctx("truncate partial write", &self.log_path)
    }

    /// Adds index entries for a batch written at `position` (Kafka's rule: an entry once
    /// more than `index_interval_bytes` were written since the last one).
    pub fn index_batch(
        &mut self,
        base_offset: i64,
        position: u64,
        max_timestamp: i64,
        len: u64,
        config: &LogConfig,
    ) {
        if max_timestamp > self.max_timestamp {
            self.max_timestamp = max_timestamp;
            self.max_timestamp_offset = base_offset;
        }
        if self.bytes_since_index > config.index_interval_bytes {
            let pos = u32::try_from(position).unwrap_or(u32::MAX);
            if self.offset_index.append(base_offset, pos) {
                self.time_index
                    .maybe_append(self.max_timestamp, self.max_timestamp_offset);
            }
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += len;
    }

    /// fsync of the log data.
    pub fn flush(&self) -> Result<(), StorageError> {
        if let Some(w) = &self.writer {
            checkpoint::fsync(w, &self.log_path)?;
        }
        Ok(())
    }

    /// msync of both indexes.
    pub fn flush_indexes(&self) -> Result<(), StorageError> {
        self.offset_index.flush()?;
        self.time_index.flush()
    }

    /// Makes the segment read-only: final time index entry, indexes trimmed, data fsynced.
    pub fn seal(&mut self) -> Result<(), StorageError> {
        self.trim_indexes()?;
        self.flush()?;
        self.writer = None;
        Ok(())
    }

    /// Adds the largest timestamp to the time index and trims both index files.
    pub fn trim_indexes(&mut self) -> Result<(), StorageError> {
        if self.max_timestamp >= 0 {
            self.time_index
                .maybe_append(self.max_timestamp, self.max_timestamp_offset);
        }
        self.offset_index.trim()?;
        self.time_index.trim()
    }

    /// A mapping covering at least `end` bytes.
    fn mapping(&self, end: u64) -> Result<Arc<Mmap>, StorageError> {
        let mut guard = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(map) = guard.as_ref() {
            if map.len() as u64 >= end {
                return Ok(Arc::clone(map));
            }
        }
        let file = File::open(&self.log_path).ctx("open segment", &self.log_path)?;
        let len = self.map_len_hint.max(end);
        let len = usize::try_from(len)
            .map_err(|_| StorageError::corrupt_file(&self.log_path, "too large to map"))?;
        // SAFETY: the log file belongs to this partition directory and is only appended to
        // or replaced by rename, never shrunk below bytes handed to readers. Callers touch
        // only bytes below `size_bytes`, which exist in the file; the mapping may extend
        // past the end of the file (active segment) but those pages are never accessed.
        let map = Arc::new(
            unsafe { MmapOptions::new().len(len).map(&file) }
                .ctx("mmap segment", &self.log_path)?,
        );
        *guard = Some(Arc::clone(&map));
        Ok(map)
    }

    /// The valid bytes of the segment as a zero-copy `Bytes`.
    pub fn bytes(&self) -> Result<Bytes, StorageError> {
        if self.size_bytes == 0 {
            return Ok(Bytes::new());
        }
        let map = self.mapping(self.size_bytes)?;
        Ok(Bytes::from_owner(MapOwner(map)).slice(..self.size_bytes as usize))
    }

    /// Position of the first batch whose last offset is `>= offset`, or `None`.
    pub fn locate(&self, data: &[u8], offset: i64) -> Result<Option<usize>, StorageError> {
        let start = self
            .offset_index
            .lookup(offset)
            .map_or(0, |(_, pos)| pos as usize);
        if start > data.len() {
            return Err(StorageError::corrupt_file(
                self.offset_index.path(),
                "entry past log end",
            ));
        }
        for item in BatchIter::new(&data[start..]) {
            let (at, header) = item?;
            if header.last_offset() >= offset {
                return Ok(Some(start + at));
            }
        }
        Ok(None)
    }

    /// Whole batches from the one containing `offset`: at least one batch (even if larger
    /// than `max_bytes`), only batches with last offset `< max_offset`. `None` if no batch
    /// of this segment reaches `offset`.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
    ) -> Result<Option<Bytes>, StorageError> {
        let data = self.bytes()?;
        let Some(start) = self.locate(&data, offset)? else {
            return Ok(None);
        };
        let mut end = start;
        for item in BatchIter::new(&data[start..]) {
            let (_, header) = item?;
            if header.last_offset() >= max_offset {
                break;
            }
            if end > start && end - start + header.total_bytes() > max_bytes {
                break;
            }
            end += header.total_bytes();
        }
        Ok(Some(data.slice(start..end)))
    }

    /// The first record at or after `min_offset` with timestamp `>= ts`.
    pub fn find_offset_for_timestamp(
        &self,
        ts: i64,
        min_offset: i64,
    ) -> Result<Option<(i64, i64)>, StorageError> {
        if self.max_timestamp < ts {
            return Ok(None);
        }
        let from = self
            .time_index
            .lookup_before(ts)
            .map_or(self.base_offset, |(_, o)| o)
            .max(min_offset);
        let data = self.bytes()?;
        let Some(start) = self.locate(&data, from)? else {
            return Ok(None);
        };
        for item in BatchIter::new(&data[start..]) {
            let (_, header) = item?;
            if header.max_timestamp() < ts || header.last_offset() < min_offset {
                continue;
            }
            if let Some(hit) = first_record_at_or_after(&header, ts, min_offset)? {
                return Ok(Some(hit));
            }
        }
        Ok(None)
    }

    /// Visits every batch whose last offset is `>= from` (framing checked, not CRC).
    pub fn for_each_batch_from(
        &self,
        from: i64,
        mut f: impl FnMut(&BatchHeader<'_>),
    ) -> Result<(), StorageError> {
        let data = self.bytes()?;
        let Some(start) = self.locate(&data, from)? else {
            return Ok(());
        };
        for item in BatchIter::new(&data[start..]) {
            let (_, header) = item?;
            f(&header);
        }
        Ok(())
    }

    /// Replaces the log file with its first `keep_bytes` (new file + rename, so readers of
    /// the old file are unaffected) and rebuilds the indexes. The segment becomes active.
    pub fn truncate_bytes(
        &mut self,
        dir: &Path,
        keep_bytes: u64,
        config: &LogConfig,
    ) -> Result<(), StorageError> {
        failpoints::check(FailPoint::Truncate)?;
        let data = self.bytes()?;
        let tmp = self.log_path.with_extension("log.truncating");
        {
            let mut file = File::create(&tmp).ctx("create", &tmp)?;
            file.write_all(&data[..keep_bytes as usize])
                .ctx("write", &tmp)?;
            checkpoint::fsync(&file, &tmp)?;
        }
        std::fs::rename(&tmp, &self.log_path).ctx("rename", &self.log_path)?;
        checkpoint::fsync_dir(dir)?;
        *self.map.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.size_bytes = keep_bytes;
        self.rebuild_indexes(dir, config)?;
        self.activate(config)
    }

    /// Recreates both indexes from the log data (framing only: data already validated).
    pub fn rebuild_indexes(&mut self, dir: &Path, config: &LogConfig) -> Result<(), StorageError> {
        self.offset_index = OffsetIndex::create(
            &segment_path(dir, self.base_offset, INDEX_SUFFIX),
            self.base_offset,
            config.segment_index_bytes,
        )?;
        self.time_index = TimeIndex::create(
            &segment_path(dir, self.base_offset, TIME_INDEX_SUFFIX),
            self.base_offset,
            config.segment_index_bytes,
        )?;
        self.max_timestamp = -1;
        self.max_timestamp_offset = -1;
        self.bytes_since_index = 0;
        self.indexes_were_missing = false;
        let data = self.bytes()?;
        for item in BatchIter::new(&data) {
            let (at, header) = item?;
            self.index_batch(
                header.base_offset(),
                at as u64,
                header.max_timestamp(),
                header.total_bytes() as u64,
                config,
            );
        }
        Ok(())
    }

    /// Adopts a log file that compaction renamed into place (sealed segment).
    pub fn replace_contents(
        &mut self,
        dir: &Path,
        size_bytes: u64,
        config: &LogConfig,
    ) -> Result<(), StorageError> {
        *self.map.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.size_bytes = size_bytes;
        self.map_len_hint = size_bytes;
        self.rebuild_indexes(dir, config)?;
        self.trim_indexes()
    }

    /// Sets the logical end after recovery validated `valid_bytes` (no reader exists yet,
    /// so shrinking the file is safe here).
    pub fn set_recovered_size(&mut self, valid_bytes: u64) -> Result<(), StorageError> {
        let file = OpenOptions::new()
            .write(true)
            .open(&self.log_path)
            .ctx("open segment", &self.log_path)?;
        file.set_len(valid_bytes)
            .ctx("truncate torn tail", &self.log_path)?;
        *self.map.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.size_bytes = valid_bytes;
        Ok(())
    }

    /// Removes the segment's files.
    pub fn delete(self) -> Result<(), StorageError> {
        let Segment {
            log_path,
            offset_index,
            time_index,
            writer,
            ..
        } = self;
        drop(writer);
        offset_index.delete()?;
        time_index.delete()?;
        remove_if_exists(&log_path)
    }

    /// Invariants: indexes grow and point inside the log; the active segment's file is at
    /// least as long as its logical end.
    pub fn check_invariants(&self) {
        let mut last = (i64::MIN, 0u32);
        for i in 0..self.offset_index.len() {
            let entry = self.offset_index.entry(i);
            assert!(
                i == 0 || (entry.0 > last.0 && entry.1 > last.1),
                "offset index not monotonic"
            );
            assert!(
                u64::from(entry.1) < self.size_bytes,
                "offset index entry past log end"
            );
            last = entry;
        }
        let mut last_ts = i64::MIN;
        for i in 0..self.time_index.len() {
            let (ts, offset) = self.time_index.entry(i);
            assert!(ts > last_ts, "time index not monotonic");
            assert!(
                offset >= self.base_offset,
                "time index offset below segment"
            );
            last_ts = ts;
        }
    }
}

/// Decodes `header`'s records and returns the first with offset `>= min_offset` and
/// timestamp `>= ts`, as `(offset, timestamp)`.
pub(crate) fn first_record_at_or_after(
    header: &BatchHeader<'_>,
    ts: i64,
    min_offset: i64,
) -> Result<Option<(i64, i64)>, StorageError> {
    let records = BatchRecords::new(*header)?;
    for record in records.iter() {
        let record = record?;
        if record.offset >= min_offset && record.timestamp >= ts {
            return Ok(Some((record.offset, record.timestamp)));
        }
    }
    Ok(None)
}
