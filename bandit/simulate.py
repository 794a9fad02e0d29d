"""Seeded synthetic environments with known ground truth, for tests and demos.

- :func:`linear_bandit`: a stochastic linear bandit (Abbasi-Yadkori et al.
  2011): each round ``n_arms`` fresh φ-like arms, reward ``θ*·x + N(0, σ²)``;
  returns the cumulative pseudo-regret of a learner (UCB / ε-greedy / random).
- :func:`position_biased_clicks`: users of :func:`features.generator.sample_preferences`
  on a synthetic catalog see the rule policy's top ``slate_size`` trips; a
  fraction ``explore_rate`` of slates is shown in uniformly random order
  (``randomized``); clicks follow the position-based model
  ``P(click) = e_k · σ(θ*·φ)`` with a known examination curve ``e_k``.
- :func:`top_k_relevance`: expected true relevance of a scorer's top k on
  held-out users, the ranking-quality measure of the two.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bandit.protocol import Learner
from features.context import Preferences
from features.generator import generate_catalog, sample_preferences
from features.phi import PHI_NAMES, phi
from scoring.linear import rule_scorer
from scoring.topk import top_k
from scoring.weights import weights_vector

__all__ = [
    "TODAY",
    "TRUE_LOGITS",
    "ClickLog",
    "linear_bandit",
    "position_biased_clicks",
    "power_curve",
    "top_k_relevance",
    "weight_error",
]

FloatArray = npt.NDArray[np.float64]
TODAY = dt.date(2026, 1, 1)

#: Hidden taste of the simulated users (log-odds of relevance per φ column).
TRUE_LOGITS: Mapping[str, float] = {
    "BASE_SCORE": -2.5,
    "THEME_FULL": 1.6,
    "THEME_PARTIAL": 0.7,
    "THEME_PENALTY": -1.0,
    "DIFFICULTY_PERFECT": 0.4,
    "DURATION_IDEAL": 0.5,
    "BUDGET_PERFECT": 1.2,
    "BUDGET_GOOD": 0.3,
    "BUDGET_ACCEPTABLE": -0.2,
    "STATUS_LAST_PLACES": -0.3,
    "PRICE_GAP": -1.5,
    "GEO_DIRECT_COUNTRY": 0.9,
    "GEO_CONTINENT": 0.3,
    "POPULARITY": 1.5,
}


def power_curve(n: int, eta: float) -> FloatArray:
    """Examination curve ``(1 / (1 + k))^eta`` (Joachims et al. 2017's simulation family)."""
    return np.asarray((1.0 / (1.0 + np.arange(n))) ** eta, dtype=np.float64)


def _sigmoid(z: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def _arms(rng: np.random.Generator, n: int, d: int) -> FloatArray:
    """φ-like arms: a constant, sparse indicators, and a few values in [0, 1]."""
    X = (rng.random((n, d)) < 0.3).astype(np.float64)
    X[:, 0] = 1.0
    n_cont = max(1, d // 4)
    X[:, d - n_cont :] = rng.random((n, n_cont))
    return X


def linear_bandit(
    learner: Learner | None,
    *,
    rounds: int,
    n_arms: int = 50,
    d: int = 20,
    noise: float = 0.5,
    epsilon: float = 0.0,
    seed: int = 0,
) -> FloatArray:
    """Cumulative pseudo-regret per round of a policy on a seeded linear bandit.

    The policy plays ``argmax learner.score_many(X)`` (ties: lowest row), or a
    uniformly random arm with probability ``epsilon``; ``learner=None`` plays
    uniformly at random. The environment (θ*, arms, noise) depends only on
    ``seed``; the policy's coin flips use a separate stream.
    """
    env = np.random.default_rng(seed)
    coin = np.random.default_rng([seed, 1])
    theta = env.normal(size=d)
    theta /= np.linalg.norm(theta)
    regret = np.empty(rounds)
    total = 0.0
    for t in range(rounds):
        X = _arms(env, n_arms, d)
        means = X @ theta
        noise_t = noise * env.normal()
        explore = learner is None or (epsilon > 0 and coin.random() < epsilon)
        arm = int(coin.integers(n_arms)) if explore else int(top_k(learner.score_many(X), 1)[0])  # type: ignore[union-attr]
        if learner is not None:
            learner.learn_one(X[arm], float(means[arm] + noise_t))
        total += float(means.max() - means[arm])
        regret[t] = total
    return regret


@dataclass(frozen=True)
class ClickLog:
    """Logged slates flattened to one row per shown trip."""

    X: npt.NDArray[np.float32]
    clicked: npt.NDArray[np.bool_]
    positions: npt.NDArray[np.int64]
    randomized: npt.NDArray[np.bool_]
    theta: FloatArray
    examination: FloatArray
    users: list[Preferences]

    @property
    def rewards(self) -> FloatArray:
        return self.clicked.astype(np.float64)


def position_biased_clicks(
    *,
    n_requests: int,
    examination: FloatArray,
    explore_rate: float = 0.2,
    n_candidates: int = 40,
    n_trips: int = 600,
    seed: int = 0,
) -> ClickLog:
    """Clicks on rule-ranked slates of ``len(examination)`` trips under the PBM."""
    rng = np.random.default_rng(seed)
    catalog = generate_catalog(n_trips=n_trips, seed=seed, start=TODAY)
    theta = weights_vector(TRUE_LOGITS)
    rules = rule_scorer()
    slate = len(examination)
    users = sample_preferences(rng, n_requests)
    blocks, clicks, positions, randomized = [], [], [], []
    for user in users:
        rows = rng.choice(len(catalog), size=n_candidates, replace=False)
        X = phi(catalog, user, TODAY, rows)
        # Logging policy: the rule ranking, with rule-score ties broken at random.
        scores = rules.score_many(X) + 1e-3 * rng.random(n_candidates)
        shown = X[top_k(scores, slate)]
        shuffled = bool(rng.random() < explore_rate)
        if shuffled:
            shown = shown[rng.permutation(slate)]
        relevance = _sigmoid(shown.astype(np.float64) @ theta)
        blocks.append(shown)
        clicks.append(rng.random(slate) < examination * relevance)
        positions.append(np.arange(slate))
        randomized.append(np.full(slate, shuffled))
    return ClickLog(
        X=np.concatenate(blocks).astype(np.float32),
        clicked=np.concatenate(clicks),
        positions=np.concatenate(positions).astype(np.int64),
        randomized=np.concatenate(randomized),
        theta=theta,
        examination=np.asarray(examination, dtype=np.float64),
        users=users,
    )


def top_k_relevance(
    score: Callable[[npt.NDArray[np.float32]], FloatArray],
    *,
    n_users: int = 200,
    k: int = 10,
    n_trips: int = 600,
    seed: int = 1,
) -> float:
    """Mean true relevance ``σ(θ*·φ)`` of ``score``'s top k over held-out users' whole catalog."""
    rng = np.random.default_rng([seed, 7])
    catalog = generate_catalog(n_trips=n_trips, seed=seed, start=TODAY)
    theta = weights_vector(TRUE_LOGITS)
    total = 0.0
    for user in sample_preferences(rng, n_users):
        X = phi(catalog, user, TODAY)
        total += float(_sigmoid(X[top_k(score(X), k)].astype(np.float64) @ theta).sum())
    return total / (n_users * k)


def weight_error(learned: FloatArray, theta: FloatArray, skip: str = "BASE_SCORE") -> float:
    """RMS error of the learned weights against θ*, the intercept column excluded."""
    keep = np.array([n != skip for n in PHI_NAMES])
    return float(np.sqrt(np.mean((learned[keep] - theta[keep]) ** 2)))
