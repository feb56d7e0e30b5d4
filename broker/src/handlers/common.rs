//! Small helpers shared by handlers.

use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::BrokerError;

/// Kafka's topic name rule: 1..=249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), BrokerError> {
    let invalid = |why: &str| {
        Err(BrokerError::invalid(
            ResponseError::InvalidTopicException,
            format!("topic name '{name}' is illegal: {why}"),
        ))
    };
    if name.is_empty() {
        return invalid("it is empty");
    }
    if name == "." || name == ".." {
        return invalid("'.' and '..' are reserved");
    }
    if name.len() > 249 {
        return invalid("it is longer than 249 characters");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return invalid(&format!("'{c}' is not one of [a-zA-Z0-9._-]"));
    }
    Ok(())
}

pub fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        for ok in ["a", "a.b_c-D9", &"x".repeat(249)] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "a!", "a/b", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }
}

/// Who sent a request: what handlers that record clients need.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub client_id: String,
    pub peer: std::net::SocketAddr,
}

impl RequestContext {
    /// The host as Kafka's tools print it (`/127.0.0.1`).
    pub fn client_host(&self) -> String {
        format!("/{}", self.peer.ip())
    }
}
