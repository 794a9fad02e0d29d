"""Guardrails: the checks a model must pass before it may be published.

Why: a learner fed bad data (or a bug) can produce NaN weights or weights that
explode; serving such a model ranks garbage for every user of a segment. The
model store runs :meth:`Guardrails.check` before each publish and refuses a
model with any violation, so the serving side keeps the previous version.

Checks, each reported at most once per model as a :class:`Violation` whose
``code`` is a metric label and whose ``message`` names the offending weights:

================  ==========================================================
code              fires when
================  ==========================================================
non_finite        a weight is NaN or ±inf (or not a number at all)
out_of_bounds     ``|w| > max_abs_weight``, or a named weight leaves its own
                  ``bounds[name] = (low, high)`` interval (inclusive)
too_few_examples  ``examples_seen < min_examples``
================  ==========================================================

Settings from the environment: ``SMARTTRIP_MODEL_MAX_ABS_WEIGHT`` (default
1e6) and ``SMARTTRIP_MODEL_MIN_EXAMPLES`` (default 0).

Examples
--------
>>> g = Guardrails(max_abs_weight=100.0, min_examples=10)
>>> [v.code for v in g.check({"BASE_SCORE": float("nan"), "THEME_FULL": 1e9}, examples_seen=3)]
['non_finite', 'out_of_bounds', 'too_few_examples']
>>> g.check({"BASE_SCORE": 30.0}, examples_seen=10)
[]
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "VIOLATION_CODES",
    "Guardrails",
    "Violation",
    "ViolationCode",
    "WeightsLike",
    "learner_weights",
]

ViolationCode = Literal["non_finite", "out_of_bounds", "too_few_examples"]
VIOLATION_CODES: Final[tuple[ViolationCode, ...]] = ("non_finite", "out_of_bounds", "too_few_examples")
#: Named weights (``{"BUDGET_PERFECT": 9.3}``) or a raw weight array (VW's table).
WeightsLike = Mapping[str, float] | npt.NDArray[Any]

ENV_MAX_ABS_WEIGHT: Final = "SMARTTRIP_MODEL_MAX_ABS_WEIGHT"
ENV_MIN_EXAMPLES: Final = "SMARTTRIP_MODEL_MIN_EXAMPLES"
_SHOWN = 5  # offending names listed in a message; the rest are counted


@dataclass(frozen=True)
class Violation:
    """One failed check: a machine ``code`` and a message naming what failed."""

    code: ViolationCode
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def _listing(items: list[str]) -> str:
    more = f" (and {len(items) - _SHOWN} more)" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


def _as_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return None
    return float(value)


@dataclass(frozen=True)
class Guardrails:
    """Bounds a publishable model must satisfy.

    Parameters
    ----------
    max_abs_weight
        Largest allowed ``|w|`` for every weight (``math.inf`` disables the check).
    min_examples
        Fewest examples a model must have learned before it may be published.
    bounds
        Optional per-feature ``(low, high)`` intervals for named weights.
    """

    max_abs_weight: float = 1e6
    min_examples: int = 0
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.max_abs_weight, bool) or not self.max_abs_weight > 0:
            raise ValueError(f"max_abs_weight: must be > 0, got {self.max_abs_weight!r}")
        if (
            isinstance(self.min_examples, bool)
            or not isinstance(self.min_examples, int)
            or self.min_examples < 0
        ):
            raise ValueError(f"min_examples: must be an integer >= 0, got {self.min_examples!r}")
        for name, pair in self.bounds.items():
            low, high = pair
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ValueError(
                    f"bounds[{name!r}]: must be finite (low, high) with low <= high, got {pair!r}"
                )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Guardrails:
        """Guardrails from ``SMARTTRIP_MODEL_MAX_ABS_WEIGHT`` / ``SMARTTRIP_MODEL_MIN_EXAMPLES``."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for var, name, kind in (
            (ENV_MAX_ABS_WEIGHT, "max_abs_weight", float),
            (ENV_MIN_EXAMPLES, "min_examples", int),
        ):
            raw = env.get(var)
            if raw is None:
                continue
            try:
                values[name] = kind(raw)
            except ValueError:
                raise ValueError(f"{var}: expected {kind.__name__}, got {raw!r}") from None
        return cls(**values)

    def check(self, weights: WeightsLike, examples_seen: int) -> list[Violation]:
        """All violations of ``weights`` learned from ``examples_seen`` examples (empty = publishable)."""
        out = self._check_array(weights) if isinstance(weights, np.ndarray) else self._check_named(weights)
        if examples_seen < self.min_examples:
            out.append(
                Violation(
                    "too_few_examples", f"examples_seen: {examples_seen} < min_examples {self.min_examples}"
                )
            )
        return out

    def _check_named(self, weights: Mapping[str, float]) -> list[Violation]:
        bad: list[str] = []
        big: list[str] = []
        for name, raw in weights.items():
            value = _as_float(raw)
            if value is None or not math.isfinite(value):
                bad.append(f"{name}={raw!r} (not a number)" if value is None else f"{name}={value}")
                continue
            low, high = self.bounds.get(name, (-self.max_abs_weight, self.max_abs_weight))
            if abs(value) > self.max_abs_weight:
                big.append(f"{name}={value:g} (|w| > {self.max_abs_weight:g})")
            elif not low <= value <= high:
                big.append(f"{name}={value:g} (outside [{low:g}, {high:g}])")
        out: list[Violation] = []
        if bad:
            out.append(Violation("non_finite", f"weights not finite: {_listing(bad)}"))
        if big:
            out.append(Violation("out_of_bounds", f"weights out of bounds: {_listing(big)}"))
        return out

    def _check_array(self, weights: npt.NDArray[Any]) -> list[Violation]:
        if weights.dtype.kind not in "biuf":
            return [Violation("non_finite", f"weights: array of dtype {weights.dtype} is not numeric")]
        flat = np.asarray(weights, dtype=np.float64).ravel()
        out: list[Violation] = []
        finite = np.isfinite(flat)
        if not finite.all():
            first = int(np.flatnonzero(~finite)[0])
            n_bad = int((~finite).sum())
            out.append(
                Violation(
                    "non_finite",
                    f"weights not finite: {n_bad} of {flat.size} entries (first at index {first}: {flat[first]})",
                )
            )
        big = finite & (np.abs(np.where(finite, flat, 0.0)) > self.max_abs_weight)
        if big.any():
            first = int(np.flatnonzero(big)[0])
            out.append(
                Violation(
                    "out_of_bounds",
                    f"weights out of bounds: {int(big.sum())} of {flat.size} entries have |w| > "
                    f"{self.max_abs_weight:g} (first at index {first}: {flat[first]:g})",
                )
            )
        return out


def learner_weights(learner: object) -> WeightsLike:
    """The weights a guardrail should check for a :mod:`bandit` learner.

    ``weights`` (a feature → value mapping) for linear learners, VW's
    ``model_weights()`` (else ``weights_array()``), and for a segmented learner the global model's
    weights plus every segment model's as ``"segment/feature"``.

    Raises
    ------
    TypeError
        If the object exposes none of these.
    """
    named = getattr(learner, "weights", None)
    if isinstance(named, Mapping):
        return {str(k): v for k, v in named.items()}
    for name in ("model_weights", "weights_array"):  # VW: its weights, not its optimiser state
        table = getattr(learner, name, None)
        if callable(table):
            return np.asarray(table())
    glob = getattr(learner, "global_model", None)
    if glob is not None:
        merged = _as_named(learner_weights(glob), "")
        model_of = getattr(learner, "model")  # noqa: B009  (duck-typed SegmentedLearner)
        for segment in getattr(learner, "segments", ()):
            merged.update(_as_named(learner_weights(model_of(segment)), f"{segment}/"))
        return merged
    raise TypeError(f"{type(learner).__name__} exposes no weights (weights, weights_array() or global_model)")


def _as_named(weights: WeightsLike, prefix: str) -> dict[str, float]:
    if isinstance(weights, np.ndarray):
        return {f"{prefix}[{i}]": float(v) for i, v in enumerate(np.asarray(weights).ravel())}
    return {prefix + k: v for k, v in weights.items()}
