"""The join's session store: restored in bulk from its changelog, Faust's recovery left nothing to read."""

from __future__ import annotations

import uuid

import pytest
from faust.types import TP

from stream.changelog_tail import read_log
from stream.embedded import EmbeddedServices, ensure_topics
from stream.faust_app import create_app
from stream.session_store import SessionStore
from stream.settings import StreamSettings
from tests.stream.kafka_helpers import produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _writes(topic: str, n: int) -> list[tuple[str, bytes, bytes | None]]:
    """``n`` changelog writes over 300 keys; every 7th write deletes its key (a tombstone)."""
    return [(topic, f"s{i % 300}".encode(), None if i % 7 == 0 else f"v{i}".encode()) for i in range(n)]


def _replayed(writes: list[tuple[str, bytes, bytes | None]]) -> dict[bytes, bytes]:
    """What replaying the changelog record by record (Faust's recovery) leaves in a store."""
    state: dict[bytes, bytes] = {}
    for _, key, value in writes:
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value
    return state


async def test_read_log_from_the_start_returns_every_record_in_log_order(services: EmbeddedServices) -> None:
    topic = f"log-{uuid.uuid4().hex[:8]}"
    ensure_topics(services.bootstrap_servers, {topic: 2})
    writes = _writes(topic, 5_000)
    produce(services, writes)
    got = await read_log(services.bootstrap_servers, topic, {0: 0, 1: 0})
    assert len(got) == len(writes)  # every record, up to the last batch whatever end the broker reports
    per_key: dict[bytes, list[bytes | None]] = {}
    for key, value in got:
        per_key.setdefault(key, []).append(value)
    for key, values in per_key.items():  # each key's writes in the order they were made
        assert values == [v for _, k, v in writes if k == key]


async def test_restore_equals_a_replay_and_leaves_faust_nothing_to_recover(
    services: EmbeddedServices,
) -> None:
    uid = uuid.uuid4().hex[:8]
    settings = StreamSettings(
        kafka_bootstrap=services.bootstrap_servers, app_id=f"store-{uid}", partitions=2, log_epoch="0",
        topic_impressions=f"imp-{uid}", topic_interactions=f"int-{uid}",
    )  # fmt: skip
    table = create_app(settings).app.tables["sessions"]
    store = table.data
    assert isinstance(store, SessionStore)
    changelog = table.changelog_topic.get_topic_name()
    ensure_topics(services.bootstrap_servers, {changelog: 2})
    writes = _writes(changelog, 3_000)
    produce(services, writes)
    tps = {TP(changelog, 0), TP(changelog, 1)}
    await store.on_rebalance(tps, set(), tps)
    # Faust's recovery starts at the persisted offset and reads up to the reported end - 1: nothing.
    ends = {p: await _reported_end(services, changelog, p) for p in (0, 1)}
    assert {tp.partition: store.persisted_offset(tp) for tp in tps} == {p: e - 1 for p, e in ends.items()}
    assert await store.restore([0, 1]) == len(writes)
    assert dict(store.data) == _replayed(writes)
    # Held partitions are not read again; a revoked one is, in full, when it comes back.
    assert await store.restore([0, 1]) == 0
    await store.on_rebalance({TP(changelog, 0)}, {TP(changelog, 1)}, set())
    on_1 = sum(1 for r in await read_log(services.bootstrap_servers, changelog, {1: 0}))
    assert await store.restore([0, 1]) == on_1 > 0


async def _reported_end(services: EmbeddedServices, topic: str, partition: int) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=services.bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()
