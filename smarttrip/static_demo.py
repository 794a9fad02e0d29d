"""The offline demo: rules vs weights learned from simulated clicks, side by side.

Until the closed-loop demo (Kafka, Faust, Redis, the scoring worker) exists,
this shows the idea on one machine in a few seconds: users click trips
according to a hidden taste that differs from the hand-tuned rules; a logistic
regression fitted on those clicks recovers weights over the same φ; ranked by
the learned weights, the expected click-through of the top 10 rises towards
the best possible (the hidden taste itself).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from features.catalog import Catalog
from features.context import Preferences
from features.generator import generate_catalog, sample_preferences
from features.phi import PHI_NAMES, phi
from scoring.linear import LinearScorer, rule_scorer
from scoring.topk import top_k
from scoring.weights import weights_from_vector, weights_vector

TODAY = dt.date(2026, 1, 1)

#: The simulated users' hidden taste (log-odds of a click per feature): price and
#: themes matter more than the rules think, departure status much less.
TRUE_LOGITS: dict[str, float] = {
    "BASE_SCORE": -4.5,
    "THEME_FULL": 1.6,
    "THEME_PARTIAL": 0.7,
    "THEME_PENALTY": -1.0,
    "DIFFICULTY_PERFECT": 0.4,
    "DURATION_IDEAL": 0.5,
    "BUDGET_PERFECT": 1.2,
    "BUDGET_GOOD": 0.3,
    "BUDGET_ACCEPTABLE": -0.2,
    "PRICE_GAP": -1.5,
    "GEO_DIRECT_COUNTRY": 0.9,
    "GEO_CONTINENT": 0.3,
    "POPULARITY": 1.5,
}


@dataclass(frozen=True)
class StaticDemoResult:
    catalog: Catalog
    users: list[Preferences]
    learned: LinearScorer
    ctr_top10: dict[str, float]  # expected clicks per top-10 slot under the hidden taste
    n_train: int


def _sigmoid(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-z))


def fit_logistic(
    X: npt.NDArray[np.float32],
    y: npt.NDArray[np.float64],
    *,
    l2: float = 1e-3,
    steps: int = 400,
    lr: float = 0.5,
) -> npt.NDArray[np.float64]:
    """Full-batch gradient descent on the L2-regularised log loss (deterministic)."""
    Xd = X.astype(np.float64)
    w = np.zeros(X.shape[1])
    for _ in range(steps):
        grad = Xd.T @ (_sigmoid(Xd @ w) - y) / len(y) + l2 * w
        w -= lr * grad
    return w


def run_static_demo(
    *, seed: int = 0, n_trips: int = 2000, n_users: int = 400, per_user: int = 50
) -> StaticDemoResult:
    rng = np.random.default_rng(seed)
    catalog = generate_catalog(n_trips=n_trips, seed=seed, start=TODAY)
    users = sample_preferences(rng, n_users)
    w_true = weights_vector(TRUE_LOGITS)
    train, test = users[: n_users // 2], users[n_users // 2 :]

    # Logged exploration traffic: each training user is shown random trips.
    blocks, labels = [], []
    for u in train:
        rows = rng.choice(len(catalog), size=per_user, replace=False)
        X = phi(catalog, u, TODAY, rows)
        blocks.append(X)
        labels.append(rng.random(per_user) < _sigmoid(X.astype(np.float64) @ w_true))
    X_train = np.concatenate(blocks)
    y_train = np.concatenate(labels).astype(np.float64)
    learned = LinearScorer(weights_from_vector(fit_logistic(X_train, y_train)), name="learned")

    truth = LinearScorer(TRUE_LOGITS, name="oracle")
    ctr: dict[str, float] = {}
    for scorer in (rule_scorer(), learned, truth):
        clicks = 0.0
        for u in test:
            X = phi(catalog, u, TODAY)
            shown = top_k(scorer.score_many(X), 10)
            clicks += float(_sigmoid(X[shown].astype(np.float64) @ w_true).sum())
        ctr[scorer.name] = clicks / (10 * len(test))
    return StaticDemoResult(catalog, test, learned, ctr, len(y_train))


def weight_rows(learned: LinearScorer) -> list[tuple[str, float, float, float]]:
    """(feature, rule weight, learned weight, hidden true logit) for every φ column."""
    rules = rule_scorer().weights
    got = learned.weights
    return [(n, rules[n], got[n], TRUE_LOGITS.get(n, 0.0)) for n in PHI_NAMES]
