"""The Faust app: thin glue between Kafka and :class:`~stream.join_runtime.JoinRuntime`.

Agents only move data: micro-batches in (``take_events``), records out
(``send_soon``, buffered by Faust's producer). Session state lives in a
changelog-backed table partitioned like the source topics; the table uses the
producer's key partitioner (``use_partitioner=True``), which is the same
murmur2 partitioner every producer of ``impressions``/``interactions`` uses
for its ``session_id`` keys, so a session's changelog records land in the
partition of its events and come back to whichever worker owns it after a
rebalance or a crash.

``mode="count"`` builds the same app with an agent that only counts records:
the baseline the join benchmark measures in the same run. Both modes take
the same cuts in Faust's per-record path (:mod:`stream.raw_schema`'s raw
decoding, :mod:`stream.eager_delivery` and Faust's opt-in
``cython_optimizations``), so the benchmark's ratio stays honest. The join
also reads again input records Faust fetched but never delivered
(:mod:`stream.delivery_watch`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import faust
from aiokafka.errors import KafkaError

from monitoring.consumer_lag import consumer_lag, partition_lags
from monitoring.stream_metrics import StreamMetrics
from stream.batch_producer import murmur2_partition, sender_for
from stream.delivery_watch import DeliveryWatch
from stream.eager_delivery import deliver_eagerly
from stream.join_epoch import JoinLogEpochs
from stream.join_runtime import JoinRuntime, Output, RawRecord
from stream.log_epoch import AUTO, LogEpochs
from stream.raw_schema import RawSchema
from stream.session import SessionState
from stream.session_store import STORE_URL, SessionStore
from stream.settings import StreamSettings

__all__ = [
    "StreamApp",
    "create_app",
    "new_faust_app",
    "partition_of",
    "quiet_client_logs",
    "send_outputs",
    "tune_gc",
    "use_event_loop",
]

log = logging.getLogger(__name__)


partition_of = murmur2_partition  # Kafka's default partition of a key: what producers and the table use


@dataclass
class StreamApp:
    app: faust.App
    settings: StreamSettings
    metrics: StreamMetrics
    runtime: JoinRuntime | None


def use_event_loop(settings: StreamSettings) -> str:
    """Install the event loop policy of ``settings.event_loop`` for this process; returns the one in use.

    Call it before the Faust worker creates its loops (the consumer thread
    makes its own, from the same policy). uvloop took 3–15 % less CPU per
    event than asyncio's loop in the join and learner workers (py-spy and
    /proc CPU time on the shared 2-core machine); without uvloop installed
    the worker falls back to asyncio with a warning.
    """
    if settings.event_loop != "uvloop":
        return "asyncio"
    try:
        import uvloop
    except ImportError:
        log.warning("SMARTTRIP_EVENT_LOOP=uvloop but uvloop is not installed: using asyncio")
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


GC_THRESHOLDS = (20_000, 20, 20)


def tune_gc() -> None:
    """Collect young objects every 20,000 allocations instead of 700, once the imports are frozen.

    The join allocates a dozen objects per example and keeps every session
    for 15 minutes: with CPython's default thresholds, cyclic garbage
    collection took ~15 % of the join's time (``gc.disable()`` in an
    in-process run of the join runtime: 101 → 85 µs per event; these
    thresholds: 88–91). Cycles are still collected, only in larger steps.
    Both worker modes of :func:`create_app` (join and the bare counting
    agent) run with it.
    """
    gc.collect()
    gc.freeze()  # the modules and objects of start-up: never garbage, never scanned again
    gc.set_threshold(*GC_THRESHOLDS)


def new_faust_app(settings: StreamSettings, app_id: str, **overrides: Any) -> faust.App:
    """A Faust app with the stream settings every worker shares (group timeouts, partitions).

    Throughput settings (measured with ``smarttrip bench join``/``freshness``;
    the bare counting agent gets the same ones, so its ratio stays honest):
    producer batches of up to ``producer_batch_bytes`` — with Faust's default
    of 16 KiB every ~30 examples filled a batch and the agent waited for the
    broker's round trip before it could add more — and fetches of up to
    ``fetch_bytes`` per partition with a stream buffer to match.
    """
    return faust.App(
        app_id,
        broker=settings.broker_url,
        store="memory://",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_s,
        broker_rebalance_timeout=settings.session_timeout_s,
        consumer_auto_offset_reset="earliest",
        consumer_max_fetch_size=settings.fetch_bytes,
        stream_buffer_maxsize=settings.stream_buffer,
        producer_max_batch_size=settings.producer_batch_bytes,
        producer_max_request_size=max(settings.producer_batch_bytes, 1_000_000),
        # Standbys would replay other workers' changelogs into this one's store.
        table_standby_replicas=0,
        web_enabled=False,
        **overrides,
    )


def create_app(
    settings: StreamSettings,
    *,
    mode: Literal["join", "count"] = "join",
    metrics: StreamMetrics | None = None,
) -> StreamApp:
    metrics = metrics or StreamMetrics()
    tune_gc()
    # The session store reports the changelog's end at assignment as its persisted offset
    # (stream.session_store); a broker that lost its log meanwhile reports a smaller end, which
    # Faust's consistency check would turn into a crash. Nothing is persisted locally to check.
    # cython_optimizations: Faust's stream iterator takes records already in the stream's
    # queue without awaiting the channel (a documented opt-in of faust-streaming 0.14+).
    app = new_faust_app(
        settings, settings.app_id, recovery_consistency_check=False, cython_optimizations=True
    )
    # Both modes decode raw bytes without Faust's serializer registry (stream.raw_schema).
    source = app.topic(settings.topic_impressions, settings.topic_interactions, schema=RawSchema())
    for name in (settings.topic_examples, settings.topic_deadletter):
        app.topic(name, key_serializer="raw", value_serializer="raw")  # declared: created if missing

    async def send(records: Iterable[Output]) -> None:
        await send_outputs(app, records, state_topic=changelog)

    if mode == "count":

        @app.agent(source, name="count")
        async def count(stream: Any) -> AsyncIterator[None]:
            quiet_client_logs()
            deliver_eagerly(app.consumer)
            async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
                counts: dict[str, int] = {}  # counted per batch, as the join does
                for event in events:
                    topic = event.message.topic
                    counts[topic] = counts.get(topic, 0) + 1
                for topic, n in counts.items():
                    metrics.events.labels(topic, "ok").inc(n)
                yield None

        return StreamApp(app, settings, metrics, None)

    table = app.Table(
        "sessions",
        partitions=settings.partitions,
        key_type=bytes,
        value_type=bytes,
        use_partitioner=True,
        store=STORE_URL,  # restored in bulk by on_recovered below, not record by record by Faust
    )
    store = cast(SessionStore, table.data)
    store.bootstrap = settings.kafka_bootstrap
    # The runtime writes the table's local store and produces the changelog records
    # itself (a Table write would cost one buffered send each).
    changelog = table.changelog_topic.get_topic_name()
    rebuilt_at: list[float] = []  # when the join state was last rebuilt, until the next batch
    runtime = JoinRuntime(settings, metrics, table=_StrKeys(table.data), changelog_topic=changelog)

    def owned_partitions() -> set[int]:
        return {
            tp.partition for tp in app.assignor.assigned_actives() if tp.topic == settings.topic_impressions
        }

    def owned_by(partitions: set[int]) -> Callable[[str], bool]:
        return lambda key: partition_of(key.encode(), settings.partitions) in partitions

    # Revocation: forget the sessions of partitions that now belong to another worker
    # *before* anything else runs, so no stale state is written or window closed.
    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: Any, **_: Any) -> None:
        watch.forget(revoked)  # where a partition's reading resumes is Faust's seek's to say
        gone = {tp.partition for tp in revoked if tp.topic == settings.topic_impressions}
        if gone:
            keep = owned_by(set(range(settings.partitions)) - gone)
            runtime.rebuild(keep)

    # Assignment: while Faust holds the input partitions paused, read the changelog of the
    # new partitions (stream.session_store) and reload the join from the table.
    @table.on_recover
    async def on_recovered() -> None:
        owned = owned_partitions()
        started = time.perf_counter()
        while True:  # the input partitions stay paused until this returns: no batch runs on a partial state
            try:
                await store.restore(owned)
                break
            except (KafkaError, OSError) as exc:
                log.warning("sessions changelog not read (%r); trying again in 1 s", exc)
                await asyncio.sleep(1.0)
        restored_s = time.perf_counter() - started
        runtime.rebuild(owned_by(owned))
        log.info(
            "join state rebuilt for partitions %s: %d sessions (changelog %.1f s, rebuild %.1f s)",
            sorted(owned), runtime.open_sessions, restored_s, time.perf_counter() - started - restored_s,
        )  # fmt: skip
        rebuilt_at[:] = [time.monotonic()]

    inputs = (settings.topic_impressions, settings.topic_interactions)

    # Input records fetched but never delivered are read again (stream.delivery_watch).
    watch: DeliveryWatch[Any] = DeliveryWatch()

    def backlogged() -> list[tuple[str, int]]:
        # Counted from what the agent took, not from Faust's read offset: records waiting in the
        # stream's buffer are unread to the join (a topic whose records sat there past idle_s stopped
        # holding its partition's watermark back, and they came too late: session 8, full-size backlog).
        return [tp for tp, lag in partition_lags(app, inputs, watch.progress()).items() if lag > 0]

    runtime.backlogged = backlogged
    epochs: JoinLogEpochs | None = None
    if settings.log_epoch == AUTO:  # a new log of an input topic is read from its start (stream.join_epoch)
        epochs = JoinLogEpochs(app, LogEpochs(settings.kafka_bootstrap, inputs), watch=watch)
        epochs.start()
        epochs.install()
    streams: list[Any] = []  # the agent's stream, for its buffer
    busy = [False]  # the agent holds a batch: fetched records may wait for it outside the buffer

    @app.agent(source, name="join")
    async def join(stream: Any) -> AsyncIterator[None]:
        quiet_client_logs()
        deliver_eagerly(app.consumer)
        streams[:] = [stream]
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            if rebuilt_at:  # the first batch after a recovery: how long the worker waited for it
                log.info("first batch after recovery: %d events, %.1f s after the join state was rebuilt",
                         len(events), time.monotonic() - rebuilt_at.pop())  # fmt: skip
            busy[0] = True
            try:
                if epochs is not None:
                    events = await epochs.admit(events)
                watch.received((e.message.tp, e.message.offset) for e in events)
                await send(runtime.process(_records(events)))
            finally:
                busy[0] = False
            yield None

    @app.timer(interval=1.0)  # type: ignore[untyped-decorator]
    async def reread_stalled_partitions() -> None:
        if app.rebalancing or app.in_recovery or not streams or busy[0]:
            return
        consumer: Any = app.consumer
        positions = {tp: await consumer.position(tp) for tp in consumer.assignment() if tp.topic in inputs}
        buffered = not streams[0].channel.queue.empty()
        for tp, offset in watch.stalled(positions, buffered=buffered or busy[0]).items():
            log.warning("%s[%d]: fetched up to %s but records from offset %d never reached the join; reading "
                        "them again", tp.topic, tp.partition, positions[tp], offset)  # fmt: skip
            metrics.stalled_seeks.labels(tp.topic).inc()
            await consumer._thread.seek_wait({tp: offset})  # in the consumer's thread (stream.join_epoch)

    @app.timer(interval=max(0.1, settings.idle_s / 4))  # type: ignore[untyped-decorator]
    async def close_idle_windows() -> None:
        if not (app.rebalancing or app.in_recovery):
            await send(runtime.tick())

    @app.timer(interval=1.0)  # type: ignore[untyped-decorator]
    async def report_lag() -> None:
        lags = consumer_lag(app, inputs, watch.progress())
        for topic, lag in lags.items():
            metrics.consumer_lag.labels(topic).set(lag)
        if epochs is not None:
            metrics.log_gated.set(len(epochs.gate.expected()))

    return StreamApp(app, settings, metrics, runtime)


async def send_outputs(app: faust.App, records: Iterable[Output], *, state_topic: str | None = None) -> None:
    """Produce outputs straight through the aiokafka producer underneath Faust, in bulk.

    One record batch per (topic, partition) and call, the producer's own
    partitions, order kept within a partition (:class:`stream.batch_producer.BatchSender`).
    ``state_topic`` (the join's changelog): its records reach the log only
    after every other record of the call is acknowledged, without the caller
    waiting for it; Faust's flush before each offset commit waits for them
    (see :func:`stream.batch_producer.sender_for`). Delivery stays
    at-least-once.
    """
    await sender_for(app).send(records, state_topic=state_topic)


def quiet_client_logs() -> None:
    # The worker's logging set-up leaves aiokafka at DEBUG: every send then builds
    # a log record (~5% of the join's time) that no handler prints.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


def _records(events: Sequence[Any]) -> list[RawRecord]:
    return [RawRecord(e.message.topic, e.message.partition, e.message.key, e.message.value) for e in events]


class _StrKeys(MutableMapping[str, "bytes | SessionState"]):
    """A table store (raw-bytes keys) seen with ``str`` keys (session ids).

    Values are what :class:`~stream.join_runtime.TableStore` writes (state
    objects) or the bytes Faust's recovery and :func:`apply_tail` put there.
    """

    def __init__(self, table: Any) -> None:
        self._t = table

    def __getitem__(self, key: str) -> bytes | SessionState:
        return self._t[key.encode()]  # type: ignore[no-any-return]

    def __setitem__(self, key: str, value: bytes | SessionState) -> None:
        self._t[key.encode()] = value

    def __delitem__(self, key: str) -> None:
        del self._t[key.encode()]

    def __iter__(self) -> Iterator[str]:
        return (k.decode() for k in list(self._t.keys()))

    def __len__(self) -> int:
        return len(self._t)
