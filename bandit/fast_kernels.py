"""Compiled per-row learning loops for replays and the learner worker: the reference arithmetic, without Python per row.

Why: a replay learns ~10 examples per impression, and River's
``LogisticRegression.learn_one`` costs ~13 µs per row (dicts, a Rust
``VectorDict`` round trip, a scheduler call), which caps an offline replay far
below the rate of its input. The loops here redo *the same arithmetic in the
same order* with numba:

:func:`logistic_sgd`
    River's ``LogisticRegression.learn_one`` as configured by
    :class:`bandit.logistic.LogisticLearner` (intercept off, soft-label log
    loss, gradient clipping, L2, ``InverseScaling`` learning rate, then the
    projection onto ``[-weight_bound, weight_bound]``): per row
    ``z = Σ w_j x_j`` (feature order), ``g = clamp(w_i (σ(z) − y_i))``,
    ``w_j ← w_j − η_t (g x_j + l2 w_j)`` with ``η_t = lr / (t + 1)^power``.
:func:`sherman_morrison`
    LinUCB's rank-one inverse updates, the loop of
    :meth:`bandit.LinUCB.learn_one` (its ``learn_many`` uses Woodbury blocks:
    mathematically the same, equal to ~1e-12 in floating point).

:func:`examination_steps`, :func:`examination_curve`
    The examination estimate of :mod:`bandit.position_bias` per row (compiled)
    and per position (numpy), bit for bit.

The learners stay the source of truth: :class:`FastLogisticLearner`,
:class:`FastLinUCB` and :class:`FastVW` are subclasses that replace only the
per-row loops (validation, state and bytes are the parents'), and
``tests/bandit/test_fast_kernels.py`` checks them against the reference
learners on random data (logistic and VW bit for bit, LinUCB to 1e-9).
Without numba (the optional ``fast`` extra) :data:`AVAILABLE` is False and
:func:`accelerate` returns logistic and LinUCB learners unchanged (a VW
policy still gets :class:`~bandit.vw_fast_learn.FastVWPolicy`'s loop, which
needs no numba). Kernels are cached on disk by numba where it can write;
:func:`warm_up` compiles or loads them up front.

>>> import numpy as np
>>> from bandit import LogisticLearner
>>> ref = LogisticLearner(lr=0.1, seed=0)
>>> fast = accelerate(ref.clone())
>>> rng = np.random.default_rng(0)
>>> X, y, pos = rng.random((200, 20)), (rng.random(200) < 0.2).astype(float), rng.integers(0, 10, 200)
>>> ref.learn_many(X, y, positions=pos)
>>> fast.learn_many(X, y, positions=pos)
>>> bool(np.max(np.abs(fast.weight_vector - ref.weight_vector)) < 1e-12), fast.steps == ref.steps
(True, True)
"""

from __future__ import annotations

import importlib
import math
import time
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from bandit import vw_fast_learn
from bandit.lin_ucb import LinUCB
from bandit.logistic import LogisticLearner
from bandit.position_bias import ExaminationEstimator
from bandit.protocol import BaseLearner, Batch, Learner
from bandit.vw_fast_learn import FastVWPolicy
from bandit.vw_policy import VWPolicy

__all__ = [
    "AVAILABLE",
    "FastLinUCB",
    "FastLogisticLearner",
    "FastVW",
    "accelerate",
    "examination_curve",
    "examination_steps",
    "logistic_sgd",
    "sherman_morrison",
    "warm_up",
]

FloatArray = npt.NDArray[np.float64]
L = TypeVar("L", bound=Learner)

numba: Any
try:  # the optional ``fast`` extra
    numba = importlib.import_module("numba")
except ImportError:  # pragma: no cover - exercised only without the extra
    numba = None

AVAILABLE: bool = numba is not None


def _logistic_sgd_py(
    w: FloatArray,
    X: FloatArray,
    label: FloatArray,
    weight: FloatArray,
    lr: float,
    power: float,
    l2: float,
    clip: float,
    bound: float,
    t0: int,
) -> None:
    """In place on ``w``: one River SGD step per row of ``X`` (see the module docstring)."""
    n, d = X.shape
    for i in range(n):
        z = 0.0
        for j in range(d):
            z += w[j] * X[i, j]
        if z >= 0.0:
            s = 1.0 / (1.0 + math.exp(-z))
        else:
            e = math.exp(z)
            s = e / (1.0 + e)
        g = (s - label[i]) * weight[i]
        g = max(min(g, clip), -clip)
        rate = lr / math.pow(t0 + i + 1, power)
        out = False
        for j in range(d):
            gj = g * X[i, j]
            if l2 != 0.0:
                gj += l2 * w[j]
            w[j] -= rate * gj
            out |= w[j] > bound or w[j] < -bound
        if out:
            for j in range(d):
                w[j] = min(max(w[j], -bound), bound)


def _examination_steps_py(
    clicks: FloatArray,
    views: FloatArray,
    prior: FloatArray,
    strength: float,
    floor: float,
    positions: npt.NDArray[np.int64],
    clicked: npt.NDArray[np.bool_],
    randomized: npt.NDArray[np.bool_],
    exam: FloatArray,
) -> None:
    """In place: ``exam[i]`` = the estimate before row i, then row i counted if randomized.

    :meth:`bandit.position_bias.PositionCorrection.step` in ``estimated`` mode, per row.
    """
    m = len(views)
    for i in range(len(positions)):
        k = min(positions[i], m - 1)
        if k == 0:
            e = 1.0
        else:
            expected = views[k] * clicks[0] / views[0] if views[0] > 0 else 0.0
            denom = expected + strength
            if denom <= 0:
                e = max(prior[k], floor)
            else:
                e = min(max((clicks[k] + strength * prior[k]) / denom, floor), 1.0)
        exam[i] = e
        if randomized[i]:
            views[k] += 1.0
            if clicked[i]:
                clicks[k] += 1.0


def _sherman_morrison_py(A_inv: FloatArray, b: FloatArray, X: FloatArray, y: FloatArray) -> None:
    """In place: for each row, ``A⁻¹ ← A⁻¹ − u uᵀ / (1 + x·u)`` with ``u = A⁻¹ x``, and ``b ← b + y x``.

    ``X`` and ``y`` are already scaled by the example weights (``√w x``, ``√w r / ê``).
    """
    n, d = X.shape
    u = np.empty(d)
    for i in range(n):
        for r in range(d):
            acc = 0.0
            for c in range(d):
                acc += A_inv[r, c] * X[i, c]
            u[r] = acc
        den = 0.0
        for c in range(d):
            den += X[i, c] * u[c]
        den += 1.0
        for r in range(d):
            for c in range(d):
                A_inv[r, c] -= u[r] * u[c] / den
        for c in range(d):
            b[c] += X[i, c] * y[i]


if numba is not None:

    def _compile(func: Any) -> Any:
        """Compiled, cached on disk when numba finds a writable cache directory."""
        try:
            return numba.njit(cache=True, nogil=True)(func)
        except RuntimeError:  # "cannot cache function ...: no locator available" (read-only install)
            return numba.njit(cache=False, nogil=True)(func)

    logistic_sgd = _compile(_logistic_sgd_py)
    sherman_morrison = _compile(_sherman_morrison_py)
    examination_steps = _compile(_examination_steps_py)
else:  # pragma: no cover
    logistic_sgd = _logistic_sgd_py
    sherman_morrison = _sherman_morrison_py
    examination_steps = _examination_steps_py


def examination_curve(est: ExaminationEstimator) -> FloatArray:
    """:meth:`~bandit.position_bias.ExaminationEstimator.curve` with numpy: the same values, bit for bit.

    Each element is the same IEEE arithmetic as ``est.examination(k)``, in the
    same order; without a Python call per position (the drift monitor's loss
    asks for the curve once per policy, segment and micro-batch).
    """
    views, clicks, prior, floor = est.views, est.clicks, est._prior, est.floor
    expected = views * clicks[0] / views[0] if views[0] > 0 else np.zeros(len(views))
    denom = expected + est.strength
    with np.errstate(divide="ignore", invalid="ignore"):  # where denom <= 0 the prior is taken instead
        e = (clicks + est.strength * prior) / denom
    out: FloatArray = np.where(denom <= 0, np.maximum(prior, floor), np.minimum(np.maximum(e, floor), 1.0))
    out[0] = 1.0
    return out


class _FastPosition(BaseLearner):
    """The position-bias step of :meth:`BaseLearner._learn` compiled in ``estimated`` mode."""

    @property
    def examination_curve(self) -> FloatArray:
        return examination_curve(self._position.estimator)

    def _learn(self, batch: Batch) -> None:
        n = len(batch)
        if n == 0:
            return
        pc = self._position
        if pc.mode != "estimated":
            super()._learn(batch)
            return
        est = pc.estimator
        exam = np.empty(n)
        examination_steps(est.clicks, est.views, est._prior, est.strength, est.floor,
                          np.ascontiguousarray(batch.positions, dtype=np.int64),
                          np.ascontiguousarray(batch.rewards > 0), np.ascontiguousarray(batch.randomized, dtype=np.bool_),
                          exam)  # fmt: skip
        self._learn_rows(batch, exam, np.ones(n))
        self._n += n


class FastLogisticLearner(_FastPosition, LogisticLearner):
    """:class:`~bandit.logistic.LogisticLearner` whose per-row SGD loop is :func:`logistic_sgd`.

    Same parameters, state, bytes (``kind`` ``logistic``) and results (to ~1e-12).
    """

    def _learn_rows(self, batch: Batch, examination: FloatArray, weight: FloatArray) -> None:
        w = np.array(self._w(), dtype=np.float64)  # a copy, in feature order
        labels = np.ascontiguousarray((batch.rewards > 0).astype(np.float64) / examination)
        X = np.ascontiguousarray(batch.X, dtype=np.float64)
        steps = self.steps
        logistic_sgd(w, X, labels, np.ascontiguousarray(weight, dtype=np.float64), self.lr,
                     self.lr_power, self.l2, self.clip_gradient, self.weight_bound, steps)  # fmt: skip
        self._model = self._new_model(w, steps + len(batch))
        self._w_cache = None


class FastLinUCB(_FastPosition, LinUCB):
    """:class:`~bandit.lin_ucb.LinUCB` whose updates are the :func:`sherman_morrison` loop.

    Same parameters, state and bytes (``kind`` ``lin_ucb``); equal to the
    reference ``learn_many`` to ~1e-12 (rank-one steps instead of Woodbury blocks).
    """

    def _learn_rows(self, batch: Batch, examination: FloatArray, weight: FloatArray) -> None:
        sw = np.sqrt(weight)
        Xs = np.ascontiguousarray(batch.X * sw[:, None], dtype=np.float64)
        ys = np.ascontiguousarray(sw * batch.rewards / examination, dtype=np.float64)
        A_inv = np.array(self._A_inv, dtype=np.float64)  # C-contiguous copy: the kernel writes in place
        b = np.array(self._b, dtype=np.float64)
        sherman_morrison(A_inv, b, Xs, ys)
        self._A_inv = 0.5 * (A_inv + A_inv.T)
        self._b = b
        self._theta_cache = None


class FastVW(_FastPosition, FastVWPolicy):
    """:class:`~bandit.vw_fast_learn.FastVWPolicy` with the compiled position step (``kind`` ``vw_cb``)."""


_FAST: dict[type[Any], type[Any]] = {LogisticLearner: FastLogisticLearner, LinUCB: FastLinUCB}


def _fast_type(kind: type[Any]) -> type[Any] | None:
    if kind is VWPolicy:  # its loop needs VW's core objects, not numba; the position step needs numba
        if not vw_fast_learn.AVAILABLE:
            return None
        return FastVW if AVAILABLE else FastVWPolicy
    return _FAST.get(kind) if AVAILABLE else None


def accelerate(learner: L) -> L:
    """The same learner (same parameters and learned state) with a faster loop, when one exists.

    Exact types only (a subclass may change the arithmetic); anything else is
    returned as is. Without numba, logistic and LinUCB learners are returned
    as they are and a VW policy gets only :class:`~bandit.vw_fast_learn.FastVWPolicy`'s
    loop (the reference position step).
    """
    fast = _fast_type(type(learner))
    if fast is None:
        return learner
    out: L = fast.from_bytes(learner.to_bytes())
    return out


def warm_up() -> float:
    """Run every compiled kernel once on tiny inputs (compiles, or loads numba's on-disk cache).

    Call at start-up so the first micro-batch does not pay the compilation
    (seconds when no cache is writable). Returns the seconds it took; 0 without numba.
    """
    if not AVAILABLE:
        return 0.0
    started = time.perf_counter()
    d = 2
    X, w = np.ones((1, d)), np.zeros(d)
    logistic_sgd(w, X, np.ones(1), np.ones(1), 0.1, 0.5, 0.0, 1.0, 10.0, 0)
    sherman_morrison(np.eye(d), np.zeros(d), X, np.ones(1))
    examination_steps(np.zeros(d), np.zeros(d), np.ones(d), 1.0, 0.05, np.zeros(1, dtype=np.int64),
                      np.zeros(1, dtype=np.bool_), np.ones(1, dtype=np.bool_), np.empty(1))  # fmt: skip
    return time.perf_counter() - started
