"""A/B statistics: intervals, tests, power, the always-valid test, and the report."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from bandit.ab_test import (
    always_valid_p_values,
    minimum_detectable_effect,
    sample_size_per_arm,
    two_proportion_test,
    wilson_interval,
)
from stream.ab_report import ab_report, plot_ab
from stream.events import Example, Labels


def test_wilson_interval_closed_form_and_edges() -> None:
    z = 1.959963984540054
    n, x = 50, 7
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert wilson_interval(x, n) == pytest.approx((centre - half, centre + half), abs=1e-12)
    lo, hi = wilson_interval(0, 20)
    assert lo == pytest.approx(0.0, abs=1e-15) and 0.1 < hi < 0.2  # unlike Wald, not degenerate at 0
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="need 0 <= successes <= n"):
        wilson_interval(5, 3)


def test_wilson_coverage_is_near_nominal() -> None:
    rng = np.random.default_rng(0)
    p, n = 0.03, 200
    hits = [lo <= p <= hi for lo, hi in (wilson_interval(int(x), n) for x in rng.binomial(n, p, 4000))]
    assert 0.93 < np.mean(hits) < 0.975


def test_two_proportion_test() -> None:
    same = two_proportion_test(40, 1000, 40, 1000)
    assert same.p_value == pytest.approx(1.0) and same.difference == 0.0
    t = two_proportion_test(100, 1000, 130, 1000)
    pooled = 230 / 2000
    z = 0.03 / math.sqrt(pooled * (1 - pooled) * 2 / 1000)
    assert t.z == pytest.approx(z) and t.p_value == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert t.ci_low < 0.03 < t.ci_high


def test_false_positive_rate_of_the_z_test_is_alpha() -> None:
    rng = np.random.default_rng(1)
    ps = [two_proportion_test(int(a), 2000, int(b), 2000).p_value
          for a, b in zip(rng.binomial(2000, 0.1, 2000), rng.binomial(2000, 0.1, 2000), strict=True)]  # fmt: skip
    assert 0.03 < np.mean(np.array(ps) < 0.05) < 0.07


def test_mde_and_sample_size_agree() -> None:
    base, n = 0.1, 5000
    mde = minimum_detectable_effect(base, n, n)
    needed = sample_size_per_arm(base, mde)
    assert 0.9 * n < needed < 1.15 * n  # the same power formula, variance at p vs at p and p + mde
    assert sample_size_per_arm(base, 2 * mde) < needed / 3


def test_always_valid_test_survives_peeking_where_the_naive_test_does_not() -> None:
    rng = np.random.default_rng(2)
    naive_rejections = sequential_rejections = 0
    sims, looks, per_look = 300, 40, 50
    for _ in range(sims):  # an A/A test, peeked at 40 times
        a = np.cumsum(rng.random(looks * per_look) < 0.2)
        b = np.cumsum(rng.random(looks * per_look) < 0.2)
        ends = [(int(a[k * per_look - 1]), k * per_look, int(b[k * per_look - 1]), k * per_look)
                for k in range(1, looks + 1)]  # fmt: skip
        naive_rejections += any(two_proportion_test(*look).p_value < 0.05 for look in ends)
        sequential_rejections += always_valid_p_values(ends, tau=0.05)[-1] < 0.05
    assert naive_rejections / sims > 0.12  # peeking inflates the naive error well beyond 5 %
    assert sequential_rejections / sims <= 0.05


def test_always_valid_test_detects_a_real_effect() -> None:
    rng = np.random.default_rng(3)
    a = np.cumsum(rng.random(20_000) < 0.10)
    b = np.cumsum(rng.random(20_000) < 0.13)
    looks = [(int(a[n - 1]), n, int(b[n - 1]), n) for n in range(500, 20_001, 500)]
    p = always_valid_p_values(looks, tau=0.05)
    assert p[-1] < 0.01 and all(x >= y for x, y in itertools.pairwise(p))


def _examples(variant: str, n_slates: int, click_p: float, rng: np.random.Generator) -> list[Example]:
    out = []
    for s in range(n_slates):
        for pos in range(3):
            clicked = bool(rng.random() < click_p / (1 + pos))
            booked = clicked and bool(rng.random() < 0.2)
            labels = Labels(click=int(clicked), booking_start=int(booked))
            out.append(Example(f"{variant}{s}:t{pos}", f"{variant}{s}", f"t{pos}", f"s{variant}{s}", "u", "general",
                               variant, "m0", "phi-v1", (1.0,), pos, 1.0, float(clicked), labels, clicked, True,
                               1_764_000_000.0 + s))  # fmt: skip
    return out


def test_ab_report_finds_the_better_variant(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    examples = _examples("rules", 3000, 0.10, rng) + _examples("linucb", 3000, 0.16, rng)
    stats, comparisons = ab_report(examples)
    by = {s.variant: s for s in stats}
    assert by["linucb"].ctr > by["rules"].ctr and by["rules"].slates == 3000
    ctr = next(c for c in comparisons if c.metric == "ctr")
    assert ctr.control == "rules" and ctr.difference > 0 and ctr.p_value < 1e-3 and ctr.always_valid_p < 0.05
    assert ctr.still_needed_per_arm == 0
    plot_ab(stats, tmp_path / "ab.png")
    assert (tmp_path / "ab.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="control: variant 'vw' not in the logs"):
        ab_report(examples, control="vw")
