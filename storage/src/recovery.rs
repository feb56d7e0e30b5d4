//! Opening a partition log: list the directory, finish or discard interrupted compaction
//! swaps, open sealed segments without reading their data, and scan only the segments from
//! the recovery point on (validating every batch, cutting a torn tail, rebuilding indexes).
//! After a clean shutdown nothing is scanned. The leader-epoch cache comes from its
//! checkpoint, topped up from the scanned batches and cut to the recovered log; without a
//! readable checkpoint it is rebuilt from every batch header.

use std::collections::BTreeMap;
use std::path::Path;

use crate::batch;
use crate::checkpoint::{
    self, CLEAN_SHUTDOWN_FILE, LOG_START_FILE, RECOVERY_POINT_FILE, TMP_SUFFIX,
};
use crate::compaction::{CLEANED_SUFFIX, SWAP_SUFFIX};
use crate::config::LogConfig;
use crate::epoch_cache::LeaderEpochCache;
use crate::error::{IoContext, StorageError};
use crate::index_file::remove_if_exists;
use crate::log::PartitionLog;
use crate::segment::{Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};

/// What scanning one segment found.
struct Scan {
    valid_bytes: u64,
    /// Last offset + 1 of the last valid batch, if any.
    next_offset: Option<i64>,
}

pub(crate) fn open(
    dir: &Path,
    config: LogConfig,
    now_ms: i64,
) -> Result<PartitionLog, StorageError> {
    config.validate()?;
    std::fs::create_dir_all(dir).ctx("create dir", dir)?;
    let bases = list_and_tidy(dir)?;
    let clean = read_clean_shutdown(dir);
    let recovery_point = checkpoint::read_offset_or_none(dir, RECOVERY_POINT_FILE).unwrap_or(0);
    let checkpointed_start = checkpoint::read_offset_or_none(dir, LOG_START_FILE);
    let loaded_epochs = read_epoch_cache(dir);
    let rebuild_epochs = loaded_epochs.is_none();
    let mut epochs = loaded_epochs.unwrap_or_default();

    let mut segments = BTreeMap::new();
    for base in &bases {
        segments.insert(*base, Segment::open(dir, *base)?);
    }
    let mut log_end_offset = match clean {
        Some((leo, active_size)) if clean_state_matches(&segments, active_size) => Some(leo),
        _ => None,
    };
    if log_end_offset.is_none() {
        log_end_offset = recover_tail(dir, &config, &mut segments, recovery_point, &mut epochs)?;
    } else {
        check_sealed_indexes(dir, &config, &mut segments)?;
    }
    let first_base = segments.keys().next().copied();
    let mut log = PartitionLog {
        dir: dir.to_path_buf(),
        config,
        segments,
        log_start_offset: 0,
        log_end_offset: 0,
        recovery_point: 0,
        producers: Default::default(),
        epochs,
        unflushed_records: 0,
        last_flush_ms: now_ms,
        offline: false,
    };
    let log_start = checkpointed_start.unwrap_or(0).max(first_base.unwrap_or(0));
    match (first_base, log_end_offset) {
        (Some(_), Some(leo)) if leo >= log_start => {
            log.log_start_offset = log_start;
            log.log_end_offset = leo;
            let config = log.config.clone();
            let active = log.active_mut();
            active.activate(&config)?;
            if !active.is_empty() {
                active.set_first_append_ms(now_ms);
            }
            log.recovery_point = recovery_point.clamp(log_start, leo);
            log.reload_producer_state()?;
        }
        _ => log.truncate_fully_and_start_at(log_start)?,
    }
    settle_epochs(&mut log, rebuild_epochs)?;
    remove_if_exists(&dir.join(CLEAN_SHUTDOWN_FILE))?;
    checkpoint::fsync_dir(dir)?;
    Ok(log)
}

/// The checkpointed epoch cache; `None` (rebuild) when missing or unreadable.
fn read_epoch_cache(dir: &Path) -> Option<LeaderEpochCache> {
    match LeaderEpochCache::read(dir) {
        Ok(cache) => cache,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "leader epoch checkpoint unreadable, rebuilding it from the log");
            None
        }
    }
}

/// Fits the epoch cache to the recovered log (a torn tail may have taken the data of the
/// newest epochs, DeleteRecords may have moved the start) and persists it if it changed.
fn settle_epochs(log: &mut PartitionLog, rebuild: bool) -> Result<(), StorageError> {
    if rebuild {
        log.rebuild_epochs()?;
    }
    let (start, end) = (log.log_start_offset, log.log_end_offset);
    log.update_epochs(|cache| {
        let cut = cache.truncate_from_end(end);
        let clamped = cache.truncate_from_start(start);
        rebuild || cut || clamped
    })
}

/// Lists segment base offsets; completes `.swap` files, deletes `.cleaned`, temp files and
/// index files without a log.
fn list_and_tidy(dir: &Path) -> Result<Vec<i64>, StorageError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).ctx("list", dir)? {
        let entry = entry.ctx("list", dir)?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    for name in &names {
        let path = dir.join(name);
        if name.ends_with(TMP_SUFFIX)
            || name.ends_with(CLEANED_SUFFIX)
            || name.ends_with(".truncating")
        {
            remove_if_exists(&path)?;
        } else if let Some(stem) = name.strip_suffix(SWAP_SUFFIX) {
            // A compaction got as far as the swap: the cleaned copy is complete, install it.
            let target = dir.join(stem);
            std::fs::rename(&path, &target).ctx("rename", &target)?;
            if let Some(base) = stem.strip_suffix(LOG_SUFFIX) {
                // Its indexes describe the old contents: drop them so they are rebuilt.
                remove_if_exists(&dir.join(format!("{base}{INDEX_SUFFIX}")))?;
                remove_if_exists(&dir.join(format!("{base}{TIME_INDEX_SUFFIX}")))?;
            }
        }
    }
    let mut bases = Vec::new();
    for name in &names {
        let Some(stem) = name.strip_suffix(LOG_SUFFIX) else {
            continue;
        };
        if let Ok(base) = stem.parse::<i64>() {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    bases.dedup();
    Ok(bases)
}

fn read_clean_shutdown(dir: &Path) -> Option<(i64, u64)> {
    match checkpoint::read_offsets(dir, CLEAN_SHUTDOWN_FILE) {
        Ok(Some(v)) if v.len() == 2 && v[1] >= 0 => Some((v[0], v[1] as u64)),
        _ => None,
    }
}

fn clean_state_matches(segments: &BTreeMap<i64, Segment>, active_size: u64) -> bool {
    segments
        .values()
        .next_back()
        .is_some_and(|s| s.size_bytes() == active_size)
}

/// Cheap index checks for segments that are not scanned; a failing index is rebuilt.
fn check_sealed_indexes(
    dir: &Path,
    config: &LogConfig,
    segments: &mut BTreeMap<i64, Segment>,
) -> Result<(), StorageError> {
    for segment in segments.values_mut() {
        let sane = !segment.indexes_were_missing()
            && segment.offset_index.looks_sane(segment.size_bytes())
            && segment.time_index.looks_sane();
        if !sane {
            segment.rebuild_indexes(dir, config)?;
            segment.trim_indexes()?;
        }
    }
    Ok(())
}

/// Scans segments from the one holding `recovery_point`; returns the log end offset.
fn recover_tail(
    dir: &Path,
    config: &LogConfig,
    segments: &mut BTreeMap<i64, Segment>,
    recovery_point: i64,
    epochs: &mut LeaderEpochCache,
) -> Result<Option<i64>, StorageError> {
    let first_scanned = segments
        .range(..=recovery_point)
        .next_back()
        .map(|(b, _)| *b)
        .or_else(|| segments.keys().next().copied());
    let Some(first_scanned) = first_scanned else {
        return Ok(None);
    };
    {
        let mut before = BTreeMap::new();
        let mut rest = segments.split_off(&first_scanned);
        std::mem::swap(&mut before, segments);
        check_sealed_indexes(dir, config, &mut before)?;
        segments.append(&mut before);
        segments.append(&mut rest);
    }
    let bases: Vec<i64> = segments.range(first_scanned..).map(|(b, _)| *b).collect();
    let mut next_offset = first_scanned;
    let mut cut_at = None;
    for base in bases {
        let Some(segment) = segments.get_mut(&base) else {
            continue;
        };
        if base < next_offset {
            cut_at = Some(base); // overlaps the previous segment: treat as garbage
            break;
        }
        let scan = scan_segment(segment, base, epochs)?;
        let torn = scan.valid_bytes < segment.size_bytes();
        if torn {
            segment.set_recovered_size(scan.valid_bytes)?;
        }
        segment.rebuild_indexes(dir, config)?;
        segment.trim_indexes()?;
        next_offset = scan.next_offset.unwrap_or(base.max(next_offset));
        if torn {
            cut_at = Some(base + 1);
            break;
        }
    }
    if let Some(cut) = cut_at {
        for base in segments.range(cut..).map(|(b, _)| *b).collect::<Vec<_>>() {
            if let Some(s) = segments.remove(&base) {
                s.delete()?;
            }
        }
    }
    Ok(Some(next_offset))
}

/// Validates every batch (framing, CRC, offsets strictly increasing from `base`) and adds
/// epochs the cache does not know yet (written just before a crash).
fn scan_segment(
    segment: &Segment,
    base: i64,
    epochs: &mut LeaderEpochCache,
) -> Result<Scan, StorageError> {
    let data = segment.bytes()?;
    let mut position = 0usize;
    let mut next_offset = None;
    let mut expected_min = base;
    while position < data.len() {
        let Ok(header) = batch::validate(&data[position..], position) else {
            break;
        };
        if header.base_offset() < expected_min {
            break;
        }
        epochs.assign(header.partition_leader_epoch(), header.base_offset());
        expected_min = header.last_offset() + 1;
        next_offset = Some(expected_min);
        position += header.total_bytes();
    }
    Ok(Scan {
        valid_bytes: position as u64,
        next_offset,
    })
}
