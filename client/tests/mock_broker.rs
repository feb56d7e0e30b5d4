//! Connection behaviour against an in-process fake broker: version
//! negotiation, out-of-order answers, timeouts, and a dropped socket.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, MetadataRequest, MetadataResponse, RequestKind, ResponseKind,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use millrace_client::{ClientError, Connection, ConnectionConfig};
use millrace_protocol::{decode_request, encode_response, FrameDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the fake does with Metadata requests.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Collect two, answer them in reverse order.
    AnswerReversed,
    /// Never answer.
    Swallow,
    /// Close the socket.
    Hangup,
}

fn versions() -> ApiVersionsResponse {
    let api = |key: ApiKey, min, max| {
        ApiVersion::default()
            .with_api_key(key as i16)
            .with_min_version(min)
            .with_max_version(max)
    };
    ApiVersionsResponse::default().with_api_keys(vec![
        api(ApiKey::ApiVersions, 0, 3),
        api(ApiKey::Metadata, 0, 5),
    ])
}

fn metadata_echo(request: &MetadataRequest) -> MetadataResponse {
    let topics = request
        .topics
        .iter()
        .flatten()
        .map(|t| MetadataResponseTopic::default().with_name(t.name.clone()))
        .collect();
    MetadataResponse::default().with_topics(topics)
}

async fn serve(mut socket: TcpStream, behaviour: Behaviour) {
    let decoder = FrameDecoder::new(1 << 20);
    let mut buf = BytesMut::new();
    let mut held = Vec::new();
    loop {
        while let Ok(Some(frame)) = decoder.decode(&mut buf) {
            let Ok(req) = decode_request(frame) else {
                return;
            };
            let id = req.header.correlation_id;
            let version = req.header.request_api_version;
            let answer = match (req.body, behaviour) {
                (RequestKind::ApiVersions(_), _) => ResponseKind::ApiVersions(versions()),
                (RequestKind::Metadata(_), Behaviour::Hangup) => return,
                (RequestKind::Metadata(_), Behaviour::Swallow) => continue,
                (RequestKind::Metadata(m), Behaviour::AnswerReversed) => {
                    held.push((id, version, ResponseKind::Metadata(metadata_echo(&m))));
                    if held.len() < 2 {
                        continue;
                    }
                    for (id, version, body) in held.drain(..).rev() {
                        let out = encode_response(ApiKey::Metadata, version, id, &body).unwrap();
                        socket.write_all(&out).await.unwrap();
                    }
                    continue;
                }
                _ => return,
            };
            let out = encode_response(req.api_key, version, id, &answer).unwrap();
            socket.write_all(&out).await.unwrap();
        }
        match socket.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

async fn fake_broker(behaviour: Behaviour) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, behaviour));
        }
    });
    addr
}

fn config(request_timeout_ms: u64) -> ConnectionConfig {
    ConnectionConfig {
        request_timeout_ms,
        ..ConnectionConfig::default()
    }
}

fn topic_request(name: &'static str) -> MetadataRequest {
    MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str(name))))]))
}

#[tokio::test]
async fn negotiates_the_lower_of_both_maxima() {
    let addr = fake_broker(Behaviour::Swallow).await;
    let conn = Connection::connect(&addr.to_string(), config(1000))
        .await
        .unwrap();
    assert_eq!(conn.version(ApiKey::Metadata).unwrap(), 5);
    assert!(matches!(
        conn.version(ApiKey::Produce),
        Err(ClientError::UnsupportedApi { .. })
    ));
}

#[tokio::test]
async fn matches_out_of_order_answers_by_correlation_id() {
    let addr = fake_broker(Behaviour::AnswerReversed).await;
    let conn = Connection::connect(&addr.to_string(), config(5000))
        .await
        .unwrap();
    let first = conn.submit(topic_request("first")).await.unwrap();
    let second = conn.submit(topic_request("second")).await.unwrap();
    for (pending, expected) in [(second, "second"), (first, "first")] {
        let ResponseKind::Metadata(m) = pending.wait().await.unwrap() else {
            panic!("not metadata");
        };
        let name = m.topics[0].name.as_ref().unwrap().0.to_string();
        assert_eq!(name, expected);
    }
}

#[tokio::test]
async fn a_silent_broker_times_out_instead_of_hanging() {
    let addr = fake_broker(Behaviour::Swallow).await;
    let conn = Connection::connect(&addr.to_string(), config(200))
        .await
        .unwrap();
    let start = Instant::now();
    let err = conn.send(topic_request("x")).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                api: "Metadata",
                ..
            }
        ),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_dropped_socket_fails_waiters_and_later_sends() {
    let addr = fake_broker(Behaviour::Hangup).await;
    let conn = Connection::connect(&addr.to_string(), config(5000))
        .await
        .unwrap();
    let err = conn.send(topic_request("x")).await.unwrap_err();
    assert!(matches!(err, ClientError::Disconnected { .. }), "{err}");
    assert!(conn.is_closed());
    assert!(conn.send(topic_request("y")).await.is_err());
}

#[tokio::test]
async fn connect_to_a_closed_port_is_an_io_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = Connection::connect(&addr.to_string(), config(1000))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Io { .. }), "{err}");
}
