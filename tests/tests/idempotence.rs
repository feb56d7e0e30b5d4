//! The idempotent producer: 10,000 records land at contiguous offsets, once each.

use std::time::Duration;

use millrace_tests::clients::{
    assert_no_more, assign, consume_n, consumer, create_topic, payload, producer, send_all,
    topic_name,
};
use millrace_tests::BrokerProcess;
use rdkafka::message::Message;
use rdkafka::Offset;

#[tokio::test]
async fn idempotent_producer_writes_contiguous_offsets_without_duplicates() {
    let broker = BrokerProcess::start(&[]);
    let topic = topic_name("idempotent");
    create_topic(&broker, &topic, 1).await;
    let producer = producer(
        &broker,
        &[
            ("enable.idempotence", "true"),
            ("max.in.flight.requests.per.connection", "5"),
            ("linger.ms", "2"),
            ("batch.num.messages", "500"),
        ],
    );
    let n = 10_000;
    let values: Vec<Vec<u8>> = (0..n).map(|i| format!("idem-{i}").into_bytes()).collect();
    let offsets = send_all(&producer, &topic, 0, &values).await;
    assert!(
        offsets.iter().copied().eq(0..n as i64),
        "delivery offsets are not 0..{n}"
    );

    let c = consumer(&broker, &[]);
    assign(&c, &topic, &[0], Offset::Beginning);
    let got = consume_n(&c, n, Duration::from_secs(60));
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.offset(), i as i64);
        assert_eq!(payload(m), values[i], "value at offset {i}");
    }
    assert_no_more(&c, Duration::from_millis(500));
}
