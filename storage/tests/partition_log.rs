//! File-only behaviour: reopen, recovery of torn tails and bad indexes, clean shutdown,
//! compaction leftovers, injected faults.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use common::{body, read_all};
use millrace_storage::failpoints::{fail_next, reset, FailPoint};
use millrace_storage::testkit::{build_batch, simple_batch, ProducerFields, TestRecord};
use millrace_storage::{Log, LogConfig, PartitionLog, StorageError};

fn config() -> LogConfig {
    common::small_config()
}

fn fill(log: &mut PartitionLog, batches: usize) -> Vec<Vec<u8>> {
    (0..batches)
        .map(|i| {
            let batch = simple_batch(1 + i % 3, 40 + i, 1_000 + i as i64);
            log.append(&batch, 0, 0).expect("append");
            batch
        })
        .collect()
}

fn log_files(dir: &Path, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    out
}

#[test]
fn clean_reopen_keeps_data_offsets_and_producer_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), config(), 0).unwrap();
    let sent = fill(&mut log, 80);
    let p = ProducerFields {
        producer_id: 42,
        producer_epoch: 2,
        base_sequence: 0,
    };
    let idem = build_batch(&[TestRecord::new(Some(b"k"), Some(b"v"), 5)], p);
    let first = log.append(&idem, 0, 0).unwrap();
    let leo = log.log_end_offset();
    assert!(log.segment_count() > 3);
    log.close().unwrap();
    drop(log);
    assert!(dir.path().join("clean-shutdown").exists());

    let mut log = PartitionLog::open(dir.path(), config(), 0).unwrap();
    assert!(!dir.path().join("clean-shutdown").exists());
    assert_eq!(log.log_end_offset(), leo);
    log.check_invariants();
    let read = read_all(&log);
    for (got, want) in read.iter().zip(&sent) {
        assert_eq!(body(&got.2), body(want));
    }
    let dup = log.append(&idem, 0, 0).unwrap();
    assert!(dup.duplicate, "producer state survives reopen");
    assert_eq!(dup.first_offset, first.first_offset);
    assert_eq!(log.producer_state().get(42).unwrap().epoch, 2);
}

#[test]
fn unclean_reopen_cuts_torn_tail_and_rebuilds_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), config(), 0).unwrap();
    fill(&mut log, 50);
    let p = ProducerFields {
        producer_id: 1,
        producer_epoch: 0,
        base_sequence: 0,
    };
    let idem = build_batch(&[TestRecord::new(Some(b"k"), Some(b"v"), 5)], p);
    log.append(&idem, 0, 0).unwrap();
    let leo = log.log_end_offset();
    drop(log); // no close: as after a crash
    let active = log_files(dir.path(), ".log").pop().unwrap();
    let mut file = OpenOptions::new().append(true).open(&active).unwrap();
    let torn = simple_batch(3, 100, 0);
    file.write_all(&torn[..torn.len() / 2]).unwrap();
    drop(file);
    let size_with_garbage = std::fs::metadata(&active).unwrap().len();

    let mut log = PartitionLog::open(dir.path(), config(), 0).unwrap();
    assert_eq!(log.log_end_offset(), leo);
    assert!(std::fs::metadata(&active).unwrap().len() < size_with_garbage);
    log.check_invariants();
    assert!(
        log.append(&idem, 0, 0).unwrap().duplicate,
        "state rebuilt from the log"
    );
    assert_eq!(
        log.append(&simple_batch(1, 1, 0), 0, 0)
            .unwrap()
            .first_offset,
        leo
    );
}

#[test]
fn corrupt_batch_in_tail_truncates_there() {
    let dir = tempfile::tempdir().unwrap();
    let big = LogConfig {
        segment_bytes: 1 << 20,
        ..config()
    };
    let mut log = PartitionLog::open(dir.path(), big.clone(), 0).unwrap();
    fill(&mut log, 20);
    let ninth = log.read(9, 1, i64::MAX).unwrap();
    let header = millrace_storage::batch::BatchHeader::parse(&ninth, 0).unwrap();
    let cut_offset = header.base_offset();
    drop(log);
    // Flip a byte inside the batch holding offset 9.
    let path = log_files(dir.path(), ".log").pop().unwrap();
    let mut data = std::fs::read(&path).unwrap();
    let pos = data
        .windows(ninth.len())
        .position(|w| w == &ninth[..])
        .unwrap();
    data[pos + 70] ^= 0x55;
    std::fs::write(&path, &data).unwrap();
    let log = PartitionLog::open(dir.path(), big, 0).unwrap();
    assert_eq!(log.log_end_offset(), cut_offset);
    log.check_invariants();
}

#[test]
fn bad_or_missing_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), config(), 0).unwrap();
    fill(&mut log, 120);
    log.close().unwrap();
    drop(log);
    let indexes = log_files(dir.path(), ".index");
    std::fs::remove_file(&indexes[0]).unwrap();
    std::fs::write(&indexes[1], vec![0xffu8; 64]).unwrap();
    let log = PartitionLog::open(dir.path(), config(), 0).unwrap();
    log.check_invariants();
    for offset in (0..log.log_end_offset()).step_by(7) {
        let bytes = log.read(offset, 1, i64::MAX).unwrap();
        let header = millrace_storage::batch::BatchHeader::parse(&bytes, 0).unwrap();
        assert!(header.base_offset() <= offset && offset <= header.last_offset());
    }
}

#[test]
fn delete_records_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), config(), 0).unwrap();
    fill(&mut log, 60);
    let target = log.log_end_offset() / 2 + 1;
    log.delete_records(target).unwrap();
    drop(log);
    let log = PartitionLog::open(dir.path(), config(), 0).unwrap();
    assert_eq!(log.log_start_offset(), target);
    log.check_invariants();
}

#[test]
fn reads_outlive_truncation_and_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), config(), 0).unwrap();
    fill(&mut log, 60);
    let held_first = log.read(0, 1 << 20, i64::MAX).unwrap();
    let last_base = read_all(&log).last().unwrap().0;
    let held_last = log.read(last_base, 1 << 20, i64::MAX).unwrap();
    let copy_first = held_first.to_vec();
    let copy_last = held_last.to_vec();
    log.truncate_to(last_base).unwrap();
    log.delete_records(log.log_end_offset()).unwrap();
    log.apply_retention(i64::MAX / 2).unwrap();
    assert_eq!(&held_first[..], &copy_first[..], "mapped bytes stay valid");
    assert_eq!(&held_last[..], &copy_last[..]);
}

#[test]
fn partial_write_is_rolled_back_and_log_stays_usable() {
    reset();
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
    fill(&mut log, 5);
    let leo = log.log_end_offset();
    let size = log.size_bytes();
    fail_next(FailPoint::AppendPartialWrite, 1);
    let err = log.append(&simple_batch(3, 100, 0), 0, 0).unwrap_err();
    assert!(matches!(err, StorageError::Io { .. }), "{err}");
    assert_eq!(log.log_end_offset(), leo);
    let file = log_files(dir.path(), ".log").pop().unwrap();
    assert_eq!(
        std::fs::metadata(file).unwrap().len(),
        size,
        "nothing half-written remains"
    );
    assert_eq!(
        log.append(&simple_batch(1, 1, 0), 0, 0)
            .unwrap()
            .first_offset,
        leo
    );
    log.check_invariants();
}

#[test]
fn failed_fsync_takes_log_offline_until_reopen() {
    reset();
    let dir = tempfile::tempdir().unwrap();
    let durable = LogConfig {
        fsync_every_append: true,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), durable.clone(), 0).unwrap();
    fill(&mut log, 3);
    fail_next(FailPoint::Fsync, 1);
    assert!(matches!(
        log.append(&simple_batch(1, 1, 0), 0, 0),
        Err(StorageError::Injected(FailPoint::Fsync))
    ));
    assert!(matches!(
        log.append(&simple_batch(1, 1, 0), 0, 0),
        Err(StorageError::LogOffline { .. })
    ));
    drop(log);
    let mut log = PartitionLog::open(dir.path(), durable, 0).unwrap();
    log.check_invariants();
    log.append(&simple_batch(1, 1, 0), 0, 0).unwrap();
}

#[test]
fn injected_roll_and_truncate_failures_are_typed_errors() {
    reset();
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), config(), 0).unwrap();
    fill(&mut log, 10);
    fail_next(FailPoint::Append, 1);
    assert!(matches!(
        log.append(&simple_batch(1, 1, 0), 0, 0),
        Err(StorageError::Injected(FailPoint::Append))
    ));
    fail_next(FailPoint::Truncate, 1);
    assert!(matches!(
        log.truncate_to(3),
        Err(StorageError::Injected(FailPoint::Truncate))
    ));
    drop(log);
    let mut log = PartitionLog::open(dir.path(), config(), 0).unwrap();
    fail_next(FailPoint::Roll, 1);
    let mut rolled = false;
    for _ in 0..200 {
        match log.append(&simple_batch(3, 200, 0), 0, 0) {
            Ok(_) => {}
            Err(StorageError::Injected(FailPoint::Roll)) => {
                rolled = true;
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(rolled);
    drop(log);
    let log = PartitionLog::open(dir.path(), config(), 0).unwrap();
    log.check_invariants();
}

#[test]
fn compaction_leftovers_are_recovered_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let compacted = LogConfig {
        compact: true,
        ..config()
    };
    let mut log = PartitionLog::open(dir.path(), compacted.clone(), 0).unwrap();
    fill(&mut log, 80);
    let leo = log.log_end_offset();
    drop(log);
    let segments = log_files(dir.path(), ".log");
    // A half-written cleaned file is discarded; a complete swap file is installed.
    std::fs::write(segments[0].with_extension("log.cleaned"), b"garbage").unwrap();
    std::fs::copy(&segments[1], segments[1].with_extension("log.swap")).unwrap();
    let log = PartitionLog::open(dir.path(), compacted, 0).unwrap();
    assert_eq!(log.log_end_offset(), leo);
    assert!(log_files(dir.path(), ".cleaned").is_empty());
    assert!(log_files(dir.path(), ".swap").is_empty());
    log.check_invariants();
}

#[test]
fn opening_many_segments_reads_no_data() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = LogConfig {
        segment_bytes: 200,
        ..config()
    };
    let mut log = PartitionLog::open(dir.path(), tiny.clone(), 0).unwrap();
    for _ in 0..300 {
        log.append(&simple_batch(1, 100, 0), 0, 0).unwrap();
    }
    log.close().unwrap();
    drop(log);
    // Corrupt an old sealed segment's data: a clean open must not notice (it reads nothing).
    let segments = log_files(dir.path(), ".log");
    let mut data = std::fs::read(&segments[3]).unwrap();
    data[30] ^= 0xff;
    std::fs::write(&segments[3], data).unwrap();
    let log = PartitionLog::open(dir.path(), tiny, 0).unwrap();
    assert_eq!(log.segment_count(), 300);
    assert_eq!(log.log_end_offset(), 300);
}
