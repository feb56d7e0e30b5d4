//! The protocol crate's error type.

/// Why a frame could not be turned into a request or response.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The size prefix is negative or larger than the configured cap.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge { size: i64, limit: usize },
    /// The frame is too short to hold a request header.
    #[error("frame too short for a request header ({len} bytes)")]
    Truncated { len: usize },
    /// An API key this build does not know at all.
    #[error("unknown API key {api_key}")]
    UnknownApiKey { api_key: i16, correlation_id: i32 },
    /// A known API asked for at a version we do not serve.
    #[error("unsupported version {version} of API key {api_key}")]
    UnsupportedVersion {
        api_key: i16,
        version: i16,
        correlation_id: i32,
    },
    /// The body did not parse at the version it claims.
    #[error("malformed {api} v{version} request: {reason}")]
    Malformed {
        api: &'static str,
        version: i16,
        reason: String,
    },
    /// Encoding a message failed (a field does not fit the version).
    #[error("cannot encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },
}
