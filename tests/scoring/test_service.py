"""The ranking path without HTTP: candidate rows, scores, slates, the impression record."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit.lin_ucb import LinUCB
from bandit.logistic import LogisticLearner
from bandit.segments import SegmentedLearner
from bandit.vw_policy import VWPolicy
from features.generator import generate_catalog
from features.phi import PHI_NAMES, phi
from monitoring.scoring_metrics import ScoringMetrics
from scoring.errors import RequestError
from scoring.experiment import Experiment
from scoring.filters import candidate_rows
from scoring.policies import RULES_VERSION, LoadedModel, fast_scorer, kind_matches, score_request
from scoring.pseudonym import Pseudonymizer
from scoring.requests import parse_rank
from scoring.service import CatalogState, Ranker, request_rows
from scoring.weights import SCORING_WEIGHTS
from stream.codec import decode_impression, to_dict

TODAY = dt.date(2026, 5, 1)
CAT = generate_catalog(n_trips=300, seed=3, start=dt.date(2026, 4, 1))  # some trips have departed by TODAY
PSEUDO = Pseudonymizer(b"service-test-key-00001")


def _req(**body: Any) -> Any:
    return parse_rank({"session_id": "s1", **body}, pseudonymize=PSEUDO, max_k=100, max_candidates=1000)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 320), min_size=1, max_size=60),
    st.sampled_from([None, {"max_price": 3000}, {"countries": ["Peru", "Nepal"]}]),
    st.booleans(),
)
def test_request_rows_equal_candidate_rows(picks: list[int], filters: Any, travel: bool) -> None:
    ids = [f"T{p:06d}" for p in picks]  # ids past 299 are unknown
    prefs = {"travel_date": "2026-06-01"} if travel else {}
    req = _req(trip_ids=ids, filters=filters, preferences=prefs)
    rows, ignored = request_rows(CAT, TODAY, req)
    known = [t for t in ids if t in CAT.index]
    expected = candidate_rows(CAT, TODAY, req.filters, req.preferences, known)
    assert rows.tolist() == expected.tolist()
    assert ignored == [t for t in ids if t not in CAT.index]


@pytest.mark.parametrize("bad", [2, "", "x" * 129, [1], {"a": 1}, None])
def test_unknown_candidates_are_validated_where_they_are_looked_up(bad: object) -> None:
    with pytest.raises(RequestError) as err:
        request_rows(CAT, TODAY, _req(trip_ids=["T000001", "nope", bad]))
    assert err.value.field == "trip_ids[2]"


def _trained(model: Any) -> Any:
    rng = np.random.default_rng(0)
    model.learn_many(rng.random((60, len(PHI_NAMES))), (rng.random(60) < 0.3).astype(float))
    return model


@pytest.mark.parametrize(
    "learner",
    [
        _trained(LinUCB(prior=dict(SCORING_WEIGHTS), prior_scale=0.002, alpha=0.7)),
        _trained(LinUCB(alpha=0.0)),
        _trained(LogisticLearner(prior=dict(SCORING_WEIGHTS))),
    ],
)
def test_fast_scorer_equals_score_many(learner: Any) -> None:
    X = phi(CAT, _req(preferences={"budget": 2500, "themes": ["hiking"]}).preferences, TODAY)
    fast = fast_scorer(learner)
    assert fast is not None
    np.testing.assert_allclose(fast(X, "general"), learner.score_many(X), rtol=1e-12, atol=1e-12)


def test_kinds_and_fallbacks() -> None:
    X = phi(CAT, _req().preferences, TODAY)
    lin = _trained(LinUCB())
    assert kind_matches("linucb", lin) and not kind_matches("logistic", lin)
    assert kind_matches("linucb", SegmentedLearner(base=LinUCB()))
    assert not fast_scorer(SegmentedLearner(base=LinUCB()))
    scored = score_request("linucb", None, X, "general")
    assert (scored.policy, scored.model_version, scored.fallback) == ("rules", RULES_VERSION, "no_model")
    model = LoadedModel("linucb", "general", 4, lin, 0.0, 0.0, fast_scorer(lin))
    scored = score_request("linucb", model, X, "general")
    assert (scored.policy, scored.model_version, scored.fallback) == ("linucb", "linucb/general/v4", None)
    broken = LoadedModel("linucb", "general", 5, lin, 0.0, 0.0, lambda X, s: np.full(len(X), np.nan))
    assert score_request("linucb", broken, X, "general").fallback == "bad_scores"


def test_vw_scores_are_its_pmf_explored_epsilon_greedy() -> None:
    vw = _trained(VWPolicy())
    X = phi(CAT, _req().preferences, TODAY, np.arange(20))
    scored = score_request("vw", LoadedModel("vw", "general", 1, vw, 0.0, 0.0), X, "general")
    assert scored.exploration == "epsilon" and scored.scores.sum() == pytest.approx(1.0)


class _Log:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes, Any]] = []

    def submit(self, topic: str, key: bytes, payload: Any) -> None:
        self.records.append((topic, key, payload))


def _ranker(policy: str = "linucb", model: LoadedModel | None = None) -> tuple[Ranker, _Log]:
    exp = Experiment.from_request(
        {"salt": "x", "variants": [{"name": "only", "policy": policy, "traffic": 1.0, "epsilon": 0.2}]}, None
    )
    state = CatalogState()
    state.set(CAT)
    log = _Log()
    ranker = Ranker(
        catalog=state,
        models=SimpleNamespace(get=lambda p, s: model),  # type: ignore[arg-type]
        experiments=SimpleNamespace(current=exp),  # type: ignore[arg-type]
        log=log,  # type: ignore[arg-type]
        metrics=ScoringMetrics(),
        topic="impressions",
        clock=lambda: 1.75e9,
        today=lambda: TODAY,
    )
    return ranker, log


def test_rank_builds_a_decodable_impression() -> None:
    lin = _trained(LinUCB())
    ranker, log = _ranker(model=LoadedModel("linucb", "luxury", 3, lin, 0.0, 0.0, fast_scorer(lin)))
    body = ranker.rank(_req(user_id="bob", preferences={"budget": 9000}, k=5), request_id="req-1")
    assert (body["policy"], body["model_version"], body["segment"], body["variant"]) == (
        "linucb", "linucb/luxury/v3", "luxury", "only",
    )  # fmt: skip
    assert [it["position"] for it in body["items"]] == list(range(5))
    topic, key, payload = log.records[0]
    raw = payload()
    imp = decode_impression(raw)
    assert (topic, key, imp.request_id, imp.session_id) == ("impressions", b"s1", "req-1", "s1")
    assert imp.user_id == PSEUDO("bob") and imp.policy == "linucb" and imp.ts == 1.75e9
    assert [s.trip_id for s in imp.slate] == [it["trip_id"] for it in body["items"]]
    assert [s.propensity for s in imp.slate] == [it["propensity"] for it in body["items"]]
    assert imp.phi_names == PHI_NAMES and len(imp.slate[0].phi) == len(PHI_NAMES)
    row = CAT.index[imp.slate[0].trip_id]
    expected_phi = phi(CAT, _req(preferences={"budget": 9000}).preferences, TODAY, np.array([row]))[0]
    assert list(imp.slate[0].phi) == expected_phi.tolist()
    assert orjson.loads(raw) == orjson.loads(orjson.dumps(to_dict(imp))) | {"variant": "only"}
    # the same request id re-draws the same slate
    again = ranker.rank(_req(user_id="bob", preferences={"budget": 9000}, k=5), request_id="req-1")
    assert again["items"] == body["items"]


def test_impressions_flag_the_explorations_uniform_draws() -> None:
    ranker, log = _ranker("rules")  # epsilon 0.2
    flags: list[bool] = []
    for i in range(60):
        ranker.rank(_req(user_id=f"u{i}", k=5), request_id=f"req-{i}")
        raw = log.records[-1][2]()
        imp = decode_impression(raw)
        assert orjson.loads(raw) == orjson.loads(orjson.dumps(to_dict(imp))) | {"variant": "only"}
        for item in imp.slate:
            flags.append(item.randomized)
            if not item.randomized:  # greedy placement: propensity 0.8 + 0.2 / |left|
                assert item.propensity > 0.8
    assert 0.1 < sum(flags) / len(flags) < 0.3  # 300 coins with p = 0.2


def test_explore_false_is_the_greedy_ranking() -> None:
    ranker, _ = _ranker(policy="rules")
    body = ranker.rank(_req(k=8, explore=False))
    assert all(it["propensity"] == 1.0 for it in body["items"]) and not body["explored"]
    scores = [it["score"] for it in body["items"]]
    assert scores == sorted(scores, reverse=True)


def test_unknown_and_departed_candidates() -> None:
    ranker, log = _ranker(policy="rules")
    departed = next(t.trip_id for t in CAT.trips if t.departure_date < TODAY)
    body = ranker.rank(_req(trip_ids=["nope", departed], k=3))
    assert body["items"] == [] and body["ignored_trip_ids"] == ["nope"] and body["candidates"] == 0
    assert log.records == []  # nothing shown, nothing logged
