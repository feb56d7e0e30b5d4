//! One TCP connection to one broker.
//!
//! The connection negotiates API versions once (ApiVersions), then pipelines
//! requests: [`Connection::submit`] writes a request in call order and returns a
//! [`PendingResponse`]; a reader task matches answers to requests by
//! correlation id. At most `in_flight_requests_max` requests wait for answers
//! at once (a semaphore), and every wait has a deadline.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestHeader, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use millrace_protocol::codec::api_name;
use millrace_protocol::{decode_response, encode_request, FrameDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::exchange::Exchange;
use crate::{ClientError, ConnectionConfig};

type Reply = Result<ResponseKind, ClientError>;

/// A request written to the socket and not yet answered.
struct Pending {
    api_key: ApiKey,
    version: i16,
    reply: oneshot::Sender<Reply>,
}

/// State shared between callers and the reader task.
struct Shared {
    addr: String,
    pending: Mutex<HashMap<i32, Pending>>,
    closed: AtomicBool,
}

impl Shared {
    fn take(&self, correlation_id: i32) -> Option<Pending> {
        self.pending.lock().ok()?.remove(&correlation_id)
    }

    /// Fails every outstanding request; later submits fail at once.
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let drained: Vec<Pending> = match self.pending.lock() {
            Ok(mut map) => map.drain().map(|(_, p)| p).collect(),
            Err(_) => Vec::new(),
        };
        for p in drained {
            let _ = p.reply.send(Err(ClientError::Disconnected {
                addr: self.addr.clone(),
            }));
        }
    }
}

/// A pipelined connection to one broker with negotiated API versions.
pub struct Connection {
    shared: Arc<Shared>,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    /// Next correlation id; only advanced under the writer lock so ids go out in order.
    next_correlation_id: AtomicI32,
    versions: HashMap<ApiKey, i16>,
    in_flight: Arc<Semaphore>,
    config: ConnectionConfig,
    reader: JoinHandle<()>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.shared.addr)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Connection {
    /// Connects to `addr` ("host:port") and negotiates API versions.
    pub async fn connect(addr: &str, config: ConnectionConfig) -> Result<Self, ClientError> {
        let timeout = Duration::from_millis(config.connect_timeout_ms);
        let io = |source| ClientError::Io {
            addr: addr.to_owned(),
            source,
        };
        let mut stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(r) => r.map_err(io)?,
            Err(_) => {
                return Err(ClientError::Timeout {
                    api: "connect",
                    addr: addr.to_owned(),
                    timeout_ms: config.connect_timeout_ms,
                })
            }
        };
        stream.set_nodelay(true).map_err(io)?;
        let handshake = negotiate(&mut stream, addr, &config);
        let versions = match tokio::time::timeout(timeout, handshake).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(ClientError::Timeout {
                    api: "ApiVersions",
                    addr: addr.to_owned(),
                    timeout_ms: config.connect_timeout_ms,
                })
            }
        };
        let (read_half, write_half) = stream.into_split();
        let shared = Arc::new(Shared {
            addr: addr.to_owned(),
            pending: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        });
        let decoder = FrameDecoder::new(config.response_bytes_max);
        let reader = tokio::spawn(read_loop(read_half, decoder, Arc::clone(&shared)));
        Ok(Self {
            shared,
            writer: tokio::sync::Mutex::new(write_half),
            next_correlation_id: AtomicI32::new(1),
            versions,
            in_flight: Arc::new(Semaphore::new(config.in_flight_requests_max.max(1))),
            config,
            reader,
        })
    }

    /// The broker address this connection talks to.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// Whether the socket has failed or closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// The negotiated version for `api`: min(our codec's max, the broker's max).
    pub fn version(&self, api: ApiKey) -> Result<i16, ClientError> {
        self.versions
            .get(&api)
            .copied()
            .ok_or_else(|| ClientError::UnsupportedApi {
                api: api_name(api),
                addr: self.shared.addr.clone(),
            })
    }

    /// Sends `request` and waits for its typed response.
    pub async fn send<R: Exchange>(&self, request: R) -> Result<R::Response, ClientError> {
        let pending = self.submit(request).await?;
        let kind = pending.wait().await?;
        R::unwrap_response(kind).ok_or_else(|| {
            ClientError::UnexpectedResponse(format!("not a {} response", api_name(R::API)))
        })
    }

    /// Like [`Connection::send`] with a deadline other than the connection's
    /// request timeout (JoinGroup waits for the whole rebalance).
    pub async fn send_with_timeout<R: Exchange>(
        &self,
        request: R,
        timeout_ms: u64,
    ) -> Result<R::Response, ClientError> {
        let mut pending = self.submit(request).await?;
        pending.timeout_ms = timeout_ms;
        let kind = pending.wait().await?;
        R::unwrap_response(kind).ok_or_else(|| {
            ClientError::UnexpectedResponse(format!("not a {} response", api_name(R::API)))
        })
    }

    /// Writes `request` now (requests go out in call order) and returns a handle
    /// to await its answer. Waits while `in_flight_requests_max` are outstanding.
    pub async fn submit<R: Exchange>(&self, request: R) -> Result<PendingResponse, ClientError> {
        let permit = Arc::clone(&self.in_flight)
            .acquire_owned()
            .await
            .map_err(|_| self.disconnected())?;
        let (tx, rx) = oneshot::channel();
        let correlation_id = self.write(R::API, request, Some(tx)).await?;
        Ok(PendingResponse {
            rx,
            correlation_id,
            shared: Arc::clone(&self.shared),
            api: R::API,
            timeout_ms: self.config.request_timeout_ms,
            _permit: permit,
        })
    }

    /// Writes a request the broker will not answer (Produce with acks=0).
    pub async fn send_no_response<R: Exchange>(&self, request: R) -> Result<(), ClientError> {
        self.write(R::API, request, None).await.map(|_| ())
    }

    async fn write<R: Exchange>(
        &self,
        api: ApiKey,
        request: R,
        reply: Option<oneshot::Sender<Reply>>,
    ) -> Result<i32, ClientError> {
        if self.is_closed() {
            return Err(self.disconnected());
        }
        let version = self.version(api)?;
        let mut writer = self.writer.lock().await;
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::SeqCst);
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_string(self.config.client_id.clone())));
        let frame = encode_request(&header, &request.into())?;
        if let Some(reply) = reply {
            if let Ok(mut map) = self.shared.pending.lock() {
                map.insert(
                    correlation_id,
                    Pending {
                        api_key: api,
                        version,
                        reply,
                    },
                );
            }
        }
        // A write cut short (timeout, or this future dropped) leaves half a frame
        // on the socket; the guard closes the connection unless the write completes.
        let guard = CloseOnDrop(Some(&self.shared));
        let deadline = Duration::from_millis(self.config.request_timeout_ms);
        match tokio::time::timeout(deadline, writer.write_all(&frame)).await {
            Ok(Ok(())) => {
                guard.defuse();
                Ok(correlation_id)
            }
            Ok(Err(source)) => Err(ClientError::Io {
                addr: self.shared.addr.clone(),
                source,
            }),
            Err(_) => Err(ClientError::Timeout {
                api: api_name(api),
                addr: self.shared.addr.clone(),
                timeout_ms: self.config.request_timeout_ms,
            }),
        }
    }

    fn disconnected(&self) -> ClientError {
        ClientError::Disconnected {
            addr: self.shared.addr.clone(),
        }
    }
}

/// Closes the connection when dropped, unless defused.
struct CloseOnDrop<'a>(Option<&'a Shared>);

impl CloseOnDrop<'_> {
    fn defuse(mut self) {
        self.0 = None;
    }
}

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(shared) = self.0 {
            shared.close();
        }
    }
}

/// An answer on its way; [`PendingResponse::wait`] enforces the request timeout.
pub struct PendingResponse {
    rx: oneshot::Receiver<Reply>,
    correlation_id: i32,
    shared: Arc<Shared>,
    api: ApiKey,
    timeout_ms: u64,
    _permit: OwnedSemaphorePermit,
}

impl PendingResponse {
    /// Waits for the response, failing with [`ClientError::Timeout`] at the deadline.
    pub async fn wait(self) -> Result<ResponseKind, ClientError> {
        let deadline = Duration::from_millis(self.timeout_ms);
        match tokio::time::timeout(deadline, self.rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(ClientError::Disconnected {
                addr: self.shared.addr.clone(),
            }),
            Err(_) => {
                self.shared.take(self.correlation_id);
                Err(ClientError::Timeout {
                    api: api_name(self.api),
                    addr: self.shared.addr.clone(),
                    timeout_ms: self.timeout_ms,
                })
            }
        }
    }
}

/// Reads frames until the socket fails, routing each to its waiting request.
async fn read_loop(mut read: OwnedReadHalf, decoder: FrameDecoder, shared: Arc<Shared>) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(frame)) => {
                dispatch(&shared, frame);
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(addr = %shared.addr, error = %e, "bad response frame; closing");
                break;
            }
        }
        if let Ok(Some(size)) = decoder.peek_size(&buf) {
            buf.reserve((size + 4).saturating_sub(buf.len()));
        }
        match read.read_buf(&mut buf).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(addr = %shared.addr, error = %e, "read failed; closing");
                break;
            }
        }
    }
    shared.close();
}

fn dispatch(shared: &Shared, frame: bytes::Bytes) {
    if frame.len() < 4 {
        tracing::warn!(addr = %shared.addr, "response frame shorter than its header");
        return;
    }
    let correlation_id = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
    let Some(pending) = shared.take(correlation_id) else {
        tracing::debug!(addr = %shared.addr, correlation_id, "response for no waiting request");
        return;
    };
    let reply = decode_response(pending.api_key, pending.version, frame)
        .map(|(_, body)| body)
        .map_err(ClientError::from);
    let _ = pending.reply.send(reply);
}

/// The ApiVersions exchange on a fresh socket, before the reader task exists.
async fn negotiate(
    stream: &mut TcpStream,
    addr: &str,
    config: &ConnectionConfig,
) -> Result<HashMap<ApiKey, i16>, ClientError> {
    let io = |source| ClientError::Io {
        addr: addr.to_owned(),
        source,
    };
    // v3 carries the client name; brokers too old for it answer at v0 with error 35.
    let version = ApiKey::ApiVersions.valid_versions().max.min(3);
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(version)
        .with_correlation_id(0)
        .with_client_id(Some(StrBytes::from_string(config.client_id.clone())));
    let body = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("millrace-client"))
        .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
    let frame = encode_request(&header, &body.into())?;
    stream.write_all(&frame).await.map_err(io)?;

    let decoder = FrameDecoder::new(1024 * 1024);
    let mut buf = BytesMut::with_capacity(4096);
    let frame = loop {
        if let Some(frame) = decoder.decode(&mut buf)? {
            break frame;
        }
        if stream.read_buf(&mut buf).await.map_err(io)? == 0 {
            return Err(ClientError::Disconnected {
                addr: addr.to_owned(),
            });
        }
    };
    let response = match decode_response(ApiKey::ApiVersions, version, frame.clone()) {
        Ok((_, ResponseKind::ApiVersions(r))) if r.error_code == 0 => r,
        _ => match decode_response(ApiKey::ApiVersions, 0, frame)? {
            (_, ResponseKind::ApiVersions(r)) => r,
            _ => {
                return Err(ClientError::UnexpectedResponse(
                    "ApiVersions answered with another API".into(),
                ))
            }
        },
    };
    ClientError::check(response.error_code, format!("ApiVersions to {addr}"), None)?;
    let mut versions = HashMap::new();
    for advertised in &response.api_keys {
        let Ok(key) = ApiKey::try_from(advertised.api_key) else {
            continue;
        };
        let ours = key.valid_versions();
        let max = ours.max.min(advertised.max_version);
        if max >= ours.min.max(advertised.min_version) {
            versions.insert(key, max);
        }
    }
    Ok(versions)
}
