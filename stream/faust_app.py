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
the baseline the join benchmark measures in the same run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import faust
from aiokafka.partitioner import murmur2

from monitoring.consumer_lag import consumer_lag
from monitoring.stream_metrics import StreamMetrics
from stream.changelog_tail import apply_tail, read_tail
from stream.join_runtime import JoinRuntime, Output, RawRecord
from stream.settings import StreamSettings

__all__ = ["StreamApp", "create_app", "new_faust_app", "partition_of", "quiet_client_logs", "send_outputs"]

log = logging.getLogger(__name__)


def partition_of(key: bytes, partitions: int) -> int:
    """Kafka's default (murmur2) partition of a key: what producers and the table use."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass
class StreamApp:
    app: faust.App
    settings: StreamSettings
    metrics: StreamMetrics
    runtime: JoinRuntime | None


def new_faust_app(settings: StreamSettings, app_id: str) -> faust.App:
    """A Faust app with the stream settings every worker shares (group timeouts, partitions)."""
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
        # Standbys would replay other workers' changelogs into this one's store.
        table_standby_replicas=0,
        web_enabled=False,
    )


def create_app(
    settings: StreamSettings,
    *,
    mode: Literal["join", "count"] = "join",
    metrics: StreamMetrics | None = None,
) -> StreamApp:
    metrics = metrics or StreamMetrics()
    app = new_faust_app(settings, settings.app_id)
    source = app.topic(
        settings.topic_impressions, settings.topic_interactions, key_serializer="raw", value_serializer="raw"
    )
    for name in (settings.topic_examples, settings.topic_deadletter):
        app.topic(name, key_serializer="raw", value_serializer="raw")  # declared: created if missing

    async def send(records: Iterable[Output]) -> None:
        await send_outputs(app, records, state_topic=changelog)

    if mode == "count":

        @app.agent(source, name="count")
        async def count(stream: Any) -> AsyncIterator[None]:
            quiet_client_logs()
            async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
                for event in events:
                    metrics.events.labels(event.message.topic, "ok").inc()
                yield None

        return StreamApp(app, settings, metrics, None)

    table = app.Table(
        "sessions",
        partitions=settings.partitions,
        key_type=bytes,
        value_type=bytes,
        use_partitioner=True,
    )
    # The runtime writes the table's local store and produces the changelog records
    # itself (a Table write would cost one buffered send each).
    changelog = table.changelog_topic.get_topic_name()
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
        gone = {tp.partition for tp in revoked if tp.topic == settings.topic_impressions}
        if gone:
            keep = owned_by(set(range(settings.partitions)) - gone)
            runtime.rebuild(keep)

    # Assignment: once the table has recovered the changelog of the new partitions
    # (and before their records flow again), reload the join from it.
    @table.on_recover
    async def on_recovered() -> None:
        owned = owned_partitions()
        # Faust stops at the broker's reported end, which Tansu puts before the last batch.
        tail = await read_tail(settings.kafka_bootstrap, changelog, owned)
        apply_tail(table.data, tail)
        runtime.rebuild(owned_by(owned))
        log.info("join state rebuilt for partitions %s: %d sessions", sorted(owned), runtime.open_sessions)

    @app.agent(source, name="join")
    async def join(stream: Any) -> AsyncIterator[None]:
        quiet_client_logs()
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            await send(runtime.process(_records(events)))
            yield None

    @app.timer(interval=max(0.1, settings.idle_s / 4))  # type: ignore[untyped-decorator]
    async def close_idle_windows() -> None:
        if not (app.rebalancing or app.in_recovery):
            await send(runtime.tick())

    @app.timer(interval=1.0)  # type: ignore[untyped-decorator]
    async def report_lag() -> None:
        lags = consumer_lag(app, (settings.topic_impressions, settings.topic_interactions))
        for topic, lag in lags.items():
            metrics.consumer_lag.labels(topic).set(lag)

    return StreamApp(app, settings, metrics, runtime)


async def send_outputs(app: faust.App, records: Iterable[Output], *, state_topic: str | None = None) -> None:
    """Produce outputs straight through the aiokafka producer underneath Faust.

    Faust's ``send_soon`` buffer holds 100 messages with a future each; at ten
    examples per slate it was the join's bottleneck. aiokafka appends each
    record to its open batch for the partition. Delivery stays at-least-once:
    Faust flushes that producer before every offset commit.

    ``state_topic`` (the join's changelog): its records are sent only once
    every record before them is acknowledged. A closed window's tombstone must
    not reach the log before the examples it emitted: aiokafka keeps one batch
    in flight per partition, so a later record to another partition can be
    written first, and a SIGKILL between the two then loses the examples for
    good (the input offsets are committed, the session is gone). Seen in the
    two-worker crash test: 4–64 of 24,000 examples missing under load.
    """
    producer = app.producer._ensure_producer()  # type: ignore[attr-defined]  # aiokafka
    pending: list[asyncio.Future[Any]] = []
    for o in records:
        if o.topic == state_topic and pending:
            await asyncio.gather(*pending)
            pending = []
        delivery = await producer.send(o.topic, o.value, key=o.key)
        if state_topic is not None and o.topic != state_topic:
            pending.append(delivery)


def quiet_client_logs() -> None:
    # The worker's logging set-up leaves aiokafka at DEBUG: every send then builds
    # a log record (~5% of the join's time) that no handler prints.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


def _records(events: Sequence[Any]) -> list[RawRecord]:
    return [RawRecord(e.message.topic, e.message.partition, e.message.key, e.message.value) for e in events]


class _StrKeys(MutableMapping[str, bytes]):
    """A raw-bytes table store seen with ``str`` keys (session ids)."""

    def __init__(self, table: Any) -> None:
        self._t = table

    def __getitem__(self, key: str) -> bytes:
        return self._t[key.encode()]  # type: ignore[no-any-return]

    def __setitem__(self, key: str, value: bytes) -> None:
        self._t[key.encode()] = value

    def __delitem__(self, key: str) -> None:
        del self._t[key.encode()]

    def __iter__(self) -> Iterator[str]:
        return (k.decode() for k in list(self._t.keys()))

    def __len__(self) -> int:
        return len(self._t)
