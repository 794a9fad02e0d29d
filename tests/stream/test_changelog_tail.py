"""Reading a changelog's tail up to the real end of the log (see stream/changelog_tail.py)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from stream import changelog_tail
from stream.changelog_tail import apply_tail, read_tail
from stream.embedded import EmbeddedServices, ensure_topics
from tests.stream.kafka_helpers import produce


def test_apply_tail_leaves_each_key_at_its_last_record() -> None:
    store = {b"a": b"1", b"b": b"old", b"c": b"3"}
    n = apply_tail(store, [(b"b", b"2"), (b"a", None), (b"d", b"4"), (b"b", b"5"), (b"x", None)])
    assert n == 5 and store == {b"b": b"5", b"c": b"3", b"d": b"4"}


@pytest.mark.integration
async def test_read_tail_reaches_the_last_record(services: EmbeddedServices) -> None:
    topic = f"changelog-{uuid.uuid4().hex[:8]}"
    ensure_topics(services.bootstrap_servers, {topic: 2})
    # Keys chosen per partition by the producer's partitioner; values number the writes.
    produce(services, [(topic, f"k{i % 50}".encode(), f"v{i}".encode()) for i in range(600)])
    tail = await read_tail(services.bootstrap_servers, topic, [0, 1], back=100)
    final: dict[bytes, bytes] = {}
    apply_tail(final, tail)
    # Every key's last write (i = 550 + k) is in the tail, whatever end offset the broker reports.
    assert final == {f"k{k}".encode(): f"v{550 + k}".encode() for k in range(50)}
    assert await read_tail(services.bootstrap_servers, topic, []) == []


@pytest.mark.integration
async def test_read_tail_waits_for_fetches_slower_than_its_quiet_period(
    services: EmbeddedServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a loaded machine the first fetches can come back empty: the tail is still read in full.

    Before session 5 the read stopped after two empty fetches (0.2 s each), so a
    worker taking over lost the last batch of each partition's state.
    """
    topic = f"changelog-{uuid.uuid4().hex[:8]}"
    ensure_topics(services.bootstrap_servers, {topic: 2})
    produce(services, [(topic, f"k{i % 50}".encode(), f"v{i}".encode()) for i in range(600)])

    class SlowFetches(AIOKafkaConsumer):  # type: ignore[misc]
        empty = 3  # fetches that bring nothing yet, as when the broker or this process is starved

        async def getmany(self, *args: Any, **kwargs: Any) -> Any:
            if SlowFetches.empty:
                SlowFetches.empty -= 1
                await asyncio.sleep(0.2)
                return {}
            return await super().getmany(*args, **kwargs)

    monkeypatch.setattr(changelog_tail, "AIOKafkaConsumer", SlowFetches)
    final: dict[bytes, bytes] = {}
    apply_tail(final, await read_tail(services.bootstrap_servers, topic, [0, 1], back=100))
    assert SlowFetches.empty == 0
    assert final == {f"k{k}".encode(): f"v{550 + k}".encode() for k in range(50)}
