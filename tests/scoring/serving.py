"""Helpers for tests that run the scoring worker in-process over real HTTP on 127.0.0.1."""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from bandit.lin_ucb import LinUCB
from features.catalog import Catalog
from features.generator import generate_catalog
from scoring.api import SERVICES, Services
from scoring.server import create_app
from scoring.settings import ServeSettings
from scoring.weights import SCORING_WEIGHTS
from stream.embedded import EmbeddedServices, ensure_topics
from stream.model_store import ModelStore

API_TOKEN = "test-api-token-0123456789"  # noqa: S105 - test servers on 127.0.0.1
ADMIN_TOKEN = "test-admin-token-0123456789"  # noqa: S105
API = {"Authorization": f"Bearer {API_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TODAY = dt.date(2026, 3, 1)
CATALOG: Catalog = generate_catalog(n_trips=600, seed=7, start=TODAY)


@dataclass(frozen=True)
class Env:
    """Unique names (topics, Redis namespace, spool dir) for one test."""

    uid: str
    namespace: str
    impressions: str
    interactions: str
    spool_dir: str


def new_env(services: EmbeddedServices, partitions: int = 4) -> Env:
    uid = uuid.uuid4().hex[:8]
    env = Env(uid, f"t{uid}", f"impressions-{uid}", f"interactions-{uid}", tempfile.mkdtemp(prefix="spool-"))
    ensure_topics(services.bootstrap_servers, {env.impressions: partitions, env.interactions: partitions})
    return env


def settings_for(services: EmbeddedServices, env: Env, **overrides: Any) -> ServeSettings:
    base: dict[str, Any] = {
        "api_tokens": (API_TOKEN,),
        "admin_tokens": (ADMIN_TOKEN,),
        "pseudonym_key": b"test-pseudonym-key-0123",
        "redis_url": services.redis_url,
        "model_namespace": env.namespace,
        "model_poll_s": 0.3,
        "redis_timeout_s": 0.5,
        "kafka_bootstrap": services.bootstrap_servers,
        "topic_impressions": env.impressions,
        "topic_interactions": env.interactions,
        "spool_dir": env.spool_dir,
        "kafka_stall_s": 0.5,
        "serve_port": 0,
    }
    return ServeSettings(**{**base, **overrides})


@dataclass
class Running:
    url: str
    app: web.Application
    client: aiohttp.ClientSession

    @property
    def svc(self) -> Services:
        return self.app[SERVICES]

    async def rank(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, Any]:
        async with self.client.post("/v1/rank", json=body, headers=API if headers is None else headers) as r:
            return r.status, await r.json()


@contextlib.asynccontextmanager
async def running(settings: ServeSettings, catalog: Catalog | None = CATALOG) -> AsyncIterator[Running]:
    """Start the app on a free port; stop it (and its sockets) on exit."""
    app = create_app(settings, catalog=catalog, today=lambda: TODAY)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(url) as client:
            yield Running(url, app, client)
    finally:
        await runner.cleanup()


def publish_linucb(
    services: EmbeddedServices, namespace: str, segments: Iterable[str], *, alpha: float = 0.5
) -> LinUCB:
    """Publish a small LinUCB for each segment; returns it."""
    import numpy as np

    model = LinUCB(prior=dict(SCORING_WEIGHTS), prior_scale=0.002, alpha=alpha, position_bias="none")
    rng = np.random.default_rng(0)
    model.learn_many(rng.random((40, 20)), (rng.random(40) < 0.3).astype(float))
    with ModelStore.from_url(services.redis_url, namespace=namespace) as store:
        for segment in segments:
            store.publish_learner("linucb", segment, model, offsets={}, log_epoch="test")
    return model


def topic_values(services: EmbeddedServices, topic: str, expected: int, timeout: float = 20.0) -> list[bytes]:
    """Every value in ``topic`` (reads until ``expected`` values or the timeout)."""
    import time

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=services.bootstrap_servers, group_id=None, enable_auto_commit=False,
        fetch_max_bytes=16 * 1024 * 1024,
    )  # fmt: skip
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        values: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(values) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                values.extend(r.value for r in records)
        return values
    finally:
        consumer.close()


def experiment(*variants: tuple[str, str, float, float], salt: str = "salt-1") -> dict[str, Any]:
    return {
        "name": "exp",
        "salt": salt,
        "variants": [{"name": n, "policy": p, "traffic": t, "epsilon": e} for n, p, t, e in variants],
    }
