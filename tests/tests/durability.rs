//! Data survives a clean restart (SIGTERM) and a crash (kill -9): every
//! acknowledged record is read back after the broker starts on the same dir.

use std::collections::BTreeMap;
use std::time::Duration;

use millrace_tests::clients::{
    admin, admin_opts, assign, bounded, consume_n, consumer, create_topic, payload, producer,
    send_all, topic_name, watermarks,
};
use millrace_tests::BrokerProcess;
use rdkafka::admin::{NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

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

#[tokio::test]
async fn configs_deletions_and_log_start_offsets_survive_a_restart() {
    let mut broker = BrokerProcess::start(&[]);
    let kept = topic_name("kept");
    let gone = topic_name("gone");
    let admin_client = admin(&broker);
    let topics = [
        NewTopic::new(&kept, 1, TopicReplication::Fixed(1)).set("retention.ms", "3600000"),
        NewTopic::new(&gone, 1, TopicReplication::Fixed(1)),
    ];
    let created = bounded(
        "CreateTopics",
        admin_client.create_topics(&topics, &admin_opts()),
    )
    .await
    .expect("CreateTopics request");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    millrace_tests::clients::wait_for_leaders(&admin_client, &kept, 1);
    let values: Vec<Vec<u8>> = (0..10).map(|i| vec![b'v', i]).collect();
    send_all(&producer(&broker, &[]), &kept, 0, &values).await;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&kept, 0, Offset::Offset(4))
        .expect("add partition");
    bounded(
        "DeleteRecords",
        admin_client.delete_records(&tpl, &admin_opts()),
    )
    .await
    .expect("DeleteRecords request");
    let deleted = bounded(
        "DeleteTopics",
        admin_client.delete_topics(&[&gone], &admin_opts()),
    )
    .await
    .expect("DeleteTopics request");
    assert_eq!(deleted, vec![Ok(gone.clone())]);
    drop(admin_client);

    broker.restart();

    let admin_client = admin(&broker);
    let md = admin_client
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("Metadata");
    let names: Vec<&str> = md.topics().iter().map(|t| t.name()).collect();
    assert!(names.contains(&kept.as_str()), "{names:?}");
    assert!(
        !names.contains(&gone.as_str()),
        "deleted topic came back: {names:?}"
    );
    let described = bounded(
        "DescribeConfigs",
        admin_client.describe_configs([&ResourceSpecifier::Topic(&kept)], &admin_opts()),
    )
    .await
    .expect("DescribeConfigs request");
    let resource = described[0].as_ref().expect("topic described");
    let retention = resource.get("retention.ms").and_then(|e| e.value.clone());
    assert_eq!(retention.as_deref(), Some("3600000"));
    let c = consumer(&broker, &[]);
    assert_eq!(
        watermarks(&c, &kept, 0),
        (4, 10),
        "log start offset after restart"
    );
}
