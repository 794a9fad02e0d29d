"""Helpers of the fault-injection suite: a paced producer, topic reads, example checks, RSS."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as AioTopicPartition
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from stream.batch_producer import BatchSender
from stream.embedded import EmbeddedServices
from stream.synthetic import Expected, TopicRecord, synthetic_sessions
from tests.stream.kafka_helpers import example_dicts

T = TypeVar("T")

#: Events (impressions + clicks, duplicates included) per synthetic session with
#: slate_size=5 and the default click probability: ~1.59; sessions are sized from it.
EVENTS_PER_SESSION = 1.55


def sessions_for(
    n_events: int, *, seed: int, t0: float, spacing_s: float, impressions: str, interactions: str
) -> tuple[list[TopicRecord], Expected]:
    """Synthetic sessions (5-trip slates) holding at least ``n_events`` records, with their expected examples."""
    n_sessions = int(n_events / EVENTS_PER_SESSION)
    while True:
        records, expected = synthetic_sessions(
            n_sessions=n_sessions, seed=seed, t0=t0, slate_size=5, spacing_s=spacing_s,
            impressions_topic=impressions, interactions_topic=interactions,
        )  # fmt: skip
        if len(records) >= n_events:
            return records, expected
        n_sessions = int(n_sessions * 1.05) + 1


def producer(services: EmbeddedServices) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=services.bootstrap_servers, linger_ms=5, acks=1, max_request_size=4 * 1024 * 1024
    )


class PacedProducer(threading.Thread):
    """Produces ``records`` in order at ``rate`` records/s in a thread (the run's driver).

    ``sent`` counts records handed to the producer; :meth:`finish` joins the
    thread, flushes and raises whatever the thread raised.
    """

    def __init__(self, services: EmbeddedServices, records: Sequence[TopicRecord], rate: float) -> None:
        super().__init__(name="paced-producer", daemon=True)
        self._producer = producer(services)
        self._records = records
        self._rate = rate
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        started = time.monotonic()
        chunk = max(1, int(self._rate / 50))
        try:
            for i in range(0, len(self._records), chunk):
                for rec in self._records[i : i + chunk]:
                    self._producer.send(rec.topic, key=rec.key, value=rec.value)
                self.sent = min(i + chunk, len(self._records))
                due = started + self.sent / self._rate
                time.sleep(max(0.0, due - time.monotonic()))
            self._producer.flush(60)
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def finish(self, timeout: float = 120.0) -> int:
        self.join(timeout)
        self._producer.close(5)
        if self.is_alive():
            raise TimeoutError(f"the producer sent {self.sent} of {len(self._records)} records in time")
        if self.error is not None:
            raise self.error
        return self.sent


def _blocking(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(make())``; in a thread of its own when this thread already runs a loop (async tests)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def produce_all(services: EmbeddedServices, records: Sequence[TopicRecord]) -> int:
    """Produce every record as fast as the broker takes them, in order per partition; returns the count.

    Through aiokafka's record-batch API (:class:`stream.batch_producer.BatchSender`, the
    workers' own, murmur2 partitions like any producer): kafka-python's per-record sends
    took 17 s for the backlog test's 100,000 records.
    """

    async def produce() -> None:
        p = AIOKafkaProducer(
            bootstrap_servers=services.bootstrap_servers, acks=1, max_request_size=4 * 1024 * 1024
        )
        await p.start()
        try:
            sender = BatchSender(p)
            for i in range(0, len(records), 1_000):  # small chunks: the topics' records stay interleaved
                await sender.send(records[i : i + 1_000])
            await p.flush()
        finally:
            await p.stop()

    _blocking(produce)
    return len(records)


def topic_counts(services: EmbeddedServices, topic: str, partitions: int) -> int:
    """Sum of the partitions' reported end offsets: a growth signal, not an exact count (the embedded
    broker reports a partition's end as its last batch's base offset; :func:`read_records` counts)."""
    consumer = KafkaConsumer(bootstrap_servers=services.bootstrap_servers, group_id=None)
    try:
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return int(sum(ends.values()))
    finally:
        consumer.close()


def read_examples(
    services: EmbeddedServices, topic: str, *, distinct: int, timeout: float
) -> list[dict[str, object]]:
    """Examples read from the start of ``topic`` until ``distinct`` example ids were seen (or the timeout)."""
    consumer = KafkaConsumer(
        topic, bootstrap_servers=services.bootstrap_servers, auto_offset_reset="earliest",
        enable_auto_commit=False, group_id=None, fetch_max_bytes=16 * 1024 * 1024,
    )  # fmt: skip
    out: list[dict[str, object]] = []
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(seen) < distinct:
            for batch in consumer.poll(timeout_ms=300, max_records=20_000).values():
                for r in batch:
                    for ex in example_dicts(r.value):
                        out.append(ex)
                        seen.add(str(ex["example_id"]))
    finally:
        consumer.close()
    return out


@dataclass
class JoinAudit:
    """What a run's examples say against what its driver produced."""

    examples: int = 0  # examples read from the topic (a record holds one, or a closed slate's)
    distinct: int = 0  # distinct example ids
    redelivered: int = 0  # records repeating an (example_id, revision) already read
    positives: int = 0  # final revisions with clicked=True
    problems: list[str] = field(default_factory=list)


def audit_examples(examples: list[dict[str, object]], expected: Expected) -> JoinAudit:
    """Check the join's output exactly: every valid click in exactly one positive example.

    - each (example_id, revision) read twice has the same content (a re-delivery, not a second answer);
    - the final revision of every example id: as many ids as shown trips, and the clicked ones are exactly
      the driver's clicks, at the positions shown;
    - one example id per (request_id, trip_id), so a click cannot be counted under two ids.
    """
    audit = JoinAudit(examples=len(examples))
    content: dict[tuple[str, int], tuple[object, ...]] = {}
    final: dict[str, dict[str, object]] = {}
    ids_of: dict[tuple[str, str], set[str]] = {}
    for ex in examples:
        eid, rev = str(ex["example_id"]), int(ex["revision"])  # type: ignore[call-overload]
        body = (ex["clicked"], ex["position"], ex["reward"], ex["examined"], ex["request_id"], ex["trip_id"])
        if (eid, rev) in content:
            audit.redelivered += 1
            if content[(eid, rev)] != body:
                audit.problems.append(f"{eid} revision {rev} emitted twice with different content")
        content[(eid, rev)] = body
        prev = final.get(eid)
        if prev is None or rev >= int(prev["revision"]):  # type: ignore[call-overload]
            final[eid] = ex
        ids_of.setdefault((str(ex["request_id"]), str(ex["trip_id"])), set()).add(eid)
    audit.distinct = len(final)
    if audit.distinct != expected.examples:
        audit.problems.append(f"{audit.distinct} distinct examples, expected {expected.examples}")
    several = [k for k, ids in ids_of.items() if len(ids) > 1]
    if several:
        audit.problems.append(f"{len(several)} shown trips under several example ids, e.g. {several[:3]}")
    clicked = {(str(e["request_id"]), str(e["trip_id"])) for e in final.values() if e["clicked"]}
    audit.positives = len(clicked)
    if clicked != expected.clicks:
        missing, extra = expected.clicks - clicked, clicked - expected.clicks
        audit.problems.append(f"clicks missing from positives: {len(missing)}, positives without a click: "
                              f"{len(extra)} (e.g. {sorted(missing)[:3]} / {sorted(extra)[:3]})")  # fmt: skip
    wrong_pos = [
        k for k, e in ((k, final.get(f"{k[0]}:{k[1]}")) for k in expected.positions)
        if e is not None and e["position"] != expected.positions[k]
    ]  # fmt: skip
    if wrong_pos:
        audit.problems.append(f"{len(wrong_pos)} clicks at the wrong position, e.g. {wrong_pos[:3]}")
    return audit


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` from /proc (0 once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def restart_broker_empty(services: EmbeddedServices, topics: dict[str, int]) -> None:
    """Stop the embedded Tansu broker and start it again on the same port: its in-memory log is gone.

    ``topics`` are created again (as an operator or ``embedded_services`` would);
    everything else — consumer groups, committed offsets, Faust changelogs — is lost.
    """
    from stream.embedded import _wait_kafka_ready, ensure_topics

    proc = services._kafka_proc  # the fault is ours to inject; EmbeddedServices has no restart
    assert proc is not None, "the broker is external: it cannot be restarted here"
    proc.stop(timeout=5)
    proc.start()
    # Port first, then metadata (as at start-up): a metadata client against a closed port leaks a socket.
    _wait_kafka_ready(int(services.bootstrap_servers.rsplit(":", 1)[1]), proc, 30.0)
    ensure_topics(services.bootstrap_servers, topics, timeout=30)


def read_records(services: EmbeddedServices, topic: str, partitions: int) -> list[tuple[int, int, bytes]]:
    """Every record of ``topic`` as (partition, offset, value).

    Reads past the reported end offsets until 1.5 s bring nothing: the embedded
    broker reports a partition's end as its last batch's *base* offset. Through
    aiokafka, whose record parsing is compiled: kafka-python took 44 s for the
    backlog test's 320,000 examples.
    """

    async def read() -> list[tuple[int, int, bytes]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=services.bootstrap_servers, group_id=None, enable_auto_commit=False,
            fetch_max_bytes=16 * 1024 * 1024, max_partition_fetch_bytes=4 * 1024 * 1024,
        )  # fmt: skip
        await consumer.start()
        try:
            tps = [AioTopicPartition(topic, p) for p in range(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            out: list[tuple[int, int, bytes]] = []
            quiet_since = time.monotonic()
            while True:
                behind = [tp for tp in tps if await consumer.position(tp) < ends[tp]]
                if not behind and time.monotonic() - quiet_since >= 1.5:
                    return out
                got = await consumer.getmany(timeout_ms=300, max_records=50_000)
                for batch in got.values():
                    out += [(r.partition, r.offset, r.value or b"") for r in batch]
                if got:
                    quiet_since = time.monotonic()
        finally:
            await consumer.stop()

    return _blocking(read)


@dataclass
class Incarnation:
    """One worker process of a fault run, as :class:`WorkerWatch` saw it."""

    name: str
    log_path: str
    spawned: float  # time.monotonic() at spawn
    first_record_s: float | None = None  # seconds from spawn to its first record read (None: never)
    ended_s: float | None = None  # seconds from spawn to its kill or stop


class WorkerWatch(threading.Thread):
    """Samples the workers of a fault run in a thread: when each incarnation read its first record.

    ``current()`` returns the live workers by role (``{"join": worker, ...}``);
    ``metric`` names, per role, the counter whose first increment means "read a
    record". Every ``report_s`` it prints one line per role with the counters in
    ``shown`` (so a stuck run explains itself in the output), and :meth:`summary`
    lists every incarnation with its time to first record.
    """

    def __init__(
        self,
        current: Callable[[], dict[str, Any]],
        metric: dict[str, str],
        *,
        shown: Sequence[str] = (),
        report_s: float = 10.0,
        poll_s: float = 0.25,
    ) -> None:
        super().__init__(name="worker-watch", daemon=True)
        self._current = current
        self._metric = metric
        self._shown = shown
        self._report_s = report_s
        self._poll_s = poll_s
        self._stop_event = threading.Event()
        self.incarnations: dict[int, Incarnation] = {}  # by pid
        self._lock = threading.Lock()

    def spawned(self, worker: Any) -> None:
        """Register a new incarnation (call right after starting it)."""
        with self._lock:
            self.incarnations[worker.pid] = Incarnation(
                worker.log_path.name, str(worker.log_path), time.monotonic()
            )

    def read_first(self, worker: Any) -> None:
        """``worker`` has read its first record (the caller saw it before the next sample)."""
        with self._lock:
            inc = self.incarnations.get(worker.pid)
            if inc is not None and inc.first_record_s is None:
                inc.first_record_s = round(time.monotonic() - inc.spawned, 1)

    def ended(self, worker: Any) -> None:
        with self._lock:
            inc = self.incarnations.get(worker.pid)
            if inc is not None and inc.ended_s is None:
                inc.ended_s = round(time.monotonic() - inc.spawned, 1)

    def run(self) -> None:
        last_report = time.monotonic()
        while not self._stop_event.wait(self._poll_s):
            now = time.monotonic()
            report = now - last_report >= self._report_s
            lines = []
            for role, worker in list(self._current().items()):
                inc = self.incarnations.get(worker.pid)
                if inc is None or (inc.first_record_s is not None and not report):
                    continue
                samples = worker.metrics()
                if inc.first_record_s is None and _total(samples, self._metric[role]) >= 1:
                    inc.first_record_s = round(time.monotonic() - inc.spawned, 1)
                if report:
                    shown = ", ".join(f"{m.split('{')[0].removeprefix('smarttrip_')}={_total(samples, m):.0f}"
                                      for m in self._shown if m.startswith(f"smarttrip_{'learner' if role == 'learn' else 'stream'}"))  # fmt: skip
                    lines.append(f"{role} {inc.name} up {now - inc.spawned:.0f}s, first record "
                                 f"{inc.first_record_s}s: {shown}")  # fmt: skip
            if report:
                last_report = now
                print("[watch] " + " | ".join(lines), flush=True)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)

    def summary(self) -> list[tuple[str, float | None, float | None]]:
        """(incarnation, seconds to its first record, seconds it lived) in spawn order."""
        return [
            (i.name, i.first_record_s, i.ended_s)
            for i in sorted(self.incarnations.values(), key=lambda i: i.spawned)
        ]


def _total(samples: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in samples.items() if k.startswith(prefix))
