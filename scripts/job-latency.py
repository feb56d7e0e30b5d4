#!/usr/bin/env python3
"""End-to-end latency of a windowed job: from the acknowledgement of the record
that closes a window to its result arriving at a consumer.

Needs a running broker with its admin listener (for `broker job create`) and
kafka-python (.ci/cache/venv after scripts/setup-clients.sh):

    .ci/cache/venv/bin/python scripts/job-latency.py --bootstrap-server localhost:9092 \
        --broker target/release/broker --windows 15 --partitions 3

It creates topic `lat_in_<n>` and job `lat_<n>` (tumbling 1 s count, emit
final, grace 0, as the latency target asks), sends one record per window on
every input partition with event times one window apart, and prints the
latency of each window's result and the p50/max.
"""
import argparse
import json
import subprocess
import time
import uuid

from kafka import KafkaConsumer, KafkaProducer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap-server", default="localhost:9092")
    ap.add_argument("--broker", default="target/release/broker")
    ap.add_argument("--windows", type=int, default=15)
    ap.add_argument("--partitions", type=int, default=3)
    a = ap.parse_args()
    tag = uuid.uuid4().hex[:8]
    src, out, job = f"lat_in_{tag}", f"lat_out_{tag}", f"lat_{tag}"
    bs = ["--bootstrap-server", a.bootstrap_server]
    subprocess.run([a.broker, "topic", "create", src, "--partitions", str(a.partitions)] + bs, check=True)
    sql = (f"CREATE JOB {job} WITH (emit = 'final', grace = '0 seconds') AS\n"
           f"INSERT INTO {out}\nSELECT key, window_end, count(*) AS n FROM {src}\n"
           f"GROUP BY key, tumble(interval '1 second');")
    subprocess.run([a.broker, "job", "create"] + bs, input=sql.encode(), check=True)
    p = KafkaProducer(bootstrap_servers=a.bootstrap_server, acks="all", linger_ms=0)
    c = KafkaConsumer(bootstrap_servers=a.bootstrap_server, auto_offset_reset="earliest",
                      consumer_timeout_ms=100)
    base = (int(time.time() * 1000) // 1000) * 1000
    # Warm up: the job joins its group (initial rebalance delay) and reads the first windows.
    for w in range(3):
        for part in range(a.partitions):
            p.send(src, key=b"k", value=b"x", partition=part, timestamp_ms=base + w * 1000).get(30)
    deadline = time.time() + 60
    while out not in (c.topics() or set()) and time.time() < deadline:
        time.sleep(0.2)
    c.subscribe([out])
    seen = {}
    deadline = time.time() + 30
    while base + 1000 not in seen and time.time() < deadline:
        for m in c:
            seen[json.loads(m.value)["window_end"]] = time.time()
    lat = []
    for w in range(3, 3 + a.windows):
        closes = base + (w - 1) * 1000 + 1000  # window w-1 ends where window w starts
        for part in range(a.partitions):
            p.send(src, key=b"k", value=b"x", partition=part, timestamp_ms=base + w * 1000).get(30)
        acked = time.time()
        deadline = acked + 10
        while closes not in seen and time.time() < deadline:
            for m in c:
                seen[json.loads(m.value)["window_end"]] = time.time()
        if closes in seen:
            lat.append((seen[closes] - acked) * 1000)
            print(f"window ending {closes}: {lat[-1]:.0f} ms")
        else:
            print(f"window ending {closes}: no result within 10 s")
        time.sleep(0.3)
    subprocess.run([a.broker, "job", "delete", job] + bs, check=False)
    if lat:
        lat.sort()
        print(f"latency over {len(lat)} windows: p50 {lat[len(lat) // 2]:.0f} ms, max {lat[-1]:.0f} ms")


if __name__ == "__main__":
    main()
