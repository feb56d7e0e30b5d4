"""kcat (Debian's, librdkafka C client as a CLI) against the broker."""
import pytest

from harness import by_partition, create_topic, kcat_consume, kcat_produce, run, topic_name


def test_metadata_lists_the_topic(broker, kcat_bin):
    topic = topic_name("kcat-md")
    create_topic(broker.bootstrap, topic, 3)
    out = run([kcat_bin, "-b", broker.bootstrap, "-L", "-t", topic]).stdout.decode()
    assert f'topic "{topic}" with 3 partitions' in out, out


def test_lines_piped_in_come_back_in_order(broker, kcat_bin):
    topic = topic_name("kcat-lines")
    create_topic(broker.bootstrap, topic, 1)
    lines = [f"kcat line {i}" for i in range(300)]
    kcat_produce(kcat_bin, broker.bootstrap, topic, lines, "-p", "0")
    assert by_partition(kcat_consume(kcat_bin, broker.bootstrap, topic)) == {0: lines}


def test_keyed_lines_keep_their_partition(broker, kcat_bin):
    topic = topic_name("kcat-keyed")
    create_topic(broker.bootstrap, topic, 4)
    lines = [f"key{k}:v{k}-{r}" for r in range(5) for k in range(20)]
    kcat_produce(kcat_bin, broker.bootstrap, topic, lines, "-K:")
    got = kcat_consume(kcat_bin, broker.bootstrap, topic)
    assert len(got) == len(lines)
    where = {}
    for p, _o, k, _v in got:
        assert where.setdefault(k, p) == p, f"key {k} in two partitions"
    assert len(set(where.values())) > 1, "20 keys all in one partition"
    for part, values in by_partition(got).items():
        for k in {v.split("-")[0] for v in values}:
            mine = [v for v in values if v.split("-")[0] == k]
            assert mine == [f"{k}-{r}" for r in range(5)], f"partition {part}: {mine}"


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_round_trip(broker, kcat_bin, codec):
    topic = topic_name(f"kcat-{codec}")
    create_topic(broker.bootstrap, topic, 1)
    lines = [f"{codec} " * (1 + i % 9) + str(i) for i in range(300)]
    kcat_produce(kcat_bin, broker.bootstrap, topic, lines, "-p", "0", "-z", codec)
    assert by_partition(kcat_consume(kcat_bin, broker.bootstrap, topic)) == {0: lines}
