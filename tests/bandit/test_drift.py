"""Drift detection and the responses: ADWIN per (policy, segment, signal), restart and forgetting."""

from __future__ import annotations

import numpy as np
import pytest

from bandit.drift import DriftConfig, DriftMonitor
from bandit.errors import LearnerConfigError
from bandit.lin_ucb import LinUCB
from bandit.logistic import LogisticLearner


def _trained_linucb() -> LinUCB:
    rng = np.random.default_rng(0)
    X = rng.random((500, 4))
    model = LinUCB(alpha=1.0, feature_names=("a", "b", "c", "d"))
    model.learn_many(X, X @ np.array([1.0, -1.0, 0.5, 0.0]))
    return model


def test_linucb_forget_keeps_the_estimate_and_widens_the_confidence() -> None:
    model = _trained_linucb()
    probe = np.random.default_rng(1).random((20, 4))
    theta, width = model.theta, model.width_many(probe)
    model.forget(0.1)
    np.testing.assert_allclose(model.theta, theta, rtol=0, atol=1e-9)
    assert np.all(model.width_many(probe) > 2.5 * width)  # ~ 1/sqrt(0.1) once the ridge is negligible
    with pytest.raises(LearnerConfigError, match="keep"):
        model.forget(0.0)


def test_logistic_restart_resets_the_rate_and_keeps_the_weights() -> None:
    model = LogisticLearner(lr=0.1, feature_names=("a", "b"))
    model.learn_many(np.ones((100, 2)), np.zeros(100))
    weights = model.weights
    model.restart_schedule()
    assert model.steps == 0 and model.weights == weights


@pytest.mark.parametrize("respond", [True, False])
def test_a_click_rate_fall_is_detected_and_answered_once_per_cooldown(respond: bool) -> None:
    rng = np.random.default_rng(0)
    model = LogisticLearner(lr=0.1, feature_names=("a", "b"))
    model.learn_many(np.ones((50, 2)), np.zeros(50))
    monitor = DriftMonitor(DriftConfig(respond=respond, min_examples=1000, cooldown=10**6))
    for p in (0.3, 0.05):
        for _ in range(10):
            monitor.observe_clicks("logistic", "general", rng.random(500) < p, model)
    falls = [e for e in monitor.events if e.signal == "clicks" and e.direction == "down"]
    assert falls and all(e.seen > 5000 for e in falls)  # after the change at 5,000
    answered = [e for e in monitor.events if e.response]
    assert len(answered) == (1 if respond else 0)
    assert (model.steps == 0) == respond
    with pytest.raises(LearnerConfigError, match="delta"):
        DriftConfig(delta=0.0)
