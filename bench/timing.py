"""Shared timing helpers for the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Timing:
    n: int
    p50_ms: float
    p99_ms: float
    mean_ms: float

    def as_dict(self) -> dict[str, float]:
        return {"n": self.n, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms, "mean_ms": self.mean_ms}


def time_calls(fn: Callable[[int], object], repeats: int, warmup: int = 3) -> Timing:
    """Time ``fn(i)`` for i in range(repeats), one sample per call (ms)."""
    for i in range(warmup):
        fn(i)
    samples = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(i)
        samples[i] = (time.perf_counter() - t0) * 1e3
    return Timing(
        n=repeats,
        p50_ms=float(np.percentile(samples, 50)),
        p99_ms=float(np.percentile(samples, 99)),
        mean_ms=float(samples.mean()),
    )
