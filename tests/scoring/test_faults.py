"""Fault tests: Redis stopped and the broker paused mid-run; no /v1/rank request may fail.

Part of the fault-injection suite (marker ``faults``); the whole-loop variant, with
the join and learner workers running, is ``tests/faults/test_outages.py``.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from features.context import SEGMENTS
from stream.codec import decode_impression
from stream.embedded import EmbeddedServices
from tests.faults.serving_load import Load, log_counters, readyz, until
from tests.scoring.serving import (
    experiment,
    new_env,
    publish_linucb,
    running,
    settings_for,
    topic_values,
)

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(90)]

LINUCB_ONLY = orjson.dumps(experiment(("ucb", "linucb", 1.0, 0.1))).decode()


async def test_redis_stopped_mid_run(services: EmbeddedServices) -> None:
    env = new_env(services)
    publish_linucb(services, env.namespace, SEGMENTS, alpha=0.1)
    publish_linucb(services, env.namespace, SEGMENTS, alpha=0.4)  # version 2 everywhere
    async with running(settings_for(services, env, experiment=LINUCB_ONLY)) as srv:
        await until(lambda: len(srv.svc.models.loaded()) == len(SEGMENTS), 10)
        load = Load(srv)
        await until(lambda: load.count() > 50, 10)
        try:
            await asyncio.to_thread(services.stop_redis)
            down_at = load.count()
            await until(lambda: not srv.svc.models.health.ok, 10)
            await asyncio.sleep(1.5)  # several failed polls and resubscribe attempts
            await until(lambda: load.count() > down_at + 200, 20)
            ready = await readyz(srv)
            assert ready["ready"] is True and ready["models"]["redis"] == "unreachable"
            assert ready["models"]["serving"] == "last known models"
            assert srv.svc.metrics.redis_up._value.get() == 0
        finally:
            await asyncio.to_thread(services.start_redis)
        # Redis is back, empty (no persistence): the worker says so and follows new publishes
        await until(lambda: srv.svc.models.health.ok, 10)
        publish_linucb(services, env.namespace, ["culture"], alpha=0.9)  # the load's users are "culture"
        await until(lambda: (m := srv.svc.models.get("linucb", "culture")) is not None and m.version == 1, 10)
        await until(lambda: load.count() > down_at + 300, 20)
        await load.stop()
    assert load.failed() == []
    during = load.results[down_at : down_at + 200]
    assert {body["policy"] for _, body in during} == {"linucb"}  # last known models, not the fallback
    assert {body["model_version"].rsplit("/", 1)[1] for _, body in during} == {"v2"}
    assert load.results[-1][1]["model_version"] == "linucb/culture/v1"


async def test_broker_paused_mid_run(services: EmbeddedServices) -> None:
    env = new_env(services)
    async with running(settings_for(services, env)) as srv:
        log = srv.svc.log
        await until(lambda: log.kafka_ok, 10)
        load = Load(srv)
        await until(lambda: load.count() > 100, 10)
        with services.broker_paused():
            paused_at = load.count()
            await until(lambda: log.state == "spooling", 10)
            await asyncio.sleep(2.5)  # several stall periods and failed replay attempts
            await until(lambda: log.spool.pending_records > 100 and load.count() > paused_at + 300, 20)
            ready = await readyz(srv)
            assert (
                ready["impressions"]["kafka"] == "unreachable" and ready["impressions"]["spool_records"] > 0
            )
        resumed_at = load.count()
        await until(lambda: log.state == "direct" and log.spool.empty, 30)
        await until(lambda: load.count() > resumed_at + 100, 10)
        await load.stop()
        await until(lambda: log.status()["in_flight"] == 0 and log.queue_depth == 0, 10)
        counters = log_counters(srv)
    assert load.failed() == []
    served = {body["request_id"] for _, body in load.results}
    values = topic_values(services, env.impressions, len(served), timeout=30)
    in_topic = [decode_impression(v).request_id for v in values]
    assert served <= set(in_topic), f"{len(served - set(in_topic))} impressions missing"
    assert counters["spooled"] > 100 and counters["replayed"] == counters["spooled"]
    assert counters["dropped"] == 0
    assert counters["sent"] + counters["replayed"] == len(in_topic) == len(served)
