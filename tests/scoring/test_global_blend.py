"""Serving with a global model: segment models shrink towards it (bandit.segments' rule)."""

from __future__ import annotations

import numpy as np
import pytest

from bandit import LinUCB
from bandit.segments import GLOBAL_SEGMENT, shrinkage_weight
from scoring.policies import LoadedModel, fast_scorer, score_request


def _model(segment: str, n: int, seed: int) -> LoadedModel:
    rng = np.random.default_rng(seed)
    learner = LinUCB(alpha=0.1)
    X = rng.random((n, 20))
    learner.learn_many(X, (rng.random(n) < 0.2).astype(float))
    return LoadedModel("linucb", segment, 3, learner, 0.0, 0.0, fast_scorer(learner))


X = np.random.default_rng(9).random((30, 20)).astype(np.float32)


def test_without_a_global_model_the_segment_model_serves_alone() -> None:
    seg = _model("luxury", 50, 1)
    scored = score_request("linucb", seg, X, "luxury")
    np.testing.assert_array_equal(scored.scores, seg.score(X, "luxury"))
    assert scored.model_version == "linucb/luxury/v3"
    assert score_request("linucb", None, X, "luxury").fallback == "no_model"


def test_a_young_segment_model_or_none_serves_the_global_model() -> None:
    glob = _model(GLOBAL_SEGMENT, 3000, 2)
    young = _model("luxury", 150, 1)
    for seg in (young, None):
        scored = score_request("linucb", seg, X, "luxury", global_model=glob, min_examples=200)
        np.testing.assert_array_equal(scored.scores, glob.score(X, "luxury"))
        assert (scored.model_version, scored.fallback) == ("linucb/_all/v3", None)


@pytest.mark.parametrize("n", [200, 1000, 5000])
def test_an_older_segment_model_is_blended_with_its_credibility_weight(n: int) -> None:
    glob, seg = _model(GLOBAL_SEGMENT, 3000, 2), _model("luxury", n, 1)
    w = shrinkage_weight(n, min_examples=200, shrinkage=1000.0)
    assert w == pytest.approx(n / (n + 1000))
    scored = score_request("linucb", seg, X, "luxury", global_model=glob, min_examples=200, shrinkage=1000.0)
    want = w * seg.score(X, "luxury") + (1 - w) * glob.score(X, "luxury")
    np.testing.assert_allclose(scored.scores, want, rtol=0, atol=1e-12)
    assert scored.model_version == "linucb/luxury/v3+linucb/_all/v3"


def test_rules_ignore_the_global_model() -> None:
    glob = _model(GLOBAL_SEGMENT, 300, 2)
    assert score_request("rules", None, X, "luxury", global_model=glob).model_version == "rules/v1"
