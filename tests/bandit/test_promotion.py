"""The promotion gate's decision rule and its paired off-policy comparison (pure, no services)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bandit.ope import OPEData, estimate
from bandit.ope_validation import OPEInputError
from bandit.promotion import GateRule, Interval, PolicyValue, decide, paired_values

RULE = GateRule(min_examples=100, min_ess=10.0, margin=0.01)
GOOD = PolicyValue(0.10, 0.09, 0.11, 500.0)


@pytest.mark.parametrize(
    ("n", "cand_ess", "diff", "decision", "says"),
    [
        (99, 500.0, Interval(0.0, -0.001, 0.001), "pending", "too few examples: 99 < 100"),
        (1000, 5.0, Interval(0.0, -0.001, 0.001), "pending", "too little overlap"),
        (1000, 500.0, Interval(math.nan, math.nan, math.nan), "pending", "undefined"),
        (1000, 500.0, Interval(0.002, -0.009, 0.013), "promote", "not worse than"),
        (1000, 500.0, Interval(-0.005, -0.010, 0.000), "promote", "margin 0.01"),  # lower bound == -margin
        (1000, 500.0, Interval(-0.03, -0.04, -0.02), "hold", "worse than rules beyond the margin"),
        (1000, 500.0, Interval(-0.015, -0.025, -0.005), "pending", "inconclusive"),  # straddles -margin
        (1000, 500.0, Interval(-0.02, -0.03, -0.0101), "hold", "difference -0.0200"),
    ],
)
def test_decision_table(n: int, cand_ess: float, diff: Interval, decision: str, says: str) -> None:
    cand = PolicyValue(0.10 + diff.value, 0.0, 1.0, cand_ess)
    got, reason = decide(RULE, n, cand, GOOD, diff, champion_name="rules")
    assert got == decision
    assert says in reason


def test_a_wider_margin_turns_a_hold_into_a_promotion() -> None:
    diff = Interval(-0.03, -0.04, -0.02)
    assert decide(RULE, 1000, GOOD, GOOD, diff)[0] == "hold"
    assert (
        decide(GateRule(min_examples=100, min_ess=10.0, margin=0.05), 1000, GOOD, GOOD, diff)[0] == "promote"
    )


def test_overlapping_intervals_can_still_hold_when_the_paired_difference_is_clear() -> None:
    """Each policy's own interval overlaps the other's, but the paired difference is clearly negative:
    the shared noise (the same logged rows) cancels in the difference."""
    rng = np.random.default_rng(3)
    n = 4000
    reward = rng.binomial(1, rng.uniform(0.02, 0.4, n)).astype(float)
    pscore = np.full(n, 0.5)
    champ = OPEData.from_arrays(reward=reward, position=np.zeros(n, int), pscore=pscore, pi_e=np.full(n, 0.5))
    # The candidate puts a little less probability on the clicked rows.
    cand_pi = np.where(reward > 0, 0.44, 0.5)
    cand = OPEData.from_arrays(reward=reward, position=np.zeros(n, int), pscore=pscore, pi_e=cand_pi)
    rule = GateRule(estimator="snipw", min_examples=100, min_ess=10.0, margin=0.0, n_bootstrap=200)
    (c, p), diff = paired_values(cand, champ, rule)
    assert c.ci_high > p.ci_low  # the separate intervals overlap
    assert diff.high < 0  # the paired one does not reach 0
    assert decide(rule, n, c, p, diff)[0] == "hold"


@pytest.mark.parametrize("name", ["snipw", "dr", "sndr"])
def test_paired_point_estimates_equal_the_ope_module(name: str) -> None:
    rng = np.random.default_rng(0)
    n = 500
    kw = {
        "reward": rng.binomial(1, 0.2, n),
        "position": rng.integers(0, 3, n),
        "pscore": rng.uniform(0.1, 1.0, n),
        "q_logged": rng.uniform(0, 0.4, n),
        "q_policy": rng.uniform(0, 0.4, n),
        "group": np.repeat(np.arange(n // 5), 5),
    }
    a = OPEData.from_arrays(pi_e=rng.uniform(0, 1, n), **kw)
    b = OPEData.from_arrays(pi_e=rng.uniform(0, 1, n), **kw)
    rule = GateRule(estimator=name, clip=3.0, n_bootstrap=50)  # type: ignore[arg-type]
    (va, vb), diff = paired_values(a, b, rule)
    assert va.value == pytest.approx(estimate(a, name, clip=3.0), rel=1e-12)
    assert vb.value == pytest.approx(estimate(b, name, clip=3.0), rel=1e-12)
    assert diff.value == pytest.approx(va.value - vb.value)
    assert diff.low <= diff.value <= diff.high and va.ci_low <= va.value <= va.ci_high
    w = np.minimum(a.pi_e / a.pscore, 3.0)
    assert va.ess == pytest.approx(w.sum() ** 2 / (w**2).sum())


def test_paired_values_need_the_same_rows() -> None:
    a = OPEData.from_arrays(reward=[1, 0], position=[0, 0], pscore=[0.5, 0.5], pi_e=[0.5, 0.5])
    b = OPEData.from_arrays(reward=[0, 0], position=[0, 0], pscore=[0.5, 0.5], pi_e=[0.5, 0.5])
    with pytest.raises(OPEInputError, match="same logged rows"):
        paired_values(a, b, GateRule())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"estimator": "ipw"}, "estimator"),
        ({"margin": -0.1}, "margin"),
        ({"margin": math.inf}, "margin"),
        ({"min_examples": 0}, "min_examples"),
        ({"min_ess": math.nan}, "min_ess"),
        ({"alpha": 1.0}, "alpha"),
        ({"n_bootstrap": 5}, "n_bootstrap"),
        ({"epsilon": 1.5}, "epsilon"),
        ({"clip": 0.0}, "clip"),
    ],
)
def test_bad_settings_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(OPEInputError, match=f"^{field}:"):
        GateRule(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SMARTTRIP_GATE_MARGIN": "-1"}, "SMARTTRIP_GATE_MARGIN: must be a finite number >= 0"),
        ({"SMARTTRIP_GATE_MARGIN": "abc"}, "SMARTTRIP_GATE_MARGIN: expected a number"),
        ({"SMARTTRIP_GATE_ESTIMATOR": "ipw"}, "SMARTTRIP_GATE_ESTIMATOR: must be one of"),
        ({"SMARTTRIP_GATE_MIN_EXAMPLES": "-3"}, "SMARTTRIP_GATE_MIN_EXAMPLES: expected an integer"),
        ({"SMARTTRIP_GATE_WINDOW": "0"}, "SMARTTRIP_GATE_WINDOW: must be an integer >= 1"),
        ({"SMARTTRIP_GATE_INTERVAL_S": "0"}, "SMARTTRIP_GATE_INTERVAL_S: must be a number > 0"),
    ],
)
def test_gate_settings_from_env_name_the_variable(env: dict[str, str], message: str) -> None:
    from stream.promotion_gate import GateSettings, GateSettingsError

    with pytest.raises(GateSettingsError, match=f"^{message}"):
        GateSettings.from_env(env)
