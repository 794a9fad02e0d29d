"""The catalog agent killed mid-stream and restarted: every update ends up in exactly one version."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from features.catalog_store import CatalogStore
from features.generator import generate_trips
from features.trip_update import TripState
from stream.embedded import EmbeddedServices, ensure_topics
from stream.worker_process import WorkerProcess
from tests.stream.kafka_helpers import produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

N = 600


def test_sigkill_and_restart_lose_and_repeat_nothing(services: EmbeddedServices) -> None:
    uid = uuid.uuid4().hex[:8]
    topic, namespace = f"trips-{uid}", f"t{uid}"
    ensure_topics(services.bootstrap_servers, {topic: 2, f"dead-{uid}": 1})
    trips = [TripState(t) for t in generate_trips(n_trips=200, seed=4)]
    store = CatalogStore.from_url(services.redis_url, namespace=namespace, history=100)
    store.publish(trips, expected_version=0, source="test")
    env = {
        "SMARTTRIP_KAFKA_BOOTSTRAP": services.bootstrap_servers, "SMARTTRIP_REDIS_URL": services.redis_url,
        "SMARTTRIP_MODEL_NAMESPACE": namespace, "SMARTTRIP_TOPIC_TRIPS": topic,
        "SMARTTRIP_TOPIC_DEADLETTER": f"dead-{uid}", "SMARTTRIP_CATALOG_INTERVAL_S": "0.2",
        "SMARTTRIP_CATALOG_HISTORY": "100",
    }  # fmt: skip
    # update i sets the price of trip i % 200 to 1000 + i: the last update of each trip wins
    records = [
        (topic, trips[i % 200].trip.trip_id.encode(),
         json.dumps({"v": 1, "op": "upsert", "trip_id": trips[i % 200].trip.trip_id, "ts": time.time(),
                     "set": {"price": 1000 + i}}).encode())
        for i in range(N)
    ]  # fmt: skip

    def applied() -> int:
        """Records (over both partitions) the current stored version contains."""
        return sum(store.meta().offsets.values())

    first = WorkerProcess(env, mode="catalog", name="catalog-agent-1")
    try:
        produce(services, records[: N // 2])
        deadline = time.monotonic() + 30
        while applied() < 100:
            assert time.monotonic() < deadline and first.alive(), first.log_tail()
            time.sleep(0.05)
        produce(services, records[N // 2 :])
        time.sleep(0.1)
    finally:
        first.kill()  # SIGKILL: whatever it read but did not publish is lost with it
    killed_at = applied()
    second = WorkerProcess(env, mode="catalog", name="catalog-agent-2")
    try:
        deadline = time.monotonic() + 30
        while applied() < N:
            assert time.monotonic() < deadline and second.alive(), second.log_tail()
            time.sleep(0.05)
    finally:
        second.stop()
    metas = store.history()
    store_final = {s.trip.trip_id: s.trip.price for s in store.get().trips}
    store.close()
    assert killed_at < N, "the kill came after everything was published: nothing was tested"
    assert sum(m.updates_applied for m in metas) == N  # each update in exactly one version
    assert store_final == {trips[i].trip.trip_id: 1000.0 + max(range(i, N, 200)) for i in range(200)}
