//! [`PartitionLog`]: the file-backed [`Log`]. This file holds appends, reads, lookups,
//! flushing and truncation; opening lives in `recovery.rs`, deletion in `retention.rs`,
//! cleaning in `compaction.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::append_plan::{empty_append, plan_append, plan_replicated, AppendPlan, LogView, Plan};
use crate::batch::BatchIter;
use crate::checkpoint::{self, RECOVERY_POINT_FILE};
use crate::config::LogConfig;
use crate::epoch_cache::LeaderEpochCache;
use crate::error::StorageError;
use crate::failpoints::{self, FailPoint};
use crate::producer_state::{self, ProducerStateManager};
use crate::segment::{first_record_at_or_after, Segment};
use crate::{AppendInfo, CompactionStats, Log};

/// A partition log stored as segment files in one directory.
pub struct PartitionLog {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    /// Segments by base offset; the last one is the active segment.
    pub(crate) segments: BTreeMap<i64, Segment>,
    pub(crate) log_start_offset: i64,
    pub(crate) log_end_offset: i64,
    /// Offset below which data is known fsynced.
    pub(crate) recovery_point: i64,
    pub(crate) producers: ProducerStateManager,
    /// Leader epoch → first offset; mirrored in `leader-epoch-checkpoint` on every change.
    pub(crate) epochs: LeaderEpochCache,
    pub(crate) unflushed_records: u64,
    pub(crate) last_flush_ms: i64,
    /// Set after a write or fsync failure: the log refuses writes until reopened.
    pub(crate) offline: bool,
}

impl PartitionLog {
    /// Opens (or creates) the log in `dir`, recovering the tail after the recovery point.
    pub fn open(dir: &Path, config: LogConfig, now_ms: i64) -> Result<Self, StorageError> {
        crate::recovery::open(dir, config, now_ms)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.keys().copied().collect()
    }

    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    pub fn leader_epoch_cache(&self) -> &LeaderEpochCache {
        &self.epochs
    }

    /// Applies `change` to the epoch cache and rewrites the checkpoint if it changed.
    pub(crate) fn update_epochs(
        &mut self,
        change: impl FnOnce(&mut LeaderEpochCache) -> bool,
    ) -> Result<(), StorageError> {
        if change(&mut self.epochs) {
            self.epochs.write(&self.dir)?;
        }
        Ok(())
    }

    /// Rebuilds the epoch cache from the leader epochs in the batch headers (the checkpoint
    /// was missing or damaged).
    pub(crate) fn rebuild_epochs(&mut self) -> Result<(), StorageError> {
        let mut epochs = LeaderEpochCache::new();
        for segment in self.segments_from(self.log_start_offset) {
            segment.for_each_batch_from(self.log_start_offset, |header| {
                epochs.assign(header.partition_leader_epoch(), header.base_offset());
            })?;
        }
        self.epochs = epochs;
        Ok(())
    }

    fn view(&self) -> LogView<'_> {
        LogView {
            config: &self.config,
            producers: &self.producers,
            epochs: &self.epochs,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset,
        }
    }

    /// Writes a validated plan (leader or follower), then updates producer state, the
    /// epoch cache (after the data, so a crash in between leaves an epoch that recovery
    /// finds again in the scanned tail) and the flush policy.
    fn write_plan(
        &mut self,
        plan: AppendPlan,
        batches: &[u8],
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        failpoints::check(FailPoint::Append)?;
        if self.active().should_roll(
            &self.config,
            plan.total_bytes,
            plan.info.last_offset,
            now_ms,
        ) {
            let result = self.roll();
            self.guard(result)?;
        }
        let config = self.config.clone();
        let active = self.active_mut();
        match active.append(&plan, batches, &config) {
            Ok(()) => {}
            // The partial write was cut back; the log stays usable (e.g. ENOSPC).
            Err(e @ StorageError::Io { op: "append", .. }) => return Err(e),
            Err(e) => return self.guard(Err(e)),
        }
        self.active_mut().set_first_append_ms(now_ms);
        self.log_end_offset = plan.next_offset();
        self.producers.commit(plan.producers);
        let new_epochs = plan.new_epochs;
        let result = self.update_epochs(|cache| {
            let mut changed = false;
            for e in &new_epochs {
                changed |= cache.assign(e.epoch, e.start_offset);
            }
            changed
        });
        self.guard(result)?;
        self.unflushed_records += u64::from(plan.info.records);
        if self.config.fsync_every_append || self.unflushed_records >= self.config.flush_messages {
            self.flush_data(now_ms)?;
        }
        Ok(plan.info)
    }

    pub(crate) fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a partition log always has an active segment")
    }

    pub(crate) fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a partition log always has an active segment")
    }

    fn ensure_online(&self) -> Result<(), StorageError> {
        if self.offline {
            return Err(StorageError::LogOffline {
                dir: self.dir.clone(),
            });
        }
        Ok(())
    }

    /// Marks the log offline when `result` is an I/O-level failure.
    pub(crate) fn guard<T>(&mut self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        if let Err(StorageError::Io { .. } | StorageError::Injected(_)) = &result {
            self.offline = true;
        }
        result
    }

    /// Seals the active segment and starts a new one at the log end.
    pub(crate) fn roll(&mut self) -> Result<(), StorageError> {
        failpoints::check(FailPoint::Roll)?;
        let new_base = self.log_end_offset;
        self.active_mut().seal()?;
        self.producers.write_snapshot(&self.dir, new_base)?;
        let segment = Segment::create(&self.dir, new_base, &self.config)?;
        self.segments.insert(new_base, segment);
        self.recovery_point = self.recovery_point.max(new_base);
        checkpoint::write_offsets(&self.dir, RECOVERY_POINT_FILE, &[self.recovery_point])?;
        producer_state::prune_snapshots(&self.dir, self.log_start_offset, self.log_end_offset)?;
        Ok(())
    }

    fn flush_data(&mut self, now_ms: i64) -> Result<(), StorageError> {
        let result = self.active().flush();
        self.guard(result)?;
        self.unflushed_records = 0;
        self.last_flush_ms = now_ms;
        Ok(())
    }

    /// Segment holding `offset` (the last with base ≤ offset), then its successors.
    fn segments_from(&self, offset: i64) -> impl Iterator<Item = &Segment> {
        let start = self
            .segments
            .range(..=offset)
            .next_back()
            .map_or(i64::MIN, |(base, _)| *base);
        self.segments.range(start..).map(|(_, s)| s)
    }

    fn out_of_range(&self, offset: i64) -> StorageError {
        StorageError::OffsetOutOfRange {
            offset,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset,
        }
    }

    /// Position of the batch starting exactly at `offset` in its segment.
    fn batch_boundary(&self, offset: i64) -> Result<(i64, u64), StorageError> {
        let not_boundary = StorageError::NotBatchBoundary { offset };
        let (base, segment) = self
            .segments
            .range(..=offset)
            .next_back()
            .ok_or(not_boundary)?;
        if *base == offset {
            return Ok((*base, 0));
        }
        let data = segment.bytes()?;
        match segment.locate(&data, offset)? {
            Some(pos) => {
                let header = crate::batch::BatchHeader::parse(&data[pos..], pos)?;
                if header.base_offset() == offset {
                    return Ok((*base, pos as u64));
                }
                Err(StorageError::NotBatchBoundary { offset })
            }
            None => Err(StorageError::NotBatchBoundary { offset }),
        }
    }

    /// Deletes all segments and starts empty at `offset`.
    pub(crate) fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<(), StorageError> {
        for (_, segment) in std::mem::take(&mut self.segments) {
            segment.delete()?;
        }
        let segment = Segment::create(&self.dir, offset, &self.config)?;
        self.segments.insert(offset, segment);
        self.log_start_offset = offset;
        self.log_end_offset = offset;
        self.recovery_point = offset;
        self.producers.clear();
        // No data is left for any epoch to describe.
        self.update_epochs(LeaderEpochCache::clear)?;
        checkpoint::write_offsets(&self.dir, checkpoint::LOG_START_FILE, &[offset])?;
        checkpoint::write_offsets(&self.dir, RECOVERY_POINT_FILE, &[offset])?;
        producer_state::prune_snapshots(&self.dir, offset, offset)
    }

    fn truncate_inner(&mut self, offset: i64) -> Result<(), StorageError> {
        failpoints::check(FailPoint::Truncate)?;
        if offset >= self.log_end_offset {
            return Ok(());
        }
        if offset <= self.log_start_offset {
            return self.truncate_fully_and_start_at(offset);
        }
        let (base, position) = self.batch_boundary(offset)?;
        let doomed: Vec<i64> = self.segments.range(base..).map(|(b, _)| *b).collect();
        if position == 0 {
            for b in doomed {
                if let Some(s) = self.segments.remove(&b) {
                    s.delete()?;
                }
            }
            let segment = Segment::create(&self.dir, offset, &self.config)?;
            self.segments.insert(offset, segment);
        } else {
            for b in doomed.into_iter().skip(1) {
                if let Some(s) = self.segments.remove(&b) {
                    s.delete()?;
                }
            }
            let dir = self.dir.clone();
            let config = self.config.clone();
            self.active_mut().truncate_bytes(&dir, position, &config)?;
        }
        self.log_end_offset = offset;
        self.recovery_point = self.recovery_point.min(offset);
        checkpoint::write_offsets(&self.dir, RECOVERY_POINT_FILE, &[self.recovery_point])?;
        self.update_epochs(|cache| cache.truncate_from_end(offset))?;
        self.reload_producer_state()
    }

    /// Rebuilds producer state from the newest snapshot at or below the log end plus the
    /// batch headers after it.
    pub(crate) fn reload_producer_state(&mut self) -> Result<(), StorageError> {
        let (mut state, at) = producer_state::load_latest(&self.dir, self.log_end_offset)?;
        let from = at
            .unwrap_or(self.log_start_offset)
            .max(self.log_start_offset);
        for segment in self.segments_from(from) {
            segment.for_each_batch_from(from, |header| {
                if header.base_offset() >= from {
                    state.apply(header, header.base_offset());
                }
            })?;
        }
        state.remove_before(self.log_start_offset);
        self.producers = state;
        Ok(())
    }

    fn write_clean_shutdown(&mut self) -> Result<(), StorageError> {
        let active_size = self.active().size_bytes() as i64;
        checkpoint::write_offsets(
            &self.dir,
            checkpoint::CLEAN_SHUTDOWN_FILE,
            &[self.log_end_offset, active_size],
        )
    }
}

impl Log for PartitionLog {
    fn append(
        &mut self,
        batches: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        self.ensure_online()?;
        match plan_append(batches, &self.view(), leader_epoch, now_ms)? {
            Plan::Duplicate(info) => Ok(info),
            Plan::Write(plan) => self.write_plan(plan, batches, now_ms),
        }
    }

    fn append_replicated(
        &mut self,
        batches: &[u8],
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        self.ensure_online()?;
        if batches.is_empty() {
            return Ok(empty_append(self.log_start_offset, self.log_end_offset));
        }
        let plan = plan_replicated(batches, &self.view())?;
        self.write_plan(plan, batches, now_ms)
    }

    fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epochs.end_offset_for(epoch, self.log_end_offset)
    }

    fn read(&self, offset: i64, max_bytes: usize, max_offset: i64) -> Result<Bytes, StorageError> {
        if offset < self.log_start_offset || offset > self.log_end_offset {
            return Err(self.out_of_range(offset));
        }
        if offset == self.log_end_offset {
            return Ok(Bytes::new());
        }
        for segment in self.segments_from(offset) {
            if let Some(bytes) = segment.read(offset, max_bytes, max_offset)? {
                return Ok(bytes);
            }
        }
        Ok(Bytes::new())
    }

    fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }

    fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, StorageError> {
        for segment in self.segments_from(self.log_start_offset) {
            if let Some(hit) = segment.find_offset_for_timestamp(ts, self.log_start_offset)? {
                return Ok(Some(hit));
            }
        }
        Ok(None)
    }

    fn max_timestamp(&self) -> Result<Option<(i64, i64)>, StorageError> {
        let best = self
            .segments_from(self.log_start_offset)
            .filter(|s| s.max_timestamp() >= 0)
            .fold(None::<&Segment>, |best, s| match best {
                Some(b) if b.max_timestamp() >= s.max_timestamp() => Some(b),
                _ => Some(s),
            });
        let Some(segment) = best else { return Ok(None) };
        let ts = segment.max_timestamp();
        let data = segment.bytes()?;
        let Some(pos) = segment.locate(&data, segment.max_timestamp_offset())? else {
            return Ok(None);
        };
        for item in BatchIter::new(&data[pos..]) {
            let (_, header) = item?;
            if header.max_timestamp() >= ts {
                return first_record_at_or_after(&header, ts, self.log_start_offset);
            }
        }
        Ok(None)
    }

    fn truncate_to(&mut self, offset: i64) -> Result<(), StorageError> {
        self.ensure_online()?;
        let result = self.truncate_inner(offset);
        if let Err(StorageError::NotBatchBoundary { .. }) = result {
            return result;
        }
        self.guard(result)
    }

    fn delete_records(&mut self, offset: i64) -> Result<i64, StorageError> {
        self.ensure_online()?;
        let result = self.delete_records_inner(offset);
        if let Err(StorageError::OffsetOutOfRange { .. }) = result {
            return result;
        }
        self.guard(result)
    }

    fn apply_retention(&mut self, now_ms: i64) -> Result<usize, StorageError> {
        self.ensure_online()?;
        let result = self.apply_retention_inner(now_ms);
        self.guard(result)
    }

    fn maybe_flush(&mut self, now_ms: i64) -> Result<(), StorageError> {
        let due = self.unflushed_records >= self.config.flush_messages
            || (self.unflushed_records > 0
                && now_ms.saturating_sub(self.last_flush_ms) >= self.config.flush_ms);
        if due {
            self.flush()?;
            self.last_flush_ms = now_ms;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        self.ensure_online()?;
        let result = self
            .active()
            .flush()
            .and_then(|_| self.active().flush_indexes());
        self.guard(result)?;
        self.unflushed_records = 0;
        self.recovery_point = self.log_end_offset;
        let result =
            checkpoint::write_offsets(&self.dir, RECOVERY_POINT_FILE, &[self.recovery_point]);
        self.guard(result)
    }

    fn close(&mut self) -> Result<(), StorageError> {
        self.ensure_online()?;
        self.flush()?;
        let result = self
            .producers
            .write_snapshot(&self.dir, self.log_end_offset);
        self.guard(result)?;
        let result = self.active_mut().trim_indexes();
        self.guard(result)?;
        let result = self.write_clean_shutdown();
        self.guard(result)?;
        self.offline = true;
        Ok(())
    }

    fn size_bytes(&self) -> u64 {
        self.segments.values().map(Segment::size_bytes).sum()
    }

    fn update_config(&mut self, config: LogConfig) -> Result<(), StorageError> {
        config.validate()?;
        self.config = config;
        Ok(())
    }

    fn compact(&mut self, now_ms: i64) -> Result<CompactionStats, StorageError> {
        self.ensure_online()?;
        let result = self.compact_inner(now_ms);
        self.guard(result)
    }

    fn producer_state(&self) -> &ProducerStateManager {
        &self.producers
    }

    fn check_invariants(&self) {
        assert!(
            self.log_start_offset <= self.log_end_offset,
            "log start past log end"
        );
        assert!(!self.segments.is_empty(), "no active segment");
        assert!(
            self.recovery_point <= self.log_end_offset,
            "recovery point past log end"
        );
        let mut expected_min = i64::MIN;
        for (base, segment) in &self.segments {
            assert_eq!(*base, segment.base_offset());
            assert!(*base >= expected_min, "segments overlap");
            segment.check_invariants();
            let mut last = *base - 1;
            segment
                .for_each_batch_from(*base, |h| {
                    assert!(h.base_offset() > last, "offsets must strictly increase");
                    last = h.last_offset();
                })
                .expect("segment data readable");
            assert!(last < self.log_end_offset, "batch past log end");
            expected_min = last + 1;
        }
        let active = self.active();
        assert!(
            active.is_active() || self.offline,
            "last segment must be active"
        );
        self.epochs
            .check_invariants(self.log_start_offset, self.log_end_offset);
    }
}
