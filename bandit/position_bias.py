"""Position-bias correction: examination probability per position, estimated online.

The position-based click model (Craswell et al. 2008; Richardson et al. 2007)
says a shown trip is clicked only if it is examined, and examination depends
on the position alone::

    P(click | x, position k) = e_k · P(relevant | x),      e_0 = 1.

A learner that fits clicks directly therefore learns ``e_k · r(x)``, so
features of trips the logging policy tends to put on top look better than
they are. We correct by **inverse-propensity weighting with an estimated
examination curve** (Joachims, Swaminathan & Schnabel 2017, "Unbiased
Learning-to-Rank with Biased Feedback", WSDM): a learner's target becomes
``reward / ê_k``, whose expectation is the position-free ``E[reward | x]``.
The logistic learner uses the soft label ``click / ê_k`` in the log loss,
whose gradient ``σ(z) − click / ê_k`` has the unbiased expectation
``σ(z) − r(x)``.

Why not a position feature dropped at serving time: that removes the bias
only if the position effect is additive on the model's scale (a logit offset
for the logistic model, a reward offset for LinUCB and VW), while the PBM's
``e_k`` multiplies the click probability, so the feature would absorb an
average effect and leave the interaction with relevance in the other weights;
it also spends model capacity on a nuisance. IPW needs only the curve, which
we estimate from the exploration traffic that exists anyway, and which the
simulation in ``tests/bandit/test_logistic.py`` shows is enough to match a
learner that knows the true curve.

Estimating ``e_k`` (Wang et al. 2016, "Learning to Rank with Selection Bias
in Personal Search", SIGIR — result randomization): on *randomized* slates,
where the scoring worker placed the shown trips in a uniformly random order,
relevance is independent of position, so ``CTR_k / CTR_0 = e_k``. With
``n_k`` impressions and ``c_k`` clicks at position k on such slates, the
expected clicks at k under full examination are ``E_k = n_k · c_0 / n_0`` and

.. math::

    \\hat e_k = \\operatorname{clip}\\Big(\\frac{c_k + m\\,\\pi_k}{E_k + m},\\;
                \\text{floor},\\; 1\\Big)

("clicks over expected clicks", Zhang & Jones 2007), shrunk by ``m``
pseudo-clicks towards the prior ``π_k = 1/(1+k)`` — the seed's naive belief —
so the correction starts where the seed was and moves as evidence arrives.
``ê_0 = 1`` by construction; the floor caps the weight at ``1/floor``
(propensity clipping, Strehl et al. 2010). Positions at or beyond
``max_position`` share the last bucket.

Modes of :class:`PositionCorrection` (the learners' ``position_bias`` argument):

==================  ========================================================
``"estimated"``     target ``reward / ê_k`` with the online estimate above.
``"naive"``         target ``reward / e_k`` with the seed's ``e_k = 1/(1+k)``.
``"discount"``      target ``reward``, example weight ``1/(1+k)`` (DCG-style).
``"none"``          target ``reward``, weight 1: no correction.
a sequence          a fixed, known curve ``e_k`` (e.g. from an offline study).
==================  ========================================================

In every mode the estimator keeps learning from randomized traffic, so the
curve can be monitored before it is switched on. The estimate used for an
example is the one *before* that example is counted (as in progressive
validation), which makes the whole correction a deterministic function of
the example sequence.

>>> est = ExaminationEstimator(max_position=3, strength=0.0)
>>> for position, clicks in ((0, 50), (1, 25), (2, 10)):
...     for i in range(100):
...         est.update(position, i < clicks)
>>> est.curve().round(2).tolist()
[1.0, 0.5, 0.2]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from bandit.errors import LearnerConfigError

__all__ = ["ExaminationEstimator", "PositionBias", "PositionCorrection", "naive_curve"]

PositionBias: TypeAlias = Literal["estimated", "naive", "discount", "none"] | Sequence[float]
_MODES: Final = ("estimated", "naive", "discount", "none")


def naive_curve(n: int) -> npt.NDArray[np.float64]:
    """The seed's assumed examination curve ``1 / (1 + k)`` for ``k = 0..n-1``."""
    return 1.0 / (1.0 + np.arange(n, dtype=np.float64))


class ExaminationEstimator:
    """Online examination probabilities per position from randomized slates.

    Parameters
    ----------
    max_position
        Number of position buckets; position ``k >= max_position`` counts in the last.
    strength
        Prior strength ``m`` in pseudo-clicks (0 = raw ratios).
    floor
        Smallest examination probability returned (caps IPW weights at ``1/floor``).
    """

    def __init__(self, *, max_position: int = 20, strength: float = 10.0, floor: float = 0.05) -> None:
        if (
            isinstance(max_position, bool)
            or not isinstance(max_position, int)
            or not 1 <= max_position <= 10_000
        ):
            raise LearnerConfigError(
                "max_position", f"must be an integer in [1, 10000], got {max_position!r}"
            )
        if not (isinstance(strength, int | float) and math.isfinite(strength) and strength >= 0):
            raise LearnerConfigError(
                "examination_strength", f"must be a finite number >= 0, got {strength!r}"
            )
        if not (isinstance(floor, int | float) and 0 < floor <= 1):
            raise LearnerConfigError("examination_floor", f"must be in (0, 1], got {floor!r}")
        self.max_position = max_position
        self.strength = float(strength)
        self.floor = float(floor)
        self._prior = naive_curve(max_position)
        self.clicks = np.zeros(max_position)
        self.views = np.zeros(max_position)

    def bucket(self, position: int) -> int:
        return min(position, self.max_position - 1)

    def update(self, position: int, clicked: bool) -> None:
        """Count one impression of a randomized slate at ``position``."""
        k = self.bucket(position)
        self.views[k] += 1.0
        if clicked:
            self.clicks[k] += 1.0

    def examination(self, position: int) -> float:
        """Current estimate ``ê`` for one position."""
        k = self.bucket(position)
        if k == 0:
            return 1.0
        expected = self.views[k] * self.clicks[0] / self.views[0] if self.views[0] > 0 else 0.0
        denom = expected + self.strength
        if denom <= 0:  # strength 0 and no evidence: nothing to go on but the prior
            return float(max(self._prior[k], self.floor))
        e = (self.clicks[k] + self.strength * self._prior[k]) / denom
        return float(min(max(e, self.floor), 1.0))

    def curve(self) -> npt.NDArray[np.float64]:
        """``ê_k`` for every bucket."""
        return np.array([self.examination(k) for k in range(self.max_position)])


class PositionCorrection:
    """Turns (reward, position) into an IPW target and an example weight.

    Parameters
    ----------
    mode
        One of ``"estimated"``, ``"naive"``, ``"discount"``, ``"none"``, or a
        fixed examination curve (a sequence of values in (0, 1], first = 1).
    max_position, strength, floor
        See :class:`ExaminationEstimator`.

    Examples
    --------
    >>> pc = PositionCorrection("naive")
    >>> pc.step(3, clicked=True, randomized=False)
    (0.25, 1.0)
    >>> PositionCorrection("discount").step(3, clicked=True, randomized=False)
    (1.0, 0.25)
    """

    def __init__(
        self, mode: PositionBias, *, max_position: int = 20, strength: float = 10.0, floor: float = 0.05
    ) -> None:
        self.estimator = ExaminationEstimator(max_position=max_position, strength=strength, floor=floor)
        self._fixed: npt.NDArray[np.float64] | None = None
        if isinstance(mode, str):
            if mode not in _MODES:
                raise LearnerConfigError("position_bias", f"must be one of {_MODES} or a curve, got {mode!r}")
            self.mode: str = mode
        else:
            curve = np.asarray(mode, dtype=np.float64)
            if curve.ndim != 1 or len(curve) == 0:
                raise LearnerConfigError("position_bias", "a fixed curve must be a non-empty sequence")
            if not (np.isfinite(curve).all() and (curve > 0).all() and (curve <= 1).all()):
                raise LearnerConfigError("position_bias", "a fixed curve's values must be in (0, 1]")
            self.mode = "fixed"
            self._fixed = curve

    def json_mode(self) -> str | list[float]:
        """The mode as a JSON value (constructor round-trip)."""
        return self._fixed.tolist() if self._fixed is not None else self.mode

    def step(self, position: int, *, clicked: bool, randomized: bool) -> tuple[float, float]:
        """``(examination, weight)`` for one example, then count it if randomized."""
        examination, weight = 1.0, 1.0
        if self.mode == "estimated":
            examination = self.estimator.examination(position)
        elif self.mode == "naive":
            examination = 1.0 / (1.0 + position)
        elif self.mode == "discount":
            weight = 1.0 / (1.0 + position)
        elif self._fixed is not None:
            examination = float(self._fixed[min(position, len(self._fixed) - 1)])
        if randomized:
            self.estimator.update(position, clicked)
        return examination, weight

    def step_many(
        self,
        positions: npt.NDArray[np.int64],
        clicked: npt.NDArray[np.bool_],
        randomized: npt.NDArray[np.bool_],
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """:meth:`step` over a batch, in order — equal to the loop (tested), without a Python step per row.

        The estimate changes only after a randomized example, so between two of
        them every row reads the same curve: one lookup per run of rows.
        """
        n = len(positions)
        pos = np.asarray(positions, dtype=np.int64)
        exam: npt.NDArray[np.float64] = np.ones(n)
        weight: npt.NDArray[np.float64] = np.ones(n)
        if self.mode == "naive":
            exam = np.divide(1.0, 1.0 + pos, dtype=np.float64)
        elif self.mode == "discount":
            weight = np.divide(1.0, 1.0 + pos, dtype=np.float64)
        elif self._fixed is not None:
            exam = self._fixed[np.minimum(pos, len(self._fixed) - 1)]
        est = self.estimator
        buckets = np.minimum(pos, est.max_position - 1)
        start = 0
        for j in np.flatnonzero(randomized).tolist():
            if self.mode == "estimated":
                exam[start : j + 1] = est.curve()[buckets[start : j + 1]]
            est.update(int(pos[j]), bool(clicked[j]))
            start = j + 1
        if self.mode == "estimated" and start < n:
            exam[start:] = est.curve()[buckets[start:]]
        return exam, weight

    def state_arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {"exam_clicks": self.estimator.clicks.copy(), "exam_views": self.estimator.views.copy()}

    def load_arrays(self, clicks: npt.NDArray[np.float64], views: npt.NDArray[np.float64]) -> None:
        self.estimator.clicks = clicks.copy()
        self.estimator.views = views.copy()
