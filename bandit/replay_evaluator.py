"""The rejection-sampling replay evaluator of Li, Chu, Langford & Wang (2011).

"Unbiased offline evaluation of contextual-bandit-based news article
recommendation algorithms" (WSDM 2011): walk the logs of a *uniformly random*
logging policy over ``K`` actions in order; at each event ask the evaluated
policy for its action; if it matches the logged action, *accept* the event —
its reward counts and a learning policy is told about it — otherwise discard
the event as if it never happened. The mean reward over accepted events is an
unbiased estimate of the policy's per-event reward, and about ``n / K``
events are accepted. A learning policy must update only on accepted events:
rejected events carry a reward for an action it did not take.

>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(3000, 4, 2))
>>> logged = rng.integers(0, 4, 3000)
>>> rewards = (logged == 2).astype(float)
>>> result = replay_evaluate(X, logged, rewards, FixedPolicy(2), pscore=np.full(3000, 0.25))
>>> result.value, abs(result.accepted - 750) < 100
(1.0, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from bandit.ope_validation import OPEInputError, as_float_vector, as_int_vector, check_same_length
from bandit.protocol import Learner

__all__ = ["FixedPolicy", "LearnerPolicy", "ReplayPolicy", "ReplayResult", "TablePolicy", "replay_evaluate"]

FloatArray = npt.NDArray[np.float64]


class ReplayPolicy(Protocol):
    """A policy replayed over logs: choose among the rows of ``X`` (one per action), then learn."""

    def choose(self, X: FloatArray) -> int: ...

    def update(self, X: FloatArray, action: int, reward: float) -> None: ...


@dataclass
class FixedPolicy:
    """Always the same action (a baseline, and a check of the evaluator)."""

    action: int

    def choose(self, X: FloatArray) -> int:
        return self.action

    def update(self, X: FloatArray, action: int, reward: float) -> None:
        return None


class TablePolicy:
    """Draws an action from fixed probabilities (a column of a policy table), seeded."""

    def __init__(self, probabilities: npt.ArrayLike, *, seed: int = 0) -> None:
        self.probabilities = np.asarray(probabilities, dtype=np.float64)
        if self.probabilities.ndim != 1 or abs(float(self.probabilities.sum()) - 1.0) > 1e-6:
            raise OPEInputError("probabilities", "must be a 1-d array summing to 1")
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def choose(self, X: FloatArray) -> int:
        return int(self._rng.choice(len(self.probabilities), p=self.probabilities))

    def update(self, X: FloatArray, action: int, reward: float) -> None:
        return None


@dataclass
class LearnerPolicy:
    """One of our learners as a replay policy: picks the best-scoring row, learns the accepted row."""

    learner: Learner

    def choose(self, X: FloatArray) -> int:
        return int(self.learner.rank(X, 1)[0])

    def update(self, X: FloatArray, action: int, reward: float) -> None:
        self.learner.learn_one(X[action], reward)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    value: float  # mean reward over accepted events (NaN if none)
    accepted: int
    n: int
    accepted_rewards: FloatArray

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.n

    def ci(self, z: float = 1.96) -> tuple[float, float]:
        """Normal-approximation interval of :attr:`value`."""
        if self.accepted < 2:
            return (float("nan"), float("nan"))
        half = z * float(np.std(self.accepted_rewards, ddof=1)) / np.sqrt(self.accepted)
        return (self.value - half, self.value + half)


def replay_evaluate(
    contexts: npt.ArrayLike,
    actions: npt.ArrayLike,
    rewards: npt.ArrayLike,
    policy: ReplayPolicy,
    *,
    pscore: npt.ArrayLike | None = None,
    tolerance: float = 1e-6,
) -> ReplayResult:
    """Replay ``policy`` over uniformly-random logs, in order.

    Parameters
    ----------
    contexts
        Shape (n, K, d): the features of each of the ``K`` actions at each event.
    actions
        Logged action ids in ``0..K−1``.
    rewards
        Logged rewards.
    policy
        The policy to evaluate; :meth:`ReplayPolicy.update` is called on accepted events only.
    pscore
        Logged propensities; when given they must all equal ``1/K`` (within
        ``tolerance``): the estimator is only unbiased for uniform logging.
    """
    X = np.asarray(contexts, dtype=np.float64)
    if X.ndim != 3:
        raise OPEInputError("contexts", f"must have shape (n, n_actions, d), got {X.shape}")
    a = as_int_vector(actions, "actions")
    r = as_float_vector(rewards, "rewards")
    check_same_length(contexts=X, actions=a, rewards=r)
    k = X.shape[1]
    if a.max() >= k:
        raise OPEInputError("actions", f"must be < n_actions = {k}, got {a.max()}")
    if pscore is not None:
        ps = as_float_vector(pscore, "pscore")
        check_same_length(actions=a, pscore=ps)
        off = np.abs(ps - 1.0 / k) > tolerance
        if off.any():
            i = int(np.argmax(off))
            raise OPEInputError(
                "pscore",
                f"the replay evaluator needs uniformly random logs (1/{k}); got {float(ps[i])!r} at index {i}",
            )
    kept: list[float] = []
    for i in range(len(a)):
        chosen = policy.choose(X[i])
        if not 0 <= chosen < k:
            raise OPEInputError("policy", f"chose action {chosen} outside 0..{k - 1} at event {i}")
        if chosen == a[i]:
            kept.append(float(r[i]))
            policy.update(X[i], chosen, float(r[i]))
    arr = np.array(kept, dtype=np.float64)
    value = float(arr.mean()) if arr.size else float("nan")
    return ReplayResult(value, int(arr.size), len(a), arr)
