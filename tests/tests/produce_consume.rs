//! Produce and consume through librdkafka: keys and partitions, every
//! compression codec, headers, timestamps, fetching from inside a batch, a
//! ~1 MB record and 100,000 small ones.

use std::collections::HashMap;
use std::time::Duration;

use millrace_tests::clients::{
    assert_no_more, assign, bounded, consume_n, consumer, create_topic, payload, producer, send,
    send_all, topic_name,
};
use millrace_tests::BrokerProcess;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, Timestamp};

const CONSUME_WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn keyed_records_keep_their_partition_and_order() {
    let broker = BrokerProcess::start(&[]);
    let topic = topic_name("keyed");
    create_topic(&broker, &topic, 4).await;
    let producer = producer(&broker, &[("enable.idempotence", "true")]);

    // 20 keys, 10 records each, interleaved; all in flight at once.
    let mut pending = Vec::new();
    for round in 0..10 {
        for k in 0..20 {
            let key = format!("key-{k}");
            let value = format!("{key}/{round}");
            let record = FutureRecord::to(&topic).key(&key).payload(&value);
            let f = producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .expect("enqueue");
            pending.push((key, value, f));
        }
    }
    let mut partition_of: HashMap<String, i32> = HashMap::new();
    let mut acked: HashMap<(i32, i64), (String, String)> = HashMap::new();
    for (key, value, f) in pending {
        let d = bounded("delivery", f)
            .await
            .expect("not cancelled")
            .map_err(|(e, _)| e)
            .expect("delivered");
        let p = *partition_of.entry(key.clone()).or_insert(d.partition);
        assert_eq!(p, d.partition, "key {key} moved partitions");
        acked.insert((d.partition, d.offset), (key, value));
    }
    let used: std::collections::HashSet<i32> = partition_of.values().copied().collect();
    assert!(
        used.len() > 1,
        "20 keys all hashed to one partition: {used:?}"
    );

    let consumer = consumer(&broker, &[]);
    assign(&consumer, &topic, &[0, 1, 2, 3], Offset::Beginning);
    let got = consume_n(&consumer, 200, CONSUME_WAIT);
    assert_no_more(&consumer, Duration::from_millis(500));
    let mut last_round: HashMap<String, i32> = HashMap::new();
    for m in &got {
        let key = String::from_utf8(m.key().expect("key").to_vec()).expect("utf8 key");
        let value = String::from_utf8(payload(m)).expect("utf8 value");
        assert_eq!(
            acked.get(&(m.partition(), m.offset())),
            Some(&(key.clone(), value.clone())),
            "record at {}:{} differs from its delivery report",
            m.partition(),
            m.offset()
        );
        let round: i32 = value
            .rsplit('/')
            .next()
            .and_then(|r| r.parse().ok())
            .expect("round");
        let prev = last_round.insert(key.clone(), round);
        assert_eq!(prev.map_or(0, |r| r + 1), round, "key {key} out of order");
    }
}

async fn round_trip_with_codec(codec: &str) {
    let broker = BrokerProcess::start(&[]);
    let topic = topic_name(codec);
    create_topic(&broker, &topic, 1).await;
    let producer = producer(&broker, &[("compression.type", codec), ("linger.ms", "50")]);
    // Compressible and incompressible-ish values, in batches of many records.
    let values: Vec<Vec<u8>> = (0..500u32)
        .map(|i| {
            let mut v = format!("{codec} record {i} ")
                .repeat(1 + (i % 7) as usize)
                .into_bytes();
            v.extend(i.to_le_bytes().iter().cycle().take((i % 13) as usize));
            v
        })
        .collect();
    let offsets = send_all(&producer, &topic, 0, &values).await;
    assert_eq!(offsets, (0..500).collect::<Vec<i64>>());

    let consumer = consumer(&broker, &[]);
    assign(&consumer, &topic, &[0], Offset::Beginning);
    let got = consume_n(&consumer, values.len(), CONSUME_WAIT);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.offset(), i as i64);
        assert_eq!(payload(m), values[i], "{codec}: value at offset {i}");
    }
}

#[tokio::test]
async fn codec_none_round_trips() {
    round_trip_with_codec("none").await;
}

#[tokio::test]
async fn codec_gzip_round_trips() {
    round_trip_with_codec("gzip").await;
}

#[tokio::test]
async fn codec_snappy_round_trips() {
    round_trip_with_codec("snappy").await;
}

#[tokio::test]
async fn codec_lz4_round_trips() {
    round_trip_with_codec("lz4").await;
}

#[tokio::test]
async fn codec_zstd_round_trips() {
    round_trip_with_codec("zstd").await;
}

#[tokio::test]
async fn headers_timestamps_empty_and_null_values_round_trip() {
    let broker = BrokerProcess::start(&[]);
    let topic = topic_name("headers");
    create_topic(&broker, &topic, 1).await;
    let producer = producer(&broker, &[]);
    let base_ts: i64 = 1_600_000_000_000;

    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "h1",
            value: Some("v1"),
        })
        .insert(Header {
            key: "dup",
            value: Some(&b"\x00\xff"[..]),
        })
        .insert(Header {
            key: "dup",
            value: Some("second"),
        })
        .insert(Header::<&str> {
            key: "nullv",
            value: None,
        });
    let r = FutureRecord::to(&topic)
        .key(&b"k"[..])
        .payload(&b"with headers"[..])
        .headers(headers)
        .timestamp(base_ts);
    assert_eq!(send(&producer, r).await, (0, 0));
    let r: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&topic)
        .key(&b"k"[..])
        .payload(&b""[..])
        .timestamp(base_ts + 1);
    assert_eq!(send(&producer, r).await, (0, 1));
    let r: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&topic)
        .key(&b"k"[..])
        .timestamp(base_ts + 2);
    assert_eq!(send(&producer, r).await, (0, 2));

    let consumer = consumer(&broker, &[]);
    assign(&consumer, &topic, &[0], Offset::Beginning);
    let got = consume_n(&consumer, 3, CONSUME_WAIT);
    let h = got[0].headers().expect("headers on record 0");
    let pairs: Vec<(String, Option<Vec<u8>>)> = h
        .iter()
        .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("h1".to_string(), Some(b"v1".to_vec())),
            ("dup".to_string(), Some(b"\x00\xff".to_vec())),
            ("dup".to_string(), Some(b"second".to_vec())),
            ("nullv".to_string(), None),
        ]
    );
    assert_eq!(got[0].payload(), Some(&b"with headers"[..]));
    assert_eq!(
        got[1].payload(),
        Some(&b""[..]),
        "empty value stays empty, not null"
    );
    assert_eq!(got[2].payload(), None, "null value stays null");
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.timestamp(), Timestamp::CreateTime(base_ts + i as i64));
        assert_eq!(m.key(), Some(&b"k"[..]));
    }
    assert!(got[1].headers().is_none_or(|h| h.count() == 0));
}

#[tokio::test]
async fn fetch_from_the_middle_of_a_batch() {
    let broker = BrokerProcess::start(&[]);
    let topic = topic_name("midbatch");
    create_topic(&broker, &topic, 1).await;
    // A long linger puts the 10 records into one batch.
    let producer = producer(&broker, &[("linger.ms", "500")]);
    let values: Vec<Vec<u8>> = (0..10).map(|i| format!("m{i}").into_bytes()).collect();
    assert_eq!(
        send_all(&producer, &topic, 0, &values).await,
        (0..10).collect::<Vec<i64>>()
    );

    let consumer = consumer(&broker, &[]);
    assign(&consumer, &topic, &[0], Offset::Offset(5));
    let got = consume_n(&consumer, 5, CONSUME_WAIT);
    let offsets: Vec<i64> = got.iter().map(|m| m.offset()).collect();
    assert_eq!(offsets, vec![5, 6, 7, 8, 9]);
    for m in &got {
        assert_eq!(payload(m), values[m.offset() as usize]);
    }
    assert_no_more(&consumer, Duration::from_millis(500));
}

#[tokio::test]
async fn a_one_megabyte_record_between_two_small_ones() {
    let broker = BrokerProcess::start(&[]);
    let topic = topic_name("large");
    create_topic(&broker, &topic, 1).await;
    let producer = producer(
        &broker,
        &[("message.max.bytes", "1048588"), ("linger.ms", "0")],
    );
    let big: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let values = [b"before".to_vec(), big, b"after".to_vec()];
    for (i, v) in values.iter().enumerate() {
        let r: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&topic).partition(0).payload(v);
        assert_eq!(send(&producer, r).await, (0, i as i64));
    }
    let consumer = consumer(
        &broker,
        &[
            ("max.partition.fetch.bytes", "2097152"),
            ("fetch.max.bytes", "4194304"),
        ],
    );
    assign(&consumer, &topic, &[0], Offset::Beginning);
    let got = consume_n(&consumer, 3, CONSUME_WAIT);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.offset(), i as i64);
        assert!(
            payload(m) == values[i],
            "value at offset {i} differs (len {})",
            payload(m).len()
        );
    }
}

#[tokio::test]
async fn one_hundred_thousand_small_records() {
    let broker = BrokerProcess::start(&[]);
    let topic = topic_name("many");
    create_topic(&broker, &topic, 1).await;
    let producer = producer(
        &broker,
        &[("linger.ms", "20"), ("batch.num.messages", "10000")],
    );
    let n = 100_000;
    let values: Vec<Vec<u8>> = (0..n).map(|i| format!("r{i}").into_bytes()).collect();
    let offsets = send_all(&producer, &topic, 0, &values).await;
    assert!(
        offsets.iter().copied().eq(0..n as i64),
        "offsets are not 0..{n}"
    );

    let consumer = consumer(&broker, &[]);
    assign(&consumer, &topic, &[0], Offset::Beginning);
    let got = consume_n(&consumer, n, Duration::from_secs(90));
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.offset(), i as i64);
        assert_eq!(payload(m), values[i]);
    }
}

#[tokio::test]
async fn acks_zero_records_arrive() {
    let broker = BrokerProcess::start(&[]);
    let topic = topic_name("acks0");
    create_topic(&broker, &topic, 1).await;
    let producer = producer(&broker, &[("acks", "0")]);
    let values: Vec<Vec<u8>> = (0..100).map(|i| format!("a{i}").into_bytes()).collect();
    // With acks=0 the client learns no offsets; it only hears that it sent.
    send_all(&producer, &topic, 0, &values).await;
    let consumer = consumer(&broker, &[]);
    assign(&consumer, &topic, &[0], Offset::Beginning);
    let got = consume_n(&consumer, values.len(), CONSUME_WAIT);
    let got: Vec<Vec<u8>> = got.iter().map(payload).collect();
    assert_eq!(got, values);
}
