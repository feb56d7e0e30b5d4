//! File-only behaviour of the leader-epoch cache: the `leader-epoch-checkpoint` file
//! survives reopen, is rebuilt from batch headers when missing or damaged, and is cut to
//! the recovered log after a torn tail.

mod common;

use std::fs::OpenOptions;
use std::path::Path;

use millrace_storage::epoch_cache::EpochEntry;
use millrace_storage::failpoints::{fail_next, reset, FailPoint};
use millrace_storage::testkit::simple_batch;
use millrace_storage::{Log, PartitionLog};

const CHECKPOINT: &str = "leader-epoch-checkpoint";

fn open(dir: &Path) -> PartitionLog {
    PartitionLog::open(dir, common::small_config(), 0).expect("open")
}

/// Appends 3-record batches with the given epochs (offsets 0, 3, 6, ...).
fn append_epochs(log: &mut PartitionLog, epochs: &[i32]) {
    for epoch in epochs {
        log.append(&simple_batch(3, 200, 0), *epoch, 0)
            .expect("append");
    }
}

fn entries(log: &PartitionLog) -> Vec<(i32, i64)> {
    log.leader_epoch_cache()
        .entries()
        .iter()
        .map(|e: &EpochEntry| (e.epoch, e.start_offset))
        .collect()
}

fn checkpoint_text(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(CHECKPOINT)).expect("checkpoint file")
}

#[test]
fn checkpoint_is_kafkas_text_format_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    append_epochs(&mut log, &[0, 0, 2, 2, 2, 5]);
    assert_eq!(checkpoint_text(dir.path()), "0\n3\n0 0\n2 6\n5 15\n");
    log.close().unwrap();
    drop(log);
    let log = open(dir.path());
    assert_eq!(entries(&log), [(0, 0), (2, 6), (5, 15)]);
    drop(log); // unclean: the tail is scanned, the answer is the same
    let log = open(dir.path());
    assert_eq!(entries(&log), [(0, 0), (2, 6), (5, 15)]);
    assert_eq!(log.end_offset_for_epoch(3), Some((2, 15)));
    log.check_invariants();
}

#[test]
fn missing_or_damaged_checkpoint_is_rebuilt_from_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    append_epochs(&mut log, &[1; 10]);
    append_epochs(&mut log, &[4; 10]);
    log.delete_records(4).unwrap();
    let expected = entries(&log);
    assert_eq!(expected, [(1, 4), (4, 30)]);
    log.close().unwrap();
    drop(log);

    std::fs::remove_file(dir.path().join(CHECKPOINT)).unwrap();
    let log = open(dir.path());
    assert_eq!(entries(&log), expected, "rebuilt, clamped to the log start");
    assert_eq!(checkpoint_text(dir.path()), "0\n2\n1 4\n4 30\n");
    log.check_invariants();
    drop(log);

    for garbage in ["0\n2\n1 4\n", "7\n0\n", "0\n2\n4 4\n1 30\n", "\u{0}\u{1}"] {
        std::fs::write(dir.path().join(CHECKPOINT), garbage).unwrap();
        let log = open(dir.path());
        assert_eq!(entries(&log), expected, "rebuilt after {garbage:?}");
        assert_eq!(checkpoint_text(dir.path()), "0\n2\n1 4\n4 30\n");
        drop(log);
    }
}

#[test]
fn torn_tail_drops_epochs_past_the_recovered_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    append_epochs(&mut log, &[0, 0, 3]);
    drop(log); // no close: as after a crash
    let active = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".log"))
        .max()
        .unwrap();
    let len = std::fs::metadata(&active).unwrap().len();
    let file = OpenOptions::new().write(true).open(&active).unwrap();
    file.set_len(len - 10).unwrap(); // tear the epoch-3 batch
    drop(file);
    let log = open(dir.path());
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(entries(&log), [(0, 0)]);
    assert_eq!(checkpoint_text(dir.path()), "0\n1\n0 0\n");
    log.check_invariants();
}

#[test]
fn checkpoint_ahead_of_or_behind_the_data_is_fitted_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    append_epochs(&mut log, &[0, 0, 2]);
    drop(log);
    // Ahead: an epoch the data never got (written before a crash lost the batch).
    std::fs::write(dir.path().join(CHECKPOINT), "0\n3\n0 0\n2 6\n9 9\n").unwrap();
    let mut log = open(dir.path());
    assert_eq!(entries(&log), [(0, 0), (2, 6)]);
    // Behind: the data got an epoch the checkpoint never recorded (crash in between).
    append_epochs(&mut log, &[6]);
    drop(log);
    std::fs::write(dir.path().join(CHECKPOINT), "0\n2\n0 0\n2 6\n").unwrap();
    let log = open(dir.path());
    assert_eq!(
        entries(&log),
        [(0, 0), (2, 6), (6, 9)],
        "found in the scanned tail"
    );
    log.check_invariants();
}

#[test]
fn failed_append_leaves_no_epoch_behind() {
    reset();
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    append_epochs(&mut log, &[1]);
    fail_next(FailPoint::AppendPartialWrite, 1);
    assert!(log.append(&simple_batch(3, 10, 0), 4, 0).is_err());
    assert_eq!(log.latest_epoch(), Some(1));
    assert_eq!(checkpoint_text(dir.path()), "0\n1\n1 0\n");
    append_epochs(&mut log, &[4]);
    assert_eq!(entries(&log), [(1, 0), (4, 3)]);
    log.check_invariants();
}

#[test]
fn truncation_rewrites_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    append_epochs(&mut log, &[0, 2, 5]);
    log.truncate_to(6).unwrap();
    assert_eq!(checkpoint_text(dir.path()), "0\n2\n0 0\n2 3\n");
    log.truncate_to(0).unwrap();
    assert_eq!(checkpoint_text(dir.path()), "0\n0\n");
    log.check_invariants();
}
