"""What the learner worker learns and keeps per model: the online policies, records and model slots.

Split from :mod:`stream.learner_runtime` (which re-exports these names).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bandit import LinUCB, LogisticLearner, VWPolicy
from bandit.protocol import Learner
from scoring.weights import SCORING_WEIGHTS

__all__ = ["DEFAULT_POLICIES", "ExampleRecord", "Slot"]

_LOSS_WINDOW = 2000

#: Policies learned online, tuned with the in-process closed loop (:mod:`sim.closed_loop`).
#: Warm starts: logistic from the rule weights scaled to log-odds with a calibrated
#: intercept (a ~5 % click rate), LinUCB from the rule weights scaled to the reward
#: range. Position bias: "estimated", from the examples the scoring worker flags as
#: ``randomized`` (ε-greedy's uniform draws); it starts from the seed's 1/(1+k).
#: VW with 16 hash bits: φ's 20 columns do not collide (checked at construction)
#: and scores equal those at the default 18 bits, while a publish (serialising
#: and guardrail-checking the dense weight table) costs ~0.6 ms instead of ~3.7.
DEFAULT_POLICIES: dict[str, Callable[[], Learner]] = {
    "logistic": lambda: LogisticLearner(
        prior=dict(SCORING_WEIGHTS),
        prior_scale=0.05,
        prior_intercept=-3.0,
        lr=0.1,
        position_bias="estimated",
        seed=0,
    ),
    "linucb": lambda: LinUCB(
        prior=dict(SCORING_WEIGHTS), prior_scale=0.002, alpha=0.1, position_bias="estimated", seed=0
    ),
    "vw": lambda: VWPolicy(position_bias="estimated", learning_rate=0.1, bits=16, seed=0),
}


@dataclass(frozen=True, slots=True)
class ExampleRecord:
    partition: int
    offset: int
    value: bytes | None


@dataclass
class Slot:
    """One (policy, segment) model and what it has consumed."""

    learner: Learner
    version: int = 0  # store version it is based on (0: none yet)
    offsets: dict[int, int] = field(default_factory=dict)
    dirty: bool = False
    clicked_ts: list[float] = field(default_factory=list)  # impressions of clicks since the last publish
    losses: deque[tuple[float, int]] = field(default_factory=deque)
    loss_n: int = 0
    loss_sum: float = 0.0

    def add_loss(self, total: float, n: int) -> float:
        self.losses.append((total, n))
        self.loss_sum += total
        self.loss_n += n
        while self.loss_n - self.losses[0][1] >= _LOSS_WINDOW:
            old_total, old_n = self.losses.popleft()
            self.loss_sum -= old_total
            self.loss_n -= old_n
        return self.loss_sum / self.loss_n
