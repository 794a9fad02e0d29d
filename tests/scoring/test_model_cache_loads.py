"""The model cache deserialises every model in one thread of its own (one malloc arena; scoring.model_cache)."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace
from typing import Any, cast

from bandit.logistic import LogisticLearner
from bandit.protocol import Learner
from monitoring.scoring_metrics import ScoringMetrics
from scoring.model_cache import ModelCache, RedisHealth

SEGMENTS = ("adventure", "luxury", "budget", "culture", "general", "_all")


class _Store:
    """The two reads :meth:`ModelCache.sync` makes, from memory: every pair is at ``version``."""

    def __init__(self) -> None:
        self.version = 1

    async def serving_version(self, policy: str, segment: str, *, gated: bool = False) -> int:
        return self.version

    async def serving(self, policy: str, segment: str, *, gated: bool = False) -> Any:
        return SimpleNamespace(version=self.version, model_bytes=b"m", meta=SimpleNamespace(created_at=0.0))


async def test_overlapping_loads_run_in_one_thread_that_is_not_the_event_loop() -> None:
    threads: list[int] = []

    def loader(data: bytes) -> Learner:
        threads.append(threading.get_ident())
        time.sleep(0.02)  # loads overlap: the default executor would start a thread for each
        return LogisticLearner()

    metrics = ScoringMetrics()
    store = _Store()
    cache = ModelCache(cast(Any, store), pairs=[("logistic", s) for s in SEGMENTS], metrics=metrics,
                       health=RedisHealth(metrics), loader=loader)  # fmt: skip
    try:
        for version in (1, 2, 3):  # new versions of every pair, all loaded at once, three times
            store.version = version
            swapped = await asyncio.gather(*(cache.sync("logistic", s) for s in SEGMENTS))
            assert swapped == [True] * len(SEGMENTS)
            assert {m.version for m in cache.loaded()} == {version}
    finally:
        await cache.stop()
    assert len(threads) == 3 * len(SEGMENTS)
    assert len(set(threads)) == 1, f"loads ran in {len(set(threads))} threads"
    assert threads[0] != threading.get_ident()


async def test_a_stopped_cache_loads_again_in_a_new_thread() -> None:
    names: list[str] = []

    def loader(data: bytes) -> Learner:
        names.append(threading.current_thread().name)
        return LogisticLearner()

    metrics = ScoringMetrics()
    store = _Store()
    cache = ModelCache(cast(Any, store), pairs=[("logistic", "adventure")], metrics=metrics,
                       health=RedisHealth(metrics), loader=loader)  # fmt: skip
    assert await cache.sync("logistic", "adventure")
    await cache.stop()
    store.version = 2
    assert await cache.sync("logistic", "adventure")
    await cache.stop()
    assert len(names) == 2 and all(n.startswith("model-load") for n in names), names
