"""Pytest plugin: one embedded Kafka (Tansu) and redis-server for the whole test session.

Why a plugin module rather than conftest code: the root conftest registers it
with ``pytest_plugins = ["tests.embedded_fixtures"]``, and a test run that
needs no integration test never starts a binary (the fixture is lazy).

Set ``SMARTTRIP_KAFKA_BOOTSTRAP`` / ``SMARTTRIP_REDIS_URL`` to run the
integration tests against external services instead. Tests that pause the
broker or stop Redis must restore them (``services.broker_paused()`` does), or
better start their own :func:`stream.embedded.embedded_services`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stream.embedded import EmbeddedServices, embedded_services


@pytest.fixture(scope="session")
def services() -> Iterator[EmbeddedServices]:
    """Kafka with :data:`stream.embedded.DEFAULT_TOPICS` created, and Redis; stopped at session end."""
    with embedded_services() as svc:
        yield svc


@pytest.fixture
def fresh_services() -> Iterator[EmbeddedServices]:
    """A broker and redis-server of the test's own: for crash tests, isolated from the
    state (groups, paused moments, many topics) that earlier tests leave in the shared one."""
    with embedded_services() as svc:
        yield svc
