"""Drift detection per (policy, segment) with River's ADWIN, and the response to it.

Two signals, each watched by its own :class:`river.drift.ADWIN` (Bifet &
Gavaldà 2007, "Learning from time-changing data with adaptive windowing"):

``clicks``
    the click flag (0/1) of every example, per (*serving* policy, segment):
    that policy's click-through rate on that segment.
``loss``
    every example's progressive loss, per (*learning* policy, segment),
    computed before the model learns it: the Brier score ``(ê_k·r̂ − click)²``
    with ``r̂`` the logistic model's probability or LinUCB's mean clipped to
    [0, 1] and ``ê_k`` its examination estimate at the shown position (see
    :func:`brier_losses`). Bounded in [0, 1], as ADWIN's cut test assumes. VW has no loss
    here (its predictions are a pmf over a slate, not a probability per row).

ADWIN keeps an adaptive window and cuts it when two sub-windows' means differ
by more than a bound at confidence ``delta``; a detection is an event with
its direction (the mean after the cut against before) — a metric and a log
line in the learner worker.

Response (to a *rise* of a model's loss, or a *fall* of the click rate of
the policy it serves, by at least ``min_change`` of its mean, once the
signal has ``min_examples`` examples and at most once per ``cooldown``
examples of the model):

- logistic: :meth:`bandit.LogisticLearner.restart_schedule` — the learning
  rate goes back from ``lr / (t + 1)^lr_power`` to ``lr`` and decays again
  from there, so the weights move towards the new tastes at the start-up
  speed for a while;
- LinUCB: :meth:`bandit.LinUCB.forget` with ``linucb_keep`` — the estimate is
  kept, its evidence shrunk, so new examples weigh ``1/keep`` times more and
  the confidence widths (exploration) grow;
- VW: none.

A falling loss or a rising CTR is only reported: learning itself lowers the
loss and raises the CTR.

>>> import numpy as np
>>> monitor = DriftMonitor(DriftConfig(min_examples=0))
>>> rng = np.random.default_rng(0)
>>> events = monitor.observe_clicks("rules", "general", rng.random(3000) < 0.05)
>>> events += monitor.observe_clicks("rules", "general", rng.random(3000) < 0.30)
>>> [(e.signal, e.direction) for e in events][:1]
[('clicks', 'up')]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import numpy.typing as npt
from river.drift import ADWIN

from bandit.errors import LearnerConfigError
from bandit.lin_ucb import LinUCB
from bandit.logistic import LogisticLearner
from bandit.protocol import Learner

__all__ = ["DriftConfig", "DriftEvent", "DriftMonitor", "brier_losses", "respond"]

Signal = Literal["clicks", "loss"]


@dataclass(frozen=True, slots=True)
class DriftConfig:
    """Detector and response settings.

    Parameters
    ----------
    delta
        ADWIN's confidence (smaller: fewer false alarms, later detections).
    respond
        Whether a loss rise triggers the response (else it is only reported).
    min_examples
        No response before the model has been watched on this many examples.
    cooldown
        Examples of a model between two of its responses.
    linucb_keep
        Share of LinUCB's evidence kept by a response.
    min_change
        Smallest relative change of the detector's mean that gets a response
        (ADWIN also flags tiny, significant changes on long windows).
    """

    delta: float = 0.05
    respond: bool = True
    min_examples: int = 2000
    cooldown: int = 5000
    linucb_keep: float = 0.1
    min_change: float = 0.1

    def __post_init__(self) -> None:
        if not 0 < self.delta < 1:
            raise LearnerConfigError("delta", f"must be in (0, 1), got {self.delta!r}")
        for name in ("min_examples", "cooldown"):
            if getattr(self, name) < 0:
                raise LearnerConfigError(name, f"must be >= 0, got {getattr(self, name)!r}")
        if not self.min_change >= 0:
            raise LearnerConfigError("min_change", f"must be >= 0, got {self.min_change!r}")
        if not 0 < self.linucb_keep <= 1:
            raise LearnerConfigError("linucb_keep", f"must be in (0, 1], got {self.linucb_keep!r}")


@dataclass(frozen=True, slots=True)
class DriftEvent:
    """One detection: where, which signal, which way, and what was done."""

    policy: str
    segment: str
    signal: Signal
    direction: Literal["up", "down"]
    before: float  # the detector's mean just before the cut
    after: float  # its mean over the window it kept
    seen: int  # examples of this (policy, segment, signal) observed so far, this one included
    response: str | None = None  # "restart_lr", "forget" or None


@dataclass
class _Watch:
    adwin: ADWIN
    seen: int = 0


def brier_losses(
    learner: Learner,
    X: npt.NDArray[np.float64],
    clicked: npt.NDArray[np.bool_],
    positions: npt.ArrayLike | None = None,
) -> npt.NDArray[np.float64] | None:
    """Per-example ``(ê_k · r̂ − click)²`` of ``learner`` on ``X`` (None for learners without a probability).

    ``r̂`` is the learner's position-free relevance (logistic: its probability;
    LinUCB: its mean clipped to [0, 1]); with ``positions`` it is multiplied by
    the learner's examination estimate ``ê_k`` so the loss compares a click
    probability at the shown position with the click.
    """
    if isinstance(learner, LogisticLearner):
        p = learner.predict_proba_many(X)
    elif isinstance(learner, LinUCB):
        p = np.clip(learner.mean_many(X), 0.0, 1.0)
    else:
        return None
    if positions is not None:
        curve = learner.examination_curve
        p = p * curve[np.minimum(np.asarray(positions, dtype=np.int64), len(curve) - 1)]
    return np.asarray((p - clicked.astype(np.float64)) ** 2, dtype=np.float64)


def respond(learner: Learner, config: DriftConfig) -> str | None:
    """Apply the documented response to ``learner``; returns its name (None: none for this kind)."""
    if isinstance(learner, LogisticLearner):
        learner.restart_schedule()
        return "restart_lr"
    if isinstance(learner, LinUCB):
        learner.forget(config.linucb_keep)
        return "forget"
    return None


class DriftMonitor:
    """ADWIN detectors per (policy, segment, signal), and the loss-rise response.

    Parameters
    ----------
    config
        Detector and response settings.
    on_event
        Called with every :class:`DriftEvent` (the learner worker counts and logs it).
    """

    def __init__(
        self, config: DriftConfig | None = None, *, on_event: Callable[[DriftEvent], None] | None = None
    ) -> None:
        self.config = config if config is not None else DriftConfig()
        self.on_event = on_event
        self.events: list[DriftEvent] = []  # the most recent 1,000
        self._watch: dict[tuple[str, str, Signal], _Watch] = {}
        self._examples: dict[tuple[str, str], int] = {}  # examples each (policy, segment) was watched on
        self._responded: dict[tuple[str, str], int] = {}  # ... when it was last answered

    def observe_clicks(
        self, policy: str, segment: str, clicked: npt.ArrayLike, learner: Learner | None = None
    ) -> list[DriftEvent]:
        """Feed the click flags of examples served by ``policy`` on ``segment``; returns detections.

        ``learner``: the model behind ``policy`` on ``segment``, if it is a learned
        one; a fall of its click rate gets the response.
        """
        values = np.asarray(clicked, dtype=np.float64)
        return self._respond(self._feed(policy, segment, "clicks", values), learner, "down")

    def observe_model(
        self,
        policy: str,
        segment: str,
        learner: Learner,
        X: npt.NDArray[np.float64],
        rewards: npt.NDArray[np.float64],
        positions: npt.ArrayLike | None = None,
    ) -> list[DriftEvent]:
        """Feed ``learner``'s loss on a batch it is about to learn; respond to a loss rise.

        Call before ``learner.learn_many(X, rewards, ...)``: the response then
        applies to the batch that revealed the drift.
        """
        losses = brier_losses(learner, X, rewards > 0, positions)
        if losses is None:
            return []
        return self._respond(self._feed(policy, segment, "loss", losses), learner, "up")

    def _respond(
        self, found: list[tuple[DriftEvent, _Watch]], learner: Learner | None, bad: str
    ) -> list[DriftEvent]:
        out: list[DriftEvent] = []
        c = self.config
        for ev, _ in found:
            big = abs(ev.after - ev.before) >= c.min_change * max(abs(ev.before), 1e-12)
            if (
                learner is not None
                and c.respond
                and ev.direction == bad
                and big
                and ev.seen >= c.min_examples
            ):
                key = (ev.policy, ev.segment)
                last = self._responded.get(key)
                if last is None or self._examples[key] - last >= c.cooldown:
                    name = respond(learner, c)
                    if name is not None:
                        self._responded[key] = self._examples[key]
                        ev = replace(ev, response=name)
            out.append(ev)
            self._emit(ev)
        return out

    def _feed(
        self, policy: str, segment: str, signal: Signal, values: npt.NDArray[np.float64]
    ) -> list[tuple[DriftEvent, _Watch]]:
        key = (policy, segment, signal)
        watch = self._watch.get(key)
        if watch is None:
            watch = self._watch[key] = _Watch(ADWIN(delta=self.config.delta))  # type: ignore[no-untyped-call]
        adwin = watch.adwin
        found: list[tuple[DriftEvent, _Watch]] = []
        for v in values.tolist():
            before = adwin.estimation
            adwin.update(v)  # type: ignore[no-untyped-call]
            watch.seen += 1
            if adwin.drift_detected:
                after = adwin.estimation
                ev = DriftEvent(
                    policy, segment, signal, "up" if after > before else "down", before, after, watch.seen
                )
                found.append((ev, watch))
        model = (policy, segment)  # its examples: the most any of its signals has seen
        self._examples[model] = max(self._examples.get(model, 0), watch.seen)
        return found

    def _emit(self, ev: DriftEvent) -> None:
        self.events.append(ev)
        if len(self.events) > 1000:
            del self.events[: len(self.events) - 1000]
        if self.on_event is not None:
            self.on_event(ev)
