"""The A/B report: per-variant CTR and conversion with intervals, tests against a control, power.

The unit is the slate (one ranking request): a slate *clicks* if any of its
items was clicked and *converts* if any had a ``booking_start``. Slates are
attributed to the variant that served them (the impression's ``policy``).
Per variant: slates, item CTR, slate CTR and conversion with Wilson
intervals; against the control: the difference, a two-proportion z-test, the
minimum detectable effect at the current sizes, the slates per arm still
needed to detect the observed effect (or ``target_lift``), and the
always-valid mSPRT p-value over looks taken every ``look_every`` slates in
time order (safe to peek at: :mod:`bandit.ab_test`). :func:`ranking_by_group`
adds the offline ranking metrics (:mod:`bandit.ranking_metrics`) per variant
and segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bandit.ab_test import (
    always_valid_p_values,
    minimum_detectable_effect,
    sample_size_per_arm,
    two_proportion_test,
    wilson_interval,
)
from bandit.ranking_metrics import RankingMetrics, ranking_metrics
from stream.events import Example

__all__ = ["ArmComparison", "VariantStats", "ab_report", "as_dicts", "plot_ab", "ranking_by_group"]


@dataclass(frozen=True, slots=True)
class VariantStats:
    variant: str
    slates: int
    items: int
    item_ctr: float
    clicked_slates: int
    ctr: float
    ctr_low: float
    ctr_high: float
    converted_slates: int
    conversion: float
    conversion_low: float
    conversion_high: float


@dataclass(frozen=True, slots=True)
class ArmComparison:
    variant: str
    control: str
    metric: str
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    always_valid_p: float
    mde: float
    needed_per_arm: int
    still_needed_per_arm: int


def _slates(examples: Sequence[Example]) -> dict[str, list[tuple[float, bool, bool, int]]]:
    """variant -> [(ts, clicked, converted, items)] per slate, in time order."""
    per: dict[str, tuple[str, float, bool, bool, int]] = {}
    for e in examples:
        v, ts, c, b, n = per.get(e.request_id, (e.policy, e.ts, False, False, 0))
        per[e.request_id] = (v, ts, c or e.clicked, b or e.labels.booking_start > 0, n + 1)
    out: dict[str, list[tuple[float, bool, bool, int]]] = {}
    for v, ts, c, b, n in per.values():
        out.setdefault(v, []).append((ts, c, b, n))
    for rows in out.values():
        rows.sort()
    return out


def ab_report(
    examples: Sequence[Example], *, control: str | None = None, alpha: float = 0.05, power: float = 0.8,
    target_lift: float | None = None, look_every: int = 500, tau: float = 0.02,
) -> tuple[list[VariantStats], list[ArmComparison]]:  # fmt: skip
    """Variant statistics and comparisons of every other variant with ``control`` (default: ``rules``
    if present, else the first variant by name)."""
    slates = _slates(examples)
    if not slates:
        raise ValueError("examples: none to report on")
    control = control or ("rules" if "rules" in slates else min(slates))
    if control not in slates:
        raise ValueError(f"control: variant {control!r} not in the logs ({sorted(slates)})")
    stats: list[VariantStats] = []
    for v in sorted(slates):
        rows = slates[v]
        n = len(rows)
        clicks = sum(c for _, c, _, _ in rows)
        conv = sum(b for _, _, b, _ in rows)
        items = sum(k for *_, k in rows)
        item_clicks = sum(e.clicked for e in examples if e.policy == v)
        stats.append(VariantStats(
            v, n, items, item_clicks / items, clicks, clicks / n, *wilson_interval(clicks, n, alpha=alpha),
            conv, conv / n, *wilson_interval(conv, n, alpha=alpha),
        ))  # fmt: skip
    comparisons: list[ArmComparison] = []
    base = slates[control]
    for v in sorted(slates):
        if v == control:
            continue
        rows = slates[v]
        for metric, k in (("ctr", 1), ("conversion", 2)):
            xa, xb = sum(int(r[k]) for r in base), sum(int(r[k]) for r in rows)
            test = two_proportion_test(xa, len(base), xb, len(rows), alpha=alpha)
            p0 = xa / len(base)
            effect = target_lift * p0 if target_lift is not None else test.difference
            needed = sample_size_per_arm(p0, effect, alpha=alpha, power=power)
            looks = _looks(base, rows, k, look_every)
            avp = always_valid_p_values(looks, tau=tau)[-1] if looks else 1.0
            comparisons.append(ArmComparison(
                v, control, metric, test.difference, test.ci_low, test.ci_high, test.p_value, avp,
                minimum_detectable_effect(p0, len(base), len(rows), alpha=alpha, power=power),
                needed, max(0, needed - min(len(base), len(rows))),
            ))  # fmt: skip
    return stats, comparisons


def _looks(
    a: list[tuple[float, bool, bool, int]], b: list[tuple[float, bool, bool, int]], k: int, every: int
) -> list[tuple[int, int, int, int]]:
    """Cumulative counts at every ``every``-th slate of the merged timeline, and at the end."""
    merged = sorted([(r[0], 0, r[k]) for r in a] + [(r[0], 1, r[k]) for r in b])
    sa = na = sb = nb = 0
    looks: list[tuple[int, int, int, int]] = []
    for i, (_, arm, hit) in enumerate(merged, 1):
        if arm == 0:
            na += 1
            sa += int(hit)
        else:
            nb += 1
            sb += int(hit)
        if i % every == 0 or i == len(merged):
            looks.append((sa, na, sb, nb))
    return looks


def ranking_by_group(
    examples: Sequence[Example], *, k: int = 10, catalog_size: int | None = None
) -> list[tuple[str, str, RankingMetrics]]:
    """Ranking metrics per (variant, segment), and per variant over all segments (segment ``*``)."""
    groups: dict[tuple[str, str], list[Example]] = {}
    for e in examples:
        groups.setdefault((e.policy, e.segment), []).append(e)
        groups.setdefault((e.policy, "*"), []).append(e)
    out = []
    for (variant, segment), rows in sorted(groups.items()):
        slates = {r: i for i, r in enumerate(dict.fromkeys(e.request_id for e in rows))}
        items = {t: i for i, t in enumerate(dict.fromkeys(e.trip_id for e in rows))}
        widths = {len(e.phi) for e in rows}
        features = np.array([e.phi for e in rows]) if len(widths) == 1 and 0 not in widths else None
        out.append((variant, segment, ranking_metrics(
            slate=[slates[e.request_id] for e in rows], position=[e.position for e in rows],
            reward=[e.reward for e in rows], clicked=[e.clicked for e in rows],
            item=[items[e.trip_id] for e in rows], features=features, k=k, catalog_size=catalog_size,
        )))  # fmt: skip
    return out


def as_dicts(stats: Sequence[VariantStats], comparisons: Sequence[ArmComparison]) -> dict[str, object]:
    return {"variants": [asdict(s) for s in stats], "comparisons": [asdict(c) for c in comparisons]}


def plot_ab(stats: Sequence[VariantStats], path: Path) -> None:
    """Bar chart of slate CTR and conversion per variant, with Wilson intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    names = [s.variant for s in stats]
    for ax, (title, val, lo, hi) in zip(axes, (
        ("slate CTR", [s.ctr for s in stats], [s.ctr_low for s in stats], [s.ctr_high for s in stats]),
        ("conversion", [s.conversion for s in stats], [s.conversion_low for s in stats],
         [s.conversion_high for s in stats]),
    ), strict=True):  # fmt: skip
        err = [
            [v - lo_ for v, lo_ in zip(val, lo, strict=True)],
            [h - v for v, h in zip(val, hi, strict=True)],
        ]
        ax.bar(names, val, yerr=err, capsize=4, color="#4c72b0")
        ax.set_title(f"{title} (95% Wilson)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
