"""FastVWPolicy learns exactly what VWPolicy learns; the numpy examination curve equals the loop's."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bandit import VWPolicy
from bandit.fast_kernels import FastVW, examination_curve
from bandit.position_bias import ExaminationEstimator
from bandit.vw_fast_learn import AVAILABLE, FastVWPolicy

pytestmark = pytest.mark.skipif(
    not AVAILABLE, reason="vowpal-wabbit-next lacks the core objects FastVWPolicy uses"
)

CONFIGS: list[dict[str, Any]] = [
    {"position_bias": "estimated", "learning_rate": 0.1, "bits": 16},  # the online one
    {"exploration": "epsilon", "epsilon": 0.2, "l2": 1e-6, "position_bias": "discount"},
    {"importance_weights": True, "position_bias": "naive", "power_t": 0.0},
    {"position_bias": [1.0, 0.5, 0.25], "gamma_scale": 50.0},
]


def _batches(seed: int, n_batches: int = 3, n: int = 150) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_batches):
        X = (rng.random((n, 20)) < 0.35) * rng.normal(0.0, 2.0, (n, 20))
        X[:, 0] = 1.0
        X[rng.random(n) < 0.05] = 0.0  # rows with no feature at all
        out.append({
            "X": X, "rewards": (rng.random(n) < 0.2) * rng.choice([1.0, 3.0], n),
            "positions": rng.integers(0, 25, n), "propensities": rng.uniform(0.01, 1.0, n),
            "randomized": rng.random(n) < 0.3,
        })  # fmt: skip
    return out


def _train(model: VWPolicy, batches: list[dict[str, Any]]) -> None:
    for b in batches:
        model.learn_many(b["X"], b["rewards"], positions=b["positions"], propensities=b["propensities"],
                         randomized=b["randomized"])  # fmt: skip
        model.learn_one(b["X"][1], float(b["rewards"][1]), position=int(b["positions"][1]), randomized=True)


@pytest.mark.parametrize("fast_type", [FastVWPolicy, FastVW])
@pytest.mark.parametrize("config", CONFIGS)
def test_fast_vw_models_are_bit_identical(fast_type: type[VWPolicy], config: dict[str, Any]) -> None:
    ref, fast = VWPolicy(seed=1, **config), fast_type(seed=1, **config)
    batches = _batches(len(str(config)))
    _train(ref, batches)
    _train(fast, batches)
    assert fast.to_bytes() == ref.to_bytes()
    assert np.abs(ref.model_weights()).max() > 0  # it learned something
    probe = batches[0]["X"][:30]
    np.testing.assert_array_equal(fast.score_many(probe), ref.score_many(probe))


def test_fast_vw_with_shared_contexts_is_bit_identical() -> None:
    ref, fast = VWPolicy(seed=0), FastVWPolicy(seed=0)
    b = _batches(9, n_batches=1, n=60)[0]
    contexts = [{"age": float(i % 7), "mobile": float(i % 2)} if i % 3 else None for i in range(60)]
    for model in (ref, fast):
        model.learn_many(b["X"], b["rewards"], positions=b["positions"], contexts=contexts)
        model.learn_one(b["X"][0], 1.0, context={"age": 3.0})
    assert fast.to_bytes() == ref.to_bytes()


def test_fast_vw_rejects_a_bad_batch_whole() -> None:
    fast = FastVWPolicy(seed=0)
    before = fast.to_bytes()
    X = np.ones((3, 20))
    with pytest.raises(ValueError, match="contexts"):
        fast.learn_many(X, np.ones(3), contexts=[None, {"bad name": 1.0}, None])
    assert fast.to_bytes() == before


@pytest.mark.parametrize(("strength", "floor", "m"), [(10.0, 0.05, 20), (0.0, 0.2, 6), (2.5, 0.01, 1)])
def test_examination_curve_equals_the_loop_bit_for_bit(strength: float, floor: float, m: int) -> None:
    rng = np.random.default_rng(m)
    est = ExaminationEstimator(max_position=m, strength=strength, floor=floor)
    np.testing.assert_array_equal(examination_curve(est), est.curve())  # no evidence yet
    for _ in range(5):
        for _ in range(int(rng.integers(1, 400))):
            est.update(int(rng.integers(0, m + 3)), bool(rng.random() < 0.3))
        np.testing.assert_array_equal(examination_curve(est), est.curve())
    est.views[0] = 0.0  # no views at the top position: expected clicks 0
    np.testing.assert_array_equal(examination_curve(est), est.curve())
