"""Fault tests: Redis stopped and the broker paused mid-run; no /v1/rank request may fail."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from features.context import SEGMENTS
from stream.codec import decode_impression
from stream.embedded import EmbeddedServices
from tests.scoring.serving import (
    API,
    CATALOG,
    experiment,
    new_env,
    publish_linucb,
    running,
    settings_for,
    topic_values,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

IDS = [t.trip_id for t in CATALOG.trips[:200]]
LINUCB_ONLY = orjson.dumps(experiment(("ucb", "linucb", 1.0, 0.1))).decode()


class Load:
    """Concurrent /v1/rank requests until stopped; keeps every response."""

    def __init__(self, srv: Any, concurrency: int = 6) -> None:
        self.srv = srv
        self.results: list[tuple[int, dict[str, Any]]] = []
        self.errors: list[BaseException] = []
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._worker(i)) for i in range(concurrency)]

    async def _worker(self, w: int) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            body = {"session_id": f"w{w}-{i}", "user_id": f"user-{w}-{i}", "trip_ids": IDS, "k": 10,
                    "preferences": {"budget": 3000, "themes": ["hiking", "culture"]}}  # fmt: skip
            try:
                self.results.append(await self.srv.rank(body))
            except Exception as exc:  # a connection error counts as a failed response
                self.errors.append(exc)
            await asyncio.sleep(0.002)

    def count(self) -> int:
        return len(self.results)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def failed(self) -> list[Any]:
        return [r for r in self.results if r[0] != 200] + self.errors


async def _until(cond: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _readyz(srv: Any) -> dict[str, Any]:
    async with srv.client.get("/readyz") as r:
        body: dict[str, Any] = await r.json()
        return body


async def test_redis_stopped_mid_run(services: EmbeddedServices) -> None:
    env = new_env(services)
    publish_linucb(services, env.namespace, SEGMENTS, alpha=0.1)
    publish_linucb(services, env.namespace, SEGMENTS, alpha=0.4)  # version 2 everywhere
    async with running(settings_for(services, env, experiment=LINUCB_ONLY)) as srv:
        await _until(lambda: len(srv.svc.models.loaded()) == len(SEGMENTS), 10)
        load = Load(srv)
        await _until(lambda: load.count() > 50, 10)
        try:
            await asyncio.to_thread(services.stop_redis)
            down_at = load.count()
            await _until(lambda: not srv.svc.models.health.ok, 10)
            await asyncio.sleep(1.5)  # several failed polls and resubscribe attempts
            await _until(lambda: load.count() > down_at + 200, 20)
            ready = await _readyz(srv)
            assert ready["ready"] is True and ready["models"]["redis"] == "unreachable"
            assert ready["models"]["serving"] == "last known models"
            assert srv.svc.metrics.redis_up._value.get() == 0
        finally:
            await asyncio.to_thread(services.start_redis)
        # Redis is back, empty (no persistence): the worker says so and follows new publishes
        await _until(lambda: srv.svc.models.health.ok, 10)
        publish_linucb(services, env.namespace, ["culture"], alpha=0.9)  # the load's users are "culture"
        await _until(
            lambda: (m := srv.svc.models.get("linucb", "culture")) is not None and m.version == 1, 10
        )
        await _until(lambda: load.count() > down_at + 300, 20)
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
        await _until(lambda: log.kafka_ok, 10)
        load = Load(srv)
        await _until(lambda: load.count() > 100, 10)
        with services.broker_paused():
            paused_at = load.count()
            await _until(lambda: log.state == "spooling", 10)
            await asyncio.sleep(2.5)  # several stall periods and failed replay attempts
            await _until(lambda: log.spool.pending_records > 100 and load.count() > paused_at + 300, 20)
            ready = await _readyz(srv)
            assert (
                ready["impressions"]["kafka"] == "unreachable" and ready["impressions"]["spool_records"] > 0
            )
        resumed_at = load.count()
        await _until(lambda: log.state == "direct" and log.spool.empty, 30)
        await _until(lambda: load.count() > resumed_at + 100, 10)
        await load.stop()
        await _until(lambda: log.status()["in_flight"] == 0 and log.queue_depth == 0, 10)
        counters = _log_counters(srv)
    assert load.failed() == []
    served = {body["request_id"] for _, body in load.results}
    values = topic_values(services, env.impressions, len(served), timeout=30)
    in_topic = [decode_impression(v).request_id for v in values]
    assert served <= set(in_topic), f"{len(served - set(in_topic))} impressions missing"
    assert counters["spooled"] > 100 and counters["replayed"] == counters["spooled"]
    assert counters["dropped"] == 0
    assert counters["sent"] + counters["replayed"] == len(in_topic) == len(served)


def _log_counters(srv: Any) -> dict[str, float]:
    out = {"sent": 0.0, "spooled": 0.0, "replayed": 0.0, "dropped": 0.0}
    for fam in srv.svc.metrics.registry.collect():
        for s in fam.samples:
            if s.name == "smarttrip_scoring_log_records_total":
                out[s.labels["outcome"]] += s.value
    return out


_ = API
