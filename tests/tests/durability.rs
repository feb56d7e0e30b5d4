//! Data survives a clean restart (SIGTERM) and a crash (kill -9): every
//! acknowledged record is read back after the broker starts on the same dir.

use std::collections::BTreeMap;
use std::time::Duration;

use millrace_tests::clients::{
    assign, bounded, consume_n, consumer, create_topic, payload, producer, topic_name, watermarks,
};
use millrace_tests::BrokerProcess;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Offset;

/// Sends `n` keyed records with acks=all; returns (partition, offset) → value.
async fn produce_acked(
    producer: &FutureProducer,
    topic: &str,
    n: usize,
    tag: &str,
) -> BTreeMap<(i32, i64), Vec<u8>> {
    let mut pending = Vec::new();
    for i in 0..n {
        let key = format!("k{}", i % 17);
        let value = format!("{tag}-{i}").into_bytes();
        let r = FutureRecord::to(topic).key(&key).payload(&value);
        let f = producer
            .send_result(r)
            .map_err(|(e, _)| e)
            .expect("enqueue");
        pending.push((value, f));
    }
    let mut acked = BTreeMap::new();
    for (value, f) in pending {
        let d = bounded("delivery", f)
            .await
            .expect("not cancelled")
            .map_err(|(e, _)| e)
            .expect("delivered");
        acked.insert((d.partition, d.offset), value);
    }
    acked
}

fn read_all(broker: &BrokerProcess, topic: &str, n: usize) -> BTreeMap<(i32, i64), Vec<u8>> {
    let c = consumer(broker, &[]);
    assign(&c, topic, &[0, 1, 2, 3], Offset::Beginning);
    consume_n(&c, n, Duration::from_secs(60))
        .iter()
        .map(|m| ((m.partition(), m.offset()), payload(m)))
        .collect()
}

#[tokio::test]
async fn clean_restart_keeps_data_and_offsets_continue() {
    let mut broker = BrokerProcess::start(&[]);
    let topic = topic_name("restart");
    create_topic(&broker, &topic, 4).await;
    let mut acked = produce_acked(&producer(&broker, &[]), &topic, 500, "before").await;

    broker.restart();

    assert_eq!(read_all(&broker, &topic, acked.len()), acked);
    let after = produce_acked(&producer(&broker, &[]), &topic, 100, "after").await;
    let c = consumer(&broker, &[]);
    for p in 0..4 {
        let before = acked.keys().filter(|(q, _)| *q == p).count() as i64;
        let new = after.keys().filter(|(q, _)| *q == p).count() as i64;
        assert_eq!(
            watermarks(&c, &topic, p),
            (0, before + new),
            "partition {p}"
        );
    }
    acked.extend(after);
    assert_eq!(read_all(&broker, &topic, acked.len()), acked);
}

#[tokio::test]
async fn kill_9_keeps_every_acknowledged_record() {
    let mut broker = BrokerProcess::start(&[]);
    let topic = topic_name("kill9");
    create_topic(&broker, &topic, 4).await;
    let acked = produce_acked(
        &producer(&broker, &[("acks", "all")]),
        &topic,
        3000,
        "crash",
    )
    .await;

    broker.kill9();
    broker.start_again();

    let got = read_all(&broker, &topic, acked.len());
    assert_eq!(got.len(), acked.len());
    for (k, v) in &acked {
        assert_eq!(
            got.get(k),
            Some(v),
            "acknowledged record {k:?} lost or changed"
        );
    }
}
