"""The numpy VW scorer equals VW's own pmf (scoring.vw_fast)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt
import pytest

from bandit.protocol import learner_from_bytes
from bandit.vw_policy import VWPolicy
from features.context import Preferences
from features.generator import generate_catalog
from features.phi import PHI_NAMES, phi
from scoring.policies import fast_scorer
from scoring.vw_fast import squarecb_gamma, squarecb_pmf, vw_scorer

TODAY = dt.date(2026, 5, 1)
CAT = generate_catalog(n_trips=1500, seed=4, start=TODAY)
PREFS = [
    Preferences(themes=("hiking", "culture"), budget=2200.0, duration_days=10),
    Preferences(budget=900.0, difficulty=2),
    Preferences(),
]


def _trained(n: int, seed: int, **kwargs: object) -> VWPolicy:
    rng = np.random.default_rng(seed)
    policy = VWPolicy(bits=16, seed=seed, **kwargs)  # type: ignore[arg-type]
    if n:
        X = phi(CAT, PREFS[seed % len(PREFS)], TODAY)[rng.integers(0, len(CAT), n)]
        rewards = (rng.random(n) < 0.1 + 0.5 * (X[:, 1] > 0)).astype(float)
        policy.learn_many(X, rewards, positions=rng.integers(0, 10, n))
    return policy


@pytest.mark.parametrize(("n", "seed"), [(0, 0), (50, 1), (3000, 2), (3000, 3)])
def test_vw_scorer_equals_vw_pmf_on_catalog_phi(n: int, seed: int) -> None:
    policy = _trained(n, seed)
    for loaded in (policy, learner_from_bytes(policy.to_bytes())):  # as served: loaded from the store
        assert isinstance(loaded, VWPolicy)
        scorer = fast_scorer(loaded)
        assert scorer is not None
        for prefs in PREFS:
            X = phi(CAT, prefs, TODAY)
            want, got = loaded.score_many(X), scorer(X, "general")
            greedy = int(np.argmin(X.astype(np.float64) @ _weights(loaded)))
            others = np.arange(len(X)) != greedy
            np.testing.assert_allclose(got[others], want[others], rtol=2e-5, atol=1e-9)
            # VW's greedy probability is 1 minus a float32 sum of the K - 1 others: its rounding error
            # grows with K (ours sums in float64)
            assert abs(got[greedy] - want[greedy]) <= len(X) * np.finfo(np.float32).eps
            assert got.sum() == pytest.approx(1.0, abs=1e-9)
            if n:
                assert int(np.argmax(got)) == int(np.argmax(want)) == greedy  # the same greedy action


def _weights(policy: VWPolicy) -> npt.NDArray[np.float64]:
    w: npt.NDArray[np.float64] = policy.model_weights()[policy._index.astype(np.int64) & (2**policy.bits - 1)]
    return w.astype(np.float64)


def test_gamma_is_vws_gamma_scale_times_root_t() -> None:
    policy = _trained(3000, 5, gamma_scale=10.0, gamma_exponent=0.5)
    assert squarecb_gamma(policy) == pytest.approx(10.0 * np.sqrt(3000), rel=1e-5)
    assert squarecb_gamma(VWPolicy(bits=16)) == 0.0  # all weights zero: every action ties


def test_epsilon_exploration_keeps_vw() -> None:
    assert vw_scorer(VWPolicy(bits=16, exploration="epsilon")) is None


def test_squarecb_pmf_ties_and_empty() -> None:
    assert squarecb_pmf(np.array([]), 5.0).size == 0
    pmf = squarecb_pmf(np.array([1.0, 1.0, 1.0, 2.0]), 3.0)  # the first minimum is greedy
    assert pmf.tolist() == pytest.approx([1 - 0.25 - 0.25 - 1 / 7, 0.25, 0.25, 1 / 7])
    assert len(PHI_NAMES) == len(VWPolicy(bits=16).feature_names)


def test_rank_cpu_bench_measures_every_configuration() -> None:
    from bench.rank_cpu import measure

    rows = measure(requests=5, seed=1)
    assert [r["config"].split(",")[0] for r in rows] == ["vw", "vw", "linucb", "logistic", "rules"]
    assert all(r["cpu_us_per_request"] > 0 and r["impression_bytes"] > 1000 for r in rows)
    assert rows[1]["cpu_us_per_request"] < rows[0]["cpu_us_per_request"]  # the numpy VW path is cheaper
