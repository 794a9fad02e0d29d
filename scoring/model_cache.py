"""The live model cache: the serving model of every (policy, segment), swapped without blocking.

Sources, in order of speed:

1. at start, every (policy, segment) the worker can serve is read once;
2. the store's pub/sub notices (``<namespace>:models``) trigger a reload of
   the pair they name, right away — but at most once per ``min_swap_s``
   (``SMARTTRIP_MODEL_MIN_SWAP_S``) per pair: learners publish several times a
   second, and loading every version of 15 models (a VW model takes ~10 ms of
   CPU, holding the GIL) would spend a fifth of a core on swaps nobody needs;
   notices within the interval coalesce into one reload of the newest version;
3. a poll every ``SMARTTRIP_MODEL_POLL_S`` (which respects ``min_swap_s`` too:
   a pair swapped within it is scheduled as a notice would be) compares each pair's serving
   version (pin, else current; with ``SMARTTRIP_MODEL_SERVE=promoted``: pin,
   else the version the promotion gate promoted) with the loaded one — the fallback for lost
   notices (pub/sub is fire-and-forget) and after reconnecting.

A load reads the bytes (:class:`~stream.model_store_async.AsyncModelStore`),
deserialises them in the cache's one loader thread (:func:`bandit.protocol.learner_from_bytes`;
a VW model takes milliseconds), checks
the learner kind against the policy, then swaps one dict entry in the event
loop: a request sees either the old model or the new one, never waits.
Models are never mutated after loading, so a request that started on the
old one finishes on it.

One loader thread, not the event loop's default executor: glibc gives every
thread that allocates its own malloc arena, and model loads allocate and
free tens of MiB, which each arena then keeps (``monitoring.memory_probe``
at the end of the soak's warm-up: 112 of the scoring worker's 195 MiB of
malloc heap were free, ``malloc_trim(0)`` gave back 91 MiB; ``smaps``: six
arenas of ~30 MiB each, one per executor thread). The default executor
starts a thread (so an arena) whenever loads overlap, up to six on two
cores, so the worker's RSS stepped up ~30 MiB at a time long after warm-up.
With one thread: two arenas, flat after the first minutes. Loads hold the
GIL for most of their time anyway, so one thread loses nothing.

Redis away: every read fails fast (socket timeouts of ``SMARTTRIP_REDIS_TIMEOUT_S``),
:attr:`ModelCache.redis_ok` turns False (``smarttrip_scoring_redis_up`` 0,
``/readyz`` detail), and the loaded models keep serving; a pair that never
had a model is served by the rules policy. With the gate on (``gated``), a
pair with no promoted (or pinned) version is served by the rules policy too:
a candidate the gate has not promoted never serves. With ``shadow`` too, the
learner's latest version (the candidate), when it is not the served one, is
loaded next to it for shadow scoring (:mod:`scoring.shadow`): never served.
When the gate has nominated a version to judge, that one is the candidate. A Redis that comes back empty
(no persistence) leaves the last known models in place until new versions
are published.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bandit.protocol import Learner, learner_from_bytes
from bandit.segments import SegmentedLearner
from monitoring.scoring_metrics import ScoringMetrics
from scoring.policies import LoadedModel, fast_scorer, kind_matches
from stream.model_store import ModelRecord, ModelStoreError, NotPromoted, StoreUnavailable, UnknownModel
from stream.model_store_async import AsyncModelStore

__all__ = ["ModelCache", "RedisHealth"]

log = logging.getLogger(__name__)

Key = tuple[str, str]


class RedisHealth:
    """Whether Redis answered last time anyone asked (shared by the cache and the experiment store)."""

    def __init__(self, metrics: ScoringMetrics) -> None:
        self.metrics = metrics
        self.ok = False
        self.last_error: str | None = "not contacted yet"
        self.since = time.time()

    def success(self) -> None:
        if not self.ok:
            if self.last_error != "not contacted yet":
                log.warning("redis is reachable again")
            self.ok, self.last_error, self.since = True, None, time.time()
            self.metrics.redis_up.set(1)

    def failure(self, error: BaseException | str) -> None:
        if self.ok:
            log.error("redis unreachable (%s): serving the last known models", error)
            self.since = time.time()
        self.ok = False
        self.last_error = str(error)
        self.metrics.redis_up.set(0)


class ModelCache:
    """Loaded models by (policy, segment), kept current from the store (see the module docstring)."""

    def __init__(
        self,
        store: AsyncModelStore,
        *,
        pairs: Iterable[Key],
        metrics: ScoringMetrics,
        health: RedisHealth,
        poll_s: float = 2.0,
        min_swap_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        loader: Callable[[bytes], Learner | SegmentedLearner] = learner_from_bytes,
        gated: bool = False,
        shadow: bool = False,
    ) -> None:
        self.store = store
        self.pairs = tuple(pairs)
        self.metrics = metrics
        self.health = health
        self.poll_s = poll_s
        self.min_swap_s = min_swap_s
        self.clock = clock
        self.loader = loader
        self.gated = gated  # serve pin > promoted > rules (the promotion gate) instead of pin > current
        self.shadow = gated and shadow  # also load the current version, when not served, for shadow scoring
        self._candidates: dict[Key, LoadedModel] = {}
        self.on_poll: list[Callable[[], Any]] = []  # extra async refreshers run with each poll
        self._models: dict[Key, LoadedModel] = {}
        self._locks: dict[Key, asyncio.Lock] = {}
        self._vanished: set[Key] = set()  # loaded, then gone from Redis (restarted empty): versions restart
        self._tasks: list[asyncio.Task[None]] = []
        self._due: dict[Key, asyncio.Task[None]] = {}  # one scheduled reload per pair at most
        self._swapped_at: dict[Key, float] = {}  # monotonic time of each pair's last swap
        self.subscribed = False
        self.last_poll: float | None = None
        self._stopping = False
        # One thread for every load: one malloc arena (see the module docstring).
        self._executor: ThreadPoolExecutor | None = None

    # -- the request side
    def get(self, policy: str, segment: str) -> LoadedModel | None:
        return self._models.get((policy, segment))

    def candidate(self, policy: str, segment: str) -> LoadedModel | None:
        """The candidate for shadow scoring (the gate's nominee, else the latest version) if not served."""
        return self._candidates.get((policy, segment))

    def loaded(self) -> list[LoadedModel]:
        return sorted(self._models.values(), key=lambda m: (m.policy, m.segment))

    def status(self) -> dict[str, Any]:
        return {
            "redis": "ok" if self.health.ok else "unreachable",
            "redis_error": self.health.last_error,
            "notices": "subscribed" if self.subscribed else "not subscribed",
            "models_loaded": len(self._models),
            "serving": (
                "live models"
                if self.health.ok
                else ("last known models" if self._models else "rules policy (no model ever loaded)")
            ),
            "models": {
                f"{m.policy}/{m.segment}": {
                    "version": m.version,
                    "age_s": round(self.clock() - m.created_at, 1),
                }
                for m in self.loaded()
            },
        }

    # -- lifecycle
    async def start(self, initial_timeout: float = 5.0) -> None:
        """First load (bounded by ``initial_timeout``), then follow notices and poll in the background."""
        try:
            async with asyncio.timeout(initial_timeout):
                await self.sync_all()
        except (TimeoutError, StoreUnavailable) as exc:  # start anyway: rules until Redis answers
            self.health.failure(exc if str(exc) else "initial load timed out")
            log.error("models: no initial load from redis (%s); serving rules until it answers", exc)
        self._tasks = [
            asyncio.create_task(self._follow_notices(), name="model-notices"),
            asyncio.create_task(self._poll(), name="model-poll"),
        ]

    async def stop(self) -> None:
        # A flag as well as cancel(): redis-py's read timeouts can swallow a cancellation
        # that arrives just as they expire, and the loops would then go on.
        self._stopping = True
        tasks = [*self._tasks, *self._due.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=3.0)
        self._tasks = []
        self._due.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    # -- loading
    async def sync_all(self, *, throttled: bool = False) -> None:
        """Bring every pair to its serving version; marks Redis down on the first unreachable read.

        ``throttled`` (the poll): a pair swapped less than ``min_swap_s`` ago is
        not read now but scheduled as a notice would be (:meth:`_schedule`), so
        that the poll too loads a pair at most once per ``min_swap_s``. Without
        that, under a learner publishing all the time, every poll reloaded
        every pair next to the notices' reloads: two loads per pair per second
        instead of one (with a VW model ~3 ms of CPU each).
        """
        now = time.monotonic()
        for policy, segment in self.pairs:
            key = (policy, segment)
            if throttled and now - self._swapped_at.get(key, -math.inf) < self.min_swap_s:
                self._schedule(key)
                continue
            await self.sync(policy, segment)
        for refresh in self.on_poll:
            await refresh()
        self.last_poll = self.clock()

    async def sync(self, policy: str, segment: str) -> bool:
        """Load the pair's serving version if it is not the one loaded; True if a model was swapped in.

        Raises nothing for store trouble (it is logged, counted and reflected in :attr:`health`),
        except :class:`StoreUnavailable`, which callers treat as "Redis is away".
        """
        swapped = await self._sync_served(policy, segment)
        if self.shadow:
            await self._sync_candidate(policy, segment)
        return swapped

    async def _sync_candidate(self, policy: str, segment: str) -> None:
        key = (policy, segment)
        try:
            current, _, _, nominated = await self.store.versions(policy, segment)
            if nominated is not None:  # the version the gate is judging, else the learner's latest
                current = nominated
            served = self._models.get(key)
            if served is not None and served.version == current:
                self._candidates.pop(key, None)
                return
            have = self._candidates.get(key)
            if have is not None and have.version == current:
                return
            record = await self.store.get(policy, segment, current)
        except UnknownModel:
            self._candidates.pop(key, None)
            return
        except StoreUnavailable:
            raise
        except ModelStoreError as exc:
            log.error("candidate %s/%s: cannot read it from the store: %s", policy, segment, exc)
            return
        model = await self._load(policy, segment, record)
        if model is not None:
            self._candidates[key] = model

    async def _load(self, policy: str, segment: str, record: ModelRecord) -> LoadedModel | None:
        """Deserialise ``record`` in a worker thread and check its kind; None (logged, counted) if unusable."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-load")
        try:
            learner = await asyncio.get_running_loop().run_in_executor(
                self._executor, self.loader, record.model_bytes
            )
        except Exception as exc:  # ModelFormatError and anything a corrupt blob triggers
            self.metrics.model_load_errors.labels(policy, "format").inc()
            log.error("model %s/%s v%d: cannot load it: %s", policy, segment, record.version, exc)
            return None
        if not kind_matches(policy, learner):
            self.metrics.model_load_errors.labels(policy, "kind").inc()
            log.error("model %s/%s v%d: holds a %r learner; refusing it", policy, segment, record.version,
                      getattr(learner, "kind", "?"))  # fmt: skip
            return None
        return LoadedModel(
            policy,
            segment,
            record.version,
            learner,
            record.meta.created_at,
            self.clock(),
            fast_scorer(learner),
        )

    async def _sync_served(self, policy: str, segment: str) -> bool:
        key = (policy, segment)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            try:
                version = await self.store.serving_version(policy, segment, gated=self.gated)
                self.health.success()
                current = self._models.get(key)
                if current is not None and current.version == version and key not in self._vanished:
                    return False
                record = await self.store.serving(policy, segment, gated=self.gated)
            except NotPromoted:
                self.health.success()
                if self._models.pop(key, None) is not None:  # unpinned with nothing promoted: rules
                    log.warning("model %s/%s: nothing promoted or pinned; serving rules", policy, segment)
                return False
            except UnknownModel:
                self.health.success()
                if key in self._models:
                    self._vanished.add(key)
                return False  # nothing published (or Redis came back empty): keep what we have
            except StoreUnavailable as exc:
                self.health.failure(exc)
                raise
            except ModelStoreError as exc:
                self.metrics.model_load_errors.labels(policy, "store").inc()
                log.error("model %s/%s: cannot read it from the store: %s", policy, segment, exc)
                return False
            model = await self._load(policy, segment, record)
            if model is None:
                return False
            self._models[key] = model  # the swap: one dict assignment in the event loop
            self._swapped_at[key] = time.monotonic()
            self._vanished.discard(key)
            self.metrics.set_model(policy, segment, record.version, record.meta.created_at)
            log.info("model %s swapped in", model.label)
            return True

    async def _follow_notices(self) -> None:
        backoff = 0.2
        while not self._stopping:
            try:
                async with self.store.subscribe() as notices:
                    self.subscribed = True
                    backoff = 0.2
                    await self.sync_all()  # catch up on whatever was missed while unsubscribed
                    while not self._stopping:
                        notice = await notices.next(1.0)
                        if notice is not None and (notice.policy, notice.segment) in self.pairs:
                            self._schedule((notice.policy, notice.segment))
            except asyncio.CancelledError:
                raise
            except StoreUnavailable as exc:
                self.health.failure(exc)
            except Exception:
                log.exception("model notices: unexpected error; resubscribing")
            self.subscribed = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.poll_s)

    def _schedule(self, key: Key) -> None:
        """Reload ``key`` now, or when ``min_swap_s`` has passed since its last swap."""
        if key in self._due:
            return  # the scheduled reload will read whatever version is newest then
        wait = self._swapped_at.get(key, -math.inf) + self.min_swap_s - time.monotonic()
        self._due[key] = asyncio.create_task(self._sync_later(key, max(wait, 0.0)), name=f"model-{key}")

    async def _sync_later(self, key: Key, wait: float) -> None:
        try:
            if wait > 0:
                await asyncio.sleep(wait)
            await self.sync(*key)
        except asyncio.CancelledError:
            raise
        except StoreUnavailable as exc:
            self.health.failure(exc)
        except Exception:
            log.exception("model %s/%s: reload failed", *key)
        finally:
            self._due.pop(key, None)

    async def _poll(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.poll_s)
            try:
                await self.sync_all(throttled=True)
            except asyncio.CancelledError:
                raise
            except StoreUnavailable as exc:
                self.health.failure(exc)
            except Exception:
                log.exception("model poll: unexpected error")
