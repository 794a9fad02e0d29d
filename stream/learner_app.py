"""The Faust learner app: ``examples`` → :class:`~stream.learner_runtime.LearnerRuntime` → Redis.

A consumer group of its own (``<app id>-learner``). Partitions of
``examples`` carry whole segments (the key is the segment), so a worker owns
the models of the segments it is assigned. On every assignment the glue seeks
each partition back to where its models' stored offsets end, so records that
were consumed but never made it into a published model are read again;
records already in a model are skipped by offset. Offsets are committed only
as far as the stored models reach (:mod:`stream.durable_acks`), so Faust's own
seek to the committed offset can never skip unlearned records.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import faust
from faust.types import TP

from bandit.segments import GLOBAL_SEGMENT
from monitoring import memory_probe
from monitoring.consumer_lag import consumer_lag
from monitoring.learner_metrics import LearnerMetrics
from stream.durable_acks import DurableAcks
from stream.faust_app import new_faust_app, partition_of, quiet_client_logs, send_outputs
from stream.guardrails import Guardrails
from stream.learner_runtime import ExampleRecord, LearnerRuntime
from stream.log_epoch import AUTO, LogEpochWatch
from stream.model_store import ModelStore, StoreUnavailable
from stream.resume_guard import ResumeGuard
from stream.settings import StreamSettings

__all__ = ["create_learner_app"]

log = logging.getLogger(__name__)


def create_learner_app(
    settings: StreamSettings, metrics: LearnerMetrics | None = None
) -> tuple[faust.App, LearnerRuntime]:
    metrics = metrics or LearnerMetrics()
    memory_probe.install("learner")  # off unless SMARTTRIP_MEMORY_PROBE is set (a debugging aid)
    # Held acks (see DurableAcks) must not block a rebalance while Redis is down: revoked
    # partitions' held messages are dropped instead, and their next owner re-reads them.
    # A global learner is a consumer group of its own: it reads every partition.
    scope = "-global" if settings.learn_scope == "global" else ""
    app = new_faust_app(settings, f"{settings.app_id}-learner{scope}", stream_wait_empty=False)
    source = app.topic(settings.topic_examples, key_serializer="raw", value_serializer="raw")
    app.topic(settings.topic_deadletter, key_serializer="raw", value_serializer="raw")

    def rejected(error: Any) -> None:
        log.warning("publish refused: %s", error)

    store = ModelStore.from_url(
        settings.redis_url,
        namespace=settings.model_namespace,
        guardrails=Guardrails(max_abs_weight=settings.max_abs_weight, min_examples=settings.min_examples),
        on_rejected=rejected,
    )
    runtime = LearnerRuntime(settings, store, metrics, fast=bool(settings.learner_fast))
    guard = ResumeGuard()
    acks = DurableAcks()
    epochs = LogEpochWatch(settings.kafka_bootstrap, settings.topic_examples)
    last_read: dict[int, int] = {}  # partition -> offset of the last record read (reset by our seeks)
    sought: dict[int, int] = {}  # partition -> offset of our last seek (the lag counts from there)

    async def seek(partition: int, offset: int) -> None:
        last_read.pop(partition, None)
        sought[partition] = offset
        await app.consumer.seek(TP(settings.topic_examples, partition), offset)

    if settings.log_epoch == AUTO:  # before Faust starts: every model load compares epochs
        runtime.use_log_epoch(epochs.first())

    async def on_new_log(epoch: str | None) -> None:
        """A new log of the examples topic (e.g. an emptied broker): read it from its start."""
        if epoch is None or not runtime.use_log_epoch(epoch):
            return
        mine = [tp.partition for tp in app.consumer.assignment() if tp.topic == settings.topic_examples]
        acks.drop(mine)  # the old log's offsets: nothing to commit in the new one
        for partition in mine:
            guard.expect(partition, None)
            await seek(partition, 0)

    async def check_log_epoch() -> None:
        if settings.log_epoch == AUTO:
            await on_new_log(await epochs.current())

    def publish_and_release() -> None:
        runtime.maybe_publish()
        forced = acks.forced
        acks.release(runtime.unpublished_partitions())
        if acks.forced > forced:
            metrics.acks_forced.inc(acks.forced - forced)
            log.warning("%d examples acknowledged before their models were stored (Redis down?)",
                        acks.forced - forced)  # fmt: skip
        metrics.acks_held.set(acks.held)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: Any, **_: Any) -> None:
        acks.drop(tp.partition for tp in revoked if tp.topic == settings.topic_examples)
        metrics.acks_held.set(acks.held)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: Any, **_: Any) -> None:
        try:
            known = [m.segment for m in store.models()]
        except StoreUnavailable:
            metrics.redis_up.set(0)
            log.error("model store unreachable at assignment: resuming from committed offsets")
            return
        metrics.redis_up.set(1)
        if settings.log_epoch == AUTO:
            # Asked in-line: awaiting here lets the fetcher run against a half-made assignment.
            runtime.use_log_epoch(epochs.now() or runtime.log_epoch)
        for tp in assigned:
            if tp.topic != settings.topic_examples:
                continue
            if settings.learn_scope == "global":
                segments = [GLOBAL_SEGMENT] if GLOBAL_SEGMENT in known else []
            else:
                segments = sorted(
                    {s for s in known if partition_of(s.encode(), settings.partitions) == tp.partition}
                )
            offset = runtime.resume_offset(tp.partition, segments) if segments else None
            # No model has learned from this partition yet: read it from its start.
            guard.expect(tp.partition, offset)
            await seek(tp.partition, offset if offset is not None else 0)
            log.info("examples partition %d resumes at offset %s", tp.partition, offset or 0)

    @app.agent(source, name="learn")
    async def learn(stream: Any) -> AsyncIterator[None]:
        quiet_client_logs()
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            records = [ExampleRecord(e.message.partition, e.message.offset, e.message.value) for e in events]
            if any(r.offset <= last_read.get(r.partition, -1) for r in records):
                await check_log_epoch()  # offsets went back without a seek of ours: a new log?
            for r in records:
                last_read[r.partition] = r.offset
            admitted = guard.admit(records)
            if len(admitted) == len(records):
                acks.hold(events)  # before take_events acks them: committed once the models are stored
            else:  # records past a gap are never acknowledged: a commit must not jump the gap
                kept = {(r.partition, r.offset) for r in admitted}
                acks.hold(e for e in events if (e.message.partition, e.message.offset) in kept)
                acks.withhold(e for e in events if (e.message.partition, e.message.offset) not in kept)
            await send_outputs(app, runtime.process(admitted))
            for partition, offset in guard.take_seeks().items():
                log.warning("examples partition %d: position past the stored models; seeking back to %d",
                            partition, offset)  # fmt: skip
                await seek(partition, offset)
            publish_and_release()
            yield None

    @app.timer(interval=max(0.05, settings.publish_interval_s / 2))  # type: ignore[untyped-decorator]
    async def publish_idle() -> None:
        publish_and_release()

    @app.timer(interval=1.0)  # type: ignore[untyped-decorator]
    async def reseek_overdue() -> None:
        for partition, offset in guard.overdue().items():
            log.warning("examples partition %d: nothing from offset %d since the seek back; seeking again",
                        partition, offset)  # fmt: skip
            await seek(partition, offset)

    @app.timer(interval=2.0)  # type: ignore[untyped-decorator]
    async def watch_log_epoch() -> None:
        await check_log_epoch()

    @app.timer(interval=1.0)  # type: ignore[untyped-decorator]
    async def report_lag() -> None:
        taken = {**{p: o - 1 for p, o in sought.items()}, **last_read}
        progress = {(settings.topic_examples, p): o for p, o in taken.items()}
        for topic, lag in consumer_lag(app, (settings.topic_examples,), progress).items():
            metrics.consumer_lag.labels(topic).set(lag)

    return app, runtime
