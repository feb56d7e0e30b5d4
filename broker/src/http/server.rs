//! The accept loop of the admin listener and HTTP/1.1 request parsing.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::{routes, Request, Response};
use crate::Broker;

const HEAD_BYTES_MAX: usize = 64 * 1024;
const BODY_BYTES_MAX: usize = 1024 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `admin.listener` until `shutdown`. A listener that cannot bind is
/// logged and skipped: the Kafka listener matters more than the admin one.
pub async fn serve(broker: Arc<Broker>, shutdown: CancellationToken) {
    let addr = broker
        .config
        .get("admin.listener")
        .map(|(v, _)| v.trim().to_string())
        .unwrap_or_default();
    if addr.is_empty() {
        return;
    }
    let listener = match TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(%addr, error = %e, "cannot listen on admin.listener; the admin API is off");
            return;
        }
    };
    tracing::info!(%addr, "listening for admin HTTP requests");
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "admin accept failed");
                    continue;
                }
            },
        };
        let broker = broker.clone();
        tokio::spawn(async move {
            if let Err(e) = tokio::time::timeout(REQUEST_TIMEOUT, connection(broker, stream)).await
            {
                tracing::debug!(error = %e, "admin request timed out");
            }
        });
    }
}

async fn connection(broker: Arc<Broker>, mut stream: TcpStream) {
    let response = match read_request(&mut stream).await {
        Ok(req) => routes::handle(&broker, &req).await,
        Err(msg) => Response::error(400, msg),
    };
    let _ = stream.write_all(&encode(&response)).await;
    let _ = stream.shutdown().await;
}

/// Reads one request: head up to the blank line, then `Content-Length` bytes.
async fn read_request(stream: &mut TcpStream) -> Result<Request, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > HEAD_BYTES_MAX {
            return Err("request head too large".into());
        }
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed mid-request".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let (method, path, length) = parse_head(&buf[..head_end])?;
    if length > BODY_BYTES_MAX {
        return Err(format!("body larger than {BODY_BYTES_MAX} bytes"));
    }
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed mid-body".into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(Request { method, path, body })
}

/// Method, path (query dropped) and content length of a request head.
pub fn parse_head(head: &[u8]) -> Result<(String, String, usize), String> {
    let text = std::str::from_utf8(head).map_err(|_| "request head is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut parts = first.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(format!("bad request line '{first}'"));
    };
    let path = target.split('?').next().unwrap_or_default().to_string();
    let mut length = 0;
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad Content-Length '{}'", v.trim()))?;
            }
        }
    }
    Ok((method.to_string(), path, length))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn encode(r: &Response) -> Vec<u8> {
    let reason = match r.status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        _ => "Error",
    };
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        r.status,
        r.content_type,
        r.body.len()
    )
    .into_bytes();
    out.extend_from_slice(&r.body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_request_heads() {
        let (m, p, n) =
            parse_head(b"POST /v1/jobs?x=1 HTTP/1.1\r\nHost: a\r\ncontent-length: 12").unwrap();
        assert_eq!((m.as_str(), p.as_str(), n), ("POST", "/v1/jobs", 12));
        assert_eq!(parse_head(b"GET /healthz HTTP/1.1").unwrap().2, 0);
        assert!(parse_head(b"GARBAGE").is_err());
        assert!(parse_head(b"GET / HTTP/1.1\r\nContent-Length: x").is_err());
    }

    #[test]
    fn encodes_responses() {
        let out = encode(&Response::text(200, "ok\n"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
        );
    }
}
