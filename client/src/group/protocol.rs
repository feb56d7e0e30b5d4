//! The "consumer" protocol's member metadata and assignment bytes.
//!
//! Kafka frames both as a 2-byte version followed by
//! `ConsumerProtocolSubscription` / `ConsumerProtocolAssignment` encoded at
//! that version (no flexible versions). We write the highest version the codec
//! knows (3); a newer version from another client is read at our highest, which
//! works because later versions only append fields (Kafka's own rule).

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Message, StrBytes};

use crate::ClientError;

/// Partitions per topic, sorted: the shape of an assignment.
pub type TopicPartitions = BTreeMap<String, Vec<i32>>;

/// What one member sends in JoinGroup: the topics it wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    pub topics: Vec<String>,
    /// Partitions the member owned in its last generation (v1+).
    pub owned: TopicPartitions,
    /// The member's last generation, -1 if none (v2+).
    pub generation_id: i32,
    pub rack_id: Option<String>,
    pub user_data: Option<Bytes>,
}

/// What the leader hands each member in SyncGroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    pub partitions: TopicPartitions,
    pub user_data: Option<Bytes>,
}

impl Assignment {
    /// Number of assigned partitions.
    pub fn len(&self) -> usize {
        self.partitions.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (topic, partition) pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i32)> {
        self.partitions
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |p| (t.as_str(), *p)))
    }
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn codec_error(what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::GroupProtocol(format!("{what}: {e}"))
}

/// Writes the version prefix and the message at that version.
fn frame<M: Encodable>(message: &M, version: i16, what: &str) -> Result<Bytes, ClientError> {
    let size = message
        .compute_size(version)
        .map_err(|e| codec_error(what, e))?;
    let mut buf = BytesMut::with_capacity(2 + size);
    buf.put_i16(version);
    message
        .encode(&mut buf, version)
        .map_err(|e| codec_error(what, e))?;
    Ok(buf.freeze())
}

/// Reads the version prefix and decodes at min(version, our highest).
fn unframe<M: Decodable + Message>(mut bytes: Bytes, what: &str) -> Result<M, ClientError> {
    if bytes.len() < 2 {
        return Err(codec_error(
            what,
            format!("{} bytes, too short", bytes.len()),
        ));
    }
    let version = bytes.get_i16();
    if version < 0 {
        return Err(codec_error(what, format!("negative version {version}")));
    }
    let version = version.min(M::VERSIONS.max);
    M::decode(&mut bytes, version).map_err(|e| codec_error(what, e))
}

impl Subscription {
    /// Member metadata bytes for JoinGroup.
    pub fn encode(&self) -> Result<Bytes, ClientError> {
        let owned = self
            .owned
            .iter()
            .map(|(t, ps)| {
                OwnedTopic::default()
                    .with_topic(TopicName(str_bytes(t)))
                    .with_partitions(ps.clone())
            })
            .collect();
        let message = ConsumerProtocolSubscription::default()
            .with_topics(self.topics.iter().map(|t| str_bytes(t)).collect())
            .with_user_data(self.user_data.clone())
            .with_owned_partitions(owned)
            .with_generation_id(self.generation_id)
            .with_rack_id(self.rack_id.as_deref().map(str_bytes));
        frame(
            &message,
            ConsumerProtocolSubscription::VERSIONS.max,
            "subscription",
        )
    }

    /// Parses member metadata from JoinGroup or DescribeGroups.
    pub fn decode(bytes: Bytes) -> Result<Self, ClientError> {
        let m: ConsumerProtocolSubscription = unframe(bytes, "subscription")?;
        Ok(Self {
            topics: m.topics.iter().map(|t| t.to_string()).collect(),
            owned: m
                .owned_partitions
                .iter()
                .map(|t| (t.topic.0.to_string(), t.partitions.clone()))
                .collect(),
            generation_id: m.generation_id,
            rack_id: m.rack_id.map(|r| r.to_string()),
            user_data: m.user_data,
        })
    }
}

impl Assignment {
    /// Assignment bytes for SyncGroup.
    pub fn encode(&self) -> Result<Bytes, ClientError> {
        let assigned = self
            .partitions
            .iter()
            .map(|(t, ps)| {
                AssignedTopic::default()
                    .with_topic(TopicName(str_bytes(t)))
                    .with_partitions(ps.clone())
            })
            .collect();
        let message = ConsumerProtocolAssignment::default()
            .with_assigned_partitions(assigned)
            .with_user_data(self.user_data.clone());
        frame(
            &message,
            ConsumerProtocolAssignment::VERSIONS.max,
            "assignment",
        )
    }

    /// Parses assignment bytes (SyncGroup, DescribeGroups); empty bytes are an
    /// empty assignment, as Kafka sends to members the leader left out.
    pub fn decode(bytes: Bytes) -> Result<Self, ClientError> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        let m: ConsumerProtocolAssignment = unframe(bytes, "assignment")?;
        let mut partitions = TopicPartitions::new();
        for t in m.assigned_partitions {
            let entry: &mut Vec<i32> = partitions.entry(t.topic.0.to_string()).or_default();
            entry.extend(t.partitions);
            entry.sort_unstable();
            entry.dedup();
        }
        Ok(Self {
            partitions,
            user_data: m.user_data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(pairs: &[(&str, &[i32])]) -> TopicPartitions {
        pairs
            .iter()
            .map(|(t, ps)| ((*t).to_owned(), ps.to_vec()))
            .collect()
    }

    #[test]
    fn subscription_round_trips() {
        let s = Subscription {
            topics: vec!["a".into(), "b".into()],
            owned: tp(&[("a", &[0, 2])]),
            generation_id: 7,
            rack_id: Some("r1".into()),
            user_data: Some(Bytes::from_static(b"u")),
        };
        let bytes = s.encode().unwrap();
        assert_eq!(
            &bytes[..2],
            &[0, 3],
            "version prefix is the highest version"
        );
        assert_eq!(Subscription::decode(bytes).unwrap(), s);
    }

    #[test]
    fn assignment_round_trips_and_empty_is_nothing() {
        let a = Assignment {
            partitions: tp(&[("a", &[0, 1]), ("b", &[3])]),
            user_data: None,
        };
        let bytes = a.encode().unwrap();
        assert_eq!(Assignment::decode(bytes).unwrap(), a);
        assert!(Assignment::decode(Bytes::new()).unwrap().is_empty());
        assert_eq!(a.len(), 3);
    }

    #[test]
    fn reads_version_zero_as_older_clients_send_it() {
        // v0 subscription: topics ["t"], null user data; as librdkafka/Java 2.x write it.
        let v0 = Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff]);
        let s = Subscription::decode(v0).unwrap();
        assert_eq!(s.topics, vec!["t".to_owned()]);
        assert!(s.owned.is_empty());
        // A newer version than ours decodes at ours (later versions only append).
        let mut future = BytesMut::from(&Subscription::default().encode().unwrap()[..]);
        future[1] = 9;
        future.extend_from_slice(&[1, 2, 3]);
        assert!(Subscription::decode(future.freeze()).is_ok());
    }

    #[test]
    fn truncated_bytes_are_errors() {
        assert!(Subscription::decode(Bytes::from_static(&[0])).is_err());
        assert!(Assignment::decode(Bytes::from_static(&[0, 1, 0, 0, 0, 5])).is_err());
        assert!(Subscription::decode(Bytes::from_static(&[0xff, 0xff])).is_err());
    }
}
