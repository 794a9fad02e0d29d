"""Impressions (and interactions) to Kafka, off the request path, spooled while Kafka is away.

A handler calls :meth:`ImpressionLog.submit`, which only appends to an
in-memory queue (the record's bytes are built later, by the sender task, from
a callable). One sender task owns everything else, so ordering is simple:

``direct`` state
    Records go from the queue to aiokafka. A send that cannot be handed to
    aiokafka within ``stall_s`` (its batches are full and not draining), or a
    record unacknowledged for ``stall_s``, means the broker is unreachable:
    the state becomes ``spooling``.
``spooling`` state
    Records go from the queue to the append-only spool (:mod:`scoring.spool`),
    in order. The replay hands the spool, from its committed cursor, to
    aiokafka with at most ``replay_window`` records unacknowledged, and
    advances the cursor over acknowledged records only; while the broker is
    away those records simply stay unacknowledged (they are never abandoned,
    so never sent twice by us). As soon as every spooled record has been
    handed over, nothing failed and nothing is stalled, the state returns to
    ``direct``: new records queue in aiokafka behind the replayed ones, so
    the order per partition is kept even under continuous traffic. The spool
    files are emptied when the last replayed record is acknowledged.

Guarantees and their limits: no record is dropped unless the spool would
pass its disk bound (then it is counted as ``dropped`` and logged at ERROR);
records reach Kafka in submission order, except that the few records already
handed to aiokafka when an outage starts are either delivered when it ends
or, if aiokafka gives up on them (``request_timeout_ms``), spooled behind the
ones spooled meanwhile. Delivery is at-least-once (see :mod:`scoring.spool`
for the restart case). If the in-memory queue is full the handler spills the
queue to the spool itself — the one case that does disk I/O in a request,
only when the sender cannot keep up.

Counters (``smarttrip_scoring_log_records_total{topic,outcome}``): ``sent``
(acknowledged directly), ``spooled``, ``replayed`` (acknowledged from the
spool), ``dropped``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, Protocol

from monitoring.scoring_metrics import ScoringMetrics
from scoring.partitioner import CachedPartitioner
from scoring.spool import Spool, SpoolRecord

__all__ = ["ImpressionLog", "Producer", "QueuedRecord", "aiokafka_factory"]

log = logging.getLogger(__name__)

Payload = bytes | Callable[[], bytes]
State = Literal["direct", "spooling"]
_BATCH = 64  # records handled between yields to the event loop (bounds added latency)


class Producer(Protocol):
    """The part of ``aiokafka.AIOKafkaProducer`` used here."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> asyncio.Future[Any]: ...


@dataclass(slots=True)
class QueuedRecord:
    topic: str
    key: bytes
    payload: Payload

    def value(self) -> bytes:
        p = self.payload
        if not isinstance(p, bytes):
            p = self.payload = p()
        return p


class ImpressionLog:
    """Queue → Kafka, or → spool while Kafka is away (see the module docstring).

    Parameters
    ----------
    producer_factory
        Builds a new (not started) producer; called again after a failed start.
    spool
        The local spool.
    metrics
        Counters and gauges (``log_records``, ``log_queue``, ``spool_*``, ``kafka_up``).
    queue_max
        In-memory queue bound.
    stall_s
        How long a record may wait to be handed over or acknowledged before the broker counts as away.
    replay_window
        Spooled records in flight at once during a replay.
    """

    def __init__(
        self,
        producer_factory: Callable[[], Producer],
        spool: Spool,
        metrics: ScoringMetrics,
        *,
        queue_max: int = 20_000,
        stall_s: float = 1.0,
        replay_window: int = 256,
        retry_s: float = 0.5,
    ) -> None:
        self._factory = producer_factory
        self.spool = spool
        self.metrics = metrics
        self.queue_max = queue_max
        self.stall_s = stall_s
        self.replay_window = replay_window
        self.retry_s = retry_s
        # Until the first producer starts, records wait in the spool (quietly: that is startup).
        self.state: State = "spooling"
        self.last_error: str | None = "connecting to Kafka"
        self._connected_once = False
        self._producer: Producer | None = None
        self._queue: collections.deque[QueuedRecord] = collections.deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connector: asyncio.Task[None] | None = None
        self._seq = 0
        self._pending: collections.OrderedDict[int, tuple[float, QueuedRecord]] = collections.OrderedDict()
        self._failed: list[QueuedRecord] = []
        self._replay: collections.deque[tuple[SpoolRecord, asyncio.Future[Any], float]] = collections.deque()
        self._last_drop_log = 0.0
        self._next_replay_at = 0.0
        self._rewind_pending = False
        self._stopping = False
        if spool.corrupt:  # a torn record cut at startup
            metrics.log_records.labels("unknown", "dropped").inc(spool.corrupt)
        self._update_gauges()

    # -- the request side
    def submit(self, topic: str, key: bytes, payload: Payload) -> None:
        """Queue one record; never blocks, never raises for Kafka trouble."""
        self._queue.append(QueuedRecord(topic, key, payload))
        if len(self._queue) > self.queue_max:
            self._spill_queue()
        self._wake.set()

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def kafka_ok(self) -> bool:
        return self.state == "direct" and self._producer is not None

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "kafka": "ok" if self.kafka_ok else "unreachable",
            "queue": len(self._queue),
            "spool_records": self.spool.pending_records,
            "spool_bytes": self.spool.size,
            "in_flight": len(self._pending) + len(self._replay),
            "last_error": self.last_error,
        }

    # -- lifecycle
    async def start(self) -> None:
        self._connector = asyncio.create_task(self._connect_loop(), name="impression-log-connect")
        self._task = asyncio.create_task(self._run(), name="impression-log")

    async def stop(self, timeout: float = 5.0) -> None:
        """Deliver what can be delivered within ``timeout``; spool the rest."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state == "spooling" and not self._queue:
                break  # the spool holds the rest (unacknowledged replays are replayed next start)
            if self.state == "direct" and not self._queue and not self._pending and not self._replay:
                break
            self._wake.set()
            await asyncio.sleep(0.02)
        self._stopping = True
        tasks = [t for t in (self._connector, self._task) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=3.0)
        # Whatever aiokafka still holds may or may not arrive: spool it (at-least-once).
        leftovers = [rec for _, rec in self._pending.values()] + self._failed + list(self._queue)
        self._pending.clear()
        self._failed.clear()
        self._queue.clear()
        self._to_spool(leftovers)
        if self._producer is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self._producer.stop()
        self.spool.close()

    # -- the sender task
    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let the sender die: log, back off, go on
                log.exception("impression log: sender step failed")
                self._down(f"sender error: {exc!r}")
                await asyncio.sleep(self.retry_s)

    async def _step(self) -> None:
        if self._failed:
            failed, self._failed = self._failed, []
            self._down("a record was not acknowledged")
            self._to_spool(failed)
        self._ack_replayed()
        if self.state == "direct":
            await self._send_direct()
        if self.state == "spooling":
            self._to_spool(self._drain_queue())
            if self._producer is not None:
                await self._replay_more()
            if self._caught_up():
                self.state = "direct"
                self.last_error = None
                if self._connected_once:
                    log.warning("impression log: Kafka is back; spool handed over, producing directly again")
                self._connected_once = True
        self._update_gauges()
        if self._queue:
            return
        self._wake.clear()
        busy = self._pending or self._replay or self.state == "spooling"
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.01 if self._replay else 0.1 if busy else 1.0):
                await self._wake.wait()

    async def _connect_loop(self) -> None:
        """Start a producer, retrying until one starts (never blocks the sender)."""
        last_log = -math.inf
        while self._producer is None and not self._stopping:
            producer = self._factory()
            try:
                async with asyncio.timeout(max(self.stall_s, 2.0)):
                    await producer.start()
            except Exception as exc:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(1.0):
                        await producer.stop()
                self._down(f"producer start failed: {exc!r}")
                if time.monotonic() - last_log > 30.0:
                    last_log = time.monotonic()
                    log.error("impression log: cannot reach Kafka (%r); spooling until it answers", exc)
                await asyncio.sleep(self.retry_s)
                continue
            self._producer = producer
            self._wake.set()

    async def _send_direct(self) -> None:
        if self._producer is None:
            self._down("no producer yet")
            return
        handled = 0
        while self._queue and self.state == "direct":
            if self._stalled():
                self._down(f"no acknowledgement for {self.stall_s:g}s")
                return
            rec = self._queue.popleft()
            try:
                async with asyncio.timeout(self.stall_s):
                    fut = await self._producer.send(rec.topic, rec.value(), key=rec.key)
            except Exception as exc:  # timeout (batches not draining) or a Kafka error: not handed over
                self._down(f"send failed: {exc!r}")
                self._queue.appendleft(rec)
                return
            self._track(rec, fut)
            handled += 1
            if handled % _BATCH == 0:
                await asyncio.sleep(0)
        if self._stalled():
            self._down(f"no acknowledgement for {self.stall_s:g}s")

    def _track(self, rec: QueuedRecord, fut: asyncio.Future[Any]) -> None:
        seq = self._seq = self._seq + 1
        self._pending[seq] = (time.monotonic(), rec)
        fut.add_done_callback(partial(self._acked, seq))

    def _acked(self, seq: int, fut: asyncio.Future[Any]) -> None:
        item = self._pending.pop(seq, None)
        if item is None:  # spooled at shutdown already
            return
        rec = item[1]
        if fut.cancelled() or fut.exception() is not None:
            self._failed.append(rec)
            self._wake.set()
        else:
            self.metrics.log_records.labels(rec.topic, "sent").inc()

    def _stalled(self) -> bool:
        """Whether any record handed to aiokafka (directly or from the spool) waits too long for its ack."""
        now = time.monotonic()
        if self._pending and now - next(iter(self._pending.values()))[0] > self.stall_s:
            return True
        return bool(self._replay) and now - self._replay[0][2] > self.stall_s

    def _down(self, why: str) -> None:
        if self.state == "direct":
            log.error("impression log: Kafka unreachable (%s); spooling to %s", why, self.spool.directory)
        self.state = "spooling"
        self.last_error = why

    # -- spooling and replay
    def _drain_queue(self) -> list[QueuedRecord]:
        items = list(self._queue)
        self._queue.clear()
        return items

    def _spill_queue(self) -> None:
        """The queue passed its bound: spool it now, in order (disk I/O in the caller)."""
        if self.state == "direct":
            self._down(f"in-memory queue passed {self.queue_max} records")
        self._to_spool(self._drain_queue())

    def _to_spool(self, records: list[QueuedRecord]) -> None:
        if not records:
            return
        rows = [(r.topic, r.key, r.value()) for r in records]
        written = self.spool.append(rows)
        for rec in records[:written]:
            self.metrics.log_records.labels(rec.topic, "spooled").inc()
        dropped = records[written:]
        if dropped:
            for rec in dropped:
                self.metrics.log_records.labels(rec.topic, "dropped").inc()
            now = time.monotonic()
            if now - self._last_drop_log > 5.0:
                self._last_drop_log = now
                log.error(
                    "impression log: DROPPING %d record(s): the spool reached its disk bound of %d bytes",
                    len(dropped),
                    self.spool.max_bytes,
                )
        self._update_gauges()

    async def _replay_more(self) -> None:
        """Hand the next spooled records to aiokafka, keeping at most ``replay_window`` unacknowledged."""
        assert self._producer is not None  # noqa: S101 - only called with a producer
        room = self.replay_window - len(self._replay)
        if room <= 0 or self._rewind_pending or self._stalled() or time.monotonic() < self._next_replay_at:
            return
        corrupt = self.spool.corrupt
        records = self.spool.read(room)
        if self.spool.corrupt > corrupt:  # lines that failed their CRC: lost, count them as dropped
            self.metrics.log_records.labels("unknown", "dropped").inc(self.spool.corrupt - corrupt)
        for i, rec in enumerate(records):
            try:
                async with asyncio.timeout(self.stall_s):
                    fut = await self._producer.send(rec.topic, rec.value, key=rec.key)
            except Exception as exc:  # not handed over: read it again next time
                self.spool.read_offset = records[i - 1].end if i else self._read_start(rec)
                self.last_error = f"replay send failed: {exc!r}"
                self._next_replay_at = time.monotonic() + self.retry_s
                return
            self._replay.append((rec, fut, time.monotonic()))
            if (i + 1) % _BATCH == 0:
                await asyncio.sleep(0)

    def _read_start(self, first: SpoolRecord) -> int:
        """Where the first record of a read began: after the last record still in flight, else the cursor."""
        return self._replay[-1][0].end if self._replay else self.spool.committed

    def _ack_replayed(self) -> None:
        """Commit the acknowledged prefix of the replayed records; on a failure, rewind once all are done."""
        end, lines = 0, 0
        while self._replay and self._replay[0][1].done():
            rec, fut, _ = self._replay[0]
            if fut.cancelled() or fut.exception() is not None:
                if not self._rewind_pending:
                    self._rewind_pending = True
                    self._down(f"replay not acknowledged: {fut.exception()!r}")
                break
            self._replay.popleft()
            end, lines = rec.end, lines + rec.lines
            self.metrics.log_records.labels(rec.topic, "replayed").inc()
        if lines:
            self.spool.commit(end, lines)
        if self._rewind_pending and all(f.done() for _, f, _ in self._replay):
            # Nothing of the failed window is left in aiokafka: send everything after the cursor again.
            self._replay.clear()
            self.spool.rewind()
            self._rewind_pending = False
            self._next_replay_at = time.monotonic() + self.retry_s

    def _caught_up(self) -> bool:
        """Every spooled record is handed to aiokafka and nothing is failing or stalled.

        New records may then go straight to aiokafka: they queue behind the
        replayed ones, so the order per partition is kept.
        """
        return (
            self._producer is not None
            and self.spool.read_offset >= self.spool.size
            and not self._queue
            and not self._failed
            and not self._rewind_pending
            and not self._stalled()
        )

    def _update_gauges(self) -> None:
        m = self.metrics
        m.log_queue.set(len(self._queue))
        m.spool_bytes.set(self.spool.size)
        m.spool_records.set(self.spool.pending_records)
        m.kafka_up.set(1 if self.kafka_ok else 0)


def aiokafka_factory(bootstrap_servers: str, *, request_timeout_ms: int = 30_000) -> Callable[[], Producer]:
    """A factory of aiokafka producers tuned for impressions (batched, leader acks)."""

    def build() -> Producer:
        from aiokafka import AIOKafkaProducer

        producer: Producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id="smarttrip-scoring",
            acks=1,
            linger_ms=20,  # larger batches: fewer produce requests for the co-located broker to handle
            max_batch_size=512 * 1024,
            request_timeout_ms=request_timeout_ms,
            retry_backoff_ms=100,
            partitioner=CachedPartitioner(),  # the default's partitions, session ids hashed once
        )
        return producer

    return build
