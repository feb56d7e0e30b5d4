//! How group state is kept in `__consumer_offsets`: one record per committed
//! offset and one per group, keyed so that compaction keeps the latest of
//! each; a null value (tombstone) deletes. Keys and values are JSON.
//!
//! Kafka's own binary schemas for these records are not used: nothing outside
//! the broker reads this topic's records, and JSON keeps them inspectable
//! with kcat.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE,
};
use serde::{Deserialize, Serialize};

use super::classic::CommittedOffset;

pub const TOPIC: &str = "__consumer_offsets";

/// The key of a record in `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredKey {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
}

impl StoredKey {
    pub fn group(&self) -> &str {
        match self {
            StoredKey::Offset { group, .. } | StoredKey::Group { group } => group,
        }
    }
}

/// A member as stored, so that static members survive a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocols: Vec<(String, Vec<u8>)>,
    pub assignment: Vec<u8>,
}

/// A group's membership as of its last stable generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredGroup {
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: Vec<StoredMember>,
}

/// A stored value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredValue {
    Offset(CommittedOffset),
    Group(StoredGroup),
}

/// Encodes records (value `None` = tombstone) into one v2 batch.
pub fn encode_batch(entries: &[(StoredKey, Option<StoredValue>)], now_ms: i64) -> Bytes {
    let records: Vec<Record> = entries
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch whenever offset - sequence changes;
            // this keeps one batch while its base sequence stays NO_SEQUENCE.
            sequence: NO_SEQUENCE + i as i32,
            timestamp: now_ms,
            key: Some(Bytes::from(serde_json::to_vec(k).unwrap_or_default())),
            value: v
                .as_ref()
                .map(|v| Bytes::from(serde_json::to_vec(v).unwrap_or_default())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    // Encoding uncompressed records into memory cannot fail.
    if let Err(e) = RecordBatchEncoder::encode(&mut buf, &records, &options) {
        tracing::error!(error = %e, "cannot encode a __consumer_offsets batch");
    }
    buf.freeze()
}

/// Decodes one record's key and value; `None` for records we do not understand.
pub fn decode(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Option<(StoredKey, Option<StoredValue>)> {
    let key: StoredKey = serde_json::from_slice(key?).ok()?;
    let value = match value {
        Some(v) => Some(serde_json::from_slice(v).ok()?),
        None => None,
    };
    Some((key, value))
}

/// Kafka's partition for a group: `abs(groupId.hashCode) % partitions`, with
/// Java's String.hashCode, so tools that compute it agree with us.
pub fn partition_for(group: &str, partitions: u32) -> i32 {
    let mut h: i32 = 0;
    for unit in group.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(unit as i32);
    }
    // Kafka's Utils.abs maps i32::MIN to 0.
    let h = if h == i32::MIN { 0 } else { h.abs() };
    h % partitions.max(1) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_matches_java_hash_code() {
        // "group".hashCode() == 98629247 in Java.
        assert_eq!(partition_for("group", 50), 98629247 % 50);
        assert_eq!(partition_for("", 50), 0);
    }

    #[test]
    fn records_round_trip_through_a_batch() {
        let key = StoredKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
        };
        let value = StoredValue::Offset(CommittedOffset {
            offset: 42,
            leader_epoch: -1,
            metadata: Some("m".into()),
            commit_ms: 7,
        });
        let batch = encode_batch(
            &[
                (key.clone(), Some(value.clone())),
                (StoredKey::Group { group: "g".into() }, None),
            ],
            7,
        );
        let header = millrace_storage::batch::validate(&batch, 0).unwrap();
        let records = millrace_storage::records::BatchRecords::new(header).unwrap();
        let got: Vec<_> = records
            .iter()
            .map(|r| r.unwrap())
            .map(|r| decode(r.key, r.value).unwrap())
            .collect();
        assert_eq!(
            got,
            vec![
                (key, Some(value)),
                (StoredKey::Group { group: "g".into() }, None)
            ]
        );
    }
}
