//! Request/response codec on top of `kafka-protocol`'s generated messages.
//!
//! Broker side: [`decode_request`] and [`encode_response`]. Client side:
//! [`encode_request`] and [`decode_response`]. Frames here exclude the size
//! prefix on input and include it on output.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::{versions, ProtocolError};

/// A request frame decoded at the version its header names.
#[derive(Debug)]
pub struct DecodedRequest {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    pub body: RequestKind,
}

/// The fixed start of every request header: key, version, correlation id.
fn peek_prefix(frame: &[u8]) -> Result<(i16, i16, i32), ProtocolError> {
    if frame.len() < 8 {
        return Err(ProtocolError::Truncated { len: frame.len() });
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    Ok((key, version, correlation_id))
}

/// Decodes one request frame (without its size prefix).
///
/// A known API at a version we do not advertise is `UnsupportedVersion` (the
/// broker answers ApiVersions with the v0 fallback and closes the connection
/// for anything else, as Kafka does).
pub fn decode_request(frame: Bytes) -> Result<DecodedRequest, ProtocolError> {
    let (key, version, correlation_id) = peek_prefix(&frame)?;
    let api_key = ApiKey::try_from(key).map_err(|()| ProtocolError::UnknownApiKey {
        api_key: key,
        correlation_id,
    })?;
    if !versions::is_supported(api_key, version) {
        return Err(ProtocolError::UnsupportedVersion {
            api_key: key,
            version,
            correlation_id,
        });
    }
    let malformed = |e: anyhow::Error| ProtocolError::Malformed {
        api: api_name(api_key),
        version,
        reason: e.to_string(),
    };
    let mut buf = frame;
    let header = RequestHeader::decode(&mut buf, api_key.request_header_version(version))
        .map_err(malformed)?;
    let body = RequestKind::decode(api_key, &mut buf, version).map_err(malformed)?;
    Ok(DecodedRequest {
        api_key,
        header,
        body,
    })
}

/// Encodes a response with its header and size prefix.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Bytes, ProtocolError> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header
        .encode(&mut buf, api_key.response_header_version(version))
        .map_err(|e| encode_error("response header", e))?;
    body.encode(&mut buf, version)
        .map_err(|e| encode_error(api_name(api_key), e))?;
    finish_frame(buf)
}

/// Encodes a request with its header and size prefix (client side).
pub fn encode_request(header: &RequestHeader, body: &RequestKind) -> Result<Bytes, ProtocolError> {
    let api_key =
        ApiKey::try_from(header.request_api_key).map_err(|()| ProtocolError::UnknownApiKey {
            api_key: header.request_api_key,
            correlation_id: header.correlation_id,
        })?;
    let version = header.request_api_version;
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    header
        .encode(&mut buf, api_key.request_header_version(version))
        .map_err(|e| encode_error("request header", e))?;
    body.encode(&mut buf, version)
        .map_err(|e| encode_error(api_name(api_key), e))?;
    finish_frame(buf)
}

/// Decodes a response frame (without size prefix) for a request we sent (client side).
pub fn decode_response(
    api_key: ApiKey,
    version: i16,
    frame: Bytes,
) -> Result<(i32, ResponseKind), ProtocolError> {
    let malformed = |e: anyhow::Error| ProtocolError::Malformed {
        api: api_name(api_key),
        version,
        reason: e.to_string(),
    };
    let mut buf = frame;
    let header = ResponseHeader::decode(&mut buf, api_key.response_header_version(version))
        .map_err(malformed)?;
    let body = ResponseKind::decode(api_key, &mut buf, version).map_err(malformed)?;
    Ok((header.correlation_id, body))
}

fn finish_frame(mut buf: BytesMut) -> Result<Bytes, ProtocolError> {
    let size = i32::try_from(buf.len() - 4).map_err(|_| ProtocolError::Encode {
        what: "frame",
        reason: format!("{} bytes exceed the int32 size prefix", buf.len()),
    })?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

fn encode_error(what: &'static str, e: anyhow::Error) -> ProtocolError {
    ProtocolError::Encode {
        what,
        reason: e.to_string(),
    }
}

/// A readable API name for logs, e.g. `Produce`.
pub fn api_name(key: ApiKey) -> &'static str {
    match key {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::DeleteRecords => "DeleteRecords",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::AlterConfigs => "AlterConfigs",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        ApiKey::DescribeCluster => "DescribeCluster",
        ApiKey::DescribeQuorum => "DescribeQuorum",
        ApiKey::OffsetForLeaderEpoch => "OffsetForLeaderEpoch",
        ApiKey::ElectLeaders => "ElectLeaders",
        ApiKey::AlterPartitionReassignments => "AlterPartitionReassignments",
        ApiKey::ListPartitionReassignments => "ListPartitionReassignments",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::OffsetDelete => "OffsetDelete",
        ApiKey::ConsumerGroupHeartbeat => "ConsumerGroupHeartbeat",
        ApiKey::ConsumerGroupDescribe => "ConsumerGroupDescribe",
        _ => "other",
    }
}
