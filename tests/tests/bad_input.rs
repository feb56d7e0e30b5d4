//! Bad input on the wire: the broker closes the offending connection and
//! keeps serving every other one.

use std::io::Write;

use millrace_tests::wire::{
    api_versions_request, api_versions_v0_ok, closed_without_answer, connect, frame_v1, read_frame,
    sized, API_VERSIONS, UNSUPPORTED_VERSION,
};
use millrace_tests::BrokerProcess;

/// Sends `bytes` on a new connection and asserts the broker closes it, while
/// a connection opened before keeps working, and new ones too.
fn assert_closes_and_keeps_serving(broker: &BrokerProcess, what: &str, bytes: &[u8]) {
    let mut bystander = connect(broker.addr());
    bystander
        .write_all(&frame_v1(API_VERSIONS, 0, 1, &[]))
        .expect("send on the bystander");
    read_frame(&mut bystander).expect("bystander answered before");

    let mut bad = connect(broker.addr());
    // The broker may close while we still write: a failed write is fine.
    let _ = bad.write_all(bytes);
    assert!(
        closed_without_answer(&mut bad),
        "{what}: connection was not closed"
    );

    bystander
        .write_all(&frame_v1(API_VERSIONS, 0, 2, &[]))
        .expect("send on the bystander");
    let resp = read_frame(&mut bystander).expect("bystander answered after");
    assert_eq!(&resp[..4], &2i32.to_be_bytes());
    assert_eq!(
        api_versions_v0_ok(broker.addr()),
        0,
        "{what}: a new connection is served"
    );
}

#[test]
fn garbage_frame_closes_the_connection() {
    let broker = BrokerProcess::start(&[]);
    let garbage: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
    assert_closes_and_keeps_serving(&broker, "garbage frame", &sized(&garbage));
}

#[test]
fn malformed_body_of_a_known_api_closes_the_connection() {
    let broker = BrokerProcess::start(&[]);
    // Produce v9 whose body is nonsense.
    let frame = frame_v1(0, 9, 3, &[0xff; 40]);
    assert_closes_and_keeps_serving(&broker, "malformed Produce", &frame);
}

#[test]
fn negative_frame_size_closes_the_connection() {
    let broker = BrokerProcess::start(&[]);
    assert_closes_and_keeps_serving(&broker, "negative size", &(-5i32).to_be_bytes());
}

#[test]
fn frame_over_socket_request_max_bytes_closes_the_connection() {
    let broker = BrokerProcess::start(&["socket.request.max.bytes=1048576"]);
    let mut bytes = (2 * 1024 * 1024i32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0u8; 4096]);
    assert_closes_and_keeps_serving(&broker, "2 MiB frame over a 1 MiB limit", &bytes);
}

#[test]
fn unknown_api_key_closes_the_connection() {
    let broker = BrokerProcess::start(&[]);
    assert_closes_and_keeps_serving(&broker, "api key 999", &frame_v1(999, 0, 4, &[]));
}

#[test]
fn api_versions_v99_gets_a_v0_answer_with_unsupported_version() {
    let broker = BrokerProcess::start(&[]);
    let mut s = connect(broker.addr());
    s.write_all(&api_versions_request(99, 42))
        .expect("send ApiVersions v99");
    let resp = read_frame(&mut s).expect("an answer to ApiVersions v99");
    assert_eq!(&resp[..4], &42i32.to_be_bytes(), "correlation id");
    assert_eq!(i16::from_be_bytes([resp[4], resp[5]]), UNSUPPORTED_VERSION);
    // v0 body: an array (int32 count) of (key, min, max) int16 triples.
    let count = i32::from_be_bytes([resp[6], resp[7], resp[8], resp[9]]);
    assert!(count > 0, "the fallback lists the supported APIs");
    assert_eq!(resp.len(), 10 + 6 * count as usize, "v0 body size");
    let keys: Vec<i16> = resp[10..]
        .chunks(6)
        .map(|c| i16::from_be_bytes([c[0], c[1]]))
        .collect();
    assert!(
        keys.contains(&API_VERSIONS),
        "ApiVersions itself is listed: {keys:?}"
    );
    // The same connection then works at a supported version.
    s.write_all(&api_versions_request(3, 43))
        .expect("send ApiVersions v3");
    let resp = read_frame(&mut s).expect("an answer to ApiVersions v3");
    assert_eq!(&resp[..4], &43i32.to_be_bytes());
}
