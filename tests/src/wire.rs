//! Hand-built Kafka frames over a plain `TcpStream`, for tests that send what
//! no client library would: garbage, oversized frames, unknown APIs and
//! versions.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Kafka's API key of ApiVersions.
pub const API_VERSIONS: i16 = 18;
/// Kafka's UNSUPPORTED_VERSION error code.
pub const UNSUPPORTED_VERSION: i16 = 35;
/// How long a test waits for the broker to answer or close.
pub const READ_WAIT: Duration = Duration::from_secs(10);

/// Connects with read and write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, READ_WAIT).expect("connect to the broker");
    s.set_read_timeout(Some(READ_WAIT)).expect("read timeout");
    s.set_write_timeout(Some(READ_WAIT)).expect("write timeout");
    s
}

/// Request header v1 (key, version, correlation id, client id) followed by `body`,
/// with the 4-byte size prefix.
pub fn frame_v1(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&api_key.to_be_bytes());
    payload.extend_from_slice(&version.to_be_bytes());
    payload.extend_from_slice(&correlation_id.to_be_bytes());
    let client_id = b"millrace-it";
    payload.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    payload.extend_from_slice(client_id);
    payload.extend_from_slice(body);
    sized(&payload)
}

/// `payload` with its 4-byte big-endian size prefix.
pub fn sized(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// An ApiVersions request at `version` shaped like v3+ (header v2: an empty
/// tagged-field section after the client id; body: software name and version).
pub fn api_versions_request(version: i16, correlation_id: i32) -> Vec<u8> {
    let mut body = vec![0u8]; // header tagged fields: none
    for s in [&b"millrace-it"[..], &b"1.0"[..]] {
        body.push(s.len() as u8 + 1); // compact string length + 1
        body.extend_from_slice(s);
    }
    body.push(0); // body tagged fields: none
    frame_v1(API_VERSIONS, version, correlation_id, &body)
}

/// Reads one response frame (without its size prefix).
pub fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut size = [0u8; 4];
    s.read_exact(&mut size)?;
    let size = i32::from_be_bytes(size);
    let len = usize::try_from(size).map_err(|_| ErrorKind::InvalidData)?;
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

/// True if the peer closes the connection (EOF or reset) within [`READ_WAIT`]
/// without sending anything; false if it sends bytes or stays silent.
pub fn closed_without_answer(s: &mut TcpStream) -> bool {
    let deadline = Instant::now() + READ_WAIT;
    let mut buf = [0u8; 64];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => return false,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
    false
}

/// Sends ApiVersions v0 on a new connection and returns the error code of the
/// answer: proves the broker still serves.
pub fn api_versions_v0_ok(addr: SocketAddr) -> i16 {
    let mut s = connect(addr);
    s.write_all(&frame_v1(API_VERSIONS, 0, 7, &[]))
        .expect("send ApiVersions v0");
    let resp = read_frame(&mut s).expect("read the ApiVersions v0 answer");
    assert_eq!(i32::from_be_bytes([resp[0], resp[1], resp[2], resp[3]]), 7);
    i16::from_be_bytes([resp[4], resp[5]])
}
