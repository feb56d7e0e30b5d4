"""kafka-python (pure-Python protocol implementation) against the broker."""
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.errors import InvalidPartitionsError, TopicAlreadyExistsError

from harness import create_topic, kp_consume, kp_kw, topic_name


def producer(broker, **extra):
    return KafkaProducer(**kp_kw(broker.bootstrap, acks="all", max_block_ms=10000, **extra))


def test_produce_lines_and_consume_them_in_order(broker):
    topic = topic_name("kp-lines")
    create_topic(broker.bootstrap, topic, 1)
    p = producer(broker)
    lines = [f"line {i}".encode() for i in range(200)]
    futures = [p.send(topic, value=v, partition=0) for v in lines]
    offsets = [f.get(timeout=20).offset for f in futures]
    p.close(timeout=10)
    assert offsets == list(range(200))
    got = kp_consume(broker.bootstrap, topic, [0], 200)
    assert [r.value for r in got] == lines
    assert [r.offset for r in got] == list(range(200))


def test_keyed_records_stay_in_one_partition(broker):
    topic = topic_name("kp-keyed")
    create_topic(broker.bootstrap, topic, 4)
    p = producer(broker)
    sent = []
    for rnd in range(5):
        for k in range(20):
            key, value = f"key-{k}".encode(), f"key-{k}/{rnd}".encode()
            sent.append((key, value, p.send(topic, key=key, value=value)))
    where = {}
    for key, value, f in sent:
        md = f.get(timeout=20)
        assert where.setdefault(key, md.partition) == md.partition, f"{key} moved partitions"
    p.close(timeout=10)
    assert len(set(where.values())) > 1, "20 keys all in one partition"
    got = kp_consume(broker.bootstrap, topic, [0, 1, 2, 3], 100)
    rounds = {}
    for r in got:
        assert r.partition == where[r.key]
        rnd = int(r.value.decode().rsplit("/", 1)[1])
        assert rounds.get(r.key, -1) + 1 == rnd, f"{r.key} out of order"
        rounds[r.key] = rnd


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_round_trip(broker, codec):
    topic = topic_name(f"kp-{codec}")
    create_topic(broker.bootstrap, topic, 1)
    p = producer(broker, compression_type=codec, linger_ms=50)
    values = [(f"{codec} value {i} " * (1 + i % 5)).encode() for i in range(300)]
    futures = [p.send(topic, value=v, partition=0) for v in values]
    assert [f.get(timeout=20).offset for f in futures] == list(range(300))
    p.close(timeout=10)
    got = kp_consume(broker.bootstrap, topic, [0], 300)
    assert [r.value for r in got] == values


def test_admin_create_list_describe_alter_delete(broker):
    topic = topic_name("kp-admin")
    a = KafkaAdminClient(**kp_kw(broker.bootstrap))
    try:
        a.create_topics({topic: {"num_partitions": 3, "replication_factor": 1,
                                 "configs": {"retention.ms": "3600000"}}},
                        timeout_ms=15000, wait_for_metadata=True)
        assert topic in a.list_topics()
        (desc,) = a.describe_topics([topic])
        assert sorted(p["partition_index"] for p in desc["partitions"]) == [0, 1, 2]
        assert all(p["leader_id"] >= 0 for p in desc["partitions"])

        def retention():
            d = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
            entry = d["topic"][topic]["retention.ms"]
            return entry["value"], entry["config_source"]

        assert retention() == ("3600000", "DYNAMIC_TOPIC_CONFIG")
        a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "7200000"})])
        assert retention() == ("7200000", "DYNAMIC_TOPIC_CONFIG")

        with pytest.raises(TopicAlreadyExistsError):
            a.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}}, timeout_ms=15000)
        with pytest.raises(InvalidPartitionsError):
            a.create_topics({topic_name("kp-zero"): {"num_partitions": 0, "replication_factor": 1}},
                            timeout_ms=15000)

        a.delete_topics([topic], timeout_ms=15000)
        deadline = time.monotonic() + 10
        while topic in a.list_topics():
            assert time.monotonic() < deadline, f"{topic} still listed after delete"
            time.sleep(0.1)
    finally:
        a.close()


def test_list_offsets_by_timestamp(broker):
    topic = topic_name("kp-times")
    create_topic(broker.bootstrap, topic, 1)
    base = 1_700_000_000_000
    p = producer(broker, linger_ms=300)
    futures = [p.send(topic, value=f"t{i}".encode(), partition=0, timestamp_ms=base + 10 * i)
               for i in range(10)]
    assert [f.get(timeout=20).offset for f in futures] == list(range(10))
    p.close(timeout=10)

    c = KafkaConsumer(**kp_kw(broker.bootstrap, group_id=None, enable_auto_commit=False))
    try:
        tp = TopicPartition(topic, 0)
        assert c.beginning_offsets([tp], timeout_ms=10000) == {tp: 0}
        assert c.end_offsets([tp], timeout_ms=10000) == {tp: 10}

        def at(ts):
            r = c.offsets_for_times({tp: ts}, timeout_ms=10000)[tp]
            return None if r is None else (r.offset, r.timestamp)

        assert at(base - 1000) == (0, base)
        assert at(base + 30) == (3, base + 30)
        assert at(base + 35) == (4, base + 40)
        assert at(base + 91) is None
    finally:
        c.close()
