"""The compiled learner loops equal the reference learners (River SGD, LinUCB, the position step)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bandit import LinUCB, LogisticLearner, VWPolicy
from bandit.fast_kernels import AVAILABLE, FastLinUCB, FastLogisticLearner, FastVW, accelerate
from bandit.position_bias import PositionCorrection
from bandit.protocol import Learner, learner_from_bytes
from scoring.weights import SCORING_WEIGHTS

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="numba (the 'fast' extra) is not installed")


def _batches(seed: int, n_batches: int = 4, n: int = 400) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_batches):
        X = (rng.random((n, 20)) < 0.4) * rng.random((n, 20)) * 3.0
        X[:, 0] = 1.0
        clicked = rng.random(n) < 0.15
        rewards = clicked * rng.choice([1.0, 2.0, 5.5], n)
        out.append({
            "X": X, "rewards": rewards, "positions": rng.integers(0, 25, n),
            "randomized": rng.random(n) < 0.3, "propensities": rng.uniform(0.05, 1.0, n),
        })  # fmt: skip
    return out


def _train(learner: Learner, batches: list[dict[str, Any]]) -> None:
    for i, b in enumerate(batches):
        if i == 2 and isinstance(learner, LogisticLearner):
            learner.restart_schedule()  # the drift response, mid-stream
        if i == 2 and isinstance(learner, LinUCB):
            learner.forget(0.3)
        learner.learn_many(b["X"], b["rewards"], positions=b["positions"], propensities=b["propensities"],
                           randomized=b["randomized"])  # fmt: skip
        learner.learn_one(b["X"][0], float(b["rewards"][0]), position=int(b["positions"][0]), randomized=True)


LOGISTIC_CONFIGS: list[dict[str, Any]] = [
    {
        "prior": dict(SCORING_WEIGHTS),
        "prior_scale": 0.05,
        "prior_intercept": -3.0,
        "lr": 0.1,
    },  # the online one
    {"lr": 0.5, "lr_power": 0.0, "l2": 0.0, "position_bias": "none"},
    {"lr": 2.0, "weight_bound": 0.3, "position_bias": "naive"},  # the projection fires
    {"lr": 0.3, "clip_gradient": 0.05, "position_bias": "discount"},  # gradient clipping fires
    {"lr": 0.2, "l2": 0.01, "position_bias": [1.0, 0.6, 0.3], "examination_strength": 0.0},
    {"lr": 0.2, "examination_strength": 0.0, "examination_floor": 0.2, "max_position": 5},
]


@pytest.mark.parametrize("config", LOGISTIC_CONFIGS)
@pytest.mark.parametrize("seed", [0, 1])
def test_logistic_kernel_reproduces_river_sgd(config: dict[str, Any], seed: int) -> None:
    ref = LogisticLearner(**config)
    fast = accelerate(LogisticLearner(**config))
    assert isinstance(fast, FastLogisticLearner)
    batches = _batches(seed)
    _train(ref, batches)
    _train(fast, batches)
    assert fast.steps == ref.steps and fast.n_examples == ref.n_examples
    np.testing.assert_allclose(fast.weight_vector, ref.weight_vector, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(fast.examination_curve, ref.examination_curve)
    assert np.abs(ref.weight_vector).max() > 0.05  # it learned something


def test_logistic_kernel_is_bit_identical_on_the_online_config() -> None:
    ref = LogisticLearner(**LOGISTIC_CONFIGS[0])
    fast = accelerate(LogisticLearner(**LOGISTIC_CONFIGS[0]))
    _train(ref, _batches(3))
    _train(fast, _batches(3))
    assert fast.to_bytes() == ref.to_bytes()


LINUCB_CONFIGS: list[dict[str, Any]] = [
    {"prior": dict(SCORING_WEIGHTS), "prior_scale": 0.002, "alpha": 0.1},  # the online one
    {"ridge": 0.5, "position_bias": "none", "batch_chunk": 1},
    {"ridge": 3.0, "position_bias": "discount", "batch_chunk": 7},
    {"position_bias": "naive", "max_position": 4},
]


@pytest.mark.parametrize("config", LINUCB_CONFIGS)
@pytest.mark.parametrize("seed", [0, 1])
def test_linucb_kernel_reproduces_the_reference_updates(config: dict[str, Any], seed: int) -> None:
    ref = LinUCB(**config)
    fast = accelerate(LinUCB(**config))
    assert isinstance(fast, FastLinUCB)
    batches = _batches(seed)
    _train(ref, batches)
    _train(fast, batches)
    assert fast.n_examples == ref.n_examples
    np.testing.assert_allclose(fast.A_inv, ref.A_inv, rtol=0, atol=1e-9)
    np.testing.assert_allclose(fast.theta, ref.theta, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(fast.examination_curve, ref.examination_curve)
    # Sherman–Morrison keeps A⁻¹ the inverse of the design matrix it summarises.
    X = np.concatenate([b["X"] for b in batches])
    assert np.abs(fast.A_inv - np.linalg.inv(np.linalg.inv(ref.A_inv))).max() < 1e-9
    assert len(X) > 1000


def test_compiled_position_step_equals_the_loop_of_step() -> None:
    rng = np.random.default_rng(7)
    n = 3000
    pos, clicked, randomized = rng.integers(0, 30, n), rng.random(n) < 0.3, rng.random(n) < 0.4
    loop = PositionCorrection("estimated", max_position=12, strength=2.0, floor=0.1)
    expected = [
        loop.step(int(p), clicked=bool(c), randomized=bool(r))
        for p, c, r in zip(pos, clicked, randomized, strict=True)
    ]
    fast = accelerate(LogisticLearner(position_bias="estimated", max_position=12, examination_strength=2.0,
                                      examination_floor=0.1, lr=1e-9))  # fmt: skip
    seen: list[np.ndarray] = []
    fast._learn_rows = lambda batch, exam, weight: seen.append(exam.copy())  # type: ignore[method-assign]
    fast.learn_many(np.zeros((n, 20)), clicked.astype(float), positions=pos, randomized=randomized)
    np.testing.assert_array_equal(seen[0], [e for e, _ in expected])
    np.testing.assert_array_equal(fast._position.estimator.views, loop.estimator.views)
    np.testing.assert_array_equal(fast._position.estimator.clicks, loop.estimator.clicks)


def test_accelerate_keeps_parameters_state_and_format() -> None:
    trained = LogisticLearner(lr=0.2)
    _train(trained, _batches(5, n_batches=1))
    fast = accelerate(trained)
    assert fast is not trained and fast.to_bytes() == trained.to_bytes()
    back = LogisticLearner.from_bytes(fast.to_bytes())  # a replayed model loads as the reference class
    assert type(back) is LogisticLearner
    vw = VWPolicy(seed=0)
    vw.learn_many(np.eye(20), np.ones(20), positions=np.arange(20))
    fast_vw = accelerate(vw)
    assert isinstance(fast_vw, FastVW)
    # accelerate is a save/load: the same as loading the reference's bytes (VW's own
    # counters and scratch slot change in a load), and it learns on bit for bit.
    loaded = VWPolicy.from_bytes(vw.to_bytes())
    assert fast_vw.to_bytes() == loaded.to_bytes()
    for model in (fast_vw, loaded):
        model.learn_many(
            np.eye(20)[::-1], np.arange(20) % 2, positions=np.arange(20), randomized=np.ones(20, dtype=bool)
        )
    assert fast_vw.to_bytes() == loaded.to_bytes()
    assert type(learner_from_bytes(fast_vw.to_bytes())) is VWPolicy

    class Custom(LinUCB):
        pass

    custom = Custom()
    assert accelerate(custom) is custom  # a subclass may change the arithmetic: left alone
