"""serving_learner equals learner_from_bytes, with one VW workspace instead of two (scoring.model_loader)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import vowpal_wabbit_next

from bandit.errors import ModelFormatError
from bandit.lin_ucb import LinUCB
from bandit.logistic import LogisticLearner
from bandit.protocol import Learner, learner_from_bytes
from bandit.vw_policy import VWPolicy
from scoring.model_loader import serving_learner
from scoring.policies import fast_scorer


def _data(n: int, seed: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    X = (rng.random((n, 20)) < 0.3).astype(float) * rng.random((n, 20))
    return X, (rng.random(n) < 0.1 + 0.5 * X[:, 1]).astype(float), rng.integers(0, 10, n)


def _trained(learner: Learner, n: int, seed: int) -> Learner:
    if n:
        X, y, pos = _data(n, seed)
        learner.learn_many(X, y, positions=pos)
    return learner


VW_CASES = [
    pytest.param(0, {}, id="untrained"),
    pytest.param(2000, {}, id="squarecb"),
    pytest.param(2000, {"exploration": "epsilon", "epsilon": 0.1}, id="epsilon"),
    pytest.param(1500, {"bits": 18, "gamma_scale": 3.0, "position_bias": "none"}, id="18-bits"),
]


@pytest.mark.parametrize(("n", "params"), VW_CASES)
def test_vw_model_loads_equal_to_learner_from_bytes(n: int, params: dict[str, Any]) -> None:
    seed = 7 + n
    blob = _trained(VWPolicy(seed=seed, **{"bits": 16, **params}), n, seed).to_bytes()
    want, got = learner_from_bytes(blob), serving_learner(blob)
    assert type(got) is VWPolicy and type(want) is VWPolicy
    assert got.n_examples == want.n_examples == n
    np.testing.assert_array_equal(got.weights_array(), want.weights_array())
    assert got.to_bytes() == want.to_bytes()  # (VW's own bytes after a load differ from the blob's)
    X, _, _ = _data(300, seed + 1)
    np.testing.assert_array_equal(got.score_many(X), want.score_many(X))
    fast_got, fast_want = fast_scorer(got), fast_scorer(want)
    if params.get("exploration") == "epsilon":
        assert fast_got is None and fast_want is None
    else:
        assert fast_got is not None and fast_want is not None
        X32 = X.astype(np.float32)
        np.testing.assert_array_equal(fast_got(X32, "general"), fast_want(X32, "general"))


def test_a_vw_model_served_keeps_learning_and_clones_like_the_original() -> None:
    blob = _trained(VWPolicy(bits=16, seed=3), 1000, 3).to_bytes()
    want, got = learner_from_bytes(blob), serving_learner(blob)
    X, y, pos = _data(500, 4)
    for learner in (want, got):
        learner.learn_many(X, y, positions=pos)
    assert got.to_bytes() == want.to_bytes()
    clone = got.clone()
    assert type(clone) is VWPolicy
    clone.learn_many(X, y, positions=pos)
    assert clone.n_examples == 500


def test_loading_a_vw_model_opens_one_workspace(monkeypatch: pytest.MonkeyPatch) -> None:
    blob = _trained(VWPolicy(bits=16, seed=1), 200, 1).to_bytes()
    opened: list[bool] = []
    real = vowpal_wabbit_next.Workspace

    def counting(*args: Any, **kwargs: Any) -> Any:
        opened.append(kwargs.get("model_data") is not None)
        return real(*args, **kwargs)

    monkeypatch.setattr(vowpal_wabbit_next, "Workspace", counting)
    learner_from_bytes(blob)
    assert opened == [False, True]  # the old path: an empty workspace, then the restored one
    opened.clear()
    serving_learner(blob)
    assert opened == [True]


@pytest.mark.parametrize(
    "learner",
    [LogisticLearner(), LinUCB(alpha=0.5)],
    ids=["logistic", "linucb"],
)
def test_other_kinds_load_as_learner_from_bytes(learner: Learner) -> None:
    blob = _trained(learner, 800, 2).to_bytes()
    got = serving_learner(blob)
    assert type(got) is type(learner)
    assert got.to_bytes() == learner_from_bytes(blob).to_bytes() == blob


@pytest.mark.parametrize(
    "blob",
    [b"", b"not a model", VWPolicy(bits=16).to_bytes()[:-40]],
    ids=["empty", "garbage", "truncated-vw"],
)
def test_bad_bytes_raise_the_same_error(blob: bytes) -> None:
    with pytest.raises(ModelFormatError) as want:
        learner_from_bytes(blob)
    with pytest.raises(ModelFormatError) as got:
        serving_learner(blob)
    assert str(got.value) == str(want.value)
