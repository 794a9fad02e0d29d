"""Input validation at the learners' boundary: named, atomic, never mutating.

Every check raises :class:`~bandit.errors.LearnerInputError` (or
:class:`~bandit.errors.LearnerConfigError` for constructor arguments) whose
message starts with the argument and, for batches, the first bad row, e.g.
``propensities[3]: must be in (0, 1], got 1.5``. Arrays are copied to float64,
so a caller's arrays are never modified and float32 φ is learned exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bandit.errors import LearnerConfigError, LearnerInputError

__all__ = ["Batch", "as_batch", "as_example", "as_matrix", "prior_vector"]

FloatArray = npt.NDArray[np.float64]


def _finite(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise LearnerInputError(name, f"must be a number, got {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out):
        raise LearnerInputError(name, f"must be finite, got {out}")
    return out


def as_matrix(X: npt.ArrayLike, d: int, name: str = "X") -> FloatArray:
    """``X`` as a finite float64 (n, d) array (a copy; the input is never modified)."""
    arr = np.asarray(X)
    if arr.dtype.kind not in "biuf":
        raise LearnerInputError(name, f"must be numeric, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != d:
        raise LearnerInputError(name, f"expected shape (n, {d}), got {arr.shape}")
    out = np.array(arr, dtype=np.float64)
    if not np.isfinite(out).all():
        bad = int(np.argwhere(~np.isfinite(out))[0][0])
        raise LearnerInputError(f"{name}[{bad}]", "contains non-finite values")
    return out


def _vector(values: npt.ArrayLike | None, n: int, name: str, default: float) -> FloatArray:
    if values is None:
        return np.full(n, default)
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise LearnerInputError(name, f"must be numeric, got dtype {arr.dtype}")
    if arr.shape != (n,):
        raise LearnerInputError(name, f"expected shape ({n},), got {arr.shape}")
    return np.array(arr, dtype=np.float64)


@dataclass(frozen=True)
class Batch:
    """Validated training input: n rows of φ and per-row outcome and logging data."""

    X: FloatArray
    rewards: FloatArray
    positions: npt.NDArray[np.int64]
    propensities: FloatArray
    randomized: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.rewards)


def as_batch(
    X: npt.ArrayLike,
    rewards: npt.ArrayLike,
    positions: npt.ArrayLike | None,
    propensities: npt.ArrayLike | None,
    randomized: npt.ArrayLike | None,
    d: int,
) -> Batch:
    """Validate a training batch; messages name the argument and the first bad row."""
    Xm = as_matrix(X, d)
    n = len(Xm)
    r = _vector(rewards, n, "rewards", 0.0)
    if not np.isfinite(r).all():
        raise LearnerInputError(f"rewards[{int(np.argmax(~np.isfinite(r)))}]", "must be finite")
    p = _vector(positions, n, "positions", 0.0)
    bad = ~np.isfinite(p) | (p < 0) | (p != np.floor(p))
    if bad.any():
        i = int(np.argmax(bad))
        raise LearnerInputError(f"positions[{i}]", f"must be a non-negative integer, got {p[i]}")
    q = _vector(propensities, n, "propensities", 1.0)
    bad = ~((q > 0) & (q <= 1))
    if bad.any():
        i = int(np.argmax(bad))
        raise LearnerInputError(f"propensities[{i}]", f"must be in (0, 1], got {q[i]}")
    if randomized is None:
        z = np.zeros(n, dtype=bool)
    else:
        z = np.asarray(randomized)
        if z.shape != (n,) or z.dtype.kind not in "bi":
            raise LearnerInputError("randomized", f"expected ({n},) booleans, got {z.dtype} {z.shape}")
        z = z.astype(bool)
    return Batch(Xm, r, p.astype(np.int64), q, z)


def as_example(
    x: npt.ArrayLike,
    reward: float,
    position: int,
    propensity: float,
    randomized: bool,
    d: int,
) -> Batch:
    """Validate one training example (messages name ``x``, ``reward``, ``position``…)."""
    row = np.asarray(x)
    if row.ndim != 1 or row.shape[0] != d:
        raise LearnerInputError("x", f"expected shape ({d},), got {row.shape}")
    r = _finite(reward, "reward")
    if isinstance(position, bool) or not isinstance(position, int | np.integer) or position < 0:
        raise LearnerInputError("position", f"must be a non-negative integer, got {position!r}")
    q = _finite(propensity, "propensity")
    if not 0 < q <= 1:
        raise LearnerInputError("propensity", f"must be in (0, 1], got {q}")
    if not isinstance(randomized, bool | np.bool_):
        raise LearnerInputError("randomized", f"must be a bool, got {type(randomized).__name__}")
    Xm = as_matrix(row[None, :], d, "x")
    return Batch(Xm, np.array([r]), np.array([int(position)]), np.array([q]), np.array([bool(randomized)]))


def prior_vector(prior: Mapping[str, float] | None, scale: float, feature_names: Sequence[str]) -> FloatArray:
    """``scale × prior`` as a vector over ``feature_names`` (absent names 0; None → zeros).

    >>> prior_vector({"b": 10.0}, 0.1, ("a", "b")).tolist()
    [0.0, 1.0]
    """
    if not (isinstance(scale, int | float) and math.isfinite(scale)):
        raise LearnerConfigError("prior_scale", f"must be a finite number, got {scale!r}")
    out = np.zeros(len(feature_names))
    if prior is None:
        return out
    index = {n: i for i, n in enumerate(feature_names)}
    for name, value in prior.items():
        if name not in index:
            raise LearnerConfigError("prior", f"unknown feature {name!r}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise LearnerConfigError("prior", f"{name}: weight must be a finite number, got {value!r}")
        out[index[name]] = scale * float(value)
    return out
