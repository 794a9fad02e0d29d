"""The live catalog of a scoring worker: follows the catalog store, swaps versions without blocking.

Sources, as for models (:mod:`scoring.model_cache`): one read at start; the
store's pub/sub notices (``<namespace>:catalog``) trigger a load at once; a
poll every ``SMARTTRIP_MODEL_POLL_S`` compares the current version with the
served one (notices are fire-and-forget).

A load never blocks requests and never mixes versions:

1. the version's raw blobs are read in one atomic script (records, columns
   and metadata of the same version);
2. a worker thread decodes and validates the records and builds the new
   :class:`~features.catalog.Catalog` *aside* — available trips only, its
   id → row index, and its per-day caches for today (bookable rows and the
   static φ block), so the first request on it is as fast as any other;
3. the event loop swaps one reference (:meth:`scoring.service.CatalogState.set`).

A request reads the reference once at its start and uses that catalog to the
end (ranking is synchronous: no swap can interleave), so every response and
impression is computed on exactly one version, which it names
(``catalog_version``). A version that fails to load is counted
(``smarttrip_scoring_catalog_load_errors_total``) and the previous one keeps
serving; when Redis is away the last loaded version serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import redis.asyncio as aredis

from features.catalog import Catalog
from features.catalog_records import CatalogMeta, CorruptCatalog, serving_catalog, status_counts
from features.catalog_store import (
    CatalogKeys,
    CatalogStoreError,
    EmptyStore,
    StoreUnavailable,
    current_version_async,
    fetch_version_async,
    parse_read,
)
from features.context import Preferences
from features.phi import phi
from monitoring.scoring_metrics import ScoringMetrics
from scoring.filters import candidate_rows
from scoring.service import CatalogState

__all__ = ["CatalogSource", "build_serving"]

log = logging.getLogger(__name__)

#: GIL switch interval while a catalog version is built aside (the default is 5 ms).
BUILD_SWITCH_INTERVAL_S = 0.0002


Built = tuple[CatalogMeta, Catalog, dict[str, int], dict[str, int]]


@contextlib.contextmanager
def _quiet_build(switch_interval_s: float) -> Iterator[None]:
    """Keep a build in a worker thread from stalling the event loop.

    - The GIL: a CPU-bound thread keeps it for the interpreter's switch
      interval (5 ms by default) each time the event loop thread, which gives
      it up at every socket read and write, asks for it back; a request does
      several, so it would wait tens of ms behind a build. The interval is
      shortened while the build runs.
    - The cyclic collector: a build allocates ~10 objects per trip, which
      triggers full collections that stop every thread for as long as they
      walk the heap (measured: 1–2 per 5,000-trip build). A build makes no
      reference cycles (its garbage goes by reference counting), so automatic
      collection is paused while it runs.

    Builds are serialised (one lock per source, one source per worker), so
    restoring the previous settings afterwards is safe.
    """
    previous = sys.getswitchinterval()
    collecting = gc.isenabled()
    sys.setswitchinterval(min(previous, switch_interval_s))
    gc.disable()
    try:
        yield
    finally:
        sys.setswitchinterval(previous)
        if collecting:
            gc.enable()


def build_serving(reply: list[Any], today: dt.date) -> Built:
    """Decode a READ reply and build the serving catalog with warm caches (runs in a worker thread)."""
    with _quiet_build(BUILD_SWITCH_INTERVAL_S):
        return _build(reply, today)


def _build(reply: list[Any], today: dt.date) -> Built:
    version = parse_read(reply, validate=False)  # rows validated by the writer; the digest is checked
    catalog = serving_catalog(version.trips, version.meta.label)
    index = {tid: row for row, tid in enumerate(catalog.trip_ids.tolist())}
    candidate_rows(catalog, today)  # caches today's bookable rows in catalog.day_cache
    if len(catalog):
        phi(catalog, Preferences(), today, None)  # caches today's static φ block
    return version.meta, catalog, index, status_counts(version.trips)


class CatalogSource:
    """Keeps :class:`~scoring.service.CatalogState` on the store's current version (module docstring)."""

    def __init__(
        self,
        client: aredis.Redis,
        *,
        namespace: str,
        state: CatalogState,
        metrics: ScoringMetrics,
        poll_s: float = 2.0,
        today: Callable[[], dt.date] | None = None,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.keys = CatalogKeys(namespace)
        self.state = state
        self.metrics = metrics
        self.poll_s = poll_s
        self.today = today or (lambda: dt.datetime.now(dt.UTC).date())
        self.meta: CatalogMeta | None = None
        self.subscribed = False
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._failed_version = 0  # a version that failed to load is not retried until a newer one

    async def start(self, initial_timeout: float = 5.0) -> None:
        """First load (bounded by ``initial_timeout``), then follow notices and poll in the background."""
        try:
            async with asyncio.timeout(initial_timeout):
                await self.sync()
        except (TimeoutError, StoreUnavailable) as exc:
            self.state.error = f"catalog store: {exc or 'initial load timed out'}"
            log.error("catalog: no initial load from redis (%s); not ready until it answers", exc)
        self._tasks = [
            asyncio.create_task(self._follow_notices(), name="catalog-notices"),
            asyncio.create_task(self._poll(), name="catalog-poll"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=3.0)
        self._tasks = []

    async def sync(self) -> bool:
        """Load the store's current version if it is not the one served; True if a catalog was swapped in.

        Raises :class:`StoreUnavailable` when Redis does not answer (the served catalog stays).
        """
        async with self._lock:
            current = await current_version_async(self.client, self.namespace)
            if current == 0:
                if self.state.catalog is None:
                    self.state.error = (
                        "no catalog published in the store yet (smarttrip catalog publish FILE)"
                    )
                return False
            served = self.meta.version if self.meta is not None else 0
            if current == served or current == self._failed_version:
                return False
            started = time.perf_counter()
            try:
                reply = await fetch_version_async(self.client, self.namespace, current)
                meta, catalog, index, by_status = await asyncio.to_thread(build_serving, reply, self.today())
            except (EmptyStore, StoreUnavailable):
                raise
            except (CorruptCatalog, CatalogStoreError, ValueError) as exc:  # a bad version: keep serving
                self._failed_version = current
                self.metrics.catalog_load_errors.labels(type(exc).__name__).inc()
                log.error("catalog version %d: cannot load it: %s", current, exc)
                return False
            self.state.set(catalog, index)  # the swap: one reference, in the event loop
            self.meta = meta
            self.metrics.set_catalog(meta.version, meta.created_at, by_status, len(catalog))
            log.info("catalog version %d swapped in: %d servable trips, built in %.0f ms", meta.version,
                     len(catalog), 1000 * (time.perf_counter() - started))  # fmt: skip
            return True

    async def _follow_notices(self) -> None:
        backoff = 0.2
        while not self._stopping:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.keys.channel)
                self.subscribed = True
                backoff = 0.2
                await self._sync_quietly()  # whatever was published while unsubscribed
                while not self._stopping:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        await self._sync_quietly()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away or a broken connection: resubscribe
                log.debug("catalog notices: %s; resubscribing", exc)
            finally:
                self.subscribed = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.poll_s)

    async def _poll(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.poll_s)
            await self._sync_quietly()

    async def _sync_quietly(self) -> None:
        try:
            await self.sync()
        except asyncio.CancelledError:
            raise
        except StoreUnavailable as exc:
            log.debug("catalog: redis unreachable (%s); serving version %s", exc,
                      self.meta.version if self.meta else None)  # fmt: skip
        except Exception:
            log.exception("catalog: unexpected error while syncing")
