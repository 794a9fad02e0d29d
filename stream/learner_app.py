"""The Faust learner app: ``examples`` → :class:`~stream.learner_runtime.LearnerRuntime` → Redis.

A consumer group of its own (``<app id>-learner``). Partitions of
``examples`` carry whole segments (the key is the segment), so a worker owns
the models of the segments it is assigned. On every assignment the glue seeks
each partition back to where its models' stored offsets end, so records that
were consumed (and committed) but never made it into a published model are
read again; records already in a model are skipped by offset.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import faust
from faust.types import TP

from monitoring.consumer_lag import consumer_lag
from monitoring.learner_metrics import LearnerMetrics
from stream.faust_app import new_faust_app, partition_of, quiet_client_logs, send_outputs
from stream.guardrails import Guardrails
from stream.learner_runtime import ExampleRecord, LearnerRuntime
from stream.model_store import ModelStore, StoreUnavailable
from stream.resume_guard import ResumeGuard
from stream.settings import StreamSettings

__all__ = ["create_learner_app"]

log = logging.getLogger(__name__)


def create_learner_app(
    settings: StreamSettings, metrics: LearnerMetrics | None = None
) -> tuple[faust.App, LearnerRuntime]:
    metrics = metrics or LearnerMetrics()
    app = new_faust_app(settings, f"{settings.app_id}-learner")
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
    runtime = LearnerRuntime(settings, store, metrics)
    guard = ResumeGuard()

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: Any, **_: Any) -> None:
        try:
            known = [m.segment for m in store.models()]
        except StoreUnavailable:
            metrics.redis_up.set(0)
            log.error("model store unreachable at assignment: resuming from committed offsets")
            return
        metrics.redis_up.set(1)
        for tp in assigned:
            if tp.topic != settings.topic_examples:
                continue
            segments = sorted(
                {s for s in known if partition_of(s.encode(), settings.partitions) == tp.partition}
            )
            offset = runtime.resume_offset(tp.partition, segments) if segments else None
            # No model has learned from this partition yet: read it from its start.
            guard.expect(tp.partition, offset)
            await app.consumer.seek(tp, offset if offset is not None else 0)
            log.info("examples partition %d resumes at offset %s", tp.partition, offset or 0)

    @app.agent(source, name="learn")
    async def learn(stream: Any) -> AsyncIterator[None]:
        quiet_client_logs()
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            records = [ExampleRecord(e.message.partition, e.message.offset, e.message.value) for e in events]
            await send_outputs(app, runtime.process(guard.admit(records)))
            for partition, offset in guard.take_seeks().items():
                log.warning("examples partition %d: position past the stored models; seeking back to %d",
                            partition, offset)  # fmt: skip
                await app.consumer.seek(TP(settings.topic_examples, partition), offset)
            runtime.maybe_publish()
            yield None

    @app.timer(interval=max(0.05, settings.publish_interval_s / 2))  # type: ignore[untyped-decorator]
    async def publish_idle() -> None:
        runtime.maybe_publish()

    @app.timer(interval=1.0)  # type: ignore[untyped-decorator]
    async def report_lag() -> None:
        for topic, lag in consumer_lag(app, (settings.topic_examples,)).items():
            metrics.consumer_lag.labels(topic).set(lag)

    return app, runtime
