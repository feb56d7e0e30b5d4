//! The client crate's error type.

use kafka_protocol::ResponseError;
use millrace_protocol::ProtocolError;

/// Everything a client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The broker answered with a non-zero Kafka error code.
    #[error("{context}: {name} (code {code}){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        code: i16,
        /// Kafka's name for the code, e.g. `UNKNOWN_TOPIC_OR_PARTITION`.
        name: String,
        /// What the client was doing, e.g. `topic 'x'`.
        context: String,
        /// The broker's free-text message, when it sent one.
        message: Option<String>,
    },
    /// Socket-level failure (connect, read, write).
    #[error("I/O error talking to {addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// A request got no answer within its deadline.
    #[error("{api} request to {addr} timed out after {timeout_ms} ms")]
    Timeout {
        api: &'static str,
        addr: String,
        timeout_ms: u64,
    },
    /// The connection closed while requests were outstanding, or was already closed.
    #[error("connection to {addr} is closed")]
    Disconnected { addr: String },
    /// Encoding a request or decoding a response failed.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The broker does not serve any version of an API we both know.
    #[error("broker {addr} does not support {api} at a version this client speaks")]
    UnsupportedApi { api: &'static str, addr: String },
    /// The broker answered with a response of the wrong kind or shape.
    #[error("unexpected response: {0}")]
    UnexpectedResponse(String),
    /// A topic is not in the cluster metadata.
    #[error("topic '{0}' does not exist (UNKNOWN_TOPIC_OR_PARTITION)")]
    UnknownTopic(String),
    /// A partition index past the topic's partition count.
    #[error("topic '{topic}' has no partition {partition}")]
    UnknownPartition { topic: String, partition: i32 },
    /// No broker in the bootstrap list or metadata could be reached.
    #[error("no broker reachable (tried {tried})")]
    NoBrokerAvailable { tried: String },
    /// Bad configuration or arguments handed to the client.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A record batch could not be encoded or decoded.
    #[error("record batch: {0}")]
    Records(String),
    /// Another error's text, handed to each of several waiters (see [`ClientError::replicate`]).
    #[error("{0}")]
    Shared(String),
    /// A consumer-group subscription or assignment could not be encoded or decoded.
    #[error("consumer group protocol: {0}")]
    GroupProtocol(String),
    /// A partition has no committed offset and the reset policy is `none`.
    #[error("no committed offset for {topic}-{partition} and auto.offset.reset is none")]
    NoOffset { topic: String, partition: i32 },
    /// The producer or consumer was shut down.
    #[error("the {0} is closed")]
    Closed(&'static str),
}

impl ClientError {
    /// Builds [`ClientError::Kafka`] for a non-zero `code`; `None` for 0.
    pub fn from_code(code: i16, context: impl Into<String>, message: Option<&str>) -> Option<Self> {
        let err = ResponseError::try_from_code(code)?;
        Some(ClientError::Kafka {
            code,
            name: kafka_error_name(err),
            context: context.into(),
            message: message.filter(|m| !m.is_empty()).map(str::to_owned),
        })
    }

    /// `Err` for a non-zero code, so handlers can write `check(code, ..)?`.
    pub fn check(code: i16, context: impl Into<String>, message: Option<&str>) -> Result<(), Self> {
        match Self::from_code(code, context, message) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The Kafka error code, if this is a broker-reported error.
    pub fn kafka_code(&self) -> Option<i16> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            ClientError::UnknownTopic(_) => Some(ResponseError::UnknownTopicOrPartition.code()),
            _ => None,
        }
    }

    /// A copy for each of several waiters (I/O and codec errors keep only their text).
    pub fn replicate(&self) -> ClientError {
        match self {
            ClientError::Kafka {
                code,
                name,
                context,
                message,
            } => ClientError::Kafka {
                code: *code,
                name: name.clone(),
                context: context.clone(),
                message: message.clone(),
            },
            ClientError::Timeout {
                api,
                addr,
                timeout_ms,
            } => ClientError::Timeout {
                api,
                addr: addr.clone(),
                timeout_ms: *timeout_ms,
            },
            ClientError::Disconnected { addr } => ClientError::Disconnected { addr: addr.clone() },
            ClientError::UnknownTopic(t) => ClientError::UnknownTopic(t.clone()),
            ClientError::UnknownPartition { topic, partition } => ClientError::UnknownPartition {
                topic: topic.clone(),
                partition: *partition,
            },
            ClientError::Closed(what) => ClientError::Closed(what),
            other => ClientError::Shared(other.to_string()),
        }
    }

    /// Whether retrying after a metadata refresh may succeed (Kafka's retriable set,
    /// plus lost connections and timeouts).
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Kafka { code, .. } => {
                ResponseError::try_from_code(*code).is_some_and(|e| e.is_retriable())
            }
            ClientError::Io { .. }
            | ClientError::Timeout { .. }
            | ClientError::Disconnected { .. } => true,
            _ => false,
        }
    }
}

/// Kafka's SCREAMING_SNAKE name for an error (`UnknownTopicOrPartition` -> `UNKNOWN_TOPIC_OR_PARTITION`).
pub fn kafka_error_name(err: ResponseError) -> String {
    if let ResponseError::Unknown(code) = err {
        return format!("UNKNOWN_ERROR_CODE_{code}");
    }
    let camel = format!("{err:?}");
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kafka_spelling() {
        assert_eq!(
            kafka_error_name(ResponseError::UnknownTopicOrPartition),
            "UNKNOWN_TOPIC_OR_PARTITION"
        );
        assert_eq!(
            kafka_error_name(ResponseError::OffsetOutOfRange),
            "OFFSET_OUT_OF_RANGE"
        );
        assert_eq!(
            kafka_error_name(ResponseError::Unknown(999)),
            "UNKNOWN_ERROR_CODE_999"
        );
    }

    #[test]
    fn zero_is_not_an_error() {
        assert!(ClientError::from_code(0, "x", None).is_none());
        let e = ClientError::from_code(36, "topic 'a'", Some("exists")).unwrap();
        assert_eq!(e.kafka_code(), Some(36));
        assert_eq!(
            e.to_string(),
            "topic 'a': TOPIC_ALREADY_EXISTS (code 36): exists"
        );
    }
}
