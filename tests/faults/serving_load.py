"""Load against an in-process scoring worker, shared by the scoring and whole-loop fault tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.scoring.serving import CATALOG

IDS = [t.trip_id for t in CATALOG.trips[:200]]


class Load:
    """Concurrent /v1/rank requests until stopped; keeps every response."""

    def __init__(self, srv: Any, concurrency: int = 6, pause_s: float = 0.002) -> None:
        self.srv = srv
        self.results: list[tuple[int, dict[str, Any]]] = []
        self.errors: list[BaseException] = []
        self._pause_s = pause_s
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
            await asyncio.sleep(self._pause_s)

    def count(self) -> int:
        return len(self.results)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def failed(self) -> list[Any]:
        return [r for r in self.results if r[0] != 200] + self.errors


async def until(cond: Any, timeout: float, what: str = "condition") -> None:
    """Poll ``cond()`` every 50 ms; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"{what} not met in {timeout:g} s"
        await asyncio.sleep(0.05)


async def readyz(srv: Any) -> dict[str, Any]:
    async with srv.client.get("/readyz") as r:
        body: dict[str, Any] = await r.json()
        return body


def log_counters(srv: Any) -> dict[str, float]:
    """The impression log's record counters by outcome (sent, spooled, replayed, dropped)."""
    out = {"sent": 0.0, "spooled": 0.0, "replayed": 0.0, "dropped": 0.0}
    for fam in srv.svc.metrics.registry.collect():
        for s in fam.samples:
            if s.name == "smarttrip_scoring_log_records_total":
                out[s.labels["outcome"]] += s.value
    return out
