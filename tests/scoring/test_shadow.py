"""Shadow scoring's propensities (pure): the candidate's ε-greedy probabilities of a served slate."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.exploration import epsilon_greedy, request_rng
from scoring.shadow import shadow_propensities, shadow_sampled


@pytest.mark.parametrize("epsilon", [0.0, 0.05, 0.3, 1.0])
def test_for_the_served_scores_they_equal_the_logged_propensities(epsilon: float) -> None:
    rng = np.random.default_rng(0)
    for i in range(200):
        scores = rng.normal(size=int(rng.integers(1, 60)))
        scores[rng.random(scores.size) < 0.2] = 0.5  # ties too
        slate = epsilon_greedy(scores, 10, epsilon, request_rng(f"r{i}"))
        assert np.allclose(shadow_propensities(scores, slate.order, epsilon), slate.propensities)


def test_a_reversed_candidate_gives_the_greedy_slate_only_its_exploration_mass() -> None:
    scores = np.arange(20, dtype=np.float64)
    served = epsilon_greedy(scores, 5, 0.0, request_rng("r"))
    assert served.order.tolist() == [19, 18, 17, 16, 15]
    got = shadow_propensities(-scores, served.order, 0.1)
    assert got.tolist() == pytest.approx([0.1 / (20 - j) for j in range(5)])


def test_the_sample_is_stable_and_about_the_asked_share() -> None:
    ids = [f"req-{i}" for i in range(20_000)]
    share = sum(shadow_sampled(r, 0.1) for r in ids) / len(ids)
    assert 0.09 < share < 0.11
    assert [shadow_sampled(r, 0.1) for r in ids[:50]] == [shadow_sampled(r, 0.1) for r in ids[:50]]
    assert not any(shadow_sampled(r, 0.0) for r in ids[:100]) and all(
        shadow_sampled(r, 1.0) for r in ids[:100]
    )
