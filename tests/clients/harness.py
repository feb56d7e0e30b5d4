"""The broker process and client helpers shared by the client tests."""
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
JAVA_SRC = Path(__file__).resolve().parent / "java"
CALL_TIMEOUT = 30  # seconds, for any one client subprocess


def topic_name(tag):
    return f"py-{tag}-{uuid.uuid4().hex[:10]}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """One broker node on a free loopback port with its own data dir."""

    def __init__(self, workdir, overrides=()):
        self.bin = os.environ.get("MILLRACE_BROKER_BIN", str(REPO / "target" / "debug" / "broker"))
        if not os.path.isfile(self.bin):
            raise RuntimeError(f"{self.bin} is missing: cargo build -p millrace-broker --bin broker")
        self.dir = Path(workdir)
        self.stderr_path = self.dir / "broker.stderr"
        self.proc = None
        self.port = None
        self.overrides = list(overrides)  # extra "key=value" broker overrides

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self, attempts=3):
        for _ in range(attempts):
            self.port = free_port()
            if self._spawn_and_wait():
                return
        raise RuntimeError(f"broker did not start; stderr:\n{self.stderr_tail()}")

    def _spawn_and_wait(self, wait_s=20):
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [self.bin,
                 "--override", f"log.dirs={self.dir / 'data'}",
                 "--override", f"listeners=PLAINTEXT://127.0.0.1:{self.port}",
                 "--override", "num.partitions=4",
                 *[a for o in self.overrides for a in ("--override", o)]],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                env={**os.environ, "NO_COLOR": "1"})
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        self.proc.wait(timeout=10)
        return False

    def stop(self):
        """SIGTERM and wait (bounded); returns the exit code."""
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return "timeout (killed)"
        finally:
            self.proc = None

    def stderr_tail(self, lines=40):
        try:
            return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def run(cmd, input=None, timeout=CALL_TIMEOUT, check=True):
    """Runs a client command; on failure the assertion shows its output."""
    r = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
    if check:
        assert r.returncode == 0, (
            f"{' '.join(map(str, cmd))} exited {r.returncode}\n"
            f"stdout: {r.stdout.decode(errors='replace')[-2000:]}\n"
            f"stderr: {r.stderr.decode(errors='replace')[-2000:]}")
    return r


def compile_java(out_dir, jars):
    sources = sorted(str(p) for p in JAVA_SRC.glob("*.java"))
    run(["javac", "-nowarn", "-cp", f"{jars}/*", "-d", str(out_dir), *sources], timeout=120)
    return f"{out_dir}:{jars}/*"


# ---------------------------------------------------------------- Java programs

def java_produce(cp, bootstrap, topic, lines, *props):
    """Produces lines with the Java producer; returns [(partition, offset)]."""
    data = "".join(f"{line}\n" for line in lines).encode()
    r = run(["java", "-cp", cp, "Produce", bootstrap, topic, *props], input=data, timeout=60)
    return [tuple(map(int, line.split())) for line in r.stdout.decode().splitlines()]


def java_consume(cp, bootstrap, topic, partitions, count, timeout_ms=20000):
    """Reads `count` records with the Java consumer; returns [(partition, offset, key, value)]."""
    parts = ",".join(str(p) for p in partitions)
    r = run(["java", "-cp", cp, "Consume", bootstrap, topic, parts, str(count), str(timeout_ms)],
            timeout=timeout_ms / 1000 + 30)
    return [parse_record(line) for line in r.stdout.decode().splitlines()]


def java_admin(cp, bootstrap, *args, check=True):
    return run(["java", "-cp", cp, "Admin", bootstrap, *args], timeout=60, check=check)


# ---------------------------------------------------------------- kcat

KCAT_FORMAT = "%p\t%o\t%k\t%s\n"


def kcat_produce(kcat, bootstrap, topic, lines, *args):
    data = "".join(f"{line}\n" for line in lines).encode()
    run([kcat, "-b", bootstrap, "-P", "-t", topic, "-X", "message.timeout.ms=20000", *args], input=data)


def kcat_consume(kcat, bootstrap, topic, *args):
    """Reads from the beginning of every partition until the end (-e)."""
    r = run([kcat, "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
             "-f", KCAT_FORMAT, *args])
    return [parse_record(line) for line in r.stdout.decode().splitlines() if line]


def parse_record(line):
    p, o, k, v = line.split("\t", 3)
    return int(p), int(o), k, v


def by_partition(records):
    """{partition: [values in offset order]} after checking offsets are contiguous from 0."""
    out = {}
    for p, o, _k, v in sorted(records, key=lambda r: (r[0], r[1])):
        values = out.setdefault(p, [])
        assert o == len(values), f"partition {p}: offset {o} where {len(values)} was expected"
        values.append(v)
    return out


# ---------------------------------------------------------------- kafka-python

def kp_kw(bootstrap, **extra):
    return {"bootstrap_servers": bootstrap, "request_timeout_ms": 10000, **extra}


def create_topic(bootstrap, topic, partitions, configs=None):
    from kafka.admin import KafkaAdminClient
    admin = KafkaAdminClient(**kp_kw(bootstrap))
    try:
        opts = {"num_partitions": partitions, "replication_factor": 1}
        if configs:
            opts["configs"] = configs
        admin.create_topics({topic: opts}, timeout_ms=15000, wait_for_metadata=True)
    finally:
        admin.close()


def kp_consume(bootstrap, topic, partitions, count, timeout_s=30):
    """Reads `count` records from the beginning of `partitions` without a group."""
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(**kp_kw(bootstrap, group_id=None, enable_auto_commit=False))
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        out = []
        deadline = time.monotonic() + timeout_s
        while len(out) < count and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=500).values():
                out.extend(recs)
        assert len(out) == count, f"consumed {len(out)} of {count} records within {timeout_s}s"
        return out
    finally:
        c.close()
