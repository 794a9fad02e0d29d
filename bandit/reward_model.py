"""Reward models q̂(x, a, k) for the DM, DR and SNDR estimators: cross-fitted logistic or a table.

Cross-fitting (Chernozhukov et al. 2018; Kallus & Uehara 2019 for OPE): the
rows are split into ``folds`` seeded folds and a row's prediction comes from
the model fitted on the other folds, so DR's correction term is not biased by
the reward model having seen the very reward it corrects.

The logistic model is L2-regularised and fitted by Newton's method (IRLS) in
numpy. Rewards above 1 (a booking is worth more than a click) are scaled into
[0, 1] by the largest reward, fitted with fractional targets, and scaled back.

>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(400, 3))
>>> y = (rng.random(400) < 1 / (1 + np.exp(-X[:, 0]))).astype(float)
>>> model = CrossFittedLogistic.fit(X, y, folds=2, seed=0)
>>> model.predict(X[:, None, :]).shape
(400, 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bandit.ope_validation import OPEInputError, as_float_vector

__all__ = ["CrossFittedLogistic", "fit_logistic"]

FloatArray = npt.NDArray[np.float64]


def fit_logistic(X: FloatArray, y: FloatArray, *, l2: float = 1.0, max_iter: int = 50) -> FloatArray:
    """Coefficients (intercept last) of an L2-penalised logistic regression; ``y`` in [0, 1]."""
    Z = np.hstack([X, np.ones((len(X), 1))])
    beta = np.zeros(Z.shape[1])
    penalty = np.full(Z.shape[1], l2)
    penalty[-1] = 0.0  # the intercept is not shrunk
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-np.clip(Z @ beta, -35, 35)))
        grad = Z.T @ (p - y) + penalty * beta
        hess = (Z * (p * (1 - p))[:, None]).T @ Z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


@dataclass(frozen=True)
class CrossFittedLogistic:
    """One logistic model per fold; row ``i`` is predicted by the model that did not see it."""

    fold: npt.NDArray[np.int64]
    coef: FloatArray  # (folds, d + 1), intercept last
    scale: float

    @classmethod
    def fit(
        cls, X: npt.ArrayLike, y: npt.ArrayLike, *, folds: int = 5, seed: int = 0, l2: float = 1.0
    ) -> CrossFittedLogistic:
        """Fit ``folds`` models on seeded folds of the rows of ``X`` (n, d) with rewards ``y`` >= 0."""
        Xa = np.asarray(X, dtype=np.float64)
        ya = as_float_vector(y, "reward")
        if Xa.ndim != 2 or len(Xa) != len(ya):
            raise OPEInputError(
                "X", f"must have shape (n, d) with n = len(reward) = {len(ya)}, got {Xa.shape}"
            )
        if not np.all(np.isfinite(Xa)):
            raise OPEInputError("X", "must be finite (no NaN or inf)")
        if ya.min() < 0:
            raise OPEInputError("reward", "must be >= 0 for the logistic reward model")
        if not 2 <= folds <= len(ya):
            raise OPEInputError("folds", f"must be in [2, n_rows], got {folds}")
        scale = max(float(ya.max()), 1.0)
        fold = np.random.default_rng(seed).permutation(np.arange(len(ya)) % folds).astype(np.int64)
        coef = np.stack([fit_logistic(Xa[fold != f], ya[fold != f] / scale, l2=l2) for f in range(folds)])
        return cls(fold, coef, scale)

    def predict(self, X: npt.ArrayLike) -> FloatArray:
        """q̂ for features ``X`` of shape (n, ..., d): row ``i`` uses the model of the other folds."""
        Xa = np.asarray(X, dtype=np.float64)
        if Xa.shape[0] != len(self.fold) or Xa.shape[-1] != self.coef.shape[1] - 1:
            raise OPEInputError("X", f"must have shape (n={len(self.fold)}, ..., d={self.coef.shape[1] - 1})")
        beta = self.coef[self.fold]  # (n, d + 1)
        extra = (1,) * (Xa.ndim - 2)
        w = beta[:, :-1].reshape(len(beta), *extra, -1)
        z = np.sum(Xa * w, axis=-1) + beta[:, -1].reshape(len(beta), *extra)
        return np.asarray(self.scale / (1.0 + np.exp(-z)))
