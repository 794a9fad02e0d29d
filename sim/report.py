"""The demo's report: CTR per variant with confidence intervals, lift, share of oracle, charts.

CTR is clicks per shown slot, with a Wilson 95% interval. "Share of oracle"
compares expected clicks under the ground truth — the variant's slates
against the best possible slates for the same users at the same moments —
which removes the click sampling noise from the comparison.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sim.driver import RequestOutcome

__all__ = ["VariantReport", "plot_ctr", "plot_weights", "summarize", "wilson"]


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion."""
    if trials == 0:
        return (0.0, 1.0)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class VariantReport:
    variant: str
    requests: int
    slots: int
    clicks: int
    ctr: float
    ctr_low: float
    ctr_high: float
    expected_ctr: float
    share_of_oracle: float
    share_of_oracle_last_minute: float
    lift_over_rules: float | None
    latency_p50_ms: float
    latency_p99_ms: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def summarize(outcomes: Sequence[RequestOutcome], *, last_window_s: float = 60.0) -> list[VariantReport]:
    by_variant: dict[str, list[RequestOutcome]] = defaultdict(list)
    for o in outcomes:
        by_variant[o.variant].append(o)
    end = max((o.t for o in outcomes), default=0.0)
    reports = []
    for variant, rows in sorted(by_variant.items()):
        slots = sum(o.slots for o in rows)
        clicks = sum(o.clicks for o in rows)
        low, high = wilson(clicks, slots)
        oracle = sum(o.oracle_clicks for o in rows)
        last = [o for o in rows if o.t >= end - last_window_s]
        last_oracle = sum(o.oracle_clicks for o in last)
        lat = np.array([o.latency_s for o in rows]) * 1000
        reports.append(
            VariantReport(
                variant=variant,
                requests=len(rows),
                slots=slots,
                clicks=clicks,
                ctr=clicks / slots if slots else 0.0,
                ctr_low=low,
                ctr_high=high,
                expected_ctr=sum(o.expected_clicks for o in rows) / slots if slots else 0.0,
                share_of_oracle=sum(o.expected_clicks for o in rows) / oracle if oracle else 0.0,
                share_of_oracle_last_minute=(
                    sum(o.expected_clicks for o in last) / last_oracle if last_oracle else 0.0
                ),
                lift_over_rules=None,
                latency_p50_ms=float(np.percentile(lat, 50)) if lat.size else 0.0,
                latency_p99_ms=float(np.percentile(lat, 99)) if lat.size else 0.0,
            )
        )
    rules = next((r for r in reports if r.variant == "rules"), None)
    if rules is not None and rules.ctr > 0:
        reports = [
            VariantReport(**{**r.as_dict(), "lift_over_rules": r.ctr / rules.ctr - 1})  # type: ignore[arg-type]
            for r in reports
        ]
    return reports


def ctr_series(
    outcomes: Sequence[RequestOutcome], bucket_s: float
) -> dict[str, tuple[list[float], list[float]]]:
    """Expected CTR per variant per time bucket, plus the oracle's (variant "oracle")."""
    sums: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for o in outcomes:
        b = int(o.t // bucket_s)
        sums[(o.variant, b)][0] += o.expected_clicks
        sums[(o.variant, b)][1] += o.slots
        sums[("oracle", b)][0] += o.oracle_clicks
        sums[("oracle", b)][1] += o.slots
    series: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    typical = float(np.median([slots for _, slots in sums.values()])) if sums else 0.0
    for (variant, b), (clicks, slots) in sorted(sums.items()):
        if slots < typical / 4:  # a sliver of a bucket (the run's last second): noise, not a trend
            continue
        xs, ys = series[variant]
        xs.append((b + 0.5) * bucket_s)
        ys.append(clicks / slots)
    return dict(series)


def plot_ctr(
    outcomes: Sequence[RequestOutcome], path: Path, *, bucket_s: float = 15.0, drift_at_s: float | None = None
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    for variant, (xs, ys) in ctr_series(outcomes, bucket_s).items():
        style = {"oracle": ("k--", 2.0), "rules": ("r-", 2.0)}.get(variant, ("-", 1.5))
        ax.plot(xs, ys, style[0], linewidth=style[1], label=variant)
    if drift_at_s is not None:
        ax.axvline(drift_at_s, color="grey", linestyle=":", label="taste drift")
    ax.set_title("Expected CTR per shown slot, by variant (ground truth of the simulation)")
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("CTR (clicks per slot)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_weights(
    samples: Sequence[tuple[float, Mapping[str, float]]],
    rule_weights: Mapping[str, float],
    path: Path,
    *,
    title: str,
    features: Sequence[str],
) -> Path:
    """Learned weights over time (solid) next to the rule weights scaled to the same range (dotted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    ts = [t for t, _ in samples]
    scale = max((abs(v) for _, w in samples for k, v in w.items() if k in features), default=1.0)
    rule_scale = max((abs(rule_weights.get(f, 0.0)) for f in features), default=1.0) or 1.0
    for i, feature in enumerate(features):
        color = f"C{i % 10}"
        ax.plot(ts, [w.get(feature, 0.0) for _, w in samples], color=color, label=feature)
        ax.axhline(rule_weights.get(feature, 0.0) * scale / rule_scale, color=color, linestyle=":", alpha=0.7)
    ax.set_title(title)
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("learned weight (dotted: rule weight, rescaled)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
