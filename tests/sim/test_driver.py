"""The traffic driver against a stand-in frontend API on 127.0.0.1: pacing, sessions, think time."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict

import numpy as np
from aiohttp import web
from aiohttp.test_utils import TestServer

from sim.config import load_config
from sim.driver import drive
from sim.world import World


async def test_a_sessions_next_request_waits_for_the_previous_and_the_think_time() -> None:
    cfg = load_config({"catalog": {"trips": 200}, "users": {"count": 50},
                       "session": {"requests": 3, "think_time_s": 0.2},
                       "traffic": {"rate_rps": 60, "duration_s": 1, "concurrency": 8}})  # fmt: skip
    world = World(cfg)
    arrivals: dict[str, list[tuple[float, float]]] = defaultdict(list)

    async def rank(request: web.Request) -> web.Response:
        body = await request.json()
        t0 = time.monotonic()
        trips = world.catalog.trip_ids[:5].tolist()
        resp = {"request_id": f"r{t0}", "variant": "rules", "policy": "rules",
                "items": [{"trip_id": t, "position": p} for p, t in enumerate(trips)]}  # fmt: skip
        arrivals[body["session_id"]].append((t0, time.monotonic()))
        return web.json_response(resp)

    async def events(request: web.Request) -> web.Response:
        return web.json_response({"accepted": 1}, status=202)

    app = web.Application()
    app.router.add_post("/v1/rank", rank)
    app.router.add_post("/v1/events", events)
    async with TestServer(app, host="127.0.0.1") as server:
        result = await drive(world, str(server.make_url("")).rstrip("/"), "token", seed=1)
    assert result.errors == {} and len(result.outcomes) == 60
    assert sorted(len(v) for v in arrivals.values()) == [3] * 20
    for seen in arrivals.values():
        for (_, prev_done), (start, _) in itertools.pairwise(seen):
            assert start - prev_done >= 0.19


async def test_stop_after_s_keeps_the_run_fixed_length_and_counts_what_was_not_sent() -> None:
    cfg = load_config({"catalog": {"trips": 200}, "users": {"count": 50},
                       "traffic": {"rate_rps": 100, "duration_s": 2, "concurrency": 2}})  # fmt: skip
    world = World(cfg)

    async def rank(request: web.Request) -> web.Response:  # ~20 requests/s at concurrency 2: behind
        await asyncio.sleep(0.1)
        trips = world.catalog.trip_ids[:3].tolist()
        return web.json_response({"request_id": "r", "variant": "rules", "policy": "rules",
                                  "items": [{"trip_id": t, "position": p} for p, t in enumerate(trips)]})  # fmt: skip

    async def events(request: web.Request) -> web.Response:
        return web.json_response({"accepted": 1}, status=202)

    app = web.Application()
    app.router.add_post("/v1/rank", rank)
    app.router.add_post("/v1/events", events)
    async with TestServer(app, host="127.0.0.1") as server:
        result = await drive(world, str(server.make_url("")).rstrip("/"), "token", seed=1, stop_after_s=0.5)
    assert result.errors == {}
    assert len(result.outcomes) + result.unsent == 200
    assert 4 <= len(result.outcomes) <= 20 and result.duration_s < 1.5


async def test_clicks_carry_the_moment_the_user_clicked_even_when_the_driver_is_behind() -> None:
    # Every slate is clicked in full (attractive trips, no position bias) so many clicks are posted; the
    # server answers /v1/events slowly, so later clicks wait for one of the 2 call slots for a long time.
    cfg = load_config({"catalog": {"trips": 200}, "users": {"count": 50}, "position_bias": {"eta": 0.0},
                       "taste": {s: {"BASE_SCORE": 20.0} for s in ("adventure", "luxury", "budget", "culture",
                                                                     "general")},
                       "session": {"requests": 1, "dwell_s": 0.3},
                       "traffic": {"rate_rps": 40, "duration_s": 1, "concurrency": 2}})  # fmt: skip
    world = World(cfg)
    served: dict[str, float] = {}
    clicks: list[tuple[float, float, str]] = []  # (ts, received at, request id)

    async def rank(request: web.Request) -> web.Response:
        rid = f"r{len(served)}"
        trips = world.catalog.trip_ids[:3].tolist()
        served[rid] = time.time()
        return web.json_response({"request_id": rid, "variant": "rules", "policy": "rules",
                                  "items": [{"trip_id": t, "position": p} for p, t in enumerate(trips)]})  # fmt: skip

    async def events(request: web.Request) -> web.Response:
        body = await request.json()
        now = time.time()
        clicks.extend((ev["ts"], now, ev["request_id"]) for ev in body["events"] if ev["type"] == "click")
        await asyncio.sleep(0.1)  # slower than the offered rate: the driver falls behind
        return web.json_response({"accepted": len(body["events"])}, status=202)

    app = web.Application()
    app.router.add_post("/v1/rank", rank)
    app.router.add_post("/v1/events", events)
    async with TestServer(app, host="127.0.0.1") as server:
        result = await drive(world, str(server.make_url("")).rstrip("/"), "token", seed=1)
    assert result.errors == {} and len(clicks) >= 60
    lags = [received - served[rid] for _, received, rid in clicks]
    assert max(lags) > 0.6  # the driver was behind: clicks reached the server well after dwell_s
    for ts, received, rid in clicks:
        assert served[rid] <= ts <= served[rid] + 0.3 + 0.05  # stamped with the user's click, not the send
        assert ts <= received  # reported only once the user has clicked
    dwells = np.array([ts - served[rid] for ts, _, rid in clicks])
    assert dwells.std() > 0.05  # drawn, not constant
