"""The versioned model store: guardrails and codecs (pure), and the store against a real redis-server."""

from __future__ import annotations

import contextlib
import itertools
import math
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import redis
from redis.crc import key_slot

from bandit import LinUCB, learner_from_bytes
from stream._model_store_errors import CorruptRecord
from stream._model_store_records import decode_meta, decode_notice, encode_meta
from stream.embedded import EmbeddedServices
from stream.guardrails import Guardrails, learner_weights
from stream.model_store import (
    GuardrailError,
    ModelInputError,
    ModelKeys,
    ModelMeta,
    ModelStore,
    ModelStoreSettings,
    StoreUnavailable,
    UnknownModel,
    UnknownVersion,
    VersionConflict,
)
from stream.model_store_async import AsyncModelStore

WEIGHTS = {"BASE_SCORE": 30.0, "BUDGET_PERFECT": 9.3}

# --------------------------------------------------------------------------- pure


@pytest.mark.parametrize(
    ("weights", "examples", "codes", "named"),
    [
        ({"BASE_SCORE": math.nan}, 10, ["non_finite"], "BASE_SCORE"),
        ({"BASE_SCORE": 1.0, "THEME_FULL": math.inf}, 10, ["non_finite"], "THEME_FULL"),
        ({"GEO_CONTINENT": -math.inf}, 10, ["non_finite"], "GEO_CONTINENT"),
        ({"BUDGET_GOOD": 1e12}, 10, ["out_of_bounds"], "BUDGET_GOOD"),
        ({"BUDGET_GOOD": "7"}, 10, ["non_finite"], "BUDGET_GOOD"),
        (WEIGHTS, 9, ["too_few_examples"], "examples_seen"),
        ({"A": math.nan, "B": -1e9}, 0, ["non_finite", "out_of_bounds", "too_few_examples"], "A=nan"),
        (np.array([1.0, np.nan, 3.0]), 10, ["non_finite"], "index 1"),
        (np.array([1.0, 2e9]), 10, ["out_of_bounds"], "index 1"),
    ],
)
def test_guardrails_name_each_violation(weights: Any, examples: int, codes: list[str], named: str) -> None:
    found = Guardrails(max_abs_weight=1e6, min_examples=10).check(weights, examples)
    assert [v.code for v in found] == codes
    assert named in " ".join(v.message for v in found)


def test_guardrails_pass_good_models_and_honour_per_feature_bounds() -> None:
    g = Guardrails(max_abs_weight=100.0, bounds={"BASE_SCORE": (0.0, 40.0)})
    assert g.check(WEIGHTS, 0) == []
    assert g.check(np.zeros(8, dtype=np.float32), 0) == []
    [v] = g.check({"BASE_SCORE": 41.0}, 0)
    assert v.code == "out_of_bounds" and "BASE_SCORE=41 (outside [0, 40])" in v.message
    many = g.check({f"f{i}": math.nan for i in range(9)}, 0)[0].message
    assert "(and 4 more)" in many


def test_guardrails_validate_their_settings_and_read_env() -> None:
    with pytest.raises(ValueError, match="max_abs_weight"):
        Guardrails(max_abs_weight=0.0)
    with pytest.raises(ValueError, match="min_examples"):
        Guardrails(min_examples=-1)
    with pytest.raises(ValueError, match="bounds"):
        Guardrails(bounds={"X": (2.0, 1.0)})
    g = Guardrails.from_env({"SMARTTRIP_MODEL_MAX_ABS_WEIGHT": "50", "SMARTTRIP_MODEL_MIN_EXAMPLES": "7"})
    assert (g.max_abs_weight, g.min_examples) == (50.0, 7)
    with pytest.raises(ValueError, match="SMARTTRIP_MODEL_MIN_EXAMPLES"):
        Guardrails.from_env({"SMARTTRIP_MODEL_MIN_EXAMPLES": "x"})


def test_learner_weights_reads_linear_learners() -> None:
    model = LinUCB(alpha=0.5, feature_names=("a", "b"))
    assert learner_weights(model) == model.weights
    with pytest.raises(TypeError, match="exposes no weights"):
        learner_weights(object())


def test_meta_round_trips_exactly() -> None:
    meta = ModelMeta(
        kind="lin_ucb",
        examples_seen=12,
        created_at=1.5e9 + 0.1,
        log_epoch="epoch-1",
        size=3,
        sha256="ab",
        offsets={0: 5, 3: -1},
        metrics={"ctr": 0.1 + 0.2},
        weights={"BASE_SCORE": 1 / 3},
        parent_version=4,
    )
    assert decode_meta(encode_meta(meta)) == meta
    with pytest.raises(CorruptRecord, match=r"meta\.schema"):
        decode_meta(b'{"schema": 99}')
    with pytest.raises(CorruptRecord, match="not valid JSON"):
        decode_meta(b"\xff")


def test_bad_names_and_arguments_name_the_field() -> None:
    with pytest.raises(ModelInputError, match=r"^segment: must match"):
        ModelKeys("smarttrip", "linucb", "a b")
    with pytest.raises(ModelInputError, match=r"^policy: must match"):
        ModelKeys("smarttrip", "x{y}", "s")
    with pytest.raises(ModelInputError, match=r"^namespace"):
        ModelKeys("bad{ns}", "p", "s")
    with pytest.raises(ModelInputError, match="client"):
        ModelStore(redis.Redis(decode_responses=True))
    with pytest.raises(ModelInputError, match="SMARTTRIP_MODEL_HISTORY"):
        ModelStoreSettings.from_env({"SMARTTRIP_MODEL_HISTORY": "0"})
    with pytest.raises(CorruptRecord):
        decode_notice(b"{}")


# --------------------------------------------------------------------------- redis


class Clock:
    def __init__(self) -> None:
        self._ticks = itertools.count(1_700_000_000)

    def __call__(self) -> float:
        return float(next(self._ticks))


@pytest.fixture
def client(services: EmbeddedServices) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(services.redis_url)
    yield c
    c.close()


@pytest.fixture
def rejected() -> list[GuardrailError]:
    return []


@pytest.fixture
def store(client: redis.Redis, rejected: list[GuardrailError]) -> ModelStore:
    return ModelStore(
        client,
        namespace=f"t-{uuid.uuid4().hex[:12]}",
        history=3,
        guardrails=Guardrails(max_abs_weight=1e6, min_examples=10),
        clock=Clock(),
        on_rejected=rejected.append,
    )


def put(store: ModelStore, blob: bytes, *, segment: str = "adventure", **kw: Any) -> int:
    args: dict[str, Any] = {
        "weights": WEIGHTS,
        "examples_seen": 100,
        "offsets": {0: 10},
        "log_epoch": "e1",
        "kind": "test",
    }
    args.update(kw)
    return store.publish("linucb", segment, blob, **args)


integration = pytest.mark.integration


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port bound but never listening, so connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@integration
def test_publish_get_round_trip(store: ModelStore) -> None:
    assert store.current_version("linucb", "adventure") == 0
    v = put(store, b"model-1", offsets={0: 41, 2: 7}, metrics={"ctr": 0.25}, expected_version=0)
    rec = store.get("linucb", "adventure")
    assert (v, rec.version, rec.model_bytes, rec.serving_version) == (1, 1, b"model-1", 1)
    assert rec.meta.offsets == {0: 41, 2: 7} and rec.meta.log_epoch == "e1"
    assert rec.meta.weights == WEIGHTS and rec.meta.metrics == {"ctr": 0.25}
    assert rec.meta.examples_seen == 100 and rec.meta.created_at == 1_700_000_000.0
    assert rec.meta.parent_version == 0 and rec.meta.size == 7
    assert rec.meta.covers(0, 41, "e1") and not rec.meta.covers(0, 42, "e1")
    assert not rec.meta.covers(0, 1, "e2")  # another log: offsets mean nothing
    with pytest.raises(UnknownModel):
        store.get("linucb", "nobody")


@integration
def test_versions_are_monotonic_and_compare_and_set_guards_publish(store: ModelStore) -> None:
    assert [put(store, f"m{i}".encode()) for i in range(4)] == [1, 2, 3, 4]
    with pytest.raises(VersionConflict) as info:
        put(store, b"stale", expected_version=2)
    assert (info.value.expected, info.value.actual, info.value.retriable) == (2, 4, False)
    with pytest.raises(VersionConflict):
        put(store, b"first?", expected_version=0)
    assert store.get("linucb", "adventure").model_bytes == b"m3"
    assert put(store, b"m5", expected_version=4) == 5


@integration
def test_a_retried_conditional_publish_that_landed_is_idempotent(store: ModelStore) -> None:
    put(store, b"base")
    assert put(store, b"next", expected_version=1, offsets={0: 20}) == 2
    assert put(store, b"next", expected_version=1, offsets={0: 20}) == 2  # same write again
    with pytest.raises(VersionConflict):
        put(store, b"other", expected_version=1, offsets={0: 20})
    assert store.current_version("linucb", "adventure") == 2


@integration
def test_history_is_trimmed_and_old_bytes_deleted_except_the_pinned(
    store: ModelStore, client: redis.Redis
) -> None:
    for i in range(1, 3):
        put(store, f"m{i}".encode())
    store.pin("linucb", "adventure", 1)
    for i in range(3, 7):
        put(store, f"m{i}".encode())
    keys = store.keys("linucb", "adventure")
    assert client.zrange(keys.history, 0, -1) == [b"4", b"5", b"6"]
    assert [client.exists(keys.blob(v), keys.meta(v)) for v in range(1, 7)] == [2, 0, 0, 2, 2, 2]
    assert [(h.version, h.current, h.pinned) for h in store.history("linucb", "adventure")] == [
        (6, True, False),
        (5, False, False),
        (4, False, False),
        (1, False, True),
    ]
    with pytest.raises(UnknownVersion) as info:
        store.get("linucb", "adventure", 2)
    assert info.value.version == 2
    assert store.unpin("linucb", "adventure") == 1
    assert client.exists(keys.blob(1)) == 0  # no longer pinned, out of history: deleted
    assert [h.version for h in store.history("linucb", "adventure")] == [6, 5, 4]


@integration
def test_rollback_restores_exactly_the_earlier_bytes(store: ModelStore) -> None:
    model = LinUCB(alpha=0.5)
    rng = np.random.default_rng(0)
    good = model.clone()
    for _ in range(30):
        good.learn_one(rng.random(model.n_features), 1.0)
    v1 = store.publish_learner(
        "linucb", "adventure", good, offsets={0: 10}, log_epoch="e1", expected_version=0
    )
    put(store, b"bad model", offsets={0: 20}, expected_version=v1)
    v3 = store.rollback("linucb", "adventure", v1)
    rec = store.get("linucb", "adventure")
    assert rec.version == v3 == 3 and rec.serving_version == 3
    assert rec.model_bytes == good.to_bytes() == store.get("linucb", "adventure", v1).model_bytes
    assert learner_from_bytes(rec.model_bytes).weights == good.weights  # type: ignore[attr-defined]
    assert rec.meta.rolled_back_from == 1 and rec.meta.event == "rollback" and rec.meta.parent_version == 2
    assert rec.meta.offsets == {0: 20}  # input consumed since is not re-learned
    assert rec.meta.kind == "lin_ucb" and rec.meta.examples_seen == 30 and rec.meta.weights == good.weights
    with pytest.raises(ModelInputError, match="already the current version"):
        store.rollback("linucb", "adventure", 3)
    with pytest.raises(UnknownVersion):
        store.rollback("linucb", "adventure", 99)
    with pytest.raises(VersionConflict):
        store.rollback("linucb", "adventure", 2, expected_version=1)


@integration
def test_a_pinned_version_survives_new_publishes(store: ModelStore) -> None:
    for i in range(1, 3):
        put(store, f"m{i}".encode())
    store.pin("linucb", "adventure", 2)
    for i in range(3, 9):
        put(store, f"m{i}".encode())
    served = store.serving("linucb", "adventure")
    assert (served.version, served.model_bytes, served.current_version) == (2, b"m2", 8)
    assert store.serving_version("linucb", "adventure") == 2
    assert store.get("linucb", "adventure").version == 8
    assert store.unpin("linucb", "adventure") == 2
    assert store.unpin("linucb", "adventure") is None
    assert store.serving("linucb", "adventure").model_bytes == b"m8"
    with pytest.raises(UnknownVersion):
        store.pin("linucb", "adventure", 2)  # unpinned and out of history: gone
    with pytest.raises(UnknownModel):
        store.pin("linucb", "nobody", 1)
    with pytest.raises(UnknownModel):
        store.unpin("linucb", "nobody")


@integration
@pytest.mark.parametrize(
    ("weights", "examples", "code"),
    [
        ({"BASE_SCORE": math.nan}, 100, "non_finite"),
        ({"BASE_SCORE": math.inf}, 100, "non_finite"),
        ({"BASE_SCORE": 3e7}, 100, "out_of_bounds"),
        (np.array([0.0, -np.inf]), 100, "non_finite"),
        (WEIGHTS, 3, "too_few_examples"),
    ],
)
def test_guardrails_refuse_count_and_keep_the_previous_version(
    store: ModelStore, rejected: list[GuardrailError], weights: Any, examples: int, code: str
) -> None:
    put(store, b"good")
    with pytest.raises(GuardrailError) as info:
        put(store, b"unsafe", weights=weights, examples_seen=examples)
    assert info.value.codes == [code] and info.value.reasons and not info.value.retriable
    assert store.rejected[code] == 1 and rejected == [info.value]
    assert store.rejections("linucb", "adventure").counts == {code: 1}
    assert store.rejections("linucb", "adventure").last_reasons == info.value.reasons
    served = store.serving("linucb", "adventure")
    assert (served.version, served.model_bytes) == (1, b"good")


@integration
def test_notices_are_published_for_every_change(store: ModelStore) -> None:
    pubsub = store.subscribe()
    try:
        put(store, b"m1")
        put(store, b"m2")
        store.pin("linucb", "adventure", 1)
        store.rollback("linucb", "adventure", 1)
        store.unpin("linucb", "adventure")
        got = [store.next_notice(pubsub, 2.0) for _ in range(5)]
    finally:
        pubsub.close()
    assert [(n.event, n.version, n.serving_version) for n in got if n] == [
        ("publish", 1, 1),
        ("publish", 2, 2),
        ("pin", 1, 1),
        ("rollback", 3, 1),
        ("unpin", 3, 3),
    ]
    assert {(n.policy, n.segment) for n in got if n} == {("linucb", "adventure")}


@integration
def test_all_keys_of_a_model_share_one_hash_slot(store: ModelStore, client: redis.Redis) -> None:
    for i in range(5):
        put(store, f"m{i}".encode())
    store.pin("linucb", "adventure", 3)
    with pytest.raises(GuardrailError):
        put(store, b"x", examples_seen=0)
    put(store, b"other", segment="family")
    names = [k.decode() for k in client.scan_iter(match=f"{store.namespace}:*")]
    mine = [n for n in names if "{linucb:adventure}" in n]
    assert {n.rsplit(":", 1)[-1] for n in mine} >= {"current", "history", "pin", "rejected"}
    assert len({key_slot(n.encode()) for n in mine}) == 1
    assert set(names) - set(mine) - {n for n in names if "{linucb:family}" in n} == {store.index_key}
    listed = [(m.policy, m.segment, m.current_version, m.pinned_version) for m in store.models()]
    assert listed == [("linucb", "adventure", 5, 3), ("linucb", "family", 1, None)]


@integration
def test_an_unreachable_redis_is_a_retriable_error() -> None:
    with (
        refused_port() as port,
        ModelStore.from_url(f"redis://127.0.0.1:{port}/0", timeout=0.5) as store,
        pytest.raises(StoreUnavailable) as info,
    ):
        store.get("linucb", "adventure")
    assert info.value.retriable


@integration
async def test_async_store_reads_and_follows_notices(store: ModelStore, services: EmbeddedServices) -> None:
    reader = AsyncModelStore.from_url(services.redis_url, namespace=store.namespace)
    try:
        async with reader.subscribe() as notices:
            put(store, b"m1")
            notice = await notices.next(2.0)
            assert notice is not None and (notice.event, notice.version) == ("publish", 1)
            put(store, b"m2")
            store.pin("linucb", "adventure", 1)
            assert [(await anext(notices)).event for _ in range(2)] == ["publish", "pin"]
        served = await reader.serving("linucb", "adventure")
        assert (served.version, served.model_bytes, served.current_version) == (1, b"m1", 2)
        assert await reader.serving_version("linucb", "adventure") == 1
        assert (await reader.get("linucb", "adventure")).model_bytes == b"m2"
        with pytest.raises(UnknownModel):
            await reader.serving_version("linucb", "nobody")
    finally:
        await reader.aclose()
