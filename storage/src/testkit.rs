//! Builders for valid v2 record batches (uncompressed, CRC32C set), for tests, benchmarks
//! and the broker's own tests. Not used on any production path.

use crate::batch::{self, HEADER_BYTES, MAGIC_V2};
use crate::records::{encode_record, Record, RecordHeader};

/// One record to put in a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
}

impl TestRecord {
    pub fn new(key: Option<&[u8]>, value: Option<&[u8]>, timestamp: i64) -> Self {
        TestRecord {
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            timestamp,
        }
    }
}

/// Producer fields of a batch (`producer_id = -1` for a plain producer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerFields {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl Default for ProducerFields {
    fn default() -> Self {
        ProducerFields {
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        }
    }
}

/// Encodes `records` (at least one) as one uncompressed v2 batch with base offset 0.
pub fn build_batch(records: &[TestRecord], producer: ProducerFields) -> Vec<u8> {
    assert!(!records.is_empty(), "a batch needs a record");
    let base_ts = records.iter().map(|r| r.timestamp).min().unwrap_or(0);
    let max_ts = records.iter().map(|r| r.timestamp).max().unwrap_or(0);
    let mut out = vec![0u8; HEADER_BYTES];
    for (i, r) in records.iter().enumerate() {
        let record = Record {
            offset: i as i64,
            timestamp: r.timestamp,
            offset_delta: i as i32,
            timestamp_delta: r.timestamp - base_ts,
            attributes: 0,
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: Vec::<RecordHeader<'_>>::new(),
        };
        encode_record(&mut out, &record);
    }
    let put = |out: &mut Vec<u8>, at: usize, bytes: &[u8]| {
        out[at..at + bytes.len()].copy_from_slice(bytes)
    };
    let batch_length = (out.len() - batch::LOG_OVERHEAD_BYTES) as i32;
    put(&mut out, batch::LENGTH_AT, &batch_length.to_be_bytes());
    put(&mut out, batch::LEADER_EPOCH_AT, &(-1i32).to_be_bytes());
    out[batch::MAGIC_AT] = MAGIC_V2 as u8;
    put(
        &mut out,
        batch::LAST_OFFSET_DELTA_AT,
        &(records.len() as i32 - 1).to_be_bytes(),
    );
    put(&mut out, batch::BASE_TIMESTAMP_AT, &base_ts.to_be_bytes());
    put(&mut out, batch::MAX_TIMESTAMP_AT, &max_ts.to_be_bytes());
    put(
        &mut out,
        batch::PRODUCER_ID_AT,
        &producer.producer_id.to_be_bytes(),
    );
    put(
        &mut out,
        batch::PRODUCER_EPOCH_AT,
        &producer.producer_epoch.to_be_bytes(),
    );
    put(
        &mut out,
        batch::BASE_SEQUENCE_AT,
        &producer.base_sequence.to_be_bytes(),
    );
    put(
        &mut out,
        batch::RECORDS_COUNT_AT,
        &(records.len() as i32).to_be_bytes(),
    );
    let crc = crc32c::crc32c(&out[batch::ATTRIBUTES_AT..]);
    put(&mut out, batch::CRC_AT, &crc.to_be_bytes());
    out
}

/// A batch of `count` records with values `value_bytes` long, keys `k<i>`, timestamps
/// `timestamp..timestamp+count`.
pub fn simple_batch(count: usize, value_bytes: usize, timestamp: i64) -> Vec<u8> {
    let records: Vec<TestRecord> = (0..count)
        .map(|i| TestRecord {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(vec![b'v'; value_bytes]),
            timestamp: timestamp + i as i64,
        })
        .collect();
    build_batch(&records, ProducerFields::default())
}
