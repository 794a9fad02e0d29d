"""The scoring worker: an aiohttp app wiring catalog, live models, experiment, ranking and the impression log.

Run it with ``smarttrip serve`` (or ``python -m scoring.server``); settings
come from ``SMARTTRIP_*`` variables (:mod:`scoring.settings`). Startup order:
the HTTP port opens at once (``/healthz`` answers, ``/readyz`` says 503);
the catalog loads in a worker thread; the experiment and the models are read
from Redis (bounded by a few seconds, never fatal: without Redis the worker
serves the rules policy and keeps trying); the Kafka producer starts in the
background (records spool until it does). After startup ``gc.freeze()``
moves the long-lived objects (catalog, models) out of the collector's way,
which keeps full collections from adding milliseconds to p99.

Why aiohttp (measured on this 2-core machine, wrk, 16 connections, see
``scoring/README-scoring.md``): a trivial endpoint serves ~18,000 requests/s
(p99 1.9 ms), i.e. ~55 µs of framework cost per request, and aiokafka and
redis.asyncio share its event loop; it is already a dependency.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import redis.asyncio as aredis
from aiohttp import web
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bandit.segments import GLOBAL_SEGMENT
from features.catalog import Catalog
from features.context import SEGMENTS
from features.generator import generate_catalog
from features.loader import load_catalog
from monitoring import memory_probe
from monitoring.scoring_metrics import ScoringMetrics
from scoring.api import SERVICES, Services, add_routes, middleware
from scoring.catalog_source import CatalogSource
from scoring.experiment_store import ExperimentStore, initial_experiment
from scoring.impression_log import ImpressionLog, Producer, aiokafka_factory
from scoring.model_cache import ModelCache, RedisHealth
from scoring.openapi import document_bytes
from scoring.pseudonym import Pseudonymizer
from scoring.rate_limit import RateLimiter
from scoring.service import CatalogState, Ranker
from scoring.settings import ServeSettings
from scoring.spool import Spool
from stream.model_store import ModelStore
from stream.model_store_async import AsyncModelStore

__all__ = [
    "LEARNED_POLICIES",
    "create_app",
    "load_configured_catalog",
    "main",
    "run",
    "serve_until_stopped",
]

log = logging.getLogger(__name__)

#: Policies whose models the cache follows, for every segment.
LEARNED_POLICIES = ("logistic", "linucb", "vw")


def load_configured_catalog(settings: ServeSettings) -> Catalog | None:
    """The catalog file of ``SMARTTRIP_CATALOG``, else a synthetic one, else None."""
    if settings.catalog:
        return load_catalog(settings.catalog).catalog
    if settings.synthetic_trips:
        return generate_catalog(
            n_trips=settings.synthetic_trips, seed=settings.synthetic_seed, start=dt.date.today()
        )
    return None


def create_app(
    settings: ServeSettings,
    *,
    catalog: Catalog | None = None,
    metrics: ScoringMetrics | None = None,
    producer_factory: Callable[[], Producer] | None = None,
    clock: Callable[[], float] = time.time,
    today: Callable[[], dt.date] | None = None,
    startup_timeout: float = 3.0,
    worker: int = 0,
) -> web.Application:
    """The aiohttp application (start it with ``web.run_app`` or an ``AppRunner``).

    ``catalog`` skips loading one from the settings; ``producer_factory``
    replaces aiokafka (tests); ``today`` fixes the request date.
    """
    metrics = metrics or ScoringMetrics(clock=clock)
    redis_client = aredis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        retry=Retry(NoBackoff(), 1),
    )
    health = RedisHealth(metrics)
    store = AsyncModelStore(redis_client, namespace=settings.model_namespace)
    models = ModelCache(
        store,
        pairs=[(p, s) for p in LEARNED_POLICIES for s in (*SEGMENTS, GLOBAL_SEGMENT)],
        metrics=metrics,
        health=health,
        poll_s=settings.model_poll_s,
        min_swap_s=settings.model_min_swap_s,
        clock=clock,
        gated=settings.model_serve == "promoted",
        shadow=settings.shadow_sample > 0,
    )
    experiments = ExperimentStore(
        redis_client,
        namespace=settings.model_namespace,
        initial=initial_experiment(settings.experiment),
        metrics=metrics,
        health=health,
    )
    models.on_poll.append(experiments.refresh)
    impression_log = ImpressionLog(
        producer_factory or aiokafka_factory(settings.kafka_bootstrap),
        Spool(Path(settings.spool_dir) / f"worker-{worker}", max_bytes=settings.spool_max_bytes),
        metrics,
        queue_max=settings.log_queue,
        stall_s=settings.kafka_stall_s,
    )
    state = CatalogState()
    live_catalog = None
    if catalog is None and settings.catalog_source == "redis":
        live_catalog = CatalogSource(
            redis_client, namespace=settings.model_namespace, state=state, metrics=metrics,
            poll_s=settings.model_poll_s, today=today,
        )  # fmt: skip
    sync_store: list[ModelStore] = []

    def model_store() -> ModelStore:
        if not sync_store:
            sync_store.append(
                ModelStore.from_url(
                    settings.redis_url, timeout=settings.redis_timeout_s, namespace=settings.model_namespace
                )
            )
        return sync_store[0]

    ranker = Ranker(
        catalog=state,
        models=models,
        experiments=experiments,
        log=impression_log,
        metrics=metrics,
        topic=settings.topic_impressions,
        exploration_seed=settings.exploration_seed,
        clock=clock,
        today=today,
        shadow_sample=settings.shadow_sample if settings.model_serve == "promoted" else 0.0,
        global_min_examples=settings.global_min_examples,
        global_shrinkage=settings.global_shrinkage,
    )
    services = Services(
        settings=settings,
        ranker=ranker,
        log=impression_log,
        models=models,
        experiments=experiments,
        catalog=state,
        metrics=metrics,
        pseudonymize=Pseudonymizer(settings.pseudonym_key),
        model_store=model_store,
        openapi=document_bytes(),
        limiter=RateLimiter(rate=settings.rate_limit_rps, burst=settings.rate_limit_burst),
    )
    app = web.Application(middlewares=[middleware], client_max_size=settings.max_body_bytes)
    app[SERVICES] = services
    add_routes(app)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await impression_log.start()
        if live_catalog is not None:
            loader = asyncio.create_task(live_catalog.start(initial_timeout=startup_timeout))
        else:
            loader = asyncio.create_task(_load_catalog(settings, state, metrics, catalog))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(startup_timeout):
                await experiments.start()
        await models.start(initial_timeout=startup_timeout)
        if catalog is not None or live_catalog is not None:
            await loader
        gc.freeze()  # catalog, models, modules: long-lived; keep them out of every collection
        yield
        loader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await loader
        if live_catalog is not None:
            await live_catalog.stop()
        await models.stop()
        await impression_log.stop()
        await redis_client.aclose()
        for st in sync_store:
            st.close()

    app.cleanup_ctx.append(lifecycle)
    return app


async def _load_catalog(
    settings: ServeSettings, state: CatalogState, metrics: ScoringMetrics, given: Catalog | None
) -> None:
    try:
        catalog = given if given is not None else await asyncio.to_thread(load_configured_catalog, settings)
    except Exception as exc:  # a bad file: stay unready and say why
        state.error = str(exc)[:2000]
        log.error("catalog: cannot load %s: %s", settings.catalog, exc)
        return
    if catalog is None:
        state.error = "no catalog configured (SMARTTRIP_CATALOG or SMARTTRIP_SYNTHETIC_TRIPS)"
        log.error("catalog: %s", state.error)
        return
    state.set(catalog)
    metrics.catalog_trips.set(len(catalog))
    log.warning("catalog %s loaded: %d trips", catalog.version, len(catalog))


async def serve_until_stopped(settings: ServeSettings, *, worker: int = 0, reuse_port: bool = False) -> None:
    """Serve on the configured port (and ``metrics_port + worker`` if set) until SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    app = create_app(settings, worker=worker)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=10.0)
    await runner.setup()
    try:
        site = web.TCPSite(
            runner, settings.serve_host, settings.serve_port, reuse_port=reuse_port, backlog=1024
        )
        await site.start()
        if settings.metrics_port:
            await web.TCPSite(runner, settings.serve_host, settings.metrics_port + worker).start()
        log.warning("scoring worker %d (pid %d) listening on %s", worker, os.getpid(), ", ".join(
            f"http://{h}:{p}" for h, p in (a[:2] for a in runner.addresses)))  # fmt: skip
        await stop.wait()
    finally:
        await runner.cleanup()


def run(settings: ServeSettings, *, worker: int = 0, reuse_port: bool = False) -> None:
    """Serve in this process until SIGINT/SIGTERM (one worker; see :mod:`scoring.workers` for several)."""
    # aiokafka logs every failed reconnect (twice a second); the impression log reports Kafka's state itself.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    memory_probe.install("scoring")  # off unless SMARTTRIP_MEMORY_PROBE is set (a debugging aid)
    asyncio.run(serve_until_stopped(settings, worker=worker, reuse_port=reuse_port))


def main() -> None:
    """``python -m scoring.server``: one worker, settings from the environment.

    With ``SMARTTRIP_SERVE_WORKERS`` > 1 this process becomes the supervisor of
    that many workers (:mod:`scoring.workers`), which set ``SMARTTRIP_WORKER_INDEX``
    to number themselves and share the port (``SO_REUSEPORT``).
    """
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = ServeSettings.from_env()
    index = int(os.environ.get("SMARTTRIP_WORKER_INDEX", "-1"))
    if index < 0 and settings.serve_workers > 1:
        from scoring.workers import supervise

        raise SystemExit(supervise(settings))
    run(settings, worker=max(index, 0), reuse_port=index >= 0)


if __name__ == "__main__":  # pragma: no cover
    main()
