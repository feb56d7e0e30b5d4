"""Consumer groups with kafka-python, kcat -G and the Java client: members split
the partitions, a member that stops or is SIGKILLed hands its partitions over,
synchronous commits give exactly-once consumption across controlled stops, a
restarted member resumes at the commit, and the Java AdminClient's group
calls (list, describe, offsets, delete). Members run as child processes
(kcat, the Java GroupConsumer program) or threads (kafka-python)."""
import collections
import re
import signal
import subprocess
import threading
import time

import pytest

from harness import Broker, create_topic, run, topic_name

BROKER_OVERRIDES = ["offsets.topic.num.partitions=3", "group.initial.rebalance.delay.ms=0",
                    "group.min.session.timeout.ms=1000"]
WAIT = 30  # seconds for any one condition


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("broker-groups"), overrides=BROKER_OVERRIDES)
    b.start()
    yield b
    rc = b.stop()
    assert rc == 0, f"broker exited with {rc} on SIGTERM; stderr:\n{b.stderr_tail()}"


def wait_until(what, cond, timeout=WAIT):
    """Polls cond every 50 ms; returns the seconds it took."""
    start = time.monotonic()
    while not cond():
        assert time.monotonic() - start < timeout, f"{what}: not within {timeout}s"
        time.sleep(0.05)
    return time.monotonic() - start


def is_split(sets, partitions):
    union = set().union(*sets)
    return all(sets) and sum(len(s) for s in sets) == partitions and union == set(range(partitions))


def produce_keyed(bootstrap, topic, partitions, prefix, n):
    """n records, key/value "<prefix>-<i>", record i to partition i % partitions."""
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        futures = [p.send(topic, key=f"{prefix}-{i}".encode(), value=f"{prefix}-{i}".encode(),
                          partition=i % partitions) for i in range(n)]
        for f in futures:
            f.get(timeout=20)
    finally:
        p.close(timeout=10)


def assert_exactly_once(records, per_partition, partitions):
    """records: [(partition, offset, key)]: every offset below per_partition once, nothing else."""
    counts = collections.Counter((p, o) for p, o, _k in records)
    dups = {k: n for k, n in counts.items() if n > 1}
    assert not dups, f"duplicates: {dups}"
    for p in range(partitions):
        got = sorted(o for (pp, o) in counts if pp == p)
        assert got == list(range(per_partition)), f"partition {p}: gaps or extras"
    keys = collections.Counter(k for _p, _o, k in records)
    assert len(keys) == per_partition * partitions and set(keys.values()) == {1}


# ---------------------------------------------------------------- Java GroupConsumer child process

class JavaMember:
    """tests/clients/java/GroupConsumer.java as a child process."""

    def __init__(self, cp, bootstrap, group, topic, *props):
        self.proc = subprocess.Popen(
            ["java", "-cp", cp, "GroupConsumer", bootstrap, group, topic, *props],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.stderr = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True).start()

    def _read(self, stream, out):
        for line in stream:
            with self._lock:
                out.append(line.rstrip("\n"))

    def _lines(self):
        with self._lock:
            return list(self.lines)

    def assignment(self):
        """Partitions of the last OWNED line (the whole assignment after each
        callback, eager or incremental)."""
        current = set()
        for line in self._lines():
            if line.startswith("OWNED"):
                current = {int(x) for x in line[6:].split(",") if x}
        return current

    def events(self, kind):
        return [line for line in self._lines() if line.startswith(kind)]

    def records(self):
        out = []
        for line in self._lines():
            if line.startswith("REC\t"):
                _, p, o, k = line.split("\t", 3)
                out.append((int(p), int(o), k))
        return out

    def commit_failures(self):
        return self.events("COMMIT-FAILED")

    def stop(self):
        """Controlled stop: finish the record in hand, close (LeaveGroup), exit 0."""
        try:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        rc = self.proc.wait(timeout=30)
        time.sleep(0.1)  # let the reader threads drain the pipes
        assert rc == 0 and self._lines()[-1:] == ["CLOSED"], (
            f"GroupConsumer exited {rc}; stdout tail {self._lines()[-5:]}; stderr {self.stderr[-20:]}")

    def wait_exit(self, timeout=WAIT):
        rc = self.proc.wait(timeout=timeout)
        time.sleep(0.1)
        assert rc == 0, f"GroupConsumer exited {rc}; stderr {self.stderr[-20:]}"

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def members():
    started = []
    yield started
    for m in started:
        m.cleanup()


def java_member(members, cp, broker, group, topic, *props):
    m = JavaMember(cp, broker.bootstrap, group, topic, *props)
    members.append(m)
    return m


# ---------------------------------------------------------------- Java

def test_java_two_then_three_members_split_the_partitions(broker, java_classpath, members):
    topic, group = topic_name("jsplit"), topic_name("g-jsplit")
    create_topic(broker.bootstrap, topic, 6)
    a = java_member(members, java_classpath, broker, group, topic)
    b = java_member(members, java_classpath, broker, group, topic)
    wait_until("two Java members split 6", lambda: is_split([a.assignment(), b.assignment()], 6), 60)
    c = java_member(members, java_classpath, broker, group, topic)
    wait_until("three Java members split 6",
               lambda: is_split([a.assignment(), b.assignment(), c.assignment()], 6), 60)
    assert sorted(len(m.assignment()) for m in (a, b, c)) == [2, 2, 2]
    for m in (a, b, c):
        m.stop()


def test_java_consumer_protocol_members_join_a_classic_group_and_split(broker, java_classpath, members):
    """KIP-848 with the Java client: a classic member first, then two members
    with group.protocol=consumer upgrade the group; all split the partitions;
    once both new-protocol members stop, the classic member owns all again."""
    topic, group = topic_name("j848"), topic_name("g-j848")
    create_topic(broker.bootstrap, topic, 6)
    old = java_member(members, java_classpath, broker, group, topic)
    wait_until("the classic member owns 6", lambda: len(old.assignment()) == 6, 60)
    a = java_member(members, java_classpath, broker, group, topic, "group.protocol=consumer")
    b = java_member(members, java_classpath, broker, group, topic, "group.protocol=consumer")
    wait_until("classic and consumer-protocol members split 6",
               lambda: is_split([old.assignment(), a.assignment(), b.assignment()], 6), 60)
    assert sorted(len(m.assignment()) for m in (old, a, b)) == [2, 2, 2]
    a.stop()
    b.stop()
    wait_until("the classic member owns 6 again", lambda: len(old.assignment()) == 6, 60)
    old.stop()


def test_java_exactly_once_with_sync_commits_across_stops_and_joins(broker, java_classpath, members):
    topic, group = topic_name("jeos"), topic_name("g-jeos")
    partitions, per = 4, 100
    create_topic(broker.bootstrap, topic, partitions)
    produce_keyed(broker.bootstrap, topic, partitions, "k", partitions * per)
    total = partitions * per
    ms = [java_member(members, java_classpath, broker, group, topic) for _ in range(3)]
    count = lambda: sum(len(m.records()) for m in members)  # noqa: E731
    wait_until("a quarter consumed", lambda: count() >= total // 4, 60)
    ms[2].stop()  # controlled: the record in hand is committed first
    wait_until("half consumed", lambda: count() >= total // 2, 60)
    java_member(members, java_classpath, broker, group, topic)
    wait_until("all consumed", lambda: count() >= total, 90)
    time.sleep(1.5)  # a redelivery would show up now
    for m in members:
        if m.proc.poll() is None:
            m.stop()
    for m in members:
        assert not m.commit_failures(), m.commit_failures()
    assert_exactly_once([r for m in members for r in m.records()], per, partitions)
    offsets = run(["java", "-cp", java_classpath, "GroupAdmin", broker.bootstrap, "offsets", group],
                  timeout=60).stdout.decode().splitlines()
    assert offsets == [f"{topic}\t{p}\t{per}" for p in range(partitions)], offsets


def test_java_member_killed_with_sigkill_survivors_take_over(broker, java_classpath, members):
    topic, group = topic_name("jkill"), topic_name("g-jkill")
    partitions = 6
    create_topic(broker.bootstrap, topic, partitions)
    produce_keyed(broker.bootstrap, topic, partitions, "before", 60)
    props = ("session.timeout.ms=3000",)
    a, b, c = (java_member(members, java_classpath, broker, group, topic, *props) for _ in range(3))
    wait_until("three members split", lambda: is_split([m.assignment() for m in (a, b, c)], 6), 60)
    wait_until("everything before the kill consumed",
               lambda: sum(len(m.records()) for m in (a, b, c)) >= 60, 60)
    c_parts = c.assignment()
    c.kill9()
    took = wait_until("two survivors own all 6",
                      lambda: is_split([a.assignment(), b.assignment()], 6), 30)
    assert took < 3 + 10, f"takeover took {took:.1f}s for a 3 s session"
    produce_keyed(broker.bootstrap, topic, partitions, "after", 60)
    after = lambda: [r for m in (a, b) for r in m.records() if r[2].startswith("after-")]  # noqa: E731
    wait_until("survivors read the 60 new records", lambda: len(after()) >= 60)
    assert c_parts <= {p for p, _o, _k in after()}
    a.stop()
    b.stop()
    # At most the one record c had in hand per partition is read twice (it died
    # between printing and committing); no gaps.
    every = [r for m in (a, b, c) for r in m.records()]
    counts = collections.Counter((p, o) for p, o, _k in every)
    assert sorted(counts) == sorted((p, o) for p in range(6) for o in range(20))
    dups = [k for k, n in counts.items() if n > 1]
    assert len(dups) <= len(c_parts) and all(p in c_parts for p, _o in dups), dups


def test_java_restarted_member_resumes_from_the_committed_offset(broker, java_classpath, members):
    topic, group = topic_name("jresume"), topic_name("g-jresume")
    create_topic(broker.bootstrap, topic, 2)
    produce_keyed(broker.bootstrap, topic, 2, "r", 100)
    first = java_member(members, java_classpath, broker, group, topic, "max.records=30")
    first.wait_exit(60)
    got1 = first.records()
    assert len(got1) == 30
    nxt = {p: max((o for pp, o, _k in got1 if pp == p), default=-1) + 1 for p in (0, 1)}
    second = java_member(members, java_classpath, broker, group, topic, "max.records=70")
    second.wait_exit(60)
    got2 = second.records()
    for p in (0, 1):
        offs = [o for pp, o, _k in got2 if pp == p]
        if nxt[p] < 50:
            assert offs[0] == nxt[p], f"partition {p} resumed at {offs[0]}, committed {nxt[p]}"
    assert_exactly_once(got1 + got2, 50, 2)


def test_java_static_member_restart_keeps_its_partitions_without_a_rebalance(
        broker, java_classpath, members):
    topic, group = topic_name("jstatic"), topic_name("g-jstatic")
    create_topic(broker.bootstrap, topic, 4)
    props = lambda iid: (f"group.instance.id={iid}", "session.timeout.ms=20000")  # noqa: E731
    a = java_member(members, java_classpath, broker, group, topic, *props("ja"))
    # a goes through two generations (alone, then with b), as long-running members do.
    wait_until("a alone owns all 4", lambda: a.assignment() == {0, 1, 2, 3}, 60)
    b = java_member(members, java_classpath, broker, group, topic, *props("jb"))
    wait_until("static members split", lambda: is_split([a.assignment(), b.assignment()], 4), 60)
    time.sleep(1)
    a_parts, b_events = a.assignment(), len(b.events("ASSIGNED")) + len(b.events("REVOKED"))
    a.stop()  # a static member's close sends no LeaveGroup
    a2 = java_member(members, java_classpath, broker, group, topic, *props("ja"))
    wait_until("restarted static member has its partitions", lambda: a2.assignment() == a_parts, 60)
    time.sleep(2)
    assert b.assignment() == set(range(4)) - a_parts
    assert len(b.events("ASSIGNED")) + len(b.events("REVOKED")) == b_events, b.events("")
    a2.stop()
    b.stop()


def test_java_admin_list_describe_offsets_delete_groups(broker, java_classpath, members):
    topic, group, idle = topic_name("jadmin"), topic_name("g-jadmin"), topic_name("g-jidle")
    create_topic(broker.bootstrap, topic, 4)
    produce_keyed(broker.bootstrap, topic, 4, "a", 40)
    ga = lambda *args, check=True: run(  # noqa: E731
        ["java", "-cp", java_classpath, "GroupAdmin", broker.bootstrap, *args], timeout=60, check=check)
    # idle: a group that consumed everything and left.
    done = java_member(members, java_classpath, broker, idle, topic, "max.records=40")
    done.wait_exit(60)
    a = java_member(members, java_classpath, broker, group, topic, "client.id=member-a")
    b = java_member(members, java_classpath, broker, group, topic, "client.id=member-b",
                    "group.instance.id=inst-b")
    wait_until("two members split", lambda: is_split([a.assignment(), b.assignment()], 4), 60)
    wait_until("all read", lambda: len(a.records()) + len(b.records()) >= 40)

    listed = dict(line.split("\t") for line in ga("list").stdout.decode().splitlines())
    assert listed.get(group) == "Stable" and listed.get(idle) == "Empty", listed

    desc = ga("describe", group).stdout.decode().splitlines()
    assert desc[0] == "state Stable" and desc[1] == "coordinator 1", desc
    want = sorted([f"member member-a\t-\t{','.join(map(str, sorted(a.assignment())))}",
                   f"member member-b\tinst-b\t{','.join(map(str, sorted(b.assignment())))}"])
    assert desc[2:] == want, desc
    assert ga("describe", idle).stdout.decode().splitlines()[0] == "state Empty"

    wait_until("commits visible", lambda: ga("offsets", group).stdout.decode().splitlines()
               == [f"{topic}\t{p}\t10" for p in range(4)])
    assert ga("offsets", idle).stdout.decode().splitlines() == [f"{topic}\t{p}\t10" for p in range(4)]

    never = topic_name("g-never")
    out = ga("delete", group, idle, never).stdout.decode().splitlines()
    assert out == [f"failed {group} GroupNotEmptyException", f"deleted {idle}",
                   f"failed {never} GroupIdNotFoundException"], out
    listed = dict(line.split("\t") for line in ga("list").stdout.decode().splitlines())
    assert idle not in listed and listed.get(group) == "Stable"
    assert ga("offsets", idle).stdout.decode() == ""
    # The deleted group starts over: a new member reads from the beginning.
    again = java_member(members, java_classpath, broker, idle, topic, "max.records=40")
    again.wait_exit(60)
    assert len(again.records()) == 40
    a.stop()
    b.stop()


# ---------------------------------------------------------------- kcat -G

class KcatMember:
    """kcat -G as a child process; assignments parsed from its stderr."""

    ASSIGNED = re.compile(r"rebalanced.*assigned: (.*)$")

    def __init__(self, kcat, bootstrap, group, topic, session_ms=3000):
        self.proc = subprocess.Popen(
            [kcat, "-b", bootstrap, "-G", group, "-u", "-f", "%p\t%o\t%k\n",
             "-X", "auto.offset.reset=earliest", "-X", f"session.timeout.ms={session_ms}",
             "-X", "heartbeat.interval.ms=300", topic],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out, self.err = [], []
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=lambda s=stream, k=sink: [k.append(x.rstrip("\n")) for x in s],
                             daemon=True).start()

    def assignment(self):
        current = set()
        for line in list(self.err):
            m = self.ASSIGNED.search(line)
            if m:
                current = {int(x) for x in re.findall(r"\[(\d+)\]", m.group(1))}
            elif "rebalanced" in line and "revoked" in line:
                current = set()
        return current

    def keys(self):
        return [line.split("\t")[2] for line in list(self.out) if line.count("\t") == 2]

    def kill9(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


def test_kcat_members_split_and_a_sigkilled_one_hands_over(broker, kcat_bin):
    topic, group = topic_name("kgroup"), topic_name("g-kgroup")
    create_topic(broker.bootstrap, topic, 4)
    a = KcatMember(kcat_bin, broker.bootstrap, group, topic)
    b = KcatMember(kcat_bin, broker.bootstrap, group, topic)
    try:
        wait_until("two kcat members split 4", lambda: is_split([a.assignment(), b.assignment()], 4))
        b.kill9()
        took = wait_until("the survivor owns all 4", lambda: a.assignment() == {0, 1, 2, 3})
        assert took < 3 + 10, f"takeover took {took:.1f}s for a 3 s session"
        produce_keyed(broker.bootstrap, topic, 4, "after", 40)
        wait_until("survivor reads all", lambda: sorted(a.keys()) == sorted(f"after-{i}" for i in range(40)))
    finally:
        a.kill9()
        b.kill9()


# ---------------------------------------------------------------- kafka-python

class KpMember(threading.Thread):
    """A kafka-python group member polling on a thread, committing after each batch."""

    def __init__(self, bootstrap, group, topic, max_records=None):
        super().__init__(daemon=True)
        from kafka import KafkaConsumer
        self.c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                               enable_auto_commit=False, auto_offset_reset="earliest",
                               session_timeout_ms=6000, heartbeat_interval_ms=300,
                               request_timeout_ms=10000, max_poll_records=10,
                               # A leader without the topic's metadata assigns nothing
                               # until the next refresh: keep refreshes frequent.
                               metadata_max_age_ms=500,
                               # bounds a rebalance that waits for a slow member
                               max_poll_interval_ms=10000)
        # Have the topic's metadata before joining, so a leader never assigns
        # from an empty view of the topic.
        deadline = time.monotonic() + WAIT
        while topic not in self.c.topics():
            assert time.monotonic() < deadline, f"{topic} not in kafka-python's metadata"
            time.sleep(0.1)
        self.c.subscribe([topic])
        self.stop_flag = threading.Event()
        self.records, self.errors = [], []
        self.max_records = max_records
        self.assigned = set()

    def run(self):
        try:
            while not self.stop_flag.is_set():
                batch = self.c.poll(timeout_ms=100)
                for recs in batch.values():
                    self.records.extend((r.partition, r.offset, r.key.decode()) for r in recs)
                if batch:
                    self.c.commit()  # synchronous: the offsets of everything polled
                self.assigned = {tp.partition for tp in self.c.assignment()}
                if self.max_records is not None and len(self.records) >= self.max_records:
                    break
        except Exception as e:  # surfaced by stop()
            self.errors.append(repr(e))
        finally:
            self.c.close()

    def stop(self):
        self.stop_flag.set()
        self.join(timeout=30)
        assert not self.is_alive(), "kafka-python member did not close"
        assert not self.errors, self.errors


@pytest.mark.xfail(strict=False, reason=(
    "was flaky under CI load: kafka-python 3.0.12 drops a JoinGroup result that completed while "
    "no poll() waited (coordinator/base.py: a done join task is replaced by a new join), and its "
    "leader's re-join used to rebalance the whole group each time. The broker now answers such a "
    "re-join with the current generation (classic.rs); kept non-strict until CI runs confirm it."))
def test_kafka_python_members_split_and_consume_exactly_once(broker):
    topic, group = topic_name("kpgroup"), topic_name("g-kpgroup")
    create_topic(broker.bootstrap, topic, 6)
    produce_keyed(broker.bootstrap, topic, 6, "k", 300)
    ms = [KpMember(broker.bootstrap, group, topic) for _ in range(2)]
    for m in ms:
        m.start()
    try:
        wait_until("two kafka-python members split 6", lambda: is_split([m.assigned for m in ms], 6))
        ms.append(KpMember(broker.bootstrap, group, topic))
        ms[-1].start()
        wait_until("three split 6", lambda: is_split([m.assigned for m in ms], 6))
        wait_until("all read", lambda: sum(len(m.records) for m in ms) >= 300)
        time.sleep(1)
    finally:
        for m in ms:
            m.stop()
    assert_exactly_once([r for m in ms for r in m.records], 50, 6)


def test_kafka_python_restarted_member_resumes_from_the_commit(broker):
    topic, group = topic_name("kpresume"), topic_name("g-kpresume")
    create_topic(broker.bootstrap, topic, 1)
    produce_keyed(broker.bootstrap, topic, 1, "r", 50)
    first = KpMember(broker.bootstrap, group, topic, max_records=20)
    first.start()
    first.join(timeout=WAIT)
    first.stop()
    n = len(first.records)
    assert 20 <= n < 50
    second = KpMember(broker.bootstrap, group, topic)
    second.start()
    try:
        wait_until("the rest read", lambda: len(second.records) >= 50 - n)
        time.sleep(0.5)
    finally:
        second.stop()
    assert second.records[0][1] == n, "resumed at the commit"
    assert_exactly_once(first.records + second.records, 50, 1)
