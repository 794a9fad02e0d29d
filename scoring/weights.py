"""The rule baseline's weights and conversion between named weights and vectors."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt

from features.phi import PHI_NAMES

__all__ = ["SCORING_WEIGHTS", "WeightsError", "load_weights", "weights_from_vector", "weights_vector"]

#: The current site's hand-tuned rule score (see ARCHITECTURE.md). Features not
#: listed here (the continuous ones) have weight 0 in the rule policy.
SCORING_WEIGHTS: Mapping[str, float] = {
    "BASE_SCORE": 30,
    "THEME_FULL": 25,
    "THEME_PARTIAL": 12,
    "THEME_PENALTY": -15,
    "DIFFICULTY_PERFECT": 15,
    "DURATION_IDEAL": 12,
    "DURATION_GOOD": 8,
    "BUDGET_PERFECT": 12,
    "BUDGET_GOOD": 8,
    "BUDGET_ACCEPTABLE": 5,
    "STATUS_GUARANTEED": 7,
    "STATUS_LAST_PLACES": 15,
    "DEPARTING_SOON": 7,
    "GEO_DIRECT_COUNTRY": 15,
    "GEO_CONTINENT": 5,
}


class WeightsError(ValueError):
    """Weights name an unknown feature or hold a non-finite value."""


def weights_vector(weights: Mapping[str, float]) -> npt.NDArray[np.float64]:
    """Dense vector over :data:`~features.phi.PHI_NAMES`; absent names get 0."""
    index = {n: i for i, n in enumerate(PHI_NAMES)}
    w = np.zeros(len(PHI_NAMES), dtype=np.float64)
    for name, value in weights.items():
        if name not in index:
            raise WeightsError(f"{name}: unknown feature; expected one of {', '.join(PHI_NAMES)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise WeightsError(f"{name}: weight must be a finite number, got {value!r}")
        w[index[name]] = float(value)
    return w


def weights_from_vector(w: npt.ArrayLike) -> dict[str, float]:
    arr = np.asarray(w, dtype=np.float64)
    if arr.shape != (len(PHI_NAMES),):
        raise WeightsError(f"weights: expected shape ({len(PHI_NAMES)},), got {arr.shape}")
    return {n: float(v) for n, v in zip(PHI_NAMES, arr, strict=True)}


def load_weights(path: str | Path) -> dict[str, float]:
    """Read a JSON object {feature name: weight}; validated like :func:`weights_vector`."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(raw, dict):
        raise WeightsError(f"{path}: must be a JSON object of feature name -> weight")
    weights_vector(raw)
    return {str(k): float(v) for k, v in raw.items()}
