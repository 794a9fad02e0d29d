"""The scoring worker over real HTTP, with the embedded broker and redis-server."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from typing import Any

import orjson
import pytest

from features.context import SEGMENTS
from scoring.experiment import Experiment
from stream.codec import decode_impression, decode_interaction
from stream.embedded import EmbeddedServices
from stream.model_store import ModelStore
from tests.scoring.serving import (
    ADMIN,
    API,
    CATALOG,
    experiment,
    new_env,
    publish_linucb,
    running,
    settings_for,
    topic_values,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

IDS = [t.trip_id for t in CATALOG.trips[:60]]
LINUCB_ONLY = orjson.dumps(experiment(("ucb", "linucb", 1.0, 0.2))).decode()


async def _wait(cond: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_rank_contract_impressions_and_events(services: EmbeddedServices) -> None:
    env = new_env(services)
    publish_linucb(services, env.namespace, SEGMENTS)
    async with running(settings_for(services, env, experiment=LINUCB_ONLY)) as srv:
        await _wait(lambda: _true(len(srv.svc.models.loaded()) == len(SEGMENTS)))
        status, body = await srv.rank({"session_id": "sess-1", "user_id": "alice@example.com", "trip_ids": IDS,
                                       "preferences": {"budget": 2500, "themes": ["hiking"]}, "k": 10})  # fmt: skip
        assert status == 200, body
        assert set(body) >= {"request_id", "variant", "policy", "model_version", "segment", "items"}
        assert (body["variant"], body["policy"], body["model_version"]) == (
            "ucb",
            "linucb",
            "linucb/general/v1",
        )
        assert [it["position"] for it in body["items"]] == list(range(10))
        assert set(it["trip_id"] for it in body["items"]) <= set(IDS)
        assert all(0 < it["propensity"] <= 1 for it in body["items"])
        status, greedy = await srv.rank({"session_id": "sess-2", "trip_ids": IDS, "k": 10, "explore": False})
        assert all(it["propensity"] == 1.0 for it in greedy["items"])
        scores = [it["score"] for it in greedy["items"]]
        assert scores == sorted(scores, reverse=True)
        async with srv.client.post(
            "/v1/events",
            headers=API,
            json={
                "events": [
                    {
                        "session_id": "sess-1",
                        "trip_id": body["items"][0]["trip_id"],
                        "type": "click",
                        "request_id": body["request_id"],
                    },
                    {
                        "session_id": "sess-1",
                        "trip_id": body["items"][0]["trip_id"],
                        "type": "dwell",
                        "value": 31.0,
                    },
                ]
            },
        ) as r:
            assert r.status == 202
            accepted = await r.json()  # fmt: skip
        assert accepted["accepted"] == 2
        await _wait(lambda: _true(srv.svc.log.status()["in_flight"] == 0 and srv.svc.log.queue_depth == 0))
    impressions = [decode_impression(v) for v in topic_values(services, env.impressions, 2)]
    by_id = {imp.request_id: imp for imp in impressions}
    imp = by_id[body["request_id"]]
    assert imp.session_id == "sess-1" and imp.user_id.startswith("u_") and "alice" not in imp.user_id
    assert [s.trip_id for s in imp.slate] == [it["trip_id"] for it in body["items"]]
    assert [s.propensity for s in imp.slate] == [it["propensity"] for it in body["items"]]
    assert imp.model_version == "linucb/general/v1" and len(imp.slate[0].phi) == 20
    assert all(orjson.loads(v)["variant"] == "ucb" for v in topic_values(services, env.impressions, 2))
    events = [decode_interaction(v) for v in topic_values(services, env.interactions, 2)]
    assert sorted(e.type for e in events) == ["click", "dwell"]
    assert {e.request_id for e in events} == {body["request_id"], None}


async def _true(value: bool) -> bool:
    return value


async def test_auth_and_errors(services: EmbeddedServices) -> None:
    env = new_env(services)
    async with running(settings_for(services, env, max_body_bytes=4096)) as srv:
        c = srv.client
        for path in ("/healthz", "/readyz", "/openapi.json"):
            async with c.get(path) as r:
                assert r.status == 200, path
        async with c.post("/v1/rank", json={"session_id": "s"}) as r:
            assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
            assert (await r.json())["field"] == "Authorization"
        status, _ = await srv.rank({"session_id": "s"}, headers={"Authorization": "Bearer not-a-token"})
        assert status == 401
        async with c.get("/metrics") as r:
            assert r.status == 401
        async with c.get("/metrics", headers=API) as r:
            assert r.status == 200 and "smarttrip_scoring_request_seconds" in await r.text()
        async with c.get("/v1/admin/experiment", headers=API) as r:
            assert r.status == 403 and (await r.json())["error"] == "forbidden"
        async with c.get("/v1/admin/experiment", headers=ADMIN) as r:
            assert r.status == 200
        status, _ = await srv.rank({"session_id": "s"}, headers=ADMIN)  # the admin token covers the API
        assert status == 200
        async with c.post("/v1/rank", data=b"{not json", headers=API) as r:
            assert r.status == 400 and (await r.json())["field"] == "body"
        status, err = await srv.rank({"session_id": "s", "preferences": {"budget": "lots"}})
        assert status == 422 and err["field"] == "preferences.budget" and "number" in err["problem"]
        assert err["retriable"] is False
        status, err = await srv.rank({"session_id": "s", "k": 1000})
        assert status == 422 and err["field"] == "k"
        async with c.post("/v1/rank", data=b'{"session_id": "' + b"x" * 5000 + b'"}', headers=API) as r:
            assert r.status == 413 and (await r.json())["field"] == "body"
        async with c.get("/nope", headers=API) as r:
            assert r.status == 404 and (await r.json())["error"] == "not_found"
        async with c.post(
            "/v1/events", json={"session_id": "s", "trip_id": "T1", "type": "view"}, headers=API
        ) as r:
            assert r.status == 422 and (await r.json())["field"] == "type"


async def test_not_ready_without_catalog(services: EmbeddedServices) -> None:
    env = new_env(services)
    async with running(settings_for(services, env), catalog=None) as srv:
        async with srv.client.get("/readyz") as r:
            body = await r.json()
            assert r.status == 503 and body["ready"] is False and "no catalog" in body["catalog"]["error"]
        status, err = await srv.rank({"session_id": "s"})
        assert status == 503 and err["retriable"] is True


async def test_admin_experiment_models_pin_and_rollback(services: EmbeddedServices) -> None:
    env = new_env(services)
    publish_linucb(services, env.namespace, ["general"], alpha=0.1)
    publish_linucb(services, env.namespace, ["general"], alpha=0.9)
    async with running(settings_for(services, env, experiment=LINUCB_ONLY)) as srv:
        c = srv.client
        async with c.get("/v1/admin/experiment", headers=ADMIN) as r:
            current = await r.json()
        assert current["revision"] == 1 and current["buckets"] == {"ucb": 10000}
        new = experiment(("ucb", "linucb", 0.7, 0.2), ("ctl", "rules", 0.3, 0.0), salt=current["salt"])
        async with c.put("/v1/admin/experiment", headers=ADMIN, json={**new, "revision": 1}) as r:
            assert r.status == 200
            put = await r.json()
        assert put["revision"] == 2 and put["buckets"] == {"ucb": 7000, "ctl": 3000}
        async with c.put("/v1/admin/experiment", headers=ADMIN, json={**new, "revision": 1}) as r:
            assert r.status == 409 and (await r.json())["field"] == "revision"
        async with c.put("/v1/admin/experiment", headers=ADMIN, json={"salt": "s", "variants": []}) as r:
            assert r.status == 422 and (await r.json())["field"] == "variants"
        ctl_user = next(f"user-{i}" for i in range(200) if _variant_of(srv, f"user-{i}") == "ctl")
        status, body = await srv.rank({"session_id": "s", "user_id": ctl_user})
        assert status == 200
        assert (body["variant"], body["policy"], body["model_version"]) == ("ctl", "rules", "rules/v1")

        ucb_user = next(f"user-{i}" for i in range(200) if _variant_of(srv, f"user-{i}") == "ucb")
        await _wait(lambda: _version(srv, ucb_user, "linucb/general/v2"))
        async with c.get("/v1/admin/models", headers=ADMIN) as r:
            models = await r.json()
        assert {"policy": "linucb", "segment": "general"}.items() <= models["store"][0].items()
        assert models["store"][0]["serving_version"] == 2 and models["loaded"][0]["version"] == 2
        async with c.post("/v1/admin/models/linucb/general/pin", headers=ADMIN, json={"version": 1}) as r:
            assert r.status == 200
        await _wait(lambda: _version(srv, ucb_user, "linucb/general/v1"))
        async with c.delete("/v1/admin/models/linucb/general/pin", headers=ADMIN) as r:
            assert r.status == 200 and (await r.json())["unpinned_version"] == 1
        async with c.post(
            "/v1/admin/models/linucb/general/rollback", headers=ADMIN, json={"version": 1}
        ) as r:
            assert r.status == 200 and (await r.json())["version"] == 3
        await _wait(lambda: _version(srv, ucb_user, "linucb/general/v3"))
        async with c.post("/v1/admin/models/linucb/general/pin", headers=ADMIN, json={"version": 99}) as r:
            assert r.status == 404
        async with c.post("/v1/admin/models/linucb/general/pin", headers=ADMIN, json={"version": "x"}) as r:
            assert r.status == 422 and (await r.json())["field"] == "version"


def _variant_of(srv: Any, user: str) -> str:
    exp: Experiment = srv.svc.experiments.current
    return exp.assign(srv.svc.pseudonymize(user)).name


async def _version(srv: Any, user: str, label: str) -> bool:
    _, body = await srv.rank({"session_id": "s", "user_id": user, "k": 3})
    return bool(body["model_version"] == label)


async def test_assignment_is_stable_across_restarts_and_workers(services: EmbeddedServices) -> None:
    env = new_env(services)
    split = orjson.dumps(experiment(("a", "rules", 0.5, 0.1), ("b", "linucb", 0.3, 0.1),
                                    ("c", "logistic", 0.2, 0.1))).decode()  # fmt: skip
    users = [f"person-{i}" for i in range(400)]

    async def variants(srv: Any) -> list[str]:
        out = []
        for u in users:
            _, body = await srv.rank({"session_id": f"s-{u}", "user_id": u, "k": 1})
            out.append(body["variant"])
        return out

    async with running(settings_for(services, env, experiment=split)) as srv:
        first = await variants(srv)
    counts = Counter(first)
    assert set(counts) == {"a", "b", "c"}
    # a restart, and a second worker whose own initial experiment differs: both follow Redis
    other = orjson.dumps(experiment(("z", "rules", 1.0, 0.0), salt="other")).decode()
    async with running(settings_for(services, env, experiment=split)) as srv:
        assert await variants(srv) == first
    async with running(settings_for(services, env, experiment=other)) as srv:
        assert await variants(srv) == first
    # anonymous users are assigned by session, stably
    async with running(settings_for(services, env)) as srv:
        _, one = await srv.rank({"session_id": "anon-1"})
        _, two = await srv.rank({"session_id": "anon-1"})
        assert one["variant"] == two["variant"]


async def test_propensities_match_sampling_over_http(services: EmbeddedServices) -> None:
    """Monte Carlo over the API: P(trip at position 0) and P(trip at 1 | trip at 0) vs the logged values."""
    env = new_env(services)
    exp = orjson.dumps(experiment(("r", "rules", 1.0, 0.5))).decode()
    ids = IDS[:4]
    async with running(settings_for(services, env, experiment=exp)) as srv:
        sem = asyncio.Semaphore(8)

        async def one(i: int) -> Any:
            async with sem:
                return (await srv.rank({"session_id": f"mc-{i}", "trip_ids": ids, "k": 2}))[1]

        bodies = await asyncio.gather(*(one(i) for i in range(1600)))
    firsts = Counter(b["items"][0]["trip_id"] for b in bodies)
    logged0 = {b["items"][0]["trip_id"]: b["items"][0]["propensity"] for b in bodies}
    for trip, n in firsts.items():
        p = logged0[trip]
        assert abs(n / len(bodies) - p) < 4.5 * math.sqrt(p * (1 - p) / len(bodies)) + 1e-3, (trip, n, p)
    assert sorted(set(logged0.values())) == pytest.approx([0.125, 0.625])  # ε/4 and ε/4 + (1 - ε)
    top = max(firsts, key=lambda t: firsts[t])
    seconds = [b["items"][1] for b in bodies if b["items"][0]["trip_id"] == top]
    for trip, n in Counter(s["trip_id"] for s in seconds).items():
        p = next(s["propensity"] for s in seconds if s["trip_id"] == trip)
        assert abs(n / len(seconds) - p) < 4.5 * math.sqrt(p * (1 - p) / len(seconds)) + 1e-3


def test_store_helper_sanity(services: EmbeddedServices) -> None:
    env = new_env(services)
    publish_linucb(services, env.namespace, ["budget"])
    with ModelStore.from_url(services.redis_url, namespace=env.namespace) as store:
        assert store.serving_version("linucb", "budget") == 1


async def test_starts_and_serves_rules_without_redis(services: EmbeddedServices) -> None:
    env = new_env(services)
    unreachable = "redis://127.0.0.1:1/0"
    async with running(settings_for(services, env, redis_url=unreachable)) as srv:
        status, body = await srv.rank({"session_id": "s", "trip_ids": IDS, "k": 3})
        assert status == 200 and body["policy"] == "rules" and body["model_version"] == "rules/v1"
        async with srv.client.get("/readyz") as r:
            ready = await r.json()
        assert r.status == 200 and ready["models"]["redis"] == "unreachable"
        assert ready["models"]["serving"] == "rules policy (no model ever loaded)"
        assert ready["experiment"]["from_redis"] is False
        async with srv.client.put(
            "/v1/admin/experiment", headers=ADMIN, json=experiment(("a", "rules", 1.0, 0.0))
        ) as r:
            assert r.status == 503 and (await r.json())["retriable"] is True


async def test_rapid_publishes_coalesce_into_throttled_swaps(services: EmbeddedServices) -> None:
    env = new_env(services)
    publish_linucb(services, env.namespace, ["general"])
    settings = settings_for(services, env, experiment=LINUCB_ONLY, model_min_swap_s=1.0, model_poll_s=30.0)
    async with running(settings) as srv:
        cache = srv.svc.models
        loads: list[bytes] = []
        real_loader = cache.loader

        def counting(data: bytes) -> Any:
            loads.append(data)
            return real_loader(data)

        cache.loader = counting
        await _wait(lambda: _loaded_version(cache, 1))
        await asyncio.sleep(1.1)  # past the interval: the next notice loads at once
        for _ in range(10):  # versions 2..11 within a few ms
            await asyncio.to_thread(publish_linucb, services, env.namespace, ["general"])
        await _wait(lambda: _loaded_version(cache, 11), timeout=5.0)
        # The first notice loads right away, the other nine coalesce into one reload a second later.
        assert 1 <= len(loads) <= 3, len(loads)


async def test_the_poll_loads_a_pair_at_most_once_per_min_swap_too(services: EmbeddedServices) -> None:
    """A learner publishing all the time: the poll schedules a pair swapped within min_swap_s, as a notice does."""
    env = new_env(services)
    publish_linucb(services, env.namespace, ["general"])
    settings = settings_for(services, env, experiment=LINUCB_ONLY, model_min_swap_s=1.0, model_poll_s=0.1)
    async with running(settings) as srv:
        cache = srv.svc.models
        await _wait(lambda: _loaded_version(cache, 1))
        loads: list[bytes] = []
        real_loader = cache.loader

        def counting(data: bytes) -> Any:
            loads.append(data)
            return real_loader(data)

        cache.loader = counting
        started = time.monotonic()
        for _ in range(25):  # versions 2..26 over ~2.5 s: ~25 polls, as many notices
            await asyncio.to_thread(publish_linucb, services, env.namespace, ["general"])
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - started
        await _wait(lambda: _loaded_version(cache, 26), timeout=5.0)  # the newest still arrives
        # One load per second at most (+1: the last version, scheduled after the publishing stopped);
        # before, the poll reloaded at each of its ~25 rounds.
        assert 1 <= len(loads) <= elapsed / settings.model_min_swap_s + 2, (len(loads), elapsed)


async def _loaded_version(cache: Any, version: int) -> bool:
    model = cache.get("linucb", "general")
    return model is not None and model.version == version
