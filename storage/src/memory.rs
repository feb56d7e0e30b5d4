//! [`MemoryLog`]: an in-memory [`Log`] with the same semantics as [`crate::PartitionLog`]
//! (segments roll by size and age, retention deletes sealed segments, compaction cleans
//! sealed segments, the leader-epoch cache follows every change), for fast tests and
//! simulation. Nothing survives a drop.

use bytes::{Bytes, BytesMut};

use crate::append_plan::{empty_append, plan_append, plan_replicated, AppendPlan, LogView, Plan};
use crate::batch::{self, BatchHeader};
use crate::compaction::{clean_batch, KeyMap};
use crate::config::LogConfig;
use crate::epoch_cache::LeaderEpochCache;
use crate::error::StorageError;
use crate::producer_state::ProducerStateManager;
use crate::retention::retention_victims;
use crate::segment::first_record_at_or_after;
use crate::{AppendInfo, CompactionStats, Log};

struct MemBatch {
    base_offset: i64,
    last_offset: i64,
    bytes: Bytes,
}

impl MemBatch {
    fn header(&self) -> Result<BatchHeader<'_>, StorageError> {
        BatchHeader::parse(&self.bytes, 0)
    }
}

struct MemSegment {
    base_offset: i64,
    batches: Vec<MemBatch>,
    size_bytes: u64,
    first_append_ms: Option<i64>,
    max_timestamp: i64,
}

impl MemSegment {
    fn new(base_offset: i64) -> Self {
        MemSegment {
            base_offset,
            batches: Vec::new(),
            size_bytes: 0,
            first_append_ms: None,
            max_timestamp: -1,
        }
    }

    fn recompute(&mut self) -> Result<(), StorageError> {
        self.size_bytes = self.batches.iter().map(|b| b.bytes.len() as u64).sum();
        self.max_timestamp = -1;
        for b in &self.batches {
            self.max_timestamp = self.max_timestamp.max(b.header()?.max_timestamp());
        }
        Ok(())
    }
}

/// A partition log held in memory.
pub struct MemoryLog {
    config: LogConfig,
    /// Oldest first; the last one is active.
    segments: Vec<MemSegment>,
    log_start_offset: i64,
    log_end_offset: i64,
    producers: ProducerStateManager,
    epochs: LeaderEpochCache,
}

impl MemoryLog {
    pub fn new(config: LogConfig) -> Result<Self, StorageError> {
        config.validate()?;
        Ok(MemoryLog {
            config,
            segments: vec![MemSegment::new(0)],
            log_start_offset: 0,
            log_end_offset: 0,
            producers: ProducerStateManager::new(),
            epochs: LeaderEpochCache::new(),
        })
    }

    pub fn leader_epoch_cache(&self) -> &LeaderEpochCache {
        &self.epochs
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

    /// Stores a validated plan (leader or follower) in the active segment.
    fn write_plan(&mut self, plan: AppendPlan, batches: &[u8], now_ms: i64) -> AppendInfo {
        if self.should_roll(plan.total_bytes, plan.info.last_offset, now_ms) {
            self.segments.push(MemSegment::new(self.log_end_offset));
        }
        let last = self.segments.len() - 1;
        let active = &mut self.segments[last];
        for planned in &plan.batches {
            let source = planned.source(batches);
            let mut bytes = Vec::with_capacity(source.len());
            bytes.extend_from_slice(&batch::patched_prefix(
                source,
                planned.base_offset,
                planned.partition_leader_epoch,
            ));
            bytes.extend_from_slice(&source[16..]);
            active.size_bytes += bytes.len() as u64;
            active.max_timestamp = active.max_timestamp.max(planned.max_timestamp);
            active.batches.push(MemBatch {
                base_offset: planned.base_offset,
                last_offset: planned.last_offset,
                bytes: Bytes::from(bytes),
            });
        }
        active.first_append_ms.get_or_insert(now_ms);
        self.log_end_offset = plan.next_offset();
        self.producers.commit(plan.producers);
        for e in &plan.new_epochs {
            self.epochs.assign(e.epoch, e.start_offset);
        }
        plan.info
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    fn active(&self) -> &MemSegment {
        &self.segments[self.segments.len() - 1]
    }

    fn should_roll(&self, append_bytes: usize, last_offset: i64, now_ms: i64) -> bool {
        let active = self.active();
        if active.batches.is_empty() {
            return false;
        }
        active.size_bytes + append_bytes as u64 > self.config.segment_bytes
            || active
                .first_append_ms
                .is_some_and(|t| now_ms.saturating_sub(t) > self.config.segment_ms)
            || last_offset - active.base_offset > i64::from(u32::MAX)
    }

    /// Batches from the one holding `offset` on, in log order.
    fn batches_from(&self, offset: i64) -> impl Iterator<Item = &MemBatch> {
        self.segments
            .iter()
            .flat_map(|s| s.batches.iter())
            .filter(move |b| b.last_offset >= offset)
    }

    fn replay_producers(&mut self) -> Result<(), StorageError> {
        let mut state = ProducerStateManager::new();
        for b in self.batches_from(self.log_start_offset) {
            state.apply(&b.header()?, b.base_offset);
        }
        self.producers = state;
        Ok(())
    }

    fn reset_at(&mut self, offset: i64) {
        self.segments = vec![MemSegment::new(offset)];
        self.log_start_offset = offset;
        self.log_end_offset = offset;
        self.producers = ProducerStateManager::new();
        self.epochs.clear();
    }

    fn delete_oldest(&mut self, count: usize) {
        let count = count.min(self.segments.len() - 1);
        self.segments.drain(..count);
        self.log_start_offset = self.log_start_offset.max(self.segments[0].base_offset);
        self.producers.remove_before(self.log_start_offset);
        self.epochs.truncate_from_start(self.log_start_offset);
    }
}

impl Log for MemoryLog {
    fn append(
        &mut self,
        batches: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        match plan_append(batches, &self.view(), leader_epoch, now_ms)? {
            Plan::Duplicate(info) => Ok(info),
            Plan::Write(plan) => Ok(self.write_plan(plan, batches, now_ms)),
        }
    }

    fn append_replicated(
        &mut self,
        batches: &[u8],
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        if batches.is_empty() {
            return Ok(empty_append(self.log_start_offset, self.log_end_offset));
        }
        let plan = plan_replicated(batches, &self.view())?;
        Ok(self.write_plan(plan, batches, now_ms))
    }

    fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epochs.end_offset_for(epoch, self.log_end_offset)
    }

    fn read(&self, offset: i64, max_bytes: usize, max_offset: i64) -> Result<Bytes, StorageError> {
        if offset < self.log_start_offset || offset > self.log_end_offset {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset,
            });
        }
        let start = self
            .segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1);
        for segment in &self.segments[start..] {
            let mut batches = segment
                .batches
                .iter()
                .skip_while(|b| b.last_offset < offset)
                .peekable();
            if batches.peek().is_none() {
                continue;
            }
            let mut out = BytesMut::new();
            for b in batches {
                if b.last_offset >= max_offset
                    || (!out.is_empty() && out.len() + b.bytes.len() > max_bytes)
                {
                    break;
                }
                out.extend_from_slice(&b.bytes);
            }
            return Ok(out.freeze());
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
        for b in self.batches_from(self.log_start_offset) {
            let header = b.header()?;
            if header.max_timestamp() >= ts {
                if let Some(hit) = first_record_at_or_after(&header, ts, self.log_start_offset)? {
                    return Ok(Some(hit));
                }
            }
        }
        Ok(None)
    }

    fn max_timestamp(&self) -> Result<Option<(i64, i64)>, StorageError> {
        let mut best: Option<(i64, &MemBatch)> = None;
        for b in self.batches_from(self.log_start_offset) {
            let ts = b.header()?.max_timestamp();
            if ts >= 0 && best.is_none_or(|(t, _)| ts > t) {
                best = Some((ts, b));
            }
        }
        match best {
            Some((ts, b)) => first_record_at_or_after(&b.header()?, ts, self.log_start_offset),
            None => Ok(None),
        }
    }

    fn truncate_to(&mut self, offset: i64) -> Result<(), StorageError> {
        if offset >= self.log_end_offset {
            return Ok(());
        }
        if offset <= self.log_start_offset {
            self.reset_at(offset);
            return Ok(());
        }
        let seg = self.segments.partition_point(|s| s.base_offset <= offset) - 1;
        let segment = &mut self.segments[seg];
        if segment.base_offset == offset {
            self.segments.truncate(seg);
            self.segments.push(MemSegment::new(offset));
        } else {
            let Some(cut) = segment.batches.iter().position(|b| b.base_offset == offset) else {
                return Err(StorageError::NotBatchBoundary { offset });
            };
            segment.batches.truncate(cut);
            segment.recompute()?;
            self.segments.truncate(seg + 1);
        }
        self.log_end_offset = offset;
        self.epochs.truncate_from_end(offset);
        self.replay_producers()
    }

    fn delete_records(&mut self, offset: i64) -> Result<i64, StorageError> {
        if offset < 0 || offset > self.log_end_offset {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset,
            });
        }
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            let below = self
                .segments
                .windows(2)
                .take_while(|p| p[1].base_offset <= offset)
                .count();
            self.delete_oldest(below);
        }
        Ok(self.log_start_offset)
    }

    fn apply_retention(&mut self, now_ms: i64) -> Result<usize, StorageError> {
        if !self.config.delete {
            return Ok(0);
        }
        let sealed: Vec<(i64, u64)> = self.segments[..self.segments.len() - 1]
            .iter()
            .map(|s| (s.max_timestamp, s.size_bytes))
            .collect();
        let victims = retention_victims(
            &sealed,
            self.size_bytes(),
            self.config.retention_ms,
            self.config.retention_bytes,
            now_ms,
        );
        self.delete_oldest(victims);
        Ok(victims)
    }

    fn maybe_flush(&mut self, _now_ms: i64) -> Result<(), StorageError> {
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    fn close(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size_bytes).sum()
    }

    fn update_config(&mut self, config: LogConfig) -> Result<(), StorageError> {
        config.validate()?;
        self.config = config;
        Ok(())
    }

    fn compact(&mut self, now_ms: i64) -> Result<CompactionStats, StorageError> {
        let mut stats = CompactionStats::default();
        if !self.config.compact || self.segments.len() < 2 {
            return Ok(stats);
        }
        let sealed = self.segments.len() - 1;
        let mut keys = KeyMap::default();
        for b in self.segments[..sealed].iter().flat_map(|s| &s.batches) {
            keys.add_batch(&b.header()?)?;
        }
        let horizon = now_ms.saturating_sub(self.config.delete_retention_ms);
        for segment in &mut self.segments[..sealed] {
            let before = stats.records_removed;
            let mut kept = Vec::with_capacity(segment.batches.len());
            for b in &segment.batches {
                let mut out = Vec::new();
                clean_batch(&b.header()?, &keys, horizon, &mut out, &mut stats)?;
                stats.bytes_before += b.bytes.len() as u64;
                stats.bytes_after += out.len() as u64;
                if !out.is_empty() {
                    kept.push(MemBatch {
                        base_offset: b.base_offset,
                        last_offset: b.last_offset,
                        bytes: Bytes::from(out),
                    });
                }
            }
            if stats.records_removed != before {
                segment.batches = kept;
                segment.recompute()?;
                stats.segments_cleaned += 1;
            }
        }
        Ok(stats)
    }

    fn producer_state(&self) -> &ProducerStateManager {
        &self.producers
    }

    fn check_invariants(&self) {
        assert!(
            self.log_start_offset <= self.log_end_offset,
            "log start past log end"
        );
        let mut last = i64::MIN;
        for segment in &self.segments {
            assert!(segment.base_offset > last, "segments overlap");
            for b in &segment.batches {
                assert!(b.base_offset > last, "offsets must strictly increase");
                assert!(b.base_offset >= segment.base_offset);
                last = b.last_offset;
            }
            last = last.max(segment.base_offset - 1);
        }
        assert!(last < self.log_end_offset, "batch past log end");
        self.epochs
            .check_invariants(self.log_start_offset, self.log_end_offset);
    }
}
