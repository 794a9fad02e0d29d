r"""Champion/challenger promotion: should a newly learned model serve live traffic?

The check is off-policy (:mod:`bandit.ope`): on recent logged traffic, the
candidate's value :math:`\hat V_c` and the champion's :math:`\hat V_p` (the
promoted model, or the rules policy) are estimated from the same rows, each
as a policy that re-ranks the logged slates ε-greedily
(:func:`bandit.ope_inputs.model_policy_data`), and the paired difference
:math:`Δ = \hat V_c − \hat V_p` gets a cluster-bootstrap interval
:math:`[Δ_{lo}, Δ_{hi}]` (slates resampled whole, the *same* resamples for
both policies, so the noise they share cancels). With a margin :math:`m ≥ 0`:

==========================================  ==========  =========================================
condition (checked in this order)           decision    meaning
==========================================  ==========  =========================================
fewer than ``min_examples`` rows            pending     wait for more traffic
either policy's ESS < ``min_ess``           pending     the logs barely cover that policy
an estimate is undefined (NaN)              pending     no overlap at all
:math:`Δ_{lo} ≥ −m`                         promote     shown not worse than the champion by > m
:math:`Δ_{hi} < −m`                         hold        shown worse than the champion by > m
otherwise (the interval straddles −m)       pending     inconclusive: wait for more traffic
==========================================  ==========  =========================================

A held candidate never serves; the next version the learner publishes is a
new candidate. The estimator is SNIPS (default), DR or SNDR; values are the
expected reward per shown item (a CTR when the reward is a click).

References: Swaminathan & Joachims (2015) for SNIPS; Dudík, Langford & Li
(2011) for DR; the paired (common random numbers) bootstrap is Efron &
Tibshirani (1993), ch. 6.

>>> rule = GateRule(min_examples=10, min_ess=1.0, margin=0.01)
>>> decide(rule, 100, PolicyValue(0.10, 0.08, 0.12, 90.0), PolicyValue(0.10, 0.08, 0.12, 95.0),
...        Interval(0.0, -0.005, 0.004))[0]
'promote'
>>> decide(rule, 100, PolicyValue(0.05, 0.03, 0.07, 40.0), PolicyValue(0.10, 0.08, 0.12, 95.0),
...        Interval(-0.05, -0.07, -0.03))[0]
'hold'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal, get_args

import numpy as np
import numpy.typing as npt

from bandit.ope import OPEData
from bandit.ope_inputs import BanditLogs, model_policy_data
from bandit.ope_validation import OPEInputError

__all__ = [
    "GATE_ESTIMATORS",
    "Comparison",
    "Decision",
    "GateRule",
    "Interval",
    "PolicyValue",
    "compare",
    "decide",
    "paired_values",
]

FloatArray = npt.NDArray[np.float64]
Decision = Literal["promote", "hold", "pending"]
GateEstimator = Literal["snipw", "dr", "sndr"]
GATE_ESTIMATORS: Final[tuple[GateEstimator, ...]] = get_args(GateEstimator)
_CELLS: Final = 4_000_000  # bootstrap multiplicities per chunk (32 MB)


@dataclass(frozen=True)
class GateRule:
    """The gate's settings (see the module docstring); validated, each error names its field."""

    estimator: GateEstimator = "snipw"
    margin: float = 0.005
    min_examples: int = 2000
    min_ess: float = 100.0
    alpha: float = 0.05
    n_bootstrap: int = 200
    epsilon: float = 0.02
    clip: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.estimator not in GATE_ESTIMATORS:
            raise OPEInputError(
                "estimator", f"must be one of {list(GATE_ESTIMATORS)}, got {self.estimator!r}"
            )
        if not (math.isfinite(self.margin) and self.margin >= 0):
            raise OPEInputError("margin", f"must be a finite number >= 0, got {self.margin!r}")
        if (
            isinstance(self.min_examples, bool)
            or not isinstance(self.min_examples, int)
            or self.min_examples < 1
        ):
            raise OPEInputError("min_examples", f"must be an integer >= 1, got {self.min_examples!r}")
        if not (math.isfinite(self.min_ess) and self.min_ess >= 0):
            raise OPEInputError("min_ess", f"must be a finite number >= 0, got {self.min_ess!r}")
        if not 0 < self.alpha < 1:
            raise OPEInputError("alpha", f"must be in (0, 1), got {self.alpha!r}")
        if (
            isinstance(self.n_bootstrap, bool)
            or not isinstance(self.n_bootstrap, int)
            or self.n_bootstrap < 20
        ):
            raise OPEInputError("n_bootstrap", f"must be an integer >= 20, got {self.n_bootstrap!r}")
        if not 0 <= self.epsilon <= 1:
            raise OPEInputError("epsilon", f"must be in [0, 1], got {self.epsilon!r}")
        if self.clip is not None and not (math.isfinite(self.clip) and self.clip > 0):
            raise OPEInputError("clip", f"must be a finite number > 0, got {self.clip!r}")


@dataclass(frozen=True, slots=True)
class PolicyValue:
    """One policy's estimate, its bootstrap interval and its importance weights' effective sample size."""

    value: float
    ci_low: float
    ci_high: float
    ess: float


@dataclass(frozen=True, slots=True)
class Interval:
    """The paired difference candidate − champion and its bootstrap interval."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class Comparison:
    """A decision with its evidence (what the store's verdict keeps)."""

    decision: Decision
    reason: str
    n: int
    rule: GateRule
    candidate: PolicyValue
    champion: PolicyValue
    diff: Interval
    basis: str = "re-ranked slates"  # or "shadow-scored" (exact propensities, stream.promotion_gate_shadow)

    def details(self) -> dict[str, float | int | str | None]:
        """Flat, JSON-ready evidence (non-finite numbers become None)."""

        def num(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        c, p, d = self.candidate, self.champion, self.diff
        return {
            "estimator": self.rule.estimator, "n": self.n, "basis": self.basis, "margin": self.rule.margin,
            "alpha": self.rule.alpha, "epsilon": self.rule.epsilon,
            "candidate": num(c.value), "candidate_low": num(c.ci_low), "candidate_high": num(c.ci_high),
            "candidate_ess": num(c.ess),
            "champion": num(p.value), "champion_low": num(p.ci_low), "champion_high": num(p.ci_high),
            "champion_ess": num(p.ess),
            "diff": num(d.value), "diff_low": num(d.low), "diff_high": num(d.high),
        }  # fmt: skip


def decide(
    rule: GateRule, n: int, candidate: PolicyValue, champion: PolicyValue, diff: Interval, *, champion_name: str = "the champion"
) -> tuple[Decision, str]:  # fmt: skip
    """The decision table of the module docstring, with a reason a person can read."""
    est = rule.estimator
    if n < rule.min_examples:
        return "pending", f"too few examples: {n:,} < {rule.min_examples:,}"
    low_ess = min(candidate.ess, champion.ess)
    if not low_ess >= rule.min_ess:
        return "pending", (
            f"too little overlap with logged traffic: ESS candidate {candidate.ess:,.0f}, "
            f"{champion_name} {champion.ess:,.0f} (< {rule.min_ess:,.0f})"
        )
    if not all(map(math.isfinite, (candidate.value, champion.value, diff.value, diff.low, diff.high))):
        return "pending", "estimate undefined (the candidate never agrees with the logged slates)"
    shown = (
        f"{est} {candidate.value:.4f} vs {champion.value:.4f} for {champion_name}, "
        f"difference {diff.value:+.4f} [{diff.low:+.4f}, {diff.high:+.4f}] ({1 - rule.alpha:.0%} CI), "
        f"margin {rule.margin:g}, n {n:,}"
    )
    if diff.low >= -rule.margin:
        return "promote", f"not worse than {champion_name}: {shown}"
    if diff.high < -rule.margin:
        return "hold", f"worse than {champion_name} beyond the margin: {shown}"
    return "pending", f"inconclusive (interval straddles -margin), waiting for more traffic: {shown}"


def _values(a: OPEData, b: OPEData, name: GateEstimator, clip: float | None, m: FloatArray) -> FloatArray:
    """Estimator values of ``a`` and ``b`` for each row of multiplicities ``m``: shape (2, B)."""
    out = np.empty((2, m.shape[0]))
    count = m.sum(axis=1)
    for i, d in enumerate((a, b)):
        w = d.weights(clip)
        if name == "snipw":
            out[i] = m @ (w * d.reward) / (m @ w)
            continue
        if d.q_logged is None or d.q_policy is None:
            raise OPEInputError("q_logged", f"estimator {name!r} needs a reward model")
        resid = m @ (w * (d.reward - d.q_logged))
        out[i] = m @ d.q_policy / count + (resid / count if name == "dr" else resid / (m @ w))
    return out


def paired_values(a: OPEData, b: OPEData, rule: GateRule) -> tuple[tuple[PolicyValue, PolicyValue], Interval]:
    """Point estimates, bootstrap intervals and ESS of ``a`` and ``b`` (same rows) and of ``a − b``.

    Rows are resampled by ``a.group`` (whole slates) when given; both
    policies see the same resamples.
    """
    if len(a) != len(b) or not np.array_equal(a.reward, b.reward) or not np.array_equal(a.pscore, b.pscore):
        raise OPEInputError("data", "both policies must be evaluated on the same logged rows")
    n = len(a)
    with np.errstate(invalid="ignore", divide="ignore"):
        point = _values(a, b, rule.estimator, rule.clip, np.ones((1, n)))[:, 0]
        codes = np.arange(n) if a.group is None else np.unique(a.group, return_inverse=True)[1]
        groups = int(codes.max()) + 1 if n else 0
        rng = np.random.default_rng(rule.seed)
        step = max(1, min(rule.n_bootstrap, _CELLS // max(n, 1)))
        reps = []
        for start in range(0, rule.n_bootstrap, step):
            size = min(step, rule.n_bootstrap - start)
            draws = rng.integers(0, groups, size=(size, groups))
            counts = np.stack([np.bincount(row, minlength=groups) for row in draws]).astype(np.float64)
            reps.append(_values(a, b, rule.estimator, rule.clip, counts[:, codes]))
        rep = np.concatenate(reps, axis=1)
    q = [rule.alpha / 2, 1 - rule.alpha / 2]

    def bounds(x: FloatArray) -> tuple[float, float]:
        x = x[np.isfinite(x)]
        if x.size == 0:
            return math.nan, math.nan
        lo, hi = np.quantile(x, q)
        return float(lo), float(hi)

    values = []
    for i, d in enumerate((a, b)):
        w = d.weights(rule.clip)
        sq = float(np.square(w).sum())
        ess = float(w.sum()) ** 2 / sq if sq > 0 else 0.0
        values.append(PolicyValue(float(point[i]), *bounds(rep[i]), ess))
    diff = Interval(float(point[0] - point[1]), *bounds(rep[0] - rep[1]))
    return (values[0], values[1]), diff


def compare(
    logs: BanditLogs, candidate_scores: npt.ArrayLike, champion_scores: npt.ArrayLike, rule: GateRule,
    *, champion_name: str = "the champion",
) -> Comparison:  # fmt: skip
    """Evaluate candidate vs champion on ``logs`` (one score per logged row each) and decide.

    Scores are what each policy gives the logged items' φ rows (e.g.
    ``learner.score_many(logs.phi)``); both are evaluated as ε-greedy
    re-rankings of the logged slates with ``rule.epsilon``, the serving
    exploration.
    """
    n = len(logs)
    if n < rule.min_examples:
        nan = PolicyValue(math.nan, math.nan, math.nan, 0.0)
        decision, reason = decide(rule, n, nan, nan, Interval(math.nan, math.nan, math.nan))
        return Comparison(decision, reason, n, rule, nan, nan, Interval(math.nan, math.nan, math.nan))
    model: Literal["none", "logistic"] = "none" if rule.estimator == "snipw" else "logistic"
    cand = model_policy_data(logs, candidate_scores, epsilon=rule.epsilon, reward_model=model, seed=rule.seed)
    champ = model_policy_data(logs, champion_scores, epsilon=rule.epsilon, reward_model=model, seed=rule.seed)
    (c, p), diff = paired_values(cand, champ, rule)
    decision, reason = decide(rule, n, c, p, diff, champion_name=champion_name)
    return Comparison(decision, reason, n, rule, c, p, diff)
