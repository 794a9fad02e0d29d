"""The traffic driver: behaves like the frontend against a running scoring worker.

Over real HTTP it asks ``POST /v1/rank`` for each simulated request, samples
clicks (and saves, booking starts) from the ground truth at the positions
actually shown, and reports them with ``POST /v1/events``. Requests are paced
to ``rate_rps`` with at most ``concurrency`` ranking calls in flight. Each session
runs as its own chain (its next request waits for the previous one and the
think time), and a call slot is held only while a call is on the wire: a
session waiting for its previous answer never holds a slot another session
could use (it did, and with three requests per session capped the offered
rate at about concurrency / 3 / latency — the soak's 162 ranks/s). Every request's outcome is
recorded with the oracle's expected clicks for the same user and moment, so
the report can state CTR as a share of the best possible.

Event time: each click (and the save or booking start that follows it)
carries ``ts`` = the wall-clock moment its slate was received plus the
user's dwell, drawn uniformly from ``[0, dwell_s]`` (a generator of its
own, so the clicks drawn are the same whatever the dwell); the driver posts
them once that moment has passed. A driver that falls behind (requests
waiting for a call slot) therefore still reports when the user clicked, not
when it got around to sending it, and the join's attribution window judges
the user, not the load generator.

Clicks are posted through ``concurrency`` call slots of their own: they
come from other users' browsers, so they never wait behind queued ranking
calls (with a quarter as many, a 3-minute soak at ~290 ranks/s let them fall
more than the 30 s lateness behind). The client side is kept cheap so that it measures the server: one pooled
keep-alive connector, request bodies encoded with orjson (each user's
preferences once), responses decoded with orjson.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import numpy as np
import orjson

from sim.world import SimUser, World

__all__ = ["DriverResult", "RequestOutcome", "drive"]


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    t: float  # seconds since the start of the run
    variant: str
    policy: str
    segment: str
    slots: int
    clicks: int
    expected_clicks: float
    oracle_clicks: float
    latency_s: float
    drifted: bool


@dataclass
class DriverResult:
    outcomes: list[RequestOutcome] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    events_posted: int = 0
    duration_s: float = 0.0  # until the last request's clicks were posted (after their simulated dwell)
    ranked_s: float = 0.0  # until the last rank answer arrived
    unsent: int = 0  # planned requests dropped because the run passed stop_after_s (the server fell behind)


async def drive(
    world: World,
    url: str,
    token: str,
    *,
    seed: int,
    progress: Callable[[float], None] | None = None,
    stop_after_s: float | None = None,
) -> DriverResult:
    """Run the configured traffic against ``url``; returns every request's outcome.

    With ``stop_after_s``, requests not yet sent that long after the start are
    dropped and counted in ``unsent`` (a fixed-length run even when the server
    cannot keep up with ``rate_rps``).
    """
    cfg = world.config
    rng = np.random.default_rng(seed)
    result = DriverResult()
    n_requests = int(cfg.rate_rps * cfg.duration_s)
    # Sessions: a user makes requests_per_session requests in a row.
    plan: list[tuple[SimUser, str]] = []
    while len(plan) < n_requests:
        user = world.users[int(rng.integers(len(world.users)))]
        session = f"sim-{uuid.UUID(int=int(rng.integers(2**63)))}"
        plan += [(user, session)] * cfg.requests_per_session
    plan = plan[:n_requests]
    oracle_cache: dict[tuple[str, bool], float] = {}
    prefs_cache: dict[str, dict[str, object]] = {}
    # A user reads the results before searching again: a session's next request waits
    # for the previous one to finish, then for the think time.
    done = [asyncio.Event() for _ in range(n_requests)]
    chains: list[list[int]] = []
    for i in range(n_requests):
        if i > 0 and plan[i - 1][1] == plan[i][1]:
            chains[-1].append(i)
        else:
            chains.append([i])
    slots = asyncio.Semaphore(cfg.concurrency)
    # Clicks come from other users' browsers: they never queue behind ranking calls for a slot.
    event_slots = asyncio.Semaphore(cfg.concurrency)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    started = time.monotonic()

    async def one(session: aiohttp.ClientSession, i: int) -> None:
        try:
            await _one(session, i)
        finally:
            done[i].set()

    async def _one(session: aiohttp.ClientSession, i: int) -> None:
        user, session_id = plan[i]
        # One generator per request: the same seed gives the same clicks whatever the concurrency.
        worker_rng = np.random.default_rng([seed, i])
        if i > 0 and plan[i - 1][1] == session_id:
            await done[i - 1].wait()
            await asyncio.sleep(cfg.think_time_s)
        due = started + i / cfg.rate_rps
        if stop_after_s is not None and max(due, time.monotonic()) - started > stop_after_s:
            result.unsent += 1
            return
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        t = time.monotonic() - started
        drifted = cfg.drift_at_fraction is not None and t >= cfg.drift_at_fraction * cfg.duration_s
        prefs = prefs_cache.get(user.user_id)
        if prefs is None:
            prefs = prefs_cache[user.user_id] = user.prefs.to_dict()
        body = orjson.dumps(
            {"session_id": session_id, "user_id": user.user_id, "preferences": prefs, "k": cfg.k}
        )
        try:
            async with slots:  # latency: from the call, not from the wait for a slot
                if stop_after_s is not None and time.monotonic() - started > stop_after_s:
                    result.unsent += 1  # it waited for a slot past the end of the run
                    return
                t0 = time.perf_counter()
                async with session.post(f"{url}/v1/rank", data=body, headers=headers) as resp:
                    raw = await resp.read()
                    status = resp.status
                latency = time.perf_counter() - t0
                received = time.time()  # wall clock, as the server stamps impressions (same machine)
                result.ranked_s = max(result.ranked_s, time.monotonic() - started)
        except (TimeoutError, aiohttp.ClientError) as exc:
            result.errors[type(exc).__name__] = result.errors.get(type(exc).__name__, 0) + 1
            return
        if status != 200:
            result.errors[f"http_{status}"] = result.errors.get(f"http_{status}", 0) + 1
            return
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            result.errors["bad_json_response"] = result.errors.get("bad_json_response", 0) + 1
            return
        items = sorted(payload["items"], key=lambda it: it["position"])
        rows = world.catalog.positions([it["trip_id"] for it in items])
        clicked, expected = world.sample_clicks(worker_rng, user, rows, drifted=drifted)
        key = (user.user_id, drifted)
        if key not in oracle_cache:
            oracle_cache[key] = world.oracle_expected_clicks(user, cfg.k, drifted=drifted)
        events = []
        dwell_rng = np.random.default_rng([seed, i, 1]) if cfg.dwell_s > 0 and clicked.any() else None
        click_at = received
        for item, hit in zip(items, clicked, strict=True):
            if not hit:
                continue
            ts = received + (float(dwell_rng.uniform(0.0, cfg.dwell_s)) if dwell_rng is not None else 0.0)
            click_at = max(click_at, ts)
            base = {"session_id": session_id, "request_id": payload["request_id"], "trip_id": item["trip_id"],
                    "ts": ts}  # fmt: skip
            events.append({**base, "type": "click"})
            if worker_rng.random() < cfg.save_p:
                events.append({**base, "type": "save"})
            if worker_rng.random() < cfg.booking_p:
                events.append({**base, "type": "booking_start"})
        if events:
            await asyncio.sleep(max(0.0, click_at - time.time()))  # the user has clicked: now it is reported
            try:
                async with (
                    event_slots,
                    session.post(
                        f"{url}/v1/events", data=orjson.dumps({"events": events}), headers=headers
                    ) as resp,
                ):
                    if resp.status == 202:
                        result.events_posted += len(events)
                    else:
                        result.errors[f"events_http_{resp.status}"] = (
                            result.errors.get(f"events_http_{resp.status}", 0) + 1
                        )
            except (TimeoutError, aiohttp.ClientError) as exc:
                result.errors[type(exc).__name__] = result.errors.get(type(exc).__name__, 0) + 1
        result.outcomes.append(
            RequestOutcome(t, payload["variant"], payload["policy"], user.segment, len(items), int(clicked.sum()),
                           expected, oracle_cache[key], latency, drifted)
        )  # fmt: skip
        if progress is not None:
            progress(t)

    async def chain(session: aiohttp.ClientSession, indices: list[int]) -> None:
        for i in indices:
            await one(session, i)

    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(limit=2 * cfg.concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        running: set[asyncio.Task[None]] = set()
        for indices in chains:
            if stop_after_s is not None and indices[0] / cfg.rate_rps > stop_after_s:
                result.unsent += len(indices)  # due after the end of the run
                continue
            # A session starts when its first request is due; finished chains are let go.
            await asyncio.sleep(max(0.0, started + indices[0] / cfg.rate_rps - time.monotonic()))
            task = asyncio.create_task(chain(http, indices))
            running.add(task)
            task.add_done_callback(running.discard)
        while running:
            await asyncio.gather(*list(running))
    result.duration_s = time.monotonic() - started
    return result
