//! One body per behaviour, run against both `PartitionLog` and `MemoryLog`.

mod common;

use common::{body, make, read_all, small_config};
use millrace_storage::batch::BatchHeader;
use millrace_storage::testkit::{build_batch, simple_batch, ProducerFields, TestRecord};
use millrace_storage::{LogConfig, StorageError};

fn producer(id: i64, epoch: i16, seq: i32) -> ProducerFields {
    ProducerFields {
        producer_id: id,
        producer_epoch: epoch,
        base_sequence: seq,
    }
}

fn idempotent_batch(count: usize, p: ProducerFields) -> Vec<u8> {
    let records: Vec<_> = (0..count)
        .map(|i| {
            TestRecord::new(
                Some(b"k"),
                Some(format!("v{i}").as_bytes()),
                1000 + i as i64,
            )
        })
        .collect();
    build_batch(&records, p)
}

suite!(append_assigns_offsets_and_reads_back, |kind| {
    let mut log = make(kind, small_config());
    let mut sent = Vec::new();
    for i in 0..40usize {
        let batch = simple_batch(1 + i % 5, 10 + i * 7, 1000 + i as i64);
        let info = log.append(&batch, 3, 0).expect("append");
        assert_eq!(info.records as usize, 1 + i % 5);
        assert_eq!(
            info.last_offset - info.first_offset + 1,
            info.records as i64
        );
        sent.push((info.first_offset, batch));
    }
    log.check_invariants();
    let read = read_all(&*log);
    assert_eq!(read.len(), sent.len());
    for ((base, _, bytes), (first, batch)) in read.iter().zip(&sent) {
        assert_eq!(base, first);
        assert_eq!(body(bytes), body(batch), "payload changed");
        assert_eq!(
            BatchHeader::parse(bytes, 0)
                .unwrap()
                .partition_leader_epoch(),
            3
        );
    }
});

suite!(read_returns_whole_batch_containing_offset, |kind| {
    let mut log = make(kind, LogConfig::default());
    log.append(&simple_batch(10, 5, 0), 0, 0).unwrap();
    log.append(&simple_batch(10, 5, 100), 0, 0).unwrap();
    let bytes = log.read(15, 1, i64::MAX).unwrap();
    let header = BatchHeader::parse(&bytes, 0).unwrap();
    assert_eq!(
        header.base_offset(),
        10,
        "fetch inside a batch returns the whole batch"
    );
    assert_eq!(
        bytes.len(),
        header.total_bytes(),
        "max_bytes=1 still gives one batch"
    );
    // max_offset (high watermark) excludes batches not wholly below it.
    assert_eq!(
        log.read(0, 1 << 20, 15).unwrap().len(),
        header.total_bytes()
    );
    assert!(log.read(10, 1 << 20, 15).unwrap().is_empty());
    assert!(
        log.read(20, 100, i64::MAX).unwrap().is_empty(),
        "log end reads empty"
    );
    assert!(matches!(
        log.read(21, 100, i64::MAX),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert!(matches!(
        log.read(-1, 100, i64::MAX),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
});

suite!(corrupt_batch_refuses_whole_append, |kind| {
    let mut log = make(kind, LogConfig::default());
    let good = simple_batch(3, 10, 0);
    let mut bad = simple_batch(3, 10, 0);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let mut both = good.clone();
    both.extend_from_slice(&bad);
    let err = log.append(&both, 0, 0).unwrap_err();
    assert!(matches!(err, StorageError::CorruptMessage { .. }), "{err}");
    assert_eq!(err.kafka_error_code(), 2);
    assert_eq!(
        log.log_end_offset(),
        0,
        "nothing of a refused append is written"
    );
    let mut wrong_magic = good.clone();
    wrong_magic[16] = 1;
    assert!(matches!(
        log.append(&wrong_magic, 0, 0),
        Err(StorageError::CorruptMessage { .. })
    ));
    assert!(matches!(
        log.append(&good[..40], 0, 0),
        Err(StorageError::CorruptMessage { .. })
    ));
    let mut huge_len = good.clone();
    huge_len[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(matches!(
        log.append(&huge_len, 0, 0),
        Err(StorageError::CorruptMessage { .. })
    ));
    assert!(log.append(&[], 0, 0).is_err());
    assert_eq!(log.append(&good, 0, 0).unwrap().first_offset, 0);
});

suite!(limits_and_keys, |kind| {
    let config = LogConfig {
        max_message_bytes: 200,
        compact: true,
        ..LogConfig::default()
    };
    let mut log = make(kind, config);
    let big = simple_batch(1, 500, 0);
    assert!(matches!(
        log.append(&big, 0, 0),
        Err(StorageError::MessageTooLarge { .. })
    ));
    let keyless = build_batch(
        &[TestRecord::new(None, Some(b"v"), 1)],
        ProducerFields::default(),
    );
    let err = log.append(&keyless, 0, 0).unwrap_err();
    assert!(matches!(err, StorageError::InvalidRecord { .. }), "{err}");
    assert_eq!(log.log_end_offset(), 0);
});

suite!(timestamp_lookups_are_record_precise, |kind| {
    let mut log = make(kind, small_config());
    // One 10-record batch with timestamps 100, 110, ..., 190.
    let records: Vec<_> = (0..10)
        .map(|i| TestRecord::new(Some(b"k"), Some(b"v"), 100 + 10 * i))
        .collect();
    log.append(&build_batch(&records, ProducerFields::default()), 0, 0)
        .unwrap();
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 100)));
    assert_eq!(log.offset_for_timestamp(135).unwrap(), Some((4, 140)));
    assert_eq!(log.offset_for_timestamp(190).unwrap(), Some((9, 190)));
    assert_eq!(log.offset_for_timestamp(191).unwrap(), None);
    assert_eq!(log.max_timestamp().unwrap(), Some((9, 190)));
    // Out-of-order timestamps: max timestamp in the middle of a later batch.
    let records = [
        TestRecord::new(Some(b"a"), Some(b"v"), 150),
        TestRecord::new(Some(b"b"), Some(b"v"), 500),
        TestRecord::new(Some(b"c"), Some(b"v"), 160),
    ];
    log.append(&build_batch(&records, ProducerFields::default()), 0, 0)
        .unwrap();
    assert_eq!(log.max_timestamp().unwrap(), Some((11, 500)));
    assert_eq!(log.offset_for_timestamp(200).unwrap(), Some((11, 500)));
    for i in 0..50 {
        log.append(&simple_batch(3, 100, 1000 + 10 * i), 0, 0)
            .unwrap();
    }
    assert_eq!(log.offset_for_timestamp(1001).unwrap(), Some((14, 1001)));
    assert_eq!(log.offset_for_timestamp(1255).unwrap(), Some((91, 1260)));
});

suite!(log_append_time_stamps_batches, |kind| {
    let config = LogConfig {
        message_timestamp_type_log_append: true,
        ..LogConfig::default()
    };
    let mut log = make(kind, config);
    let info = log.append(&simple_batch(3, 5, 10), 0, 777).unwrap();
    assert_eq!(info.log_append_time, 777);
    let read = read_all(&*log);
    let header = BatchHeader::parse(&read[0].2, 0).unwrap();
    assert!(header.is_log_append_time());
    assert_eq!(header.max_timestamp(), 777);
    assert_eq!(log.offset_for_timestamp(700).unwrap(), Some((0, 777)));
});

suite!(roll_retention_and_delete_records, |kind| {
    let config = LogConfig {
        retention_bytes: 4096,
        retention_ms: 10_000,
        ..small_config()
    };
    let mut log = make(kind, config);
    for i in 0..100 {
        log.append(&simple_batch(2, 100, i * 10), 0, i * 10)
            .unwrap();
    }
    log.check_invariants();
    let size_before = log.size_bytes();
    assert!(size_before > 8192);
    let deleted = log.apply_retention(1000).unwrap();
    assert!(deleted > 0);
    assert!(
        log.size_bytes() <= 4096 + 4096,
        "size retention leaves about retention_bytes"
    );
    assert!(log.log_start_offset() > 0);
    log.check_invariants();
    let start = log.log_start_offset();
    assert!(matches!(
        log.read(start - 1, 10, i64::MAX),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    // Time retention: everything sealed is older than now - retention_ms.
    log.apply_retention(1_000_000).unwrap();
    log.check_invariants();
    let leo = log.log_end_offset();
    // delete_records moves the start inside a segment.
    let target = log.log_start_offset() + 1;
    if target <= leo {
        assert_eq!(log.delete_records(target).unwrap(), target);
        assert!(matches!(
            log.read(target - 1, 10, i64::MAX),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        let bytes = log.read(target, 10, i64::MAX).unwrap();
        assert!(!bytes.is_empty());
    }
    assert!(log.delete_records(leo + 1).is_err());
    assert_eq!(log.delete_records(leo).unwrap(), leo);
    log.check_invariants();
    assert!(log.read(leo, 10, i64::MAX).unwrap().is_empty());
    let info = log.append(&simple_batch(1, 1, 0), 0, 2_000_000).unwrap();
    assert_eq!(info.first_offset, leo);
});

suite!(truncate_to_batch_boundaries, |kind| {
    let mut log = make(kind, small_config());
    for i in 0..60 {
        log.append(&simple_batch(3, 50, i), 0, 0).unwrap();
    }
    assert!(matches!(
        log.truncate_to(100),
        Err(StorageError::NotBatchBoundary { offset: 100 })
    ));
    log.truncate_to(99).unwrap();
    assert_eq!(log.log_end_offset(), 99);
    log.check_invariants();
    assert_eq!(read_all(&*log).last().unwrap().1, 98);
    let info = log.append(&simple_batch(2, 5, 0), 0, 0).unwrap();
    assert_eq!(info.first_offset, 99);
    log.truncate_to(500).unwrap();
    assert_eq!(log.log_end_offset(), 101);
    log.truncate_to(0).unwrap();
    assert_eq!(log.log_end_offset(), 0);
    assert!(log.read(0, 10, i64::MAX).unwrap().is_empty());
    log.append(&simple_batch(2, 5, 0), 0, 0).unwrap();
    log.check_invariants();
});

suite!(idempotent_producer_dedup_gaps_fencing, |kind| {
    let mut log = make(kind, LogConfig::default());
    let first = log
        .append(&idempotent_batch(3, producer(7, 0, 0)), 0, 0)
        .unwrap();
    assert_eq!((first.first_offset, first.last_offset), (0, 2));
    log.append(&simple_batch(2, 1, 0), 0, 0).unwrap();
    // A retry of the first batch is not written and reports the original offsets.
    let dup = log
        .append(&idempotent_batch(3, producer(7, 0, 0)), 0, 0)
        .unwrap();
    assert!(dup.duplicate);
    assert_eq!((dup.first_offset, dup.last_offset), (0, 2));
    assert_eq!(log.log_end_offset(), 5);
    // Gap.
    let err = log
        .append(&idempotent_batch(1, producer(7, 0, 5)), 0, 0)
        .unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::OutOfOrderSequence {
                expected: 3,
                got: 5,
                ..
            }
        ),
        "{err}"
    );
    log.append(&idempotent_batch(2, producer(7, 0, 3)), 0, 0)
        .unwrap();
    // New epoch must start at 0; then the old epoch is fenced.
    assert!(matches!(
        log.append(&idempotent_batch(1, producer(7, 1, 5)), 0, 0),
        Err(StorageError::OutOfOrderSequence { expected: 0, .. })
    ));
    log.append(&idempotent_batch(1, producer(7, 1, 0)), 0, 0)
        .unwrap();
    let err = log
        .append(&idempotent_batch(1, producer(7, 0, 5)), 0, 0)
        .unwrap_err();
    assert!(
        matches!(err, StorageError::InvalidProducerEpoch { .. }),
        "{err}"
    );
    assert_eq!(err.kafka_error_code(), 47);
    // Unknown producers start anywhere; sequences wrap at i32::MAX.
    log.append(&idempotent_batch(2, producer(9, 0, i32::MAX - 1)), 0, 0)
        .unwrap();
    log.append(&idempotent_batch(1, producer(9, 0, 0)), 0, 0)
        .unwrap();
    // Only the last 5 batches are remembered.
    for seq in 1..7 {
        log.append(&idempotent_batch(1, producer(9, 0, seq)), 0, 0)
            .unwrap();
    }
    assert!(
        log.append(&idempotent_batch(1, producer(9, 0, 6)), 0, 0)
            .unwrap()
            .duplicate
    );
    assert!(log
        .append(&idempotent_batch(1, producer(9, 0, 1)), 0, 0)
        .is_err());
    // Truncation rewinds producer state.
    let leo = log.log_end_offset();
    log.truncate_to(leo - 1).unwrap();
    assert!(
        !log.append(&idempotent_batch(1, producer(9, 0, 6)), 0, 0)
            .unwrap()
            .duplicate
    );
});

suite!(compaction_keeps_latest_per_key_and_offsets, |kind| {
    let config = LogConfig {
        compact: true,
        delete: false,
        segment_bytes: 1024,
        delete_retention_ms: 1000,
        ..small_config()
    };
    let mut log = make(kind, config);
    let mut latest = std::collections::BTreeMap::new();
    for i in 0..200i64 {
        let key = format!("key{}", i % 7);
        let value = (i % 50 != 3).then(|| format!("value{i}"));
        let record = TestRecord::new(Some(key.as_bytes()), value.as_deref().map(str::as_bytes), i);
        let info = log
            .append(&build_batch(&[record], ProducerFields::default()), 0, 0)
            .unwrap();
        latest.insert(key, (info.first_offset, value));
    }
    // A record at a much later time rolls the segment, so every key above is sealed.
    let late = TestRecord::new(Some(b"zz"), Some(b"late"), 5_000);
    log.append(
        &build_batch(&[late], ProducerFields::default()),
        0,
        1_000_000_000,
    )
    .unwrap();
    let before = read_all(&*log);
    let stats = log.compact(0).unwrap();
    assert!(stats.records_removed > 0, "{stats:?}");
    log.check_invariants();
    let after = read_all(&*log);
    let mut seen = std::collections::BTreeMap::new();
    for (key, offset, value) in records_of(&after) {
        if key != "zz" {
            let previous = seen.insert(key.clone(), (offset, value));
            assert!(previous.is_none(), "key {key} kept twice");
        }
    }
    assert_eq!(
        seen, latest,
        "exactly the latest value per key survives, offsets kept"
    );
    assert!(after.len() < before.len());
    // Tombstones go once older than delete_retention_ms.
    log.compact(1_000_000).unwrap();
    log.check_invariants();
    for (key, offset, value) in records_of(&read_all(&*log)) {
        assert!(
            value.is_some(),
            "tombstone of {key} at {offset} outlived delete_retention_ms"
        );
    }
});

type KeyedRecord = (String, i64, Option<String>);

/// Decodes every record as `(key, offset, value)`, checking records keep their batch's offsets.
fn records_of(batches: &[common::ReadBatch]) -> Vec<KeyedRecord> {
    let mut out = Vec::new();
    for (base, last, bytes) in batches {
        let header = BatchHeader::parse(bytes, 0).unwrap();
        let records = millrace_storage::records::BatchRecords::new(header).unwrap();
        for r in records.iter() {
            let r = r.unwrap();
            assert!(r.offset >= *base && r.offset <= *last);
            let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
            out.push((text(r.key.unwrap()), r.offset, r.value.map(text)));
        }
    }
    out
}

/// Appends `batch` as leader of `epoch`, returning its first offset.
fn append_at(log: &mut common::Harness, batch: &[u8], epoch: i32) -> i64 {
    log.append(batch, epoch, 0).expect("append").first_offset
}

suite!(
    end_offset_for_epoch_answers_offset_for_leader_epoch,
    |kind| {
        let mut log = make(kind, LogConfig::default());
        assert_eq!(log.latest_epoch(), None);
        assert_eq!(log.end_offset_for_epoch(0), None, "empty cache");
        for epoch in [0, 0, 2, 5] {
            append_at(&mut log, &simple_batch(3, 10, 0), epoch);
        }
        assert_eq!(log.latest_epoch(), Some(5));
        assert_eq!(log.end_offset_for_epoch(0), Some((0, 6)));
        assert_eq!(log.end_offset_for_epoch(1), Some((0, 6)));
        assert_eq!(log.end_offset_for_epoch(2), Some((2, 9)));
        assert_eq!(log.end_offset_for_epoch(3), Some((2, 9)));
        assert_eq!(log.end_offset_for_epoch(5), Some((5, 12)));
        assert_eq!(log.end_offset_for_epoch(6), Some((5, 12)));
        assert_eq!(log.end_offset_for_epoch(-1), None, "older than every epoch");
        log.check_invariants();
    }
);

suite!(stale_leader_epoch_is_refused, |kind| {
    let mut log = make(kind, LogConfig::default());
    append_at(&mut log, &simple_batch(2, 10, 0), 3);
    let before = read_all(&*log);
    let err = log.append(&simple_batch(2, 10, 0), 2, 0).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::StaleLeaderEpoch {
                epoch: 2,
                latest: 3
            }
        ),
        "{err}"
    );
    assert_eq!(err.kafka_error_code(), 74);
    assert_eq!(read_all(&*log), before, "nothing written");
    assert_eq!(log.latest_epoch(), Some(3));
    append_at(&mut log, &simple_batch(2, 10, 0), 3);
    append_at(&mut log, &simple_batch(2, 10, 0), 4);
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 4)));
    log.check_invariants();
});

/// Copies the leader's log into the follower through `append_replicated`, a few batches at
/// a time, as a fetcher would.
fn replicate(leader: &common::Harness, follower: &mut common::Harness) {
    while follower.log_end_offset() < leader.log_end_offset() {
        let bytes = leader
            .read(follower.log_end_offset(), 700, i64::MAX)
            .unwrap();
        let info = follower.append_replicated(&bytes, 0).unwrap();
        assert!(info.records > 0 && !info.duplicate);
    }
}

suite!(replicated_append_copies_leader_bytes_and_epochs, |kind| {
    let mut leader = make(kind, small_config());
    let mut follower = make(kind, small_config());
    let mut epoch = 0;
    for i in 0..60usize {
        if i % 13 == 12 {
            epoch += 1 + (i % 2) as i32;
        }
        // Every fourth append is 3 records of one idempotent producer, sequences contiguous.
        let batch = if i % 4 == 0 {
            idempotent_batch(3, producer(11, 0, (i / 4 * 3) as i32))
        } else {
            simple_batch(1 + i % 5, 20 + i * 3, 1000 + i as i64)
        };
        leader.append(&batch, epoch, 0).unwrap();
    }
    replicate(&leader, &mut follower);
    follower.check_invariants();
    assert_eq!(read_all(&*follower), read_all(&*leader), "byte-identical");
    assert_eq!(follower.latest_epoch(), leader.latest_epoch());
    for e in -1..=epoch + 2 {
        assert_eq!(
            follower.end_offset_for_epoch(e),
            leader.end_offset_for_epoch(e),
            "epoch {e}"
        );
    }
    assert_eq!(
        follower.producer_state(),
        leader.producer_state(),
        "producer state recorded"
    );
    let info = follower.append_replicated(&[], 0).unwrap();
    assert_eq!(info.records, 0);
    assert_eq!(info.first_offset, follower.log_end_offset());
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
});

suite!(
    replicated_append_keeps_duplicates_the_leader_wrote,
    |kind| {
        let mut leader = make(kind, LogConfig::default());
        leader
            .append(&idempotent_batch(2, producer(5, 0, 0)), 1, 0)
            .unwrap();
        let copy = leader.read(0, 1 << 20, i64::MAX).unwrap();
        let mut follower = make(kind, LogConfig::default());
        follower.append_replicated(&copy, 0).unwrap();
        // The same producer batch again, at the next offset: a follower does not second-guess.
        let mut again = copy.to_vec();
        again[..8].copy_from_slice(&2i64.to_be_bytes());
        let info = follower.append_replicated(&again, 0).unwrap();
        assert!(!info.duplicate);
        assert_eq!((info.first_offset, info.last_offset), (2, 3));
        assert_eq!(follower.log_end_offset(), 4);
        follower.check_invariants();
    }
);

suite!(replicated_append_refuses_gaps_and_bad_batches, |kind| {
    let mut leader = make(kind, LogConfig::default());
    for epoch in [1, 1, 3] {
        append_at(&mut leader, &simple_batch(2, 10, 0), epoch);
    }
    let mut follower = make(kind, LogConfig::default());
    follower
        .append_replicated(&leader.read(0, 1, i64::MAX).unwrap(), 0)
        .unwrap();
    let before = read_all(&*follower);
    let skip = leader.read(4, 1, i64::MAX).unwrap();
    let err = follower.append_replicated(&skip, 0).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::NonContiguousReplicatedAppend {
                expected: 2,
                got: 4
            }
        ),
        "{err}"
    );
    let replay = leader.read(0, 1, i64::MAX).unwrap();
    assert!(matches!(
        follower.append_replicated(&replay, 0),
        Err(StorageError::NonContiguousReplicatedAppend { .. })
    ));
    // Offsets going back inside one append.
    let mut twice = leader.read(2, 1, i64::MAX).unwrap().to_vec();
    twice.extend_from_slice(&twice.clone());
    assert!(matches!(
        follower.append_replicated(&twice, 0),
        Err(StorageError::OffsetsOutOfOrder { .. })
    ));
    // CRC damage.
    let mut corrupt = leader.read(2, 1, i64::MAX).unwrap().to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert!(matches!(
        follower.append_replicated(&corrupt, 0),
        Err(StorageError::CorruptMessage { .. })
    ));
    assert_eq!(
        read_all(&*follower),
        before,
        "refused appends write nothing"
    );
    assert_eq!(follower.log_end_offset(), 2);
    assert_eq!(follower.latest_epoch(), Some(1));
    // An epoch older than the follower's latest means it skipped a truncation.
    follower
        .append_replicated(&leader.read(2, 1 << 20, i64::MAX).unwrap(), 0)
        .unwrap();
    let mut stale = leader.read(4, 1, i64::MAX).unwrap().to_vec();
    stale[..8].copy_from_slice(&6i64.to_be_bytes());
    stale[12..16].copy_from_slice(&2i32.to_be_bytes());
    assert!(matches!(
        follower.append_replicated(&stale, 0),
        Err(StorageError::StaleLeaderEpoch {
            epoch: 2,
            latest: 3
        })
    ));
    follower.check_invariants();
});

suite!(truncate_to_drops_epoch_entries, |kind| {
    let mut log = make(kind, small_config());
    for epoch in [0, 2, 5, 5] {
        append_at(&mut log, &simple_batch(3, 10, 0), epoch);
    }
    log.truncate_to(9).unwrap();
    assert_eq!(log.latest_epoch(), Some(5));
    assert_eq!(log.end_offset_for_epoch(5), Some((5, 9)));
    log.truncate_to(6).unwrap();
    assert_eq!(log.latest_epoch(), Some(2));
    assert_eq!(log.end_offset_for_epoch(5), Some((2, 6)));
    log.check_invariants();
    log.truncate_to(3).unwrap();
    assert_eq!(log.latest_epoch(), Some(0));
    // After truncation a new leader may use an epoch between the dropped ones.
    append_at(&mut log, &simple_batch(3, 10, 0), 4);
    assert_eq!(log.end_offset_for_epoch(3), Some((0, 3)));
    assert_eq!(log.end_offset_for_epoch(4), Some((4, 6)));
    log.truncate_to(0).unwrap();
    assert_eq!(log.latest_epoch(), None);
    log.check_invariants();
});

suite!(delete_records_clamps_first_epoch, |kind| {
    let mut log = make(kind, small_config());
    for epoch in [0, 2, 5] {
        append_at(&mut log, &simple_batch(3, 10, 0), epoch);
    }
    log.delete_records(4).unwrap();
    log.check_invariants(); // the first entry starts at or after the log start
    assert_eq!(log.end_offset_for_epoch(0), None, "epoch 0 wholly deleted");
    assert_eq!(
        log.end_offset_for_epoch(2),
        Some((2, 6)),
        "epoch 2 clamped, kept"
    );
    assert_eq!(log.end_offset_for_epoch(5), Some((5, 9)));
    log.delete_records(9).unwrap();
    log.check_invariants();
    assert_eq!(log.end_offset_for_epoch(2), None);
    assert_eq!(log.end_offset_for_epoch(7), Some((5, 9)));
    append_at(&mut log, &simple_batch(1, 10, 0), 5);
    append_at(&mut log, &simple_batch(1, 10, 0), 6);
    assert_eq!(log.end_offset_for_epoch(5), Some((5, 10)));
    log.check_invariants();
});

suite!(retention_drops_epochs_of_deleted_segments, |kind| {
    let config = LogConfig {
        retention_bytes: 2048,
        ..small_config()
    };
    let mut log = make(kind, config);
    for i in 0..60i32 {
        append_at(&mut log, &simple_batch(2, 100, 0), i / 10);
    }
    assert!(log.apply_retention(0).unwrap() > 0);
    log.check_invariants();
    let start = log.log_start_offset();
    // Every epoch still answered covers data at or after the new log start.
    assert_eq!(log.end_offset_for_epoch(0), None);
    assert_eq!(log.latest_epoch(), Some(5));
    assert!(log.end_offset_for_epoch(5).unwrap().1 > start);
});
