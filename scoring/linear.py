"""Linear scorers over φ: the rule baseline and any learned weight vector."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from features.phi import PHI_NAMES
from scoring.topk import top_k
from scoring.weights import SCORING_WEIGHTS, weights_from_vector, weights_vector

__all__ = ["LinearScorer", "rule_scorer"]


class LinearScorer:
    """score = Φ · w for a weight per named feature (missing names weigh 0)."""

    def __init__(self, weights: Mapping[str, float], *, name: str = "linear") -> None:
        self.name = name
        self._w = weights_vector(weights)
        self._w.setflags(write=False)
        # φ is float32; a float64 vector would make numpy upcast the whole matrix (~8× slower).
        self._w32 = self._w.astype(np.float32)

    @property
    def vector(self) -> npt.NDArray[np.float64]:
        return self._w

    @property
    def weights(self) -> dict[str, float]:
        return weights_from_vector(self._w)

    def score_many(self, X: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
        if X.ndim != 2 or X.shape[1] != len(PHI_NAMES):
            raise ValueError(f"X: expected shape (n, {len(PHI_NAMES)}), got {X.shape}")
        return np.asarray(X @ self._w32, dtype=np.float64)

    def rank(self, X: npt.NDArray[np.floating], k: int) -> npt.NDArray[np.intp]:
        """Rows of X in ranked order, the best k."""
        return top_k(self.score_many(X), k)


def rule_scorer() -> LinearScorer:
    """The site's current hand-tuned rule score as a linear scorer."""
    return LinearScorer(SCORING_WEIGHTS, name="rules")
