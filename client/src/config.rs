//! Connection and client settings, each limit named with its unit last.

/// Settings for one broker connection.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Sent in every request header.
    pub client_id: String,
    /// TCP connect plus ApiVersions handshake.
    pub connect_timeout_ms: u64,
    /// Deadline for each request's response; the request fails, it never hangs.
    pub request_timeout_ms: u64,
    /// Requests pipelined on the socket before `submit` waits (backpressure).
    /// Kafka's `max.in.flight.requests.per.connection` default is 5.
    pub in_flight_requests_max: usize,
    /// Largest response frame accepted; a fetch answer is bounded by the
    /// fetch's `max_bytes`, so 100 MiB leaves room for the default 50 MiB.
    pub response_bytes_max: usize,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            client_id: "millrace-client".to_owned(),
            connect_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            in_flight_requests_max: 5,
            response_bytes_max: 100 * 1024 * 1024,
        }
    }
}

/// Settings for a [`crate::Client`].
#[derive(Debug, Clone, Default)]
pub struct ClientConfig {
    pub connection: ConnectionConfig,
}
