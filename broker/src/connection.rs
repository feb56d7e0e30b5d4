//! One client connection: read a frame, decode, dispatch to the handler,
//! write the response, in order, as Kafka does per connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::messages::ApiKey;
use millrace_protocol::{decode_request, encode_response, FrameDecoder, ProtocolError};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::handlers;
use crate::Broker;

/// Bytes read from the socket per read call; frames larger than this are
/// assembled over several reads into a buffer reserved for their exact size.
const READ_CHUNK_BYTES: usize = 64 * 1024;

pub async fn run(
    broker: Arc<Broker>,
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, writer) = stream.into_split();
    let mut writer = BufWriter::new(writer);
    let frames = FrameDecoder::new(broker.config.socket_request_bytes_max);
    let idle = Duration::from_millis(broker.config.connection_idle_ms_max);
    let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    tracing::debug!(%peer, "connection opened");
    loop {
        let frame = match frames.decode(&mut buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                // The size prefix has been checked against the cap, so this
                // reserve is bounded by socket.request.max.bytes.
                if let Ok(Some(size)) = frames.peek_size(&buf) {
                    buf.reserve((size + 4).saturating_sub(buf.len()));
                } else if buf.capacity() - buf.len() < READ_CHUNK_BYTES {
                    buf.reserve(READ_CHUNK_BYTES);
                }
                let read = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    r = tokio::time::timeout(idle, reader.read_buf(&mut buf)) => r,
                };
                match read {
                    Ok(Ok(0)) => break,
                    Ok(Ok(_)) => continue,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "read failed");
                        break;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "closing idle connection");
                        break;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                break;
            }
        };
        let response = match decode_request(frame) {
            Ok(request) => {
                let api_key = request.api_key;
                let version = request.header.request_api_version;
                let correlation_id = request.header.correlation_id;
                tracing::trace!(%peer, api = millrace_protocol::codec::api_name(api_key), version, correlation_id, body = ?request.body, "request");
                let ctx = handlers::RequestContext {
                    client_id: request
                        .header
                        .client_id
                        .as_ref()
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                    peer,
                };
                match handlers::handle(&broker, &ctx, request).await {
                    Some(body) => encode_response(api_key, version, correlation_id, &body),
                    None => continue,
                }
            }
            Err(ProtocolError::UnsupportedVersion {
                api_key,
                version,
                correlation_id,
            }) if api_key == ApiKey::ApiVersions as i16 => {
                tracing::debug!(%peer, version, "ApiVersions at an unknown version; answering with v0");
                let body = handlers::api_versions::unsupported_version_response();
                encode_response(ApiKey::ApiVersions, 0, correlation_id, &body)
            }
            Err(e) => {
                // Kafka closes the connection for requests it cannot parse.
                tracing::warn!(%peer, error = %e, "closing connection after an unusable request");
                break;
            }
        };
        let bytes = match response {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(%peer, error = %e, "cannot encode response; closing connection");
                break;
            }
        };
        let written = async {
            writer.write_all(&bytes).await?;
            writer.flush().await
        };
        if let Err(e) = written.await {
            tracing::debug!(%peer, error = %e, "write failed");
            break;
        }
    }
    tracing::debug!(%peer, "connection closed");
}
