"""The model index (``<ns>:index``): one round trip per steady-state publish, and right after data loss.

Round trips are counted client-side, as the commands the store's client
executes (``execute_command``: one request and its reply each); the store
uses no pipelines on the publish path.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from stream.embedded import EmbeddedServices
from stream.learner_runtime import ExampleRecord, LearnerRuntime
from stream.model_store import ModelInputError, ModelStore, VersionConflict
from stream.settings import StreamSettings
from stream.synthetic import synthetic_examples

pytestmark = [pytest.mark.integration]

WEIGHTS = {"BASE_SCORE": 30.0}


class CountingRedis(redis.Redis):
    """A client that records the name of every command it sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[str] = []

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent.append(str(args[0]).upper())
        return super().execute_command(*args, **options)


@pytest.fixture
def client(services: EmbeddedServices) -> Iterator[CountingRedis]:
    c = CountingRedis.from_url(services.redis_url)
    assert isinstance(c, CountingRedis)
    yield c
    c.close()


def _store(client: redis.Redis, **kw: Any) -> ModelStore:
    return ModelStore(client, namespace=f"ix-{uuid.uuid4().hex[:12]}", **kw)


def _put(store: ModelStore, blob: bytes, segment: str = "adventure", **kw: Any) -> int:
    return store.publish("linucb", segment, blob, weights=WEIGHTS, examples_seen=100, offsets={0: 1},
                         log_epoch="e", kind="test", **kw)  # fmt: skip


def _members(client: redis.Redis, store: ModelStore) -> set[str]:
    return {m.decode() for m in client.smembers(store.index_key)}


def _lose_everything(client: redis.Redis, store: ModelStore) -> None:
    """What a Redis restarted without persistence leaves of this store: nothing."""
    client.delete(*client.scan_iter(match=f"{store.namespace}:*"))


def test_a_steady_state_publish_is_one_round_trip(client: CountingRedis) -> None:
    store = _store(client)
    version = _put(store, b"m0", expected_version=0)
    assert client.sent.count("SADD") == 1  # indexed before its first version
    for i in range(20):
        client.sent.clear()
        version = _put(store, f"m{i + 1}".encode(), expected_version=version)
        assert client.sent == ["EVALSHA"], f"publish {i + 1}"
    assert version == 21
    other = _put(store, b"f0", segment="family")  # another model: indexed on its first publish
    assert other == 1 and client.sent.count("SADD") == 1
    assert _members(client, store) == {"linucb:adventure", "linucb:family"}
    assert [(m.segment, m.current_version) for m in store.models()] == [("adventure", 21), ("family", 1)]


def test_the_index_is_right_after_redis_loses_everything(client: CountingRedis) -> None:
    store = _store(client)
    _put(store, b"a1")
    version = _put(store, b"a2", expected_version=1)
    _lose_everything(client, store)
    client.sent.clear()
    assert _put(store, b"a3") == 1  # unconditional: the script refuses, the store indexes and retries
    assert client.sent == ["EVALSHA", "SADD", "EVALSHA"]
    assert _members(client, store) == {"linucb:adventure"}
    _lose_everything(client, store)
    with pytest.raises(VersionConflict) as info:  # conditional on a version Redis no longer has
        _put(store, b"a4", expected_version=version)
    assert info.value.actual == 0 and store.current_version("linucb", "adventure") == 0
    assert _put(store, b"a4", expected_version=0) == 1  # what the learner does next
    assert [(m.segment, m.current_version) for m in store.models()] == [("adventure", 1)]
    client.sent.clear()
    _put(store, b"a5", expected_version=1)
    assert client.sent == ["EVALSHA"]  # steady again


def test_a_model_is_never_created_unindexed(client: CountingRedis) -> None:
    """Another process's store, or this one after a loss: the first version always follows a SADD."""
    store = _store(client)
    _put(store, b"a1")
    _lose_everything(client, store)
    client.sadd(store.index_key, "placeholder:x")  # the set exists, without this model
    client.sent.clear()
    _put(store, b"a2")
    assert client.sent.index("SADD") < len(client.sent) - 1  # indexed before the write that created it
    assert _members(client, store) == {"placeholder:x", "linucb:adventure"}
    second = ModelStore(client, namespace=store.namespace)  # a new process: indexes on its first publish
    client.sent.clear()
    _put(second, b"a3", expected_version=1)
    assert client.sent == ["SADD", "EVALSHA"]


def test_an_index_lost_on_its_own_is_added_again_after_index_refresh_s(client: CountingRedis) -> None:
    lazy, eager = _store(client), _store(client, index_refresh_s=0)
    sent: dict[ModelStore, list[str]] = {}
    for store in (lazy, eager):
        _put(store, b"a1")
        client.delete(store.index_key)  # e.g. the index's own cluster node restarted empty
        client.sent.clear()
        _put(store, b"a2")
        sent[store] = client.sent.copy()
    assert sent == {lazy: ["EVALSHA"], eager: ["SADD", "EVALSHA"]}  # eager: at every publish
    assert _members(client, lazy) == set()  # within index_refresh_s: not re-checked
    assert _members(client, eager) == {"linucb:adventure"}


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), True, "60"])
def test_index_refresh_s_is_validated(bad: Any) -> None:
    with pytest.raises(ModelInputError, match="index_refresh_s"):
        ModelStore(redis.Redis(), index_refresh_s=bad)


def test_the_learner_publishes_each_model_in_one_round_trip(client: CountingRedis) -> None:
    records = [
        ExampleRecord(0, i, r.value)
        for i, r in enumerate(synthetic_examples(n=300, seed=5, t0=time.time(), segments=("luxury",)))
    ]
    store = _store(client)
    runtime = LearnerRuntime(StreamSettings(log_epoch="e", drift_response=0), store)
    runtime.process(records[:100])
    assert runtime.maybe_publish(force=True) == 3  # logistic, linucb, vw
    for start in (100, 200):
        runtime.process(records[start : start + 100])
        client.sent.clear()
        assert runtime.maybe_publish(force=True) == 3
        assert client.sent == ["EVALSHA"] * 3
    stored = {m.policy: m.meta.examples_seen for m in store.models() if m.meta}
    assert stored == {"logistic": 300, "linucb": 300, "vw": 300}
