"""Fixtures of the catalog tests: a redis-server of their own (no broker) and unique namespaces."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from features.catalog_store import CatalogStore
from stream.embedded import EmbeddedServices, embedded_services


@pytest.fixture(scope="module")
def redis_only() -> Iterator[EmbeddedServices]:
    with embedded_services(kafka=False) as svc:
        yield svc


@pytest.fixture
def store(redis_only: EmbeddedServices) -> Iterator[CatalogStore]:
    client = redis.Redis.from_url(redis_only.redis_url, socket_timeout=5)
    try:
        yield CatalogStore(client, namespace=f"t{uuid.uuid4().hex[:8]}", history=3)
    finally:
        client.close()
