"""Ranking latency: the old per-trip loop + heap of 30 vs the vectorized path.

Both rank the same catalogs for the same seeded users with the rule score;
the vectorized timing includes filtering, building φ, scoring and top-k.
Run: ``smarttrip bench scoring [--json FILE]``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from bench.timing import Timing, time_calls
from features.catalog import Catalog
from features.context import Preferences
from features.generator import generate_trips, sample_preferences
from scoring.linear import LinearScorer, rule_scorer
from scoring.ranking import rank_catalog
from scoring.reference import reference_rank, tight_score

SIZES = (30, 1_000, 10_000, 100_000)
K = 30
START = dt.date(2026, 1, 1)


@dataclass(frozen=True)
class SizeResult:
    candidates: int
    reference: Timing  # rule-by-rule per-trip function + heap of 30 (the test oracle)
    tight_loop: Timing  # the same rules hand-inlined: the fastest plain-Python baseline
    vectorized: Timing

    @property
    def speedup_p50(self) -> float:
        return self.reference.p50_ms / self.vectorized.p50_ms

    @property
    def speedup_tight_p50(self) -> float:
        return self.tight_loop.p50_ms / self.vectorized.p50_ms

    def as_dict(self) -> dict[str, object]:
        return {
            "candidates": self.candidates,
            "reference": self.reference.as_dict(),
            "tight_loop": self.tight_loop.as_dict(),
            "vectorized": self.vectorized.as_dict(),
            "speedup_p50": self.speedup_p50,
            "speedup_p99": self.reference.p99_ms / self.vectorized.p99_ms,
            "speedup_vs_tight_loop_p50": self.speedup_tight_p50,
        }


def run(sizes: tuple[int, ...] = SIZES, seed: int = 0, quick: bool = False) -> list[SizeResult]:
    rng = np.random.default_rng(seed)
    users = sample_preferences(rng, 64)
    trips = generate_trips(n_trips=max(sizes), seed=seed, start=START)
    scorer = rule_scorer()
    results = []
    for n in sizes:
        results.append(_measure(Catalog(tuple(trips[:n])), users, scorer, quick))
    return results


def _measure(catalog: Catalog, users: list[Preferences], scorer: LinearScorer, quick: bool) -> SizeResult:
    n = len(catalog)
    div = 4 if quick else 1
    ref_reps = max(3, min(200, 300_000 // n) // div)
    vec_reps = max(20, min(2000, 5_000_000 // n) // div)
    reference = time_calls(
        lambda i: reference_rank(catalog.trips, users[i % 64], START, K), ref_reps, warmup=1
    )
    tight = time_calls(
        lambda i: reference_rank(catalog.trips, users[i % 64], START, K, score=tight_score),
        ref_reps,
        warmup=1,
    )
    vectorized = time_calls(lambda i: rank_catalog(catalog, users[i % 64], START, scorer, K), vec_reps)
    return SizeResult(n, reference, tight, vectorized)
