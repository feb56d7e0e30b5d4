//! Property tests: round trips with random batch sizes, index lookups against a linear scan,
//! invariants under random operation sequences (both logs), the leader-epoch cache against a
//! scan of batch epochs, and batch validation on arbitrary bytes never panicking.

mod common;

use common::{body, make, read_all, Harness, Kind};
use millrace_storage::batch::{validate, BatchHeader, BatchIter};
use millrace_storage::records::BatchRecords;
use millrace_storage::testkit::simple_batch;
use millrace_storage::{LogConfig, PartitionLog, StorageError};
use proptest::prelude::*;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 128,
        segment_index_bytes: 240,
        retention_bytes: 6000,
        retention_ms: 1000,
        ..LogConfig::default()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append { records: usize, value_bytes: usize },
    Truncate { back: u8 },
    DeleteRecords { forward: u8 },
    Retention,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..8, 0usize..400).prop_map(|(records, value_bytes)| Op::Append { records, value_bytes }),
        1 => any::<u8>().prop_map(|back| Op::Truncate { back }),
        1 => any::<u8>().prop_map(|forward| Op::DeleteRecords { forward }),
        1 => Just(Op::Retention),
    ]
}

fn run_ops(kind: Kind, ops: &[Op]) {
    let mut log = make(kind, config());
    let mut now = 0i64;
    for op in ops {
        now += 10;
        match op {
            Op::Append {
                records,
                value_bytes,
            } => {
                let info = log
                    .append(&simple_batch(*records, *value_bytes, now), 0, now)
                    .unwrap();
                assert_eq!(info.last_offset + 1, log.log_end_offset());
            }
            Op::Truncate { back } => {
                // Truncate to a batch boundary found by reading.
                let target = log.log_end_offset() - i64::from(*back);
                if target >= log.log_start_offset() && target < log.log_end_offset() {
                    let bytes = log.read(target, 1, i64::MAX).unwrap();
                    let base = BatchHeader::parse(&bytes, 0).unwrap().base_offset();
                    if base >= log.log_start_offset() {
                        log.truncate_to(base).unwrap();
                        assert_eq!(log.log_end_offset(), base);
                    }
                }
            }
            Op::DeleteRecords { forward } => {
                let target =
                    (log.log_start_offset() + i64::from(*forward)).min(log.log_end_offset());
                assert_eq!(
                    log.delete_records(target).unwrap(),
                    target.max(log.log_start_offset())
                );
            }
            Op::Retention => {
                log.apply_retention(now).unwrap();
            }
        }
        log.check_invariants();
        assert!(log.log_start_offset() <= log.log_end_offset());
    }
    read_all(&*log);
}

#[derive(Debug, Clone)]
enum EpochOp {
    /// A leader append; the leader epoch grows by `bump` first.
    Append {
        records: usize,
        bump: u8,
    },
    Truncate {
        back: u8,
    },
    /// Reopen the file log (no-op for the memory log), optionally deleting the checkpoint.
    Reopen {
        clean: bool,
        drop_checkpoint: bool,
    },
}

fn epoch_op() -> impl Strategy<Value = EpochOp> {
    prop_oneof![
        6 => (1usize..5, prop_oneof![3 => Just(0u8), 1 => 1u8..4])
            .prop_map(|(records, bump)| EpochOp::Append { records, bump }),
        2 => any::<u8>().prop_map(|back| EpochOp::Truncate { back: back % 24 }),
        1 => (any::<bool>(), any::<bool>())
            .prop_map(|(clean, drop_checkpoint)| EpochOp::Reopen { clean, drop_checkpoint }),
    ]
}

/// OffsetForLeaderEpoch answered by scanning every batch's partition leader epoch.
fn brute_force_end_offset(log: &Harness, epoch: i32) -> Option<(i32, i64)> {
    let batches: Vec<(i32, i64)> = read_all(&**log)
        .iter()
        .map(|(base, _, bytes)| {
            let header = BatchHeader::parse(bytes, 0).unwrap();
            (header.partition_leader_epoch(), *base)
        })
        .collect();
    let found = batches
        .iter()
        .map(|(e, _)| *e)
        .filter(|e| *e <= epoch)
        .max()?;
    let end = batches
        .iter()
        .find(|(e, _)| *e > found)
        .map_or(log.log_end_offset(), |(_, base)| *base);
    Some((found, end))
}

fn reopen(log: &mut Harness, clean: bool, drop_checkpoint: bool) {
    let Some(dir) = log.dir.as_ref().map(|d| d.path().to_path_buf()) else {
        return;
    };
    if clean {
        log.close().unwrap();
    }
    // Drop the old log before opening the directory again.
    log.log = Box::new(millrace_storage::MemoryLog::new(config()).unwrap());
    if drop_checkpoint {
        std::fs::remove_file(dir.join("leader-epoch-checkpoint")).unwrap();
    }
    log.log = Box::new(PartitionLog::open(&dir, config(), 0).unwrap());
}

fn run_epoch_ops(kind: Kind, ops: &[EpochOp]) {
    let mut log = make(kind, config());
    let mut epoch = 0i32;
    for op in ops {
        match op {
            EpochOp::Append { records, bump } => {
                epoch += i32::from(*bump);
                log.append(&simple_batch(*records, 50, 0), epoch, 0)
                    .unwrap();
            }
            EpochOp::Truncate { back } => {
                let target = log.log_end_offset() - i64::from(*back);
                if target >= log.log_start_offset() && target < log.log_end_offset() {
                    let bytes = log.read(target, 1, i64::MAX).unwrap();
                    let base = BatchHeader::parse(&bytes, 0).unwrap().base_offset();
                    log.truncate_to(base).unwrap();
                }
            }
            EpochOp::Reopen {
                clean,
                drop_checkpoint,
            } => reopen(&mut log, *clean, *drop_checkpoint),
        }
        log.check_invariants();
        for e in -1..=epoch + 1 {
            assert_eq!(
                log.end_offset_for_epoch(e),
                brute_force_end_offset(&log, e),
                "{kind:?}: epoch {e} after {op:?}"
            );
        }
        assert_eq!(
            log.latest_epoch(),
            brute_force_end_offset(&log, i32::MAX).map(|(e, _)| e)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_random_batch_sizes(sizes in prop::collection::vec((1usize..12, 0usize..3000), 1..40)) {
        for kind in [Kind::File, Kind::Memory] {
            let mut log = make(kind, config());
            let mut sent = Vec::new();
            for (i, (records, value_bytes)) in sizes.iter().enumerate() {
                let batch = simple_batch(*records, *value_bytes, i as i64);
                let info = log.append(&batch, 1, 0).unwrap();
                sent.push((info.first_offset, info.last_offset, batch));
            }
            let read = read_all(&*log);
            prop_assert_eq!(read.len(), sent.len());
            for (got, want) in read.iter().zip(&sent) {
                prop_assert_eq!((got.0, got.1), (want.0, want.1));
                prop_assert_eq!(body(&got.2), body(&want.2));
            }
            // Index lookup vs linear scan: every offset maps to the batch containing it.
            for offset in 0..log.log_end_offset() {
                let bytes = log.read(offset, 1, i64::MAX).unwrap();
                let header = BatchHeader::parse(&bytes, 0).unwrap();
                let expected = sent.iter().find(|(_, last, _)| *last >= offset).unwrap();
                prop_assert_eq!(header.base_offset(), expected.0);
            }
        }
    }

    #[test]
    fn invariants_hold_under_random_ops(ops in prop::collection::vec(op(), 1..60)) {
        run_ops(Kind::File, &ops);
        run_ops(Kind::Memory, &ops);
    }

    #[test]
    fn epoch_cache_matches_a_scan_of_batch_epochs(ops in prop::collection::vec(epoch_op(), 1..50)) {
        run_epoch_ops(Kind::File, &ops);
        run_epoch_ops(Kind::Memory, &ops);
    }

    #[test]
    fn validation_never_panics_on_garbage(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = validate(&bytes, 0);
        for item in BatchIter::new(&bytes) {
            let Ok((_, header)) = item else { break };
            if let Ok(records) = BatchRecords::new(header) {
                for r in records.iter() {
                    if r.is_err() { break; }
                }
            }
        }
    }

    #[test]
    fn mutated_valid_batch_is_refused_or_decodes(
        at in 0usize..200, flip in 1u8..=255, records in 1usize..5, cut in 0usize..40,
    ) {
        let mut batch = simple_batch(records, 20, 0);
        let at = at % batch.len();
        batch[at] ^= flip;
        let len = batch.len() - cut.min(batch.len());
        let input = &batch[..len];
        match validate(input, 0) {
            Ok(header) => {
                // Only the bytes the CRC does not cover may differ in an accepted batch.
                prop_assert!(at < 21 && cut == 0 || header.total_bytes() <= input.len());
                if let Ok(records) = BatchRecords::new(header) {
                    for r in records.iter() { let _ = r; }
                }
            }
            Err(StorageError::CorruptMessage { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
        // Appending garbage never panics and never writes.
        let mut log = make(Kind::Memory, LogConfig::default());
        if log.append(input, 0, 0).is_err() {
            prop_assert_eq!(log.log_end_offset(), 0);
        }
    }
}
