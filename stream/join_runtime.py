"""The join worker's logic between Kafka records and the session join, without Kafka.

The Faust agent (:mod:`stream.faust_app`) hands micro-batches of raw records
to :meth:`JoinRuntime.process` and sends back what it returns; tests and the
replay tools call the same object directly. What lives here and why:

- decoding with dead letters: a record that fails to decode (or a bug hit
  while joining it) becomes a ``deadletter`` record with the reason, is
  counted, and the batch goes on;
- one join and one watermark per input partition: impressions and
  interactions are co-partitioned by ``session_id`` (murmur2), so every
  record of a session is read from partition ``p`` of one topic or the
  other, and the session lives in partition ``p``'s
  :class:`~stream.join.SessionJoin`. Partition ``p``'s watermark is the
  smaller of the largest event times read from ``p`` of each topic, minus
  the delay — so clicks read behind their impressions cannot find their
  window closed — capped by the wall clock (one far-future timestamp cannot
  close every window). Partitions are read unevenly (a backlog drains at a
  different pace on each), and each closes its own windows: a partition read
  behind holds back only itself, not the state of every other one. Within a
  partition: a topic with no records for ``idle_s`` stops holding it back
  unless the consumer reports records of it still unread
  (:attr:`JoinRuntime.backlogged`); a topic with unread records that has not
  delivered any yet holds the partition's watermark where it is; once the
  partition's input is idle, its event time follows the wall clock so its
  last windows close. Restored sessions (after a rebalance) go to the join
  of their key's murmur2 partition, as the table stores them;
- the traffic-quality state (:mod:`stream.quality_gate`), the user cap's
  counts included, expires with the same per-partition watermarks;
- coalesced state writes: sessions live in memory (:class:`TableStore`) and
  each changed session is written to the changelog-backed table once per
  batch, not once per event — Faust pays a changelog record per write.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from monitoring.stream_metrics import StreamMetrics, position_label
from stream.batch_producer import murmur2_partition
from stream.codec import decode_interaction, encode
from stream.errors import EventError
from stream.events import DeadLetter
from stream.example_bytes import ExampleEncoder, pack_examples
from stream.join import Counted, DeadLettered, Emitted, JoinConfig, Outcome, SessionJoin
from stream.packed_impression import decode_packed_impression
from stream.quality_gate import QualityGate
from stream.session import EmittedSlate
from stream.settings import StreamSettings
from stream.table_store import StateTable, TableStore

__all__ = ["JoinRuntime", "Output", "RawRecord", "StateTable", "TableStore", "key_partition"]

log = logging.getLogger(__name__)


# Named tuples, not dataclasses: a dozen are made per session, and a frozen dataclass
# costs several times a tuple to build.
class RawRecord(NamedTuple):
    topic: str
    partition: int
    key: bytes | None
    value: bytes | None


class Output(NamedTuple):
    topic: str
    key: bytes
    value: bytes | None  # None: a tombstone (a deleted session in the changelog)


def key_partition(key: str, partitions: int) -> int:
    """Kafka's default (murmur2) partition of a session id: where its records and its table entry live."""
    return murmur2_partition(key.encode(), partitions)


@dataclass(slots=True)
class _Partition:
    """The join of one input partition."""

    store: TableStore
    join: SessionJoin
    last_input: float  # wall time of the last record read (or of the join's creation)


class JoinRuntime:
    """Decode, join, advance the watermark and collect outputs for one worker.

    Parameters
    ----------
    settings
        Topics, window, grace, lateness and idleness.
    metrics
        The worker's metrics bundle.
    table
        Where session states are kept between batches (a dict without Faust).
    changelog_topic
        When set, every state change is also returned as an :class:`Output` to
        this topic (key: session id, value: state or a tombstone): the Faust
        glue writes the table's local store directly and produces its changelog
        itself, in bulk, instead of one buffered send per table write.
    clock
        Wall clock in seconds (injected by tests).
    """

    def __init__(
        self,
        settings: StreamSettings,
        metrics: StreamMetrics,
        table: StateTable | None = None,
        clock: Callable[[], float] = time.time,
        changelog_topic: str | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.config = JoinConfig(
            window_s=settings.join_window_s,
            grace_s=settings.join_grace_s,
            watermark_delay_s=settings.watermark_delay_s,
            allowed_lateness_s=settings.allowed_lateness_s,
            impressions_topic=settings.topic_impressions,
            interactions_topic=settings.topic_interactions,
            # Slates are encoded straight from their columns, unless a subclass handles
            # outcomes itself (it then gets Emitted examples, as it expects).
            lazy_examples=type(self)._handle is JoinRuntime._handle,
        )
        # Events that only count (most interactions: "attached"), added up over a batch
        # without a call to _handle each (unless a subclass handles outcomes itself).
        self._counts_only: dict[str, int] | None = {} if self.config.lazy_examples else None
        # bot rules and user cap (stream.quality_gate), expiring with the partitions' watermarks
        self.gate = QualityGate.from_settings(settings, metrics, watermark_expiry=True)
        self._table: StateTable = {} if table is None else table
        self._changelog = changelog_topic
        self._encoder = ExampleEncoder()
        self._clock = clock
        #: Partitions with records the consumer has not read yet (the Faust glue sets it).
        self.backlogged: Callable[[], Collection[tuple[str, int]]] = tuple
        self._parts: dict[int, _Partition] = {}
        # partition -> topic -> (max event ts, wall time seen); kept across rebuilds
        self._clocks: dict[int, dict[str, tuple[float, float]]] = {}
        self.rebuild(lambda key: True)

    def rebuild(self, owns: Callable[[str], bool]) -> None:
        """Reload the joins with the sessions this worker owns, from the table (after a rebalance).

        Each owned session goes to the join of its key's partition. Entries of
        partitions owned elsewhere stay in the local table: Faust's recovery
        decides what the local store holds, and a partition that comes back
        after a rebalance is recovered on top of it. The partitions' clocks
        are kept (a partition revoked stops delivering: its clocks go idle).
        """
        keys: dict[int, list[str]] = {}
        for key in list(self._table.keys()):
            if owns(key):
                keys.setdefault(key_partition(key, self.settings.partitions), []).append(key)
        now = self._clock()
        self._parts = {}
        for p, mine in sorted(keys.items()):
            self._part(p, now, mine)
        # The traffic-quality state lives in this worker's memory only (a partition's new owner starts
        # afresh): forget that of the partitions not restored here, revoked ones included.
        self.gate.retain(self._parts)
        self.metrics.open_sessions.set(self.open_sessions)

    @property
    def open_sessions(self) -> int:
        return sum(len(part.store) for part in self._parts.values())

    def _part(self, partition: int, now: float, keys: Iterable[str] = ()) -> _Partition:
        """The join of ``partition``, made (from the table's ``keys``) on first use."""
        part = self._parts.get(partition)
        if part is None:
            store = TableStore(self._table, keys)
            part = _Partition(store, SessionJoin(config=self.config, store=store), now)
            self._parts[partition] = part
        return part

    def process(self, records: Sequence[RawRecord]) -> list[Output]:
        """Join one micro-batch; returns the records to produce, in order."""
        started = time.perf_counter()
        now = self._clock()
        out: list[Output] = []
        counts: dict[tuple[str, str], int] = {}  # (topic, outcome) -> events: one counter call per batch
        for rec in records:
            key = (rec.topic, self._one(rec, now, out))
            counts[key] = counts.get(key, 0) + 1
        for (topic, outcome), n in counts.items():
            self.metrics.events.labels(topic, outcome).inc(n)
        if self._counts_only:
            for name, n in self._counts_only.items():
                self.metrics.join_events.labels(name).inc(n)
            self._counts_only.clear()
        self._advance(now, out)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        return out

    def tick(self) -> list[Output]:
        """Periodic call without input: closes windows whose time has come."""
        out: list[Output] = []
        self._advance(self._clock(), out)
        return out

    def flush_all(self) -> list[Output]:
        """End of input (replays): close every window and expire everything."""
        out: list[Output] = []
        now = self._clock()
        for p, part in sorted(self._parts.items()):
            self._handle(part.join.flush(), now, out, p)
            self._flush_state(part, out)
        return out

    def _one(self, rec: RawRecord, now: float, out: list[Output]) -> str:
        """Decode and join one record; returns its outcome (``ok`` or ``deadletter``)."""
        s = self.settings
        raw = rec.value if rec.value is not None else b""
        part = self._part(rec.partition, now)
        part.last_input = now
        try:
            if rec.value is None:
                raise EventError("payload", "empty record (tombstone)", reason="bad_json")
            if rec.topic == s.topic_impressions:
                imp = decode_packed_impression(raw)
                self._saw(rec.topic, rec.partition, imp.ts, now)
                self.gate.observe(imp, rec.partition)  # the session rules read the header only
                outcomes = part.join.on_impression(imp)
            elif rec.topic == s.topic_interactions:
                ev = decode_interaction(raw)
                self._saw(rec.topic, rec.partition, ev.ts, now)
                self.gate.observe(ev, rec.partition)
                outcomes = part.join.on_interaction(ev)
            else:
                raise EventError("topic", f"not a join input: {rec.topic!r}")
        except EventError as err:
            self._dead_letter(DeadLetter.from_error(raw, err, source_topic=rec.topic, ts=now), out)
            return "deadletter"
        except Exception as exc:  # a bug must not stop the agent: keep the record for analysis
            log.exception("join failed on a record of %s", rec.topic)
            dl = DeadLetter.from_bytes(
                raw, source_topic=rec.topic, reason="processing_error", stage="join", detail=repr(exc), ts=now
            )
            self._dead_letter(dl, out)
            return "deadletter"
        if not outcomes:  # most impressions
            return "ok"
        counts_only = self._counts_only
        if counts_only is not None and len(outcomes) == 1 and type(one := outcomes[0]) is Counted:
            counts_only[one.name] = counts_only.get(one.name, 0) + 1
            return "ok"
        self._handle(outcomes, now, out, rec.partition)
        return "ok"

    def _saw(self, topic: str, partition: int, ts: float, now: float) -> None:
        clocks = self._clocks.get(partition)
        if clocks is None:
            clocks = self._clocks[partition] = {}
        seen = clocks.get(topic)
        clocks[topic] = (ts if seen is None else max(seen[0], ts), now)

    def _advance(self, now: float, out: list[Output]) -> None:
        """Move every partition's watermark and run what is due, partition by partition (in order)."""
        behind: dict[int, set[str]] = {}
        for topic, partition in self.backlogged():
            behind.setdefault(partition, set()).add(topic)
        lagging = float("inf")
        for p, part in sorted(self._parts.items()):
            join = part.join
            self._handle(join.advance(self._watermark(p, part, behind.get(p, set()), now)), now, out, p)
            self.gate.expire(p, join.watermark)
            # The partition emits no example older than this any more: corrections end at window + lateness.
            self.gate.expire_cap(p, join.watermark - self.config.window_s - self.config.allowed_lateness_s)
            self._flush_state(part, out)
            lagging = min(lagging, join.watermark)
        self.gate.report()
        self.metrics.open_sessions.set(self.open_sessions)
        if math.isfinite(lagging):  # the partition furthest behind
            self.metrics.watermark_lag.set(now - lagging)

    def _watermark(self, partition: int, part: _Partition, behind: set[str], now: float) -> float:
        """Partition ``partition``'s watermark at wall time ``now`` (``behind``: its topics with unread records)."""
        clocks = self._clocks.get(partition, {})
        delay = self.config.watermark_delay_s
        active = [
            ts
            for topic, (ts, wall) in clocks.items()
            if now - wall <= self.settings.idle_s or topic in behind
        ]
        if behind - clocks.keys():  # unread records of a topic not seen yet: they may be the oldest
            base = part.join.watermark + delay
        elif active:
            base = min(active)
        elif clocks:  # the partition's input is idle: let its event time follow the wall clock
            base = max(ts for ts, _ in clocks.values()) + (now - max(wall for _, wall in clocks.values()))
        else:  # restored sessions, no input yet
            base = part.join.max_ts
            base += now - part.last_input if now - part.last_input > self.settings.idle_s else 0.0
        return min(base, now) - delay

    def _handle(self, outcomes: Sequence[Outcome], now: float, out: list[Output], partition: int) -> None:
        """Turn ``outcomes`` of input ``partition``'s join into records to produce, and count them."""
        m = self.metrics
        topic = self.settings.topic_examples
        encode_example = self._encoder.encode
        admit = self.gate.admit
        admit_slate = self.gate.admit_slate
        encode_slate = self._encoder.encode_slate
        per_slate = self.settings.examples_per_record == "slate"
        append = out.append
        corrections = 0
        shown: dict[tuple[str, str, int, bool], int] = {}  # CTR counters, added once per call
        clicks: dict[str, int] = {}
        counted: dict[str, int] = {}
        last_request = ""
        for o in outcomes:
            if type(o) is Emitted:
                ex = o.example
                if admit(ex, partition) is not None:  # a filtered session or a capped user: counted, not sent
                    continue
                append(Output(topic, ex.segment.encode(), encode_example(ex)))
                if ex.revision:
                    corrections += 1
                    continue
                key = (ex.policy, ex.segment, ex.position, ex.clicked)
                shown[key] = shown.get(key, 0) + 1
                if ex.request_id != last_request:  # one lag sample per closed slate
                    last_request = ex.request_id
                    m.window_close_lag.observe(max(0.0, now - (ex.ts + self.config.window_s)))
                if ex.clicked:
                    label = position_label(ex.position)
                    clicks[label] = clicks.get(label, 0) + 1
            elif type(o) is EmittedSlate:
                p = o.shown
                key_bytes = p.segment.encode()
                admitted: list[bytes] = []
                # a filtered session or a capped user: counted, not sent (as admit(example) per item)
                n = admit_slate(p.session_id, p.user_id, p.ts, len(o.indices), partition)
                for k, raw in encode_slate(o, n) if n else ():
                    admitted.append(raw)
                    if o.revisions[k]:
                        corrections += 1
                        continue
                    clicked = o.outcome.labels[k].click > 0
                    key = (p.policy, p.segment, p.positions[k], clicked)
                    shown[key] = shown.get(key, 0) + 1
                    if p.request_id != last_request:  # one lag sample per closed slate
                        last_request = p.request_id
                        m.window_close_lag.observe(max(0.0, now - (p.ts + self.config.window_s)))
                    if clicked:
                        label = position_label(p.positions[k])
                        clicks[label] = clicks.get(label, 0) + 1
                if per_slate:
                    out.extend(Output(topic, key_bytes, raw) for raw in pack_examples(admitted))
                else:
                    out.extend(Output(topic, key_bytes, raw) for raw in admitted)
            elif isinstance(o, DeadLettered):
                self._dead_letter(o.dead_letter, out)
            elif isinstance(o, Counted):
                counted[o.name] = counted.get(o.name, 0) + 1
        for name, n in counted.items():
            m.join_events.labels(name).inc(n)
        new = 0
        for (policy, segment, position, clicked), n in shown.items():
            m.slate_item(policy, segment, position, clicked, n)
            new += n
        for label, n in clicks.items():
            m.joined_clicks.labels(label).inc(n)
        if new:
            m.examples.labels("new").inc(new)
        if corrections:
            m.examples.labels("correction").inc(corrections)

    def _flush_state(self, part: _Partition, out: list[Output]) -> None:
        changes = part.store.flush()
        if self._changelog is not None:
            out.extend(Output(self._changelog, key.encode(), value) for key, value in changes)

    def _dead_letter(self, dl: DeadLetter, out: list[Output]) -> None:
        out.append(Output(self.settings.topic_deadletter, dl.source_topic.encode(), encode(dl)))
        self.metrics.deadletters.labels(dl.stage, dl.reason).inc()
