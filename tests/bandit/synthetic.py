"""Shared synthetic training data for the bandit tests (seeded, φ-shaped)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import numpy.typing as npt

from features.phi import D


class LogKwargs(TypedDict):
    positions: npt.NDArray[np.int64]
    propensities: npt.NDArray[np.float64]
    randomized: npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Data:
    X: npt.NDArray[np.float32]
    rewards: npt.NDArray[np.float64]
    positions: npt.NDArray[np.int64]
    propensities: npt.NDArray[np.float64]
    randomized: npt.NDArray[np.bool_]

    def slice(self, start: int, stop: int) -> Data:
        part = slice(start, stop)
        return Data(
            self.X[part],
            self.rewards[part],
            self.positions[part],
            self.propensities[part],
            self.randomized[part],
        )

    def split(self, at: int) -> tuple[Data, Data]:
        return self.slice(0, at), self.slice(at, len(self.rewards))

    def arrays(self) -> tuple[npt.NDArray[np.generic], ...]:
        return (self.X, self.rewards, self.positions, self.propensities, self.randomized)

    def kwargs(self) -> LogKwargs:
        return {"positions": self.positions, "propensities": self.propensities, "randomized": self.randomized}


def make_data(n: int = 240, seed: int = 0, d: int = D) -> Data:
    """φ-like rows (constant, sparse indicators, a few values in [0, 1]) with clicks and rewards."""
    rng = np.random.default_rng(seed)
    X = (rng.random((n, d)) < 0.3).astype(np.float32)
    X[:, 0] = 1.0
    X[:, d - 5 :] = rng.random((n, 5)).astype(np.float32)
    theta = rng.normal(size=d)
    p = 1.0 / (1.0 + np.exp(-(X @ theta - 1.0)))
    clicked = rng.random(n) < p
    rewards = np.where(clicked, rng.choice([1.0, 2.0, 5.5], size=n), 0.0)
    positions = rng.integers(0, 12, size=n).astype(np.int64)
    propensities = rng.uniform(0.05, 1.0, size=n)
    randomized = rng.random(n) < 0.3
    return Data(X, rewards, positions, propensities, randomized)
