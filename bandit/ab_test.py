r"""Statistics of an A/B test on proportions: intervals, tests, power and a peeking-safe test.

- Wilson score interval of a proportion (Wilson 1927): good coverage even
  for small counts and rates near 0, unlike the normal ("Wald") interval.
- Two-proportion z-test with the pooled variance, two-sided p-value.
- Minimum detectable effect (absolute) at the current sample sizes and the
  sample size per arm still needed to detect a given effect, for a
  two-sided test of level ``alpha`` with power ``power``.
- Always-valid inference by the mixture sequential probability ratio test
  (mSPRT; Johari, Koomen, Pekelis & Walsh 2017, "Peeking at A/B tests"): with
  a normal mixing distribution of variance ``τ²`` over the difference ``θ``
  and the normal approximation of ``θ̂ = p̂_B − p̂_A`` with variance ``V``,

  .. math:: Λ = \sqrt{\frac{V}{V + τ^2}} \exp\Big(\frac{τ^2 θ̂^2}{2 V (V + τ^2)}\Big),

  and the always-valid p-value is the running minimum of ``min(1, 1/Λ)``
  over the looks taken so far: stopping the first time it drops below
  ``alpha`` keeps the false-positive rate below ``alpha`` however often one
  peeks.

>>> lo, hi = wilson_interval(30, 100)
>>> round(lo, 4), round(hi, 4)
(0.2189, 0.3958)
>>> round(two_proportion_test(100, 1000, 130, 1000).p_value, 4)
0.0355
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

__all__ = [
    "TwoProportionTest",
    "always_valid_p_values",
    "minimum_detectable_effect",
    "msprt_p_value",
    "sample_size_per_arm",
    "two_proportion_test",
    "wilson_interval",
]

_Z = NormalDist()


def _check_counts(successes: int, n: int, name: str) -> None:
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"{name}: need 0 <= successes <= n, got {successes} of {n}")


def _check_alpha(alpha: float, name: str = "alpha") -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"{name}: must be in (0, 1), got {alpha!r}")


def wilson_interval(successes: int, n: int, *, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of ``successes / n`` (``(0, 1)`` when ``n`` is 0)."""
    _check_counts(successes, n, "wilson_interval")
    _check_alpha(alpha)
    if n == 0:
        return (0.0, 1.0)
    z = _Z.inv_cdf(1 - alpha / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True, slots=True)
class TwoProportionTest:
    """B against A: the difference of rates, its (unpooled) interval, and the pooled z-test."""

    rate_a: float
    rate_b: float
    difference: float
    ci_low: float
    ci_high: float
    z: float
    p_value: float


def two_proportion_test(
    successes_a: int, n_a: int, successes_b: int, n_b: int, *, alpha: float = 0.05
) -> TwoProportionTest:
    """Two-sided pooled z-test of ``p_B = p_A`` and a Wald interval of ``p_B − p_A``."""
    _check_counts(successes_a, n_a, "a")
    _check_counts(successes_b, n_b, "b")
    _check_alpha(alpha)
    if n_a == 0 or n_b == 0:
        raise ValueError("two_proportion_test: both arms need at least one trial")
    pa, pb = successes_a / n_a, successes_b / n_b
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    z = (pb - pa) / se_pooled if se_pooled > 0 else 0.0
    p_value = 2 * (1 - _Z.cdf(abs(z)))
    se = math.sqrt(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b)
    q = _Z.inv_cdf(1 - alpha / 2)
    return TwoProportionTest(pa, pb, pb - pa, pb - pa - q * se, pb - pa + q * se, z, p_value)


def minimum_detectable_effect(
    base_rate: float, n_a: int, n_b: int, *, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Smallest absolute difference a two-sided test detects with ``power`` at these sizes."""
    _check_alpha(alpha)
    _check_alpha(power, "power")
    if n_a <= 0 or n_b <= 0:
        return math.inf
    z = _Z.inv_cdf(1 - alpha / 2) + _Z.inv_cdf(power)
    return z * math.sqrt(base_rate * (1 - base_rate) * (1 / n_a + 1 / n_b))


def sample_size_per_arm(base_rate: float, effect: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """Trials per arm to detect an absolute ``effect`` over ``base_rate`` (two-sided, equal arms)."""
    _check_alpha(alpha)
    _check_alpha(power, "power")
    if effect == 0:
        return 2**63 - 1
    p1, p2 = base_rate, min(max(base_rate + effect, 0.0), 1.0)
    z = _Z.inv_cdf(1 - alpha / 2) + _Z.inv_cdf(power)
    return math.ceil(z * z * (p1 * (1 - p1) + p2 * (1 - p2)) / (effect * effect))


def msprt_p_value(successes_a: int, n_a: int, successes_b: int, n_b: int, *, tau: float = 0.01) -> float:
    """``min(1, 1/Λ)`` at one look (see the module docstring); 1 when the variance is 0."""
    _check_counts(successes_a, n_a, "a")
    _check_counts(successes_b, n_b, "b")
    if not tau > 0:
        raise ValueError(f"tau: must be > 0, got {tau!r}")
    if n_a == 0 or n_b == 0:
        return 1.0
    pa, pb = successes_a / n_a, successes_b / n_b
    v = pa * (1 - pa) / n_a + pb * (1 - pb) / n_b
    if v <= 0:
        return 1.0
    t2 = tau * tau
    log_lambda = 0.5 * math.log(v / (v + t2)) + t2 * (pb - pa) ** 2 / (2 * v * (v + t2))
    return 1.0 if log_lambda <= 0 else min(1.0, math.exp(-log_lambda))


def always_valid_p_values(looks: Sequence[tuple[int, int, int, int]], *, tau: float = 0.01) -> list[float]:
    """Running-minimum mSPRT p-values over cumulative ``(successes_a, n_a, successes_b, n_b)`` looks."""
    out: list[float] = []
    running = 1.0
    for sa, na, sb, nb in looks:
        running = min(running, msprt_p_value(sa, na, sb, nb, tau=tau))
        out.append(running)
    return out
