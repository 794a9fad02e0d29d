"""The promotion gate end to end on a real redis-server: the promoted pointer, and the gate on simulated traffic.

Done-when of issue 10 (part 3): a deliberately bad model (a learned model's
weights negated) is held back and never served, a good one is promoted, and
both decisions are visible and explained (store verdicts, ``models list``).
"""

from __future__ import annotations

import collections
import functools
import json
import uuid
from collections.abc import Callable, Iterator

import pytest
from typer.testing import CliRunner

from bandit.logistic import LogisticLearner
from monitoring.gate_metrics import GateMetrics
from sim.config import SimConfig
from sim.world import World
from smarttrip.cli.models import app
from stream.embedded import EmbeddedServices
from stream.events import Example
from stream.examples_source import logs_from_examples
from stream.learner_runtime import DEFAULT_POLICIES
from stream.model_store import (
    GateVerdict,
    ModelStore,
    NotPromoted,
    PromotionConflict,
    UnknownModel,
    decode_notice,
)
from stream.model_store_async import AsyncModelStore
from stream.promotion_gate import GateSettings, PromotionGate
from tests.scoring.serving import CATALOG, experiment, new_env, running, settings_for, topic_values
from tests.stream.gate_traffic import logged_examples

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

W = {"BASE_SCORE": 1.0}
IDS = [t.trip_id for t in CATALOG.trips[:80]]
LOGISTIC_ONLY = json.dumps(experiment(("learned", "logistic", 1.0, 0.02)))
OK = GateVerdict("promote", "test", 1.0)


@pytest.fixture
def store(services: EmbeddedServices) -> Iterator[ModelStore]:
    with ModelStore.from_url(services.redis_url, namespace=f"g-{uuid.uuid4().hex[:12]}", history=3) as s:
        yield s


def put(store: ModelStore, blob: bytes, segment: str = "adventure") -> int:
    return store.publish("linucb", segment, blob, weights=W, examples_seen=10, offsets={0: 1}, log_epoch="e",
                         kind="lin_ucb")  # fmt: skip


async def reads(store: ModelStore, services: EmbeddedServices) -> tuple[object, ...]:
    """The gated version as the sync store, the async store (MGET) and the READ script (Lua) see it."""
    reader = AsyncModelStore.from_url(services.redis_url, namespace=store.namespace)
    try:
        out: list[object] = []
        sync_reads: list[Callable[[], int]] = [
            lambda: store.serving_gated_version("linucb", "adventure"),
            lambda: store.serving_gated("linucb", "adventure").version,
        ]
        for read in sync_reads:
            try:
                out.append(read())
            except NotPromoted:
                out.append("rules")
        for aread in (reader.serving_version, reader.serving):
            try:
                got = await aread("linucb", "adventure", gated=True)
                out.append(got if isinstance(got, int) else got.version)
            except NotPromoted:
                out.append("rules")
        return tuple(out)
    finally:
        await reader.aclose()


async def test_the_promoted_pointer_is_atomic_with_publish_pin_and_trimming(
    store: ModelStore, services: EmbeddedServices
) -> None:
    with pytest.raises(UnknownModel):
        store.serving_gated("linucb", "adventure")
    put(store, b"m1")
    put(store, b"m2")
    # Nothing promoted: with the gate on, the rules policy serves; with it off, the current version.
    assert await reads(store, services) == ("rules",) * 4
    assert store.serving("linucb", "adventure").version == 2
    pubsub = store.subscribe()
    assert store.promote("linucb", "adventure", 1, OK, expected_promoted=0) is None
    notice = store.next_notice(pubsub, 2.0)
    assert notice is not None and (notice.event, notice.version, notice.serving_version) == ("promote", 1, 1)
    pubsub.close()
    assert await reads(store, services) == (1, 1, 1, 1)
    # Compare-and-set: a gate that still believes nothing is promoted cannot promote.
    with pytest.raises(PromotionConflict, match="expected promoted version 0"):
        store.promote("linucb", "adventure", 2, OK, expected_promoted=0)
    # Five more publishes with history 3: v1 leaves the history but, promoted, keeps its bytes.
    for i in range(5):
        put(store, f"m{i + 3}".encode())
    assert store.serving_gated("linucb", "adventure").model_bytes == b"m1"
    assert store.get("linucb", "adventure").version == 7
    history = {h.version: h for h in store.history("linucb", "adventure")}
    assert sorted(history) == [1, 5, 6, 7] and history[1].promoted and history[1].verdict == OK
    # A pin wins over the promoted version, in every reader; unpinning goes back to it.
    store.pin("linucb", "adventure", 6)
    assert await reads(store, services) == (6, 6, 6, 6)
    store.unpin("linucb", "adventure")
    assert await reads(store, services) == (1, 1, 1, 1)
    # Promoting a newer version deletes the old promoted one's keys once it has left the history.
    store.promote("linucb", "adventure", 7, OK, expected_promoted=1)
    assert await reads(store, services) == (7, 7, 7, 7)
    assert not store.client.exists(store.keys("linucb", "adventure").blob(1))
    assert store.verdict("linucb", "adventure", 1) is None
    held = GateVerdict("hold", "worse", 2.0, champion_version=7, details={"diff": -0.03})
    put(store, b"m8")
    store.record_verdict("linucb", "adventure", 8, held)
    assert store.verdict("linucb", "adventure", 8) == held
    assert await reads(store, services) == (7, 7, 7, 7)  # a hold never moves the pointer
    (summary,) = store.models()
    assert (summary.promoted_version, summary.gated_version, summary.gate_state) == (7, 7, "candidate-held")
    assert decode_notice(b'{"event":"promote","policy":"a","segment":"b","version":1,"serving_version":1}')


# --------------------------------------------------------------------------- the gate on simulated traffic


@functools.cache
def _segment_traffic() -> tuple[str, list[Example]]:
    examples = logged_examples(1200, seed=1, epsilon=0.05)
    by_segment = collections.Counter(e.segment for e in examples)
    segment = by_segment.most_common(1)[0][0]
    return segment, [e for e in examples if e.segment == segment]


async def test_a_negated_model_is_held_and_never_served_while_a_good_one_is_promoted(
    store: ModelStore, services: EmbeddedServices
) -> None:
    segment, examples = _segment_traffic()
    assert len(examples) >= 3000
    logs = logs_from_examples(examples)
    phi = logs.phi
    assert phi is not None
    good = DEFAULT_POLICIES["logistic"]()
    assert isinstance(good, LogisticLearner)
    good.learn_many(phi, logs.reward, positions=logs.position, propensities=logs.pscore)
    bad = LogisticLearner(prior={k: -v for k, v in good.weights.items()}, prior_scale=1.0)

    metrics = GateMetrics()
    gate = PromotionGate(store, GateSettings(shadow_wait_s=0), metrics=metrics, clock=lambda: 1_800_000_000.0)
    gate.observe_many(examples)
    assert gate.observe_raw(b"not json") is False  # bad records are counted, not raised
    assert metrics.registry.get_sample_value("smarttrip_gate_bad_examples_total", {"reason": "bad_json"}) == 1

    # The scoring worker, over HTTP, with the gate on and every request on the logistic policy.
    user = next(
        u for u in World(SimConfig(seed=1, users=600, catalog_trips=600)).users if u.segment == segment
    )
    body = {
        "session_id": "s-1",
        "user_id": user.user_id,
        "preferences": user.prefs.to_dict(),
        "trip_ids": IDS,
        "k": 10,
    }
    env = new_env(services, partitions=1)
    settings = settings_for(services, env, model_namespace=store.namespace, model_serve="promoted",
                            experiment=LOGISTIC_ONLY, shadow_sample=1.0)  # fmt: skip

    async with running(settings) as srv:

        async def served() -> list[str]:
            await srv.svc.models.sync_all()
            out = []
            for _ in range(10):
                status, answer = await srv.rank(body)
                assert status == 200 and answer["segment"] == segment, answer
                out.append(f"{answer['policy']} {answer['model_version']}")
            return out

        # v1: the good model. Before the gate decides, the rules policy serves.
        v1 = store.publish_learner("logistic", segment, good, offsets={0: len(examples)}, log_epoch="e")
        assert set(await served()) == {"rules rules/v1"}
        (first,) = gate.run_once()
        assert (first.version, first.verdict.decision, first.promoted) == (v1, "promote", True)
        assert first.verdict.champion_version is None and "rules policy" in first.verdict.reason
        low = first.verdict.details["diff_low"]
        assert isinstance(low, float) and low >= -GateSettings().rule.margin
        assert set(await served()) == {f"logistic logistic/{segment}/v{v1}"}

        # v2: the same model with its weights negated. It becomes current but is held, and never serves.
        v2 = store.publish("logistic", segment, bad.to_bytes(), weights=bad.weights, examples_seen=good.n_examples,
                           offsets={0: len(examples)}, log_epoch="e", kind=bad.kind)  # fmt: skip
        assert store.serving("logistic", segment).version == v2  # the gate-off read would serve it
        assert set(await served()) == {f"logistic logistic/{segment}/v{v1}"}  # pending: not served
        (second,) = gate.run_once()
        assert (second.version, second.verdict.decision, second.promoted) == (v2, "hold", False)
        assert second.verdict.champion_version == v1 and "worse than promoted v1" in second.verdict.reason
        high = second.verdict.details["diff_high"]
        assert isinstance(high, float) and high < -GateSettings().rule.margin
        assert store.serving_gated("logistic", segment).version == v1
        assert set(await served()) == {f"logistic logistic/{segment}/v{v1}"}  # held: never served
        assert gate.run_once() == []  # a held version is final: not evaluated again

    # Shadow scoring: every impression (sample 1.0) names the unpromoted candidate that also ranked it.
    impressions = [json.loads(v) for v in topic_values(services, env.impressions, expected=40)]
    assert len(impressions) == 40
    shadowed = [(i["model_version"], i.get("shadow", {}).get("model_version")) for i in impressions]
    expected = [("rules/v1", f"logistic/{segment}/v{v1}")] * 10 + [(f"logistic/{segment}/v{v1}", None)] * 10
    expected += [(f"logistic/{segment}/v{v1}", f"logistic/{segment}/v{v2}")] * 20
    assert sorted(shadowed, key=str) == sorted(expected, key=str)
    assert all(len(i["shadow"]["propensities"]) == len(i["slate"]) for i in impressions if "shadow" in i)
    fresh = PromotionGate(store, GateSettings())
    assert sum(fresh.observe_impression_raw(json.dumps(i).encode()) for i in impressions) == 30

    for decision in ("promote", "hold"):
        labels = {"policy": "logistic", "segment": segment, "decision": decision}
        assert metrics.registry.get_sample_value("smarttrip_gate_decisions_total", labels) == 1.0

    # Both decisions are visible and explained in `smarttrip models list` / `history`.
    args = ["--redis-url", services.redis_url, "--namespace", store.namespace]
    listed = CliRunner().invoke(app, ["list", *args, "--json"])
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.output)
    assert (row["current_version"], row["promoted_version"], row["gated_serving_version"]) == (v2, v1, v1)
    assert row["gate_state"] == "candidate-held" and row["gate_verdict"]["decision"] == "hold"
    table = CliRunner().invoke(app, ["list", *args], env={"COLUMNS": "200"})
    assert "candidate-held" in table.output and "worse than promoted v1 beyond the margin" in table.output
    hist = CliRunner().invoke(app, ["history", "logistic", segment, *args, "--json"])
    by_version = {h["version"]: h for h in json.loads(hist.output)}
    assert by_version[v1]["promoted"] and by_version[v1]["gate_verdict"]["decision"] == "promote"
    assert "not worse than the rules policy" in by_version[v1]["gate_verdict"]["reason"]


def test_too_few_examples_leave_a_candidate_pending_until_traffic_arrives(store: ModelStore) -> None:
    segment, examples = _segment_traffic()
    good = DEFAULT_POLICIES["logistic"]()
    v1 = store.publish_learner("logistic", segment, good, offsets={}, log_epoch="e")
    gate = PromotionGate(store, GateSettings(shadow_wait_s=0))
    gate.observe_many(examples[:500])
    (first,) = gate.run_once()
    assert first.verdict.decision == "pending" and "too few examples: 500 < 2,000" in first.verdict.reason
    assert gate.run_once() == []  # nothing new since: not evaluated again
    with pytest.raises(NotPromoted):
        store.serving_gated("logistic", segment)
    gate.observe_many(examples[500:])
    (second,) = gate.run_once()
    # The untrained model ranks like the rules (its prior is the rule weights): not worse, promoted.
    assert (second.version, second.verdict.decision, second.promoted) == (v1, "promote", True)
    assert store.serving_gated("logistic", segment).version == v1


def test_the_gate_worker_reads_the_examples_topic_and_promotes(
    store: ModelStore, services: EmbeddedServices
) -> None:
    from stream.codec import encode
    from stream.promotion_gate_worker import run_gate_worker
    from stream.settings import StreamSettings
    from tests.stream.kafka_helpers import new_run, produce

    run = new_run(services, partitions=2)
    segment, examples = _segment_traffic()
    produced = [(run.examples, e.segment.encode(), encode(e)) for e in examples]
    produce(services, [*produced, (run.examples, b"x", b"{not json")])
    v1 = store.publish_learner("logistic", segment, DEFAULT_POLICIES["logistic"](), offsets={}, log_epoch="e")
    settings = StreamSettings.from_env(
        {**run.env, "SMARTTRIP_REDIS_URL": services.redis_url, "SMARTTRIP_MODEL_NAMESPACE": store.namespace}
    )
    gate = run_gate_worker(settings, GateSettings(interval_s=3.0, shadow_wait_s=0), max_runs=1)
    assert sum(gate.window_sizes().values()) == len(examples)
    assert (
        gate.metrics.registry.get_sample_value("smarttrip_gate_bad_examples_total", {"reason": "bad_json"})
        == 1
    )
    assert store.promoted_version("logistic", segment) == v1
    assert store.serving_gated("logistic", segment).version == v1


def _impression(request_id: str, label: str, props: list[float]) -> bytes:
    return json.dumps(
        {"request_id": request_id, "shadow": {"model_version": label, "propensities": props}}
    ).encode()


def test_shadow_scored_traffic_decides_with_exact_propensities(store: ModelStore) -> None:
    segment, examples = _segment_traffic()
    logs = logs_from_examples(examples)
    assert logs.phi is not None
    good = DEFAULT_POLICIES["logistic"]()
    assert isinstance(good, LogisticLearner)
    good.learn_many(logs.phi, logs.reward, positions=logs.position, propensities=logs.pscore)
    bad = LogisticLearner(prior={k: -v for k, v in good.weights.items()}, prior_scale=1.0)
    gate = PromotionGate(store, GateSettings(shadow_wait_s=0))

    # v1 shadow-scored on rules-served traffic: compared with the rules on those rows alone.
    v1 = store.publish_learner("logistic", segment, good, offsets={}, log_epoch="e")
    label1 = f"logistic/{segment}/v{v1}"
    shadows: dict[str, tuple[str, list[float]]] = {}
    gate.observe_many(
        logged_examples(400, seed=2, segment=segment, shadow=(label1, good.score_many), shadows=shadows)
    )
    assert all(gate.observe_impression_raw(_impression(r, lb, p)) for r, (lb, p) in shadows.items())
    (first,) = gate.run_once()
    assert (first.verdict.decision, first.promoted) == ("promote", True)
    assert first.verdict.details["basis"] == "shadow-scored" and first.verdict.reason.startswith(
        "shadow-scored"
    )
    assert first.verdict.details["estimator"] == "snipw"

    # v2 (negated) shadow-scored on traffic the promoted v1 served: held.
    v2 = store.publish("logistic", segment, bad.to_bytes(), weights=bad.weights, examples_seen=10, offsets={},
                       log_epoch="e", kind=bad.kind)  # fmt: skip
    shadows.clear()
    served = logged_examples(400, seed=3, segment=segment, served=(label1, good.score_many),
                             shadow=(f"logistic/{segment}/v{v2}", bad.score_many), shadows=shadows)  # fmt: skip
    gate.observe_many(served)
    for r, (lb, p) in shadows.items():
        gate.observe_impression_raw(_impression(r, lb, p))
    (second,) = gate.run_once()
    assert (second.version, second.verdict.decision) == (v2, "hold")
    assert (
        second.verdict.details["basis"] == "shadow-scored"
        and "worse than promoted v1" in second.verdict.reason
    )
    assert store.serving_gated("logistic", segment).version == v1
    # Malformed shadow fields are counted, not raised.
    assert not gate.observe_impression_raw(b'{"request_id": "x", "shadow": {"model_version": 3}}')
    assert (
        gate.metrics.registry.get_sample_value("smarttrip_gate_bad_examples_total", {"reason": "bad_shadow"})
        == 1
    )


def test_a_nominated_candidate_is_shadow_scored_until_decided_then_the_next_one(
    store: ModelStore, services: EmbeddedServices
) -> None:
    segment, examples = _segment_traffic()
    logs = logs_from_examples(examples)
    assert logs.phi is not None
    good = DEFAULT_POLICIES["logistic"]()
    assert isinstance(good, LogisticLearner)
    good.learn_many(logs.phi, logs.reward, positions=logs.position, propensities=logs.pscore)
    bad = LogisticLearner(prior={k: -v for k, v in good.weights.items()}, prior_scale=1.0)
    now = {"t": 1_800_000_000.0}
    gate = PromotionGate(store, GateSettings(shadow_wait_s=60.0), clock=lambda: now["t"])
    gate.observe_many(examples)  # plenty of traffic, none shadow-scored

    v1 = store.publish_learner("logistic", segment, good, offsets={}, log_epoch="e")
    (first,) = gate.run_once()
    assert (
        first.verdict.decision == "pending"
        and "waiting for shadow-scored traffic: 0 of 2,000" in first.verdict.reason
    )
    assert store.nominated_version("logistic", segment) == v1
    # The learner moves on; the nominee stays the one judged, and keeps its bytes however many publishes follow.
    for _ in range(12):
        store.publish_learner("logistic", segment, good, offsets={}, log_epoch="e")
    assert store.get("logistic", segment, v1).model_bytes == good.to_bytes()
    label1 = f"logistic/{segment}/v{v1}"
    shadows: dict[str, tuple[str, list[float]]] = {}
    gate.observe_many(
        logged_examples(300, seed=4, segment=segment, shadow=(label1, good.score_many), shadows=shadows)
    )
    for r, (lb, p) in shadows.items():
        gate.observe_impression_raw(_impression(r, lb, p))
    (second,) = gate.run_once()
    assert (second.version, second.verdict.decision, second.promoted) == (v1, "promote", True)
    assert second.verdict.details["basis"] == "shadow-scored"
    assert store.nominated_version("logistic", segment) is None  # decided: no longer shadow-scored

    # The next candidate (negated, current) is nominated; no shadow traffic comes, so after the wait
    # the gate judges it on the re-ranked slates.
    v_bad = store.publish("logistic", segment, bad.to_bytes(), weights=bad.weights, examples_seen=10, offsets={},
                          log_epoch="e", kind=bad.kind)  # fmt: skip
    (third,) = gate.run_once()
    assert (third.version, third.verdict.decision) == (v_bad, "pending")
    assert store.nominated_version("logistic", segment) == v_bad
    now["t"] += 61.0
    gate.observe_many(examples[:10])
    (fourth,) = gate.run_once()
    assert (fourth.version, fourth.verdict.decision) == (v_bad, "hold")
    assert fourth.verdict.details["basis"] == "re-ranked slates"
    assert store.nominated_version("logistic", segment) is None
    assert store.serving_gated("logistic", segment).version == v1


async def test_the_cache_shadow_loads_the_nominee_else_the_latest_version(
    store: ModelStore, services: EmbeddedServices
) -> None:
    from bandit import LinUCB
    from monitoring.scoring_metrics import ScoringMetrics
    from scoring.model_cache import ModelCache, RedisHealth

    model = LinUCB(alpha=0.1)
    for _ in range(3):
        store.publish_learner("linucb", "adventure", model, offsets={}, log_epoch="e")
    store.promote("linucb", "adventure", 1, OK)
    metrics = ScoringMetrics()
    reader = AsyncModelStore.from_url(services.redis_url, namespace=store.namespace)
    cache = ModelCache(reader, pairs=[("linucb", "adventure")], metrics=metrics, health=RedisHealth(metrics),
                       gated=True, shadow=True)  # fmt: skip
    try:

        async def versions() -> tuple[int | None, int | None]:
            await cache.sync_all()
            served, cand = cache.get("linucb", "adventure"), cache.candidate("linucb", "adventure")
            return (None if served is None else served.version, None if cand is None else cand.version)

        assert await versions() == (1, 3)  # serves the promoted v1, shadow-scores the latest
        store.nominate("linucb", "adventure", 2)
        assert await versions() == (1, 2)  # the gate's nominee instead
        store.nominate("linucb", "adventure", None)
        store.promote("linucb", "adventure", 3, OK, expected_promoted=1)
        assert await versions() == (3, None)  # the latest is served: nothing to shadow-score
    finally:
        await cache.stop()
        await reader.aclose()
