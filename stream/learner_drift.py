"""The learner worker's loss gauge and drift feed from one prediction per model and batch, for less CPU.

The reference path (:class:`~stream.learner_runtime.LearnerRuntime` with
``fast=False``) predicts every batch twice per model before learning it —
once for the rolling-loss gauge (``_track_loss``: log loss, or squared error
for LinUCB) and once for the drift monitor's Brier loss
(:func:`bandit.drift.brier_losses`) — and feeds ADWIN through River's Python
properties per value. :func:`observe_model` computes both losses from one
prediction, with the same formulas on the same arrays, and :func:`feed`
makes the same ADWIN updates as :meth:`bandit.drift.DriftMonitor._feed`
calling River's adaptive-windowing helper directly (as the columnar replay's
feed in :mod:`stream._columnar_learn` does). The same detections, responses
and gauge values (``tests/stream/test_learner_runtime_fast.py``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
from river.drift import ADWIN

from bandit import LinUCB, LogisticLearner
from bandit.drift import DriftEvent, DriftMonitor, Signal, _Watch
from bandit.protocol import Learner

__all__ = ["feed", "model_losses", "observe_clicks", "observe_model"]

FloatArray = npt.NDArray[np.float64]


def model_losses(
    learner: Learner, X: FloatArray, rewards: FloatArray, positions: npt.NDArray[np.int64]
) -> tuple[float, FloatArray] | None:
    """(summed loss for the gauge, per-example Brier losses for ADWIN); None for learners without either.

    The gauge's loss is ``LearnerRuntime._track_loss``'s; the Brier losses are
    ``brier_losses(learner, X, rewards > 0, positions)``.
    """
    clicked = rewards > 0
    if isinstance(learner, LogisticLearner):
        relevance = learner.predict_proba_many(X)
        p = np.clip(relevance, 1e-7, 1 - 1e-7)
        loss = float(-np.sum(np.where(clicked, np.log(p), np.log(1 - p))))
    elif isinstance(learner, LinUCB):
        mean = learner.mean_many(X)
        loss = float(np.sum((mean - rewards) ** 2))
        relevance = np.clip(mean, 0.0, 1.0)
    else:
        return None
    curve = learner.examination_curve
    shown = relevance * curve[np.minimum(np.asarray(positions, dtype=np.int64), len(curve) - 1)]
    return loss, np.asarray((shown - clicked.astype(np.float64)) ** 2, dtype=np.float64)


def observe_model(
    monitor: DriftMonitor,
    policy: str,
    segment: str,
    learner: Learner,
    losses: FloatArray | None,
) -> list[DriftEvent]:
    """:meth:`~bandit.drift.DriftMonitor.observe_model` with the Brier losses already computed."""
    if losses is None:
        return []
    return monitor._respond(feed(monitor, policy, segment, "loss", losses), learner, "up")


def observe_clicks(
    monitor: DriftMonitor, policy: str, segment: str, clicked: list[bool], learner: Learner | None
) -> list[DriftEvent]:
    """:meth:`~bandit.drift.DriftMonitor.observe_clicks` through :func:`feed`."""
    values = np.asarray(clicked, dtype=np.float64)
    return monitor._respond(feed(monitor, policy, segment, "clicks", values), learner, "down")


def feed(
    monitor: DriftMonitor, policy: str, segment: str, signal: Signal, values: FloatArray
) -> list[tuple[DriftEvent, _Watch]]:
    """:meth:`bandit.drift.DriftMonitor._feed` without River's Python properties per value.

    The same ADWIN updates in the same order (``ADWIN.update``: a detector
    that detected a drift is reset first; ``estimation``: total / width, 0
    when empty), the same events and counts.
    """
    key = (policy, segment, signal)
    watch = monitor._watch.get(key)
    if watch is None:
        watch = monitor._watch[key] = _Watch(ADWIN(delta=monitor.config.delta))  # type: ignore[no-untyped-call]
    adwin = watch.adwin
    helper = adwin._helper
    found: list[tuple[DriftEvent, _Watch]] = []
    seen = watch.seen
    for v in values.tolist():
        width = helper.get_width()
        before = helper.get_total() / width if width else 0.0
        if adwin._drift_detected:
            adwin._reset()  # type: ignore[no-untyped-call]
            helper = adwin._helper
        detected = helper.update(v)
        adwin._drift_detected = detected
        seen += 1
        if detected:
            width = helper.get_width()
            after = helper.get_total() / width if width else 0.0
            direction: Literal["up", "down"] = "up" if after > before else "down"
            found.append((DriftEvent(policy, segment, signal, direction, before, after, seen), watch))
    watch.seen = seen
    model = (policy, segment)
    monitor._examples[model] = max(monitor._examples.get(model, 0), seen)
    return found
