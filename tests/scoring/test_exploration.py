"""Exploration: propensities in (0, 1], 1 without exploration, and exact for the sampling done (Monte Carlo)."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.exploration import deterministic, epsilon_greedy, plackett_luce, request_rng
from scoring.topk import top_k


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-3, 3), min_size=1, max_size=40),
    st.integers(1, 45),
    st.floats(0.0, 1.0),
    st.integers(0, 2**32),
)
def test_epsilon_greedy_propensities_in_unit_interval(
    values: list[int], k: int, eps: float, seed: int
) -> None:
    scores = np.array(values, dtype=np.float64)
    slate = epsilon_greedy(scores, k, eps, random.Random(seed))
    m = min(k, len(values))
    assert len(slate.order) == m == len(set(slate.order.tolist()))
    assert ((slate.propensities > 0) & (slate.propensities <= 1)).all()
    if eps == 0:
        assert slate.order.tolist() == top_k(scores, k).tolist()
        assert (slate.propensities == 1).all()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30), st.integers(1, 35), st.integers(0, 2**32))
def test_plackett_luce_propensities_in_unit_interval(weights: list[float], k: int, seed: int) -> None:
    slate = plackett_luce(np.array(weights), k, random.Random(seed))
    assert len(slate.order) == min(k, len(weights)) == len(set(slate.order.tolist()))
    assert ((slate.propensities > 0) & (slate.propensities <= 1)).all()


def test_deterministic_ranking_has_propensity_one() -> None:
    scores = np.array([0.2, 0.9, 0.9, 0.1])
    slate = deterministic(scores, 3)
    assert slate.order.tolist() == [1, 2, 0]  # ties: lower index first
    assert slate.propensities.tolist() == [1.0, 1.0, 1.0]
    assert not slate.explored


def test_same_request_id_same_slate() -> None:
    scores = np.random.default_rng(1).random(200)
    a = epsilon_greedy(scores, 10, 0.5, request_rng("req-1", 3))
    b = epsilon_greedy(scores, 10, 0.5, request_rng("req-1", 3))
    c = epsilon_greedy(scores, 10, 0.5, request_rng("req-2", 3))
    assert a.order.tolist() == b.order.tolist() and a.propensities.tolist() == b.propensities.tolist()
    assert a.order.tolist() != c.order.tolist()


def _check_monte_carlo(draw, n_samples: int, min_count: int = 400) -> int:  # type: ignore[no-untyped-def]
    """Empirical P(item at j | prefix) against the logged propensity, for every (prefix, item) seen.

    Returns how many (prefix, item) pairs were checked. The logged propensity
    must be one value per (prefix, item) and within 4.5 standard errors (+1e-3)
    of the empirical frequency.
    """
    prefix_counts: Counter[tuple[int, ...]] = Counter()
    pick_counts: Counter[tuple[tuple[int, ...], int]] = Counter()
    logged: dict[tuple[tuple[int, ...], int], float] = {}
    for i in range(n_samples):
        slate = draw(random.Random(i))
        order = slate.order.tolist()
        for j, (item, p) in enumerate(zip(order, slate.propensities.tolist(), strict=True)):
            prefix = tuple(order[:j])
            prefix_counts[prefix] += 1
            pick_counts[(prefix, item)] += 1
            key = (prefix, item)
            assert math.isclose(logged.setdefault(key, p), p, rel_tol=1e-12), key
    checked = 0
    for (prefix, item), p in logged.items():
        n = prefix_counts[prefix]
        if n < min_count:
            continue
        empirical = pick_counts[(prefix, item)] / n
        se = math.sqrt(max(p * (1 - p), 1e-12) / n)
        assert abs(empirical - p) <= 4.5 * se + 1e-3, (prefix, item, empirical, p, n)
        checked += 1
    return checked


def test_epsilon_greedy_propensities_match_sampling_monte_carlo() -> None:
    scores = np.array([0.5, 2.0, 1.0, 1.0, -1.0, 3.0])  # a tie between rows 2 and 3
    checked = _check_monte_carlo(lambda rng: epsilon_greedy(scores, 3, 0.35, rng), 60_000)
    assert checked >= 30


def test_plackett_luce_propensities_match_sampling_monte_carlo() -> None:
    pmf = np.array([0.4, 0.25, 0.2, 0.1, 0.05, 0.0])
    checked = _check_monte_carlo(lambda rng: plackett_luce(pmf, 3, rng), 40_000)
    assert checked >= 20
    # a zero-weight candidate is never drawn while positive weight remains
    for i in range(2000):
        assert 5 not in plackett_luce(pmf, 4, random.Random(i)).order.tolist()


def test_plackett_luce_first_position_follows_the_pmf() -> None:
    pmf = np.array([0.6, 0.3, 0.1])
    firsts = Counter(int(plackett_luce(pmf, 1, random.Random(i)).order[0]) for i in range(30_000))
    for c, p in enumerate(pmf):
        assert abs(firsts[c] / 30_000 - p) < 0.012


def test_plackett_luce_all_zero_weights_is_uniform() -> None:
    slate = plackett_luce(np.zeros(4), 4, random.Random(0))
    assert slate.propensities.tolist() == pytest.approx([1 / 4, 1 / 3, 1 / 2, 1.0])


def test_plackett_luce_rejects_negative_weights() -> None:
    with pytest.raises(ValueError, match="weights"):
        plackett_luce(np.array([0.5, -0.1]), 2, random.Random(0))


def test_uniform_pick_when_most_are_taken() -> None:
    # k close to n exercises the explicit-list branch of the uniform draw
    scores = np.arange(8, dtype=np.float64)
    checked = _check_monte_carlo(lambda rng: epsilon_greedy(scores, 8, 1.0, rng), 20_000, min_count=300)
    assert checked > 10


def test_epsilon_greedy_flags_the_uniform_draws() -> None:
    scores = np.arange(40, dtype=np.float64)
    flagged = slots = 0
    for i in range(400):
        slate = epsilon_greedy(scores, 8, 0.25, request_rng(f"flag-{i}"))
        assert slate.randomized is not None and slate.randomized.shape == (8,)
        placed: list[int] = []
        for j, (c, drawn) in enumerate(zip(slate.order.tolist(), slate.randomized.tolist(), strict=True)):
            best = max(set(range(40)) - set(placed))
            if not drawn:  # the greedy branch always places the best remaining candidate
                assert c == best
                assert slate.propensities[j] == pytest.approx(0.75 + 0.25 / (40 - j))
            placed.append(c)
        flagged += int(slate.randomized.sum())
        slots += 8
    assert abs(flagged / slots - 0.25) < 0.03  # 3,200 coins: sd 0.0077
    assert epsilon_greedy(scores, 8, 1.0, request_rng("all")).randomized.all()  # type: ignore[union-attr]
    assert deterministic(scores, 8).randomized is None
