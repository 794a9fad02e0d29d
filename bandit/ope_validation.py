"""Input checks of the off-policy estimators, with errors that name the problem.

As in obp (``obp.utils.check_ope_inputs``), every array is checked at the
boundary of :mod:`bandit.ope` so an estimate is never silently computed from
bad logs: a propensity of 0 (IPS would divide by it), above 1, NaN, arrays of
different lengths, or an evaluation policy whose probabilities do not sum to 1
at a position.

>>> import numpy as np
>>> check_pscore(np.array([0.5, 0.0]), "pscore")
Traceback (most recent call last):
...
bandit.ope_validation.OPEInputError: pscore: must be in (0, 1], got 0.0 at index 1
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bandit.errors import LearnerInputError

__all__ = [
    "OPEInputError",
    "as_float_vector",
    "as_int_vector",
    "check_action_dist",
    "check_pscore",
    "check_same_length",
]

_SUM_TOL = 1e-6


class OPEInputError(LearnerInputError):
    """Logs or policies given to an off-policy estimator are malformed; the message names the field."""


def as_float_vector(value: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    """A 1-d finite float64 array, or :class:`OPEInputError` naming ``name``."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise OPEInputError(name, f"must be numeric ({exc})") from None
    if arr.ndim != 1:
        raise OPEInputError(name, f"must be 1-dimensional, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.argmax(bad))
        raise OPEInputError(name, f"must be finite (no NaN or inf), got {float(arr[i])!r} at index {i}")
    return arr


def as_int_vector(value: npt.ArrayLike, name: str, *, lo: int = 0) -> npt.NDArray[np.int64]:
    """A 1-d int64 array with every value >= ``lo``."""
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise OPEInputError(name, f"must be 1-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        as_float = as_float_vector(arr, name)
        if not np.all(as_float == np.round(as_float)):
            raise OPEInputError(name, "must hold integers")
        arr = as_float
    out = arr.astype(np.int64)
    if out.size and out.min() < lo:
        i = int(np.argmin(out))
        raise OPEInputError(name, f"must be >= {lo}, got {out[i]} at index {i}")
    return out


def check_pscore(pscore: npt.NDArray[np.float64], name: str = "pscore") -> None:
    """Propensities must lie in (0, 1]."""
    bad = ~((pscore > 0) & (pscore <= 1))
    if bad.any():
        i = int(np.argmax(bad))
        raise OPEInputError(name, f"must be in (0, 1], got {float(pscore[i])!r} at index {i}")


def check_same_length(**arrays: npt.NDArray[np.generic] | None) -> int:
    """Every given array has the same first dimension; returns it."""
    lengths = {name: len(arr) for name, arr in arrays.items() if arr is not None}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise OPEInputError("lengths", f"arrays must have the same length, got {listed}")
    n = next(iter(lengths.values()), 0)
    if n == 0:
        raise OPEInputError("lengths", "no rounds: the logs are empty")
    return n


def check_action_dist(action_dist: npt.NDArray[np.float64], name: str = "action_dist") -> None:
    """A (rounds, actions, positions) array of probabilities summing to 1 over actions."""
    if action_dist.ndim != 3:
        raise OPEInputError(name, f"must have shape (n_rounds, n_actions, len_list), got {action_dist.shape}")
    if not np.all(np.isfinite(action_dist)):
        raise OPEInputError(name, "must be finite (no NaN or inf)")
    if np.any(action_dist < 0) or np.any(action_dist > 1):
        raise OPEInputError(name, "probabilities must be in [0, 1]")
    sums = action_dist.sum(axis=1)
    bad = np.abs(sums - 1.0) > _SUM_TOL
    if bad.any():
        i, pos = (int(v) for v in np.argwhere(bad)[0])
        raise OPEInputError(
            name,
            f"probabilities must sum to 1 over actions; round {i} position {pos} sums to {float(sums[i, pos])!r}",
        )
