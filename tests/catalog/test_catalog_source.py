"""The scoring worker's catalog source on its own: empty store, notices, a corrupt version, Redis away."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
import redis
import redis.asyncio as aredis

from features.catalog_store import CatalogStore, StoreUnavailable
from features.generator import generate_trips
from features.trip_update import TripState
from monitoring.scoring_metrics import ScoringMetrics
from scoring.catalog_source import CatalogSource
from scoring.service import CatalogState
from stream.embedded import EmbeddedServices, embedded_services

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

TODAY = dt.date(2026, 3, 1)
TRIPS = [TripState(t) for t in generate_trips(n_trips=40, seed=9, start=TODAY)]


async def _until(cond: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def _sample(metrics: ScoringMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_empty_store_then_notice_then_corrupt_version(redis_only: EmbeddedServices) -> None:
    namespace = f"t{uuid.uuid4().hex[:8]}"
    sync_client = redis.Redis.from_url(redis_only.redis_url)
    client = aredis.Redis.from_url(redis_only.redis_url, socket_timeout=2)
    store = CatalogStore(sync_client, namespace=namespace)
    state, metrics = CatalogState(), ScoringMetrics()
    source = CatalogSource(
        client, namespace=namespace, state=state, metrics=metrics, poll_s=30, today=lambda: TODAY
    )
    try:
        await source.start(initial_timeout=2)
        assert state.catalog is None and "no catalog published" in (state.error or "")

        # a notice (the poll is 30 s away) brings version 1, unavailable trips left out
        states = [TripState(TRIPS[0].trip, available=False), *TRIPS[1:]]
        await asyncio.to_thread(store.publish, states, expected_version=0, source="t")
        await _until(lambda: state.catalog is not None)
        assert state.catalog is not None and state.catalog.version == "1" and len(state.catalog) == 39
        assert TRIPS[0].trip.trip_id not in state.index and state.error is None
        assert ("bookable", (TODAY - dt.date(1970, 1, 1)).days) in state.catalog.day_cache  # warmed aside
        assert _sample(metrics, "smarttrip_scoring_catalog_version") == 1
        assert _sample(metrics, "smarttrip_scoring_catalog_trips_by_status", status="unavailable") == 1

        # a version whose records are corrupt is refused and counted; version 1 keeps serving
        keys = store.keys
        meta = store.meta(1)
        sync_client.set(f"{keys.prefix}meta:2", meta.to_json().replace(b'"version": 1', b'"version": 2'))
        sync_client.set(f"{keys.prefix}rec:2", b"not zlib")
        sync_client.set(f"{keys.prefix}col:2", b"")
        sync_client.set(keys.current, 2)
        assert await source.sync() is False
        assert state.catalog.version == "1"
        assert _sample(metrics, "smarttrip_scoring_catalog_load_errors_total", reason="CorruptCatalog") == 1
        assert await source.sync() is False  # not retried until a newer version
        assert _sample(metrics, "smarttrip_scoring_catalog_load_errors_total", reason="CorruptCatalog") == 1

        # the next good version swaps in
        await asyncio.to_thread(store.publish, TRIPS, expected_version=2, source="t")
        await _until(lambda: state.catalog is not None and state.catalog.version == "3")
        assert len(state.catalog) == 40
    finally:
        await source.stop()
        await client.aclose()
        sync_client.close()


async def test_redis_away_keeps_the_last_version() -> None:
    with embedded_services(kafka=False) as own:  # stopped and restarted here: not the shared one
        sync_client = redis.Redis.from_url(own.redis_url)
        client = aredis.Redis.from_url(own.redis_url, socket_connect_timeout=0.3, socket_timeout=0.3)
        state, metrics = CatalogState(), ScoringMetrics()
        source = CatalogSource(
            client, namespace="n", state=state, metrics=metrics, poll_s=0.1, today=lambda: TODAY
        )
        try:
            CatalogStore(sync_client, namespace="n").publish(TRIPS, expected_version=0, source="t")
            await source.start(initial_timeout=2)
            assert state.catalog is not None and state.catalog.version == "1"
            own.stop_redis()
            with pytest.raises(StoreUnavailable):
                await source.sync()
            await asyncio.sleep(0.3)  # the poll and the notice loop survive the outage
            assert state.catalog.version == "1"
            own.start_redis()  # comes back empty (no persistence): the last version keeps serving
            await asyncio.sleep(0.5)
            assert state.catalog.version == "1" and len(state.catalog) == 40
        finally:
            await source.stop()
            await client.aclose()
            sync_client.close()
