//! ListOffsets (earliest, latest, by timestamp inside one batch) and
//! DeleteRecords (the low watermark moves and consumers start there).

use std::time::Duration;

use millrace_tests::clients::{
    admin, admin_opts, assign, bounded, consume_n, consumer, create_topic, payload, producer,
    send_all, topic_name, watermarks, CALL_TIMEOUT,
};
use millrace_tests::BrokerProcess;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

const BASE_TS: i64 = 1_700_000_000_000;

/// Ten records in one batch on partition 0, timestamps BASE_TS + 10 * i.
async fn ten_records_one_batch(broker: &BrokerProcess, topic: &str) {
    create_topic(broker, topic, 1).await;
    let producer = producer(broker, &[("linger.ms", "500")]);
    let mut pending = Vec::new();
    for i in 0..10i64 {
        let value = format!("v{i}");
        let r: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
            .partition(0)
            .payload(value.as_bytes())
            .timestamp(BASE_TS + 10 * i);
        pending.push(
            producer
                .send_result(r)
                .map_err(|(e, _)| e)
                .expect("enqueue"),
        );
    }
    for (i, f) in pending.into_iter().enumerate() {
        let d = bounded("delivery", f)
            .await
            .expect("not cancelled")
            .map_err(|(e, _)| e)
            .expect("delivered");
        assert_eq!(d.offset, i as i64);
    }
}

fn offset_for_time(c: &rdkafka::consumer::BaseConsumer, topic: &str, ts: i64) -> Offset {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(ts))
        .expect("add partition");
    let out = c
        .offsets_for_times(tpl, CALL_TIMEOUT)
        .expect("ListOffsets by timestamp");
    let e = out
        .find_partition(topic, 0)
        .expect("partition 0 in the answer");
    e.error().expect("no per-partition error");
    e.offset()
}

#[tokio::test]
async fn list_offsets_earliest_latest_and_by_timestamp_inside_one_batch() {
    let broker = BrokerProcess::start(&[]);
    let topic = topic_name("listoffsets");
    ten_records_one_batch(&broker, &topic).await;
    let c = consumer(&broker, &[]);
    assert_eq!(watermarks(&c, &topic, 0), (0, 10));

    assert_eq!(
        offset_for_time(&c, &topic, BASE_TS - 1000),
        Offset::Offset(0),
        "before all"
    );
    assert_eq!(
        offset_for_time(&c, &topic, BASE_TS),
        Offset::Offset(0),
        "at the first"
    );
    assert_eq!(
        offset_for_time(&c, &topic, BASE_TS + 30),
        Offset::Offset(3),
        "at the 4th"
    );
    assert_eq!(
        offset_for_time(&c, &topic, BASE_TS + 35),
        Offset::Offset(4),
        "between 4th and 5th"
    );
    assert_eq!(
        offset_for_time(&c, &topic, BASE_TS + 90),
        Offset::Offset(9),
        "at the last"
    );
    assert_eq!(
        offset_for_time(&c, &topic, BASE_TS + 91),
        Offset::End,
        "after all"
    );

    // Latest: a consumer assigned at End sees only what comes after.
    assign(&c, &topic, &[0], Offset::End);
    let producer = producer(&broker, &[]);
    send_all(&producer, &topic, 0, &[b"later".to_vec()]).await;
    let got = consume_n(&c, 1, Duration::from_secs(30));
    assert_eq!((got[0].offset(), payload(&got[0])), (10, b"later".to_vec()));
}

#[tokio::test]
async fn delete_records_moves_the_low_watermark_and_consumers_start_there() {
    let broker = BrokerProcess::start(&[]);
    let topic = topic_name("deleterecords");
    ten_records_one_batch(&broker, &topic).await;

    let admin = admin(&broker);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(4))
        .expect("add partition");
    let out = bounded("DeleteRecords", admin.delete_records(&tpl, &admin_opts()))
        .await
        .expect("DeleteRecords request");
    let e = out
        .find_partition(&topic, 0)
        .expect("partition 0 in the answer");
    e.error().expect("no per-partition error");
    assert_eq!(e.offset(), Offset::Offset(4), "low watermark in the answer");

    let c = consumer(&broker, &[]);
    assert_eq!(watermarks(&c, &topic, 0), (4, 10));
    assign(&c, &topic, &[0], Offset::Beginning);
    let got = consume_n(&c, 6, Duration::from_secs(30));
    let offsets: Vec<i64> = got.iter().map(|m| m.offset()).collect();
    assert_eq!(offsets, vec![4, 5, 6, 7, 8, 9]);
    assert_eq!(payload(&got[0]), b"v4".to_vec());
}

#[tokio::test]
async fn out_of_range_fetch_resets_to_earliest() {
    let broker = BrokerProcess::start(&[]);
    let topic = topic_name("outofrange");
    create_topic(&broker, &topic, 1).await;
    let values: Vec<Vec<u8>> = (0..5).map(|i| format!("r{i}").into_bytes()).collect();
    send_all(&producer(&broker, &[]), &topic, 0, &values).await;
    let c = consumer(&broker, &[("auto.offset.reset", "earliest")]);
    assign(&c, &topic, &[0], Offset::Offset(100));
    let got = consume_n(&c, 5, Duration::from_secs(30));
    let offsets: Vec<i64> = got.iter().map(|m| m.offset()).collect();
    assert_eq!(
        offsets,
        vec![0, 1, 2, 3, 4],
        "reset to earliest after OFFSET_OUT_OF_RANGE"
    );
}
