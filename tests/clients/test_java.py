"""The Java reference client (kafka-clients) against the broker, and Java <-> kcat."""
import time

import pytest

from harness import (by_partition, create_topic, java_admin, java_consume, java_produce,
                     kcat_consume, kcat_produce, topic_name)


def test_produce_lines_and_consume_them_in_order(broker, java_classpath):
    topic = topic_name("java-lines")
    create_topic(broker.bootstrap, topic, 1)
    lines = [f"java line {i}" for i in range(300)]
    acks = java_produce(java_classpath, broker.bootstrap, topic, lines)
    assert acks == [(0, i) for i in range(300)]
    got = java_consume(java_classpath, broker.bootstrap, topic, [0], 300)
    assert by_partition(got) == {0: lines}


def test_keyed_records_keep_their_partition(broker, java_classpath):
    topic = topic_name("java-keyed")
    create_topic(broker.bootstrap, topic, 4)
    lines = [f"key{k}:v{k}-{r}" for r in range(5) for k in range(20)]
    acks = java_produce(java_classpath, broker.bootstrap, topic, lines, "key.separator=:")
    where = {}
    for line, (p, _o) in zip(lines, acks):
        key = line.split(":")[0]
        assert where.setdefault(key, p) == p, f"{key} moved partitions"
    assert len(set(where.values())) > 1
    got = java_consume(java_classpath, broker.bootstrap, topic, [0, 1, 2, 3], 100)
    for p, _o, k, v in got:
        assert where[k] == p
    for part, values in by_partition(got).items():
        for k in {v.split("-")[0] for v in values}:
            assert [v for v in values if v.split("-")[0] == k] == [f"{k}-{r}" for r in range(5)]


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_round_trip(broker, java_classpath, codec):
    topic = topic_name(f"java-{codec}")
    create_topic(broker.bootstrap, topic, 1)
    lines = [f"{codec} " * (1 + i % 9) + str(i) for i in range(300)]
    java_produce(java_classpath, broker.bootstrap, topic, lines,
                 f"compression.type={codec}", "linger.ms=50")
    got = java_consume(java_classpath, broker.bootstrap, topic, [0], 300)
    assert by_partition(got) == {0: lines}


def test_admin_create_describe_delete(broker, java_classpath):
    topic = topic_name("java-admin")
    b = broker.bootstrap
    out = java_admin(java_classpath, b, "create", topic, "3", "retention.ms=3600000").stdout.decode()
    assert out.strip() == f"created {topic}"
    assert topic in java_admin(java_classpath, b, "list").stdout.decode().split()
    desc = java_admin(java_classpath, b, "describe", topic).stdout.decode().splitlines()
    assert "partitions 3" in desc and "config retention.ms=3600000" in desc, desc
    again = java_admin(java_classpath, b, "create", topic, "1", check=False)
    assert again.returncode == 1 and b"TopicExistsException" in again.stderr, again.stderr
    java_admin(java_classpath, b, "delete", topic)
    deadline = time.monotonic() + 10
    while topic in java_admin(java_classpath, b, "list").stdout.decode().split():
        assert time.monotonic() < deadline, f"{topic} still listed after delete"
        time.sleep(0.2)


def test_java_producer_to_kcat_consumer(broker, java_classpath, kcat_bin):
    topic = topic_name("java-to-kcat")
    create_topic(broker.bootstrap, topic, 4)
    lines = [f"k{i % 7}:java {i}" for i in range(140)]
    acks = java_produce(java_classpath, broker.bootstrap, topic, lines, "key.separator=:")
    got = kcat_consume(kcat_bin, broker.bootstrap, topic)
    assert sorted((p, o) for p, o, _k, _v in got) == sorted(acks)
    want = {(p, o): tuple(line.split(":", 1)) for line, (p, o) in zip(lines, acks)}
    for p, o, k, v in got:
        assert want[(p, o)] == (k, v)


def test_kcat_producer_to_java_consumer(broker, java_classpath, kcat_bin):
    topic = topic_name("kcat-to-java")
    create_topic(broker.bootstrap, topic, 1)
    lines = [f"kcat {i}" for i in range(150)]
    kcat_produce(kcat_bin, broker.bootstrap, topic, lines, "-p", "0", "-z", "lz4")
    got = java_consume(java_classpath, broker.bootstrap, topic, [0], 150)
    assert by_partition(got) == {0: lines}


def test_admin_list_offsets_earliest_latest_max_timestamp_and_by_time(broker, java_classpath):
    from kafka import KafkaProducer
    topic = topic_name("java-offsets")
    create_topic(broker.bootstrap, topic, 1)
    base = 1_700_000_000_000
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=300)
    # One batch; the largest timestamp sits at offset 6, not at the end.
    stamps = [base + 10 * i for i in range(10)]
    stamps[6] = base + 1000
    futures = [p.send(topic, value=b"x", partition=0, timestamp_ms=ts) for ts in stamps]
    assert [f.get(timeout=20).offset for f in futures] == list(range(10))
    p.close(timeout=10)
    out = java_admin(java_classpath, broker.bootstrap, "offsets", topic, "0",
                     str(base - 1), str(base + 35), str(base + 2000)).stdout.decode().splitlines()
    assert out == ["earliest 0", "latest 10", f"max-timestamp 6 {base + 1000}",
                   f"at {base - 1} 0", f"at {base + 35} 4", f"at {base + 2000} -1"], out
