"""A scoring worker following the catalog store: versions swap in while requests run, never mixed."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from typing import Any

import orjson
import pytest
import redis

from features.catalog_store import CatalogStore
from features.generator import generate_trips
from features.trip_update import TripState
from stream.codec import decode_impression
from stream.embedded import EmbeddedServices
from tests.catalog.ranking_oracle import PREFS, check_response, expected_scores, random_change
from tests.scoring.serving import TODAY, experiment, new_env, running, settings_for, topic_values

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

TRIPS = [TripState(t) for t in generate_trips(n_trips=400, seed=21, start=TODAY)]
IDS = [s.trip.trip_id for s in TRIPS[:150]]
RULES_ONLY = orjson.dumps(experiment(("rules", "rules", 1.0, 0.0))).decode()


async def _until(cond: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_versions_swap_under_load_without_failing_or_mixing(services: EmbeddedServices) -> None:
    env = new_env(services)
    client = redis.Redis.from_url(services.redis_url, socket_timeout=5)
    store = CatalogStore(client, namespace=env.namespace, history=3)
    versions: dict[str, list[TripState]] = {}
    meta = store.publish(TRIPS, expected_version=0, source="test")
    versions[meta.label] = list(TRIPS)
    settings = settings_for(services, env, catalog_source="redis", experiment=RULES_ONLY, model_poll_s=5.0)
    body = {"session_id": "s", "trip_ids": IDS, "preferences": PREFS, "k": 20, "explore": False}
    try:
        async with running(settings, catalog=None) as srv:
            status, first = await srv.rank(body)
            assert status == 200 and first["catalog_version"] == "1"
            check_response(first, versions, IDS, TODAY)

            # Rule semantics through a swap: a trip made unavailable disappears, a status change
            # from open to last_places adds exactly STATUS_LAST_PLACES (15) to the rule score.
            before = expected_scores(TRIPS, IDS, TODAY)
            gone, promoted = [
                s.trip.trip_id for s in TRIPS if s.trip.status == "open" and s.trip.trip_id in before
            ][:2]
            trips = [
                TripState(s.trip, False) if s.trip.trip_id == gone
                else TripState(dataclasses.replace(s.trip, status="last_places")) if s.trip.trip_id == promoted
                else s
                for s in TRIPS
            ]  # fmt: skip
            meta = await asyncio.to_thread(store.publish, trips, expected_version=1, source="test")
            versions[meta.label] = trips
            await _until(lambda: _serves(srv, body, meta.label))
            one = {**body, "trip_ids": [gone, promoted]}
            _, after = await srv.rank(one)
            assert [it["trip_id"] for it in after["items"]] == [promoted]
            assert after["ignored_trip_ids"] == [gone]
            assert after["items"][0]["score"] == before[promoted] + 15

            # Many swaps while requests run: every response is exactly one version's ranking.
            rng = random.Random(3)
            responses: list[dict[str, Any]] = []
            stop = asyncio.Event()

            async def hammer() -> None:
                while not stop.is_set():
                    status, got = await srv.rank(body)
                    assert status == 200, got
                    responses.append(got)

            async def publisher() -> None:
                current = trips
                for _ in range(8):
                    changed = rng.sample(range(len(current)), 40)
                    current = list(current)
                    for i in changed:
                        change = random_change(rng, current[i])
                        available = change.pop("available", current[i].available)
                        current[i] = TripState(dataclasses.replace(current[i].trip, **change), available)
                    base = store.current_version()
                    m = await asyncio.to_thread(store.publish, current, expected_version=base, source="test")
                    versions[m.label] = current
                    await asyncio.sleep(0.12)
                await _until(lambda: _serves(srv, body, m.label))
                stop.set()

            await asyncio.gather(publisher(), *(hammer() for _ in range(4)))
            seen = {check_response(r, versions, IDS, TODAY) for r in responses}
            assert len(responses) > 50 and len(seen) >= 4, (len(responses), sorted(seen))
            assert srv.svc.metrics.catalog_swaps._value.get() >= 5
            by_request = {r["request_id"]: r["catalog_version"] for r in responses}
        # Every impression names the version its slate was ranked with.
        logged = {}
        for raw in topic_values(services, env.impressions, len(by_request) + 2, timeout=20):
            imp = decode_impression(raw)
            logged[imp.request_id] = imp.catalog_version
        assert {r: logged.get(r) for r in by_request} == by_request
    finally:
        client.close()


async def _serves(srv: Any, body: dict[str, Any], label: str) -> bool:
    _, got = await srv.rank(body)
    return bool(got.get("catalog_version") == label)
