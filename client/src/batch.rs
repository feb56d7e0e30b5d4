//! Building v2 record batches for the producer and reading them back for the
//! consumer, over `kafka_protocol::records`.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::ClientError;

/// Producer identity stamped on a batch; `NONE` for a non-idempotent producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerStamp {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Sequence of the batch's first record, -1 if not idempotent.
    pub base_sequence: i32,
}

impl ProducerStamp {
    pub const NONE: ProducerStamp = ProducerStamp {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    };
}

/// One record to produce.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducerRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// Creation time, ms since the epoch.
    pub timestamp_ms: i64,
    pub headers: Vec<(String, Option<Bytes>)>,
}

impl ProducerRecord {
    /// Bytes this record adds to a batch, roughly (before compression); used for `batch.size`.
    pub fn size_estimate(&self) -> usize {
        let kv =
            self.key.as_ref().map_or(0, Bytes::len) + self.value.as_ref().map_or(0, Bytes::len);
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Bytes::len) + 4)
            .sum();
        kv + headers + 21
    }
}

/// A record read back from a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Encodes `records` as one v2 batch with offsets 0..n (the broker assigns real ones).
pub fn encode_batch(
    records: &[ProducerRecord],
    compression: Compression,
    stamp: ProducerStamp,
) -> Result<Bytes, ClientError> {
    let wire: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: stamp.producer_id,
            producer_epoch: stamp.producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch while offset - sequence is
            // constant, and derives the base sequence from the first record.
            sequence: stamp.base_sequence.wrapping_add(i as i32),
            timestamp: r.timestamp_ms,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (k.clone().into(), v.clone()))
                .collect(),
            delete_horizon: false,
        })
        .collect();
    let mut buf =
        BytesMut::with_capacity(records.iter().map(|r| r.size_estimate()).sum::<usize>() + 61);
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, wire.iter(), &options)
        .map_err(|e| ClientError::Records(format!("encode: {e}")))?;
    Ok(buf.freeze())
}

/// Offset of the batch length field and size of the fields before the batch body.
const LENGTH_OFFSET: usize = 8;
const LOG_OVERHEAD: usize = 12;

/// Decodes the complete batches in `data` (a fetch may end in a partial batch,
/// which is ignored), skipping control records and records below `offset_min`.
pub fn decode_records(
    data: &Bytes,
    topic: &Arc<str>,
    partition: i32,
    offset_min: i64,
) -> Result<Vec<ConsumerRecord>, ClientError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while data.len() - pos >= LOG_OVERHEAD {
        let len_bytes = &data[pos + LENGTH_OFFSET..pos + LOG_OVERHEAD];
        let batch_len =
            i32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        let Ok(batch_len) = usize::try_from(batch_len) else {
            return Err(ClientError::Records(format!(
                "negative batch length {batch_len}"
            )));
        };
        let end = pos + LOG_OVERHEAD + batch_len;
        if end > data.len() {
            break;
        }
        let mut batch = data.slice(pos..end);
        pos = end;
        let set = RecordBatchDecoder::decode(&mut batch)
            .map_err(|e| ClientError::Records(format!("decode: {e}")))?;
        for r in set.records {
            if r.control || r.offset < offset_min {
                continue;
            }
            out.push(ConsumerRecord {
                topic: Arc::clone(topic),
                partition,
                offset: r.offset,
                timestamp_ms: r.timestamp,
                key: r.key,
                value: r.value,
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            });
        }
    }
    Ok(out)
}

/// The offset after the last complete batch in `data`, to move past batches
/// whose records were all filtered out (e.g. control batches). `None` if no
/// complete batch is present.
pub fn next_offset_after(data: &Bytes) -> Option<i64> {
    let mut pos = 0;
    let mut next = None;
    while data.len() - pos >= LOG_OVERHEAD + 15 {
        let base = i64::from_be_bytes(data[pos..pos + 8].try_into().ok()?);
        let len = i32::from_be_bytes(data[pos + 8..pos + 12].try_into().ok()?);
        let end = pos + LOG_OVERHEAD + usize::try_from(len).ok()?;
        if end > data.len() {
            break;
        }
        // last offset delta sits at byte 23 of the batch (after attributes).
        let delta = i32::from_be_bytes(data[pos + 23..pos + 27].try_into().ok()?);
        next = Some(base + i64::from(delta) + 1);
        pos = end;
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize) -> Vec<ProducerRecord> {
        (0..n)
            .map(|i| ProducerRecord {
                key: (i % 2 == 0).then(|| Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("value-{i}"))),
                timestamp_ms: 1_700_000_000_000 + i as i64,
                headers: vec![("h".into(), Some(Bytes::from_static(b"v")))],
            })
            .collect()
    }

    #[test]
    fn round_trip_every_compression() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let input = records(10);
            let bytes = encode_batch(&input, c, ProducerStamp::NONE).unwrap();
            let infos = RecordBatchDecoder::decode_batch_info(&mut bytes.clone()).unwrap();
            assert_eq!(infos.len(), 1, "{c:?}: one batch");
            assert_eq!(infos[0].record_count, 10);
            assert_eq!(infos[0].base_sequence, -1);
            let out = decode_records(&bytes, &"t".into(), 3, 0).unwrap();
            assert_eq!(out.len(), 10);
            for (i, (a, b)) in input.iter().zip(&out).enumerate() {
                assert_eq!(b.offset, i as i64);
                assert_eq!(b.partition, 3);
                assert_eq!(a.key, b.key);
                assert_eq!(a.value, b.value);
                assert_eq!(a.timestamp_ms, b.timestamp_ms);
                assert_eq!(a.headers, b.headers);
            }
            assert_eq!(next_offset_after(&bytes), Some(10));
        }
    }

    #[test]
    fn idempotent_stamp_is_kept() {
        let stamp = ProducerStamp {
            producer_id: 77,
            producer_epoch: 2,
            base_sequence: 40,
        };
        let bytes = encode_batch(&records(5), Compression::None, stamp).unwrap();
        let infos = RecordBatchDecoder::decode_batch_info(&mut bytes.clone()).unwrap();
        assert_eq!(infos.len(), 1);
        assert_eq!(infos[0].producer_id, 77);
        assert_eq!(infos[0].producer_epoch, 2);
        assert_eq!(infos[0].base_sequence, 40);
    }

    #[test]
    fn skips_below_offset_and_partial_tail() {
        let one = encode_batch(&records(4), Compression::None, ProducerStamp::NONE).unwrap();
        let mut two = BytesMut::from(&one[..]);
        two.extend_from_slice(&one[..one.len() / 2]); // a torn second batch
        let two = two.freeze();
        let out = decode_records(&two, &"t".into(), 0, 2).unwrap();
        assert_eq!(out.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![2, 3]);
        assert!(decode_records(&Bytes::new(), &"t".into(), 0, 0)
            .unwrap()
            .is_empty());
        assert!(
            decode_records(&Bytes::from_static(&[0; 5]), &"t".into(), 0, 0)
                .unwrap()
                .is_empty()
        );
    }
}
