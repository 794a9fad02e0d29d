"""Li et al. (2011) rejection-sampling replay evaluator."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from bandit import LinUCB
from bandit.ope_validation import OPEInputError
from bandit.replay_evaluator import FixedPolicy, LearnerPolicy, replay_evaluate

K, D = 5, 3


def uniform_logs(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, K, D))
    action = rng.integers(0, K, n)
    reward = rng.binomial(1, 0.1 + 0.15 * action / K).astype(float)
    return X, action, reward


def test_accepted_count_averages_n_over_k() -> None:
    n, seeds = 2000, 30
    counts = [replay_evaluate(*uniform_logs(s, n), FixedPolicy(s % K)).accepted for s in range(seeds)]
    # Each count is Binomial(n, 1/K): the mean of 30 has sd sqrt(n p (1 - p) / 30) ≈ 3.3.
    assert abs(np.mean(counts) - n / K) < 4 * np.sqrt(n * (1 / K) * (1 - 1 / K) / seeds)


def test_fixed_policy_estimate_is_its_mean_reward() -> None:
    X, action, reward = uniform_logs(1, 20_000)
    result = replay_evaluate(X, action, reward, FixedPolicy(4), pscore=np.full(20_000, 1 / K))
    assert result.value == pytest.approx(float(reward[action == 4].mean()))
    lo, hi = result.ci()
    assert lo < 0.1 + 0.15 * 4 / K < hi


@dataclass
class Recorder:
    """Chooses by a running score it updates; records every update."""

    updates: list[tuple[int, float]] = field(default_factory=list)
    totals: np.ndarray = field(default_factory=lambda: np.zeros(K))

    def choose(self, X: np.ndarray) -> int:
        return int(np.argmax(self.totals + X[:, 0] * 1e-3))

    def update(self, X: np.ndarray, action: int, reward: float) -> None:
        self.updates.append((action, reward))
        self.totals[action] += reward


def test_learning_policy_updates_only_on_accepted_events() -> None:
    rng = np.random.default_rng(5)
    n = 3000
    X = rng.normal(size=(n, K, D))
    action = rng.integers(0, K, n)
    # Every event has its own reward: an update from a rejected event would put a
    # reward in the sequence that the independent shadow loop below does not have.
    reward = np.arange(n, dtype=float)
    policy = Recorder()
    result = replay_evaluate(X, action, reward, policy)
    assert len(policy.updates) == result.accepted
    # Recompute independently which events a policy with this state would accept.
    shadow = Recorder()
    expected: list[tuple[int, float]] = []
    for i in range(n):
        chosen = shadow.choose(X[i])
        if chosen == action[i]:
            expected.append((chosen, reward[i]))
            shadow.update(X[i], chosen, reward[i])
    assert policy.updates == expected
    assert [r for _, r in policy.updates] == result.accepted_rewards.tolist()


def test_learner_policy_learns_only_accepted_rows() -> None:
    X, action, reward = uniform_logs(2, 1500)
    learner = LinUCB(feature_names=("a", "b", "c"), alpha=0.1, position_bias="none", seed=0)
    result = replay_evaluate(X, action, reward, LearnerPolicy(learner))
    assert learner.n_examples == result.accepted
    assert 0 < result.accepted < 1500


def test_non_uniform_logs_are_refused() -> None:
    X, action, reward = uniform_logs(0, 10)
    with pytest.raises(
        OPEInputError, match=r"pscore: the replay evaluator needs uniformly random logs \(1/5\)"
    ):
        replay_evaluate(X, action, reward, FixedPolicy(0), pscore=np.full(10, 0.5))
    with pytest.raises(OPEInputError, match="actions: must be < n_actions = 5"):
        replay_evaluate(X, np.full(10, 7), reward, FixedPolicy(0))
    with pytest.raises(OPEInputError, match="policy: chose action 9"):
        replay_evaluate(X, action, reward, FixedPolicy(9))
