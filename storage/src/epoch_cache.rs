//! The leader-epoch cache (Kafka's `LeaderEpochFileCache`, KIP-101/KIP-279): for each leader
//! epoch seen in the log, the offset of its first batch. Followers use it to find where their
//! log diverged from the leader's (OffsetForLeaderEpoch) instead of truncating to the high
//! watermark, which can lose acknowledged data across leader changes.
//!
//! Persisted as Kafka's `leader-epoch-checkpoint` text file, so an operator sees the same file
//! a Kafka broker writes:
//! ```text
//! 0              <- version
//! 2              <- entry count
//! 0 0            <- "epoch start_offset", oldest first
//! 3 120
//! ```
//! The cache only describes data: both logs keep it in step with every append, truncation
//! and log start move; the file is rewritten atomically whenever it changes.

use std::path::Path;

use crate::checkpoint;
use crate::error::StorageError;

/// File name in the partition directory (Kafka's).
pub(crate) const LEADER_EPOCH_FILE: &str = "leader-epoch-checkpoint";
const FILE_VERSION: &str = "0";

/// One epoch and the offset of its first batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// Entries strictly increasing in both epoch and start offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// A leader (or a replicated batch) may not go back to an epoch older than the latest:
    /// it would describe data the log already attributes to a newer leader.
    pub fn check_not_stale(&self, epoch: i32) -> Result<(), StorageError> {
        check_not_stale(epoch, self.latest_epoch())
    }

    /// Would [`Self::assign`] add `epoch`?
    pub fn is_new(&self, epoch: i32) -> bool {
        is_new(epoch, self.latest_epoch())
    }

    /// Records that `epoch` starts at `start_offset` if it is newer than the latest epoch.
    /// Negative epochs (batches written without a leader epoch) and epochs already known
    /// are ignored. Returns whether the cache changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if !self.is_new(epoch) {
            return false;
        }
        debug_assert!(self
            .entries
            .last()
            .is_none_or(|e| e.start_offset < start_offset));
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// OffsetForLeaderEpoch: the largest known epoch ≤ `epoch` and its end offset (the start
    /// of the next epoch, or `log_end_offset` for the latest). `None` when `epoch` is older
    /// than every known epoch or nothing is known (the broker answers -1/-1).
    pub fn end_offset_for(&self, epoch: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        let next = self.entries.partition_point(|e| e.epoch <= epoch);
        let found = self.entries.get(next.checked_sub(1)?)?;
        let end = self
            .entries
            .get(next)
            .map_or(log_end_offset, |e| e.start_offset);
        Some((found.epoch, end))
    }

    /// Drops entries starting at or after `end_offset` (the log was cut there).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let keep = self
            .entries
            .partition_point(|e| e.start_offset < end_offset);
        let changed = keep < self.entries.len();
        self.entries.truncate(keep);
        changed
    }

    /// The log start moved to `start_offset`: entries wholly below it go, and the epoch that
    /// covers `start_offset` now starts there (Kafka's `truncateFromStart`).
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let covered = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        if covered == 0 {
            return false;
        }
        let changed = covered > 1 || self.entries[0].start_offset != start_offset;
        self.entries.drain(..covered - 1);
        self.entries[0].start_offset = start_offset;
        changed
    }

    pub fn clear(&mut self) -> bool {
        let changed = !self.entries.is_empty();
        self.entries.clear();
        changed
    }

    /// Asserts the cache fits a log spanning `log_start..log_end`. An entry may start at the
    /// log end only when it is the one clamped to a log start that reached the log end.
    pub fn check_invariants(&self, log_start_offset: i64, log_end_offset: i64) {
        for pair in self.entries.windows(2) {
            assert!(pair[0].epoch < pair[1].epoch, "epochs must increase");
            assert!(
                pair[0].start_offset < pair[1].start_offset,
                "epoch start offsets must increase"
            );
        }
        if let Some(first) = self.entries.first() {
            assert!(first.epoch >= 0, "negative epoch cached");
            assert!(
                first.start_offset >= log_start_offset,
                "epoch {} starts below the log start",
                first.epoch
            );
        }
        for (i, e) in self.entries.iter().enumerate() {
            let clamped_at_end = i == 0 && e.start_offset == log_start_offset;
            assert!(
                e.start_offset < log_end_offset || clamped_at_end,
                "epoch {} starts at {} past the log end {log_end_offset}",
                e.epoch,
                e.start_offset
            );
        }
    }

    /// Kafka's text checkpoint format.
    pub fn encode(&self) -> String {
        let mut out = format!("{FILE_VERSION}\n{}\n", self.entries.len());
        for e in &self.entries {
            out.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        out
    }

    /// Parses [`Self::encode`]'s format; anything unexpected (including entries that are not
    /// strictly increasing) makes the whole file untrustworthy.
    pub fn decode(text: &str, path: &Path) -> Result<Self, StorageError> {
        let bad = |reason: &str| StorageError::corrupt_file(path, reason);
        let mut lines = text.lines();
        if lines.next().map(str::trim) != Some(FILE_VERSION) {
            return Err(bad("unknown version"));
        }
        let count: usize = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| bad("bad entry count"))?;
        let mut cache = LeaderEpochCache::new();
        for line in lines.by_ref().take(count) {
            let mut fields = line.split_whitespace();
            let epoch = fields.next().and_then(|f| f.parse::<i32>().ok());
            let start = fields.next().and_then(|f| f.parse::<i64>().ok());
            let (Some(epoch), Some(start_offset), None) = (epoch, start, fields.next()) else {
                return Err(bad("bad entry line"));
            };
            let increasing = cache
                .entries
                .last()
                .is_none_or(|l| l.epoch < epoch && l.start_offset < start_offset);
            if epoch < 0 || start_offset < 0 || !increasing {
                return Err(bad("entries not strictly increasing"));
            }
            cache.entries.push(EpochEntry {
                epoch,
                start_offset,
            });
        }
        if cache.entries.len() != count || lines.any(|l| !l.trim().is_empty()) {
            return Err(bad("entry count mismatch"));
        }
        Ok(cache)
    }

    /// Replaces the checkpoint file atomically (temp file, fsync, rename).
    pub(crate) fn write(&self, dir: &Path) -> Result<(), StorageError> {
        checkpoint::write_atomic(dir, LEADER_EPOCH_FILE, self.encode().as_bytes())
    }

    /// Reads the checkpoint file; `Ok(None)` when it does not exist.
    pub(crate) fn read(dir: &Path) -> Result<Option<Self>, StorageError> {
        let path = dir.join(LEADER_EPOCH_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| StorageError::corrupt_file(&path, "not UTF-8"))?;
                Self::decode(text, &path).map(Some)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::Io {
                op: "read",
                path,
                source: e,
            }),
        }
    }
}

/// [`LeaderEpochCache::check_not_stale`] against a latest epoch tracked by the caller.
pub(crate) fn check_not_stale(epoch: i32, latest: Option<i32>) -> Result<(), StorageError> {
    match latest {
        Some(latest) if epoch >= 0 && epoch < latest => {
            Err(StorageError::StaleLeaderEpoch { epoch, latest })
        }
        _ => Ok(()),
    }
}

/// Negative epochs mark batches written without a leader epoch; they start nothing.
pub(crate) fn is_new(epoch: i32, latest: Option<i32>) -> bool {
    epoch >= 0 && latest.is_none_or(|latest| epoch > latest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut c = LeaderEpochCache::new();
        for (epoch, start) in entries {
            assert!(c.assign(*epoch, *start));
        }
        c
    }

    #[test]
    fn end_offsets_follow_offset_for_leader_epoch() {
        let c = cache(&[(1, 0), (3, 10), (7, 25)]);
        assert_eq!(c.end_offset_for(0, 40), None);
        assert_eq!(c.end_offset_for(1, 40), Some((1, 10)));
        assert_eq!(c.end_offset_for(2, 40), Some((1, 10)));
        assert_eq!(c.end_offset_for(3, 40), Some((3, 25)));
        assert_eq!(c.end_offset_for(7, 40), Some((7, 40)));
        assert_eq!(c.end_offset_for(9, 40), Some((7, 40)));
        assert_eq!(LeaderEpochCache::new().end_offset_for(0, 0), None);
    }

    #[test]
    fn truncation_from_both_ends() {
        let mut c = cache(&[(1, 0), (3, 10), (7, 25)]);
        assert!(!c.truncate_from_end(30));
        assert!(c.truncate_from_end(25));
        assert_eq!(c.latest_epoch(), Some(3));
        assert!(c.truncate_from_start(12));
        assert_eq!(
            c.entries(),
            &[EpochEntry {
                epoch: 3,
                start_offset: 12
            }]
        );
        assert!(!c.truncate_from_start(12));
        assert!(!c.truncate_from_start(5), "the log start never moves back");
    }

    #[test]
    fn stale_and_repeated_epochs() {
        let mut c = cache(&[(2, 0)]);
        assert!(!c.assign(2, 5));
        assert!(!c.assign(-1, 5));
        assert!(c.check_not_stale(2).is_ok());
        let err = c.check_not_stale(1).unwrap_err();
        assert_eq!(err.kafka_error_code(), 74);
    }

    #[test]
    fn file_format_round_trips_and_refuses_garbage() {
        let c = cache(&[(0, 0), (4, 100)]);
        let text = c.encode();
        assert_eq!(text, "0\n2\n0 0\n4 100\n");
        let path = Path::new("leader-epoch-checkpoint");
        assert_eq!(LeaderEpochCache::decode(&text, path).unwrap(), c);
        for bad in [
            "",
            "1\n0\n",
            "0\n3\n0 0\n4 100\n",
            "0\n1\n0 0\n4 100\n",
            "0\n2\n4 0\n0 100\n",
            "0\n1\n0 x\n",
            "0\n1\n0 0 0\n",
        ] {
            assert!(LeaderEpochCache::decode(bad, path).is_err(), "{bad:?}");
        }
    }
}
