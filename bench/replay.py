"""Replay throughput: input events per second through the join and the learners, offline.

Input: seeded synthetic sessions (one 10-trip slate with 20 φ values and
~0.9 clicks each, :func:`stream.synthetic.synthetic_sessions`) as export
records with broker timestamps, held in memory. Every mode replays the same
records and learns every example; the first row, the careful path (the join
and learner agents' runtimes with the JSON round trip between them, all
three default policies), is the baseline measured in the same run. Each
mode's figure is the best of ``repeats`` runs. Run: ``smarttrip bench replay``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bandit.protocol import Learner
from stream.export import LogRecord
from stream.learner_runtime import DEFAULT_POLICIES
from stream.replay import Replayer
from stream.replay_fast import FastReplayer
from stream.synthetic import synthetic_sessions

__all__ = ["ReplayResult", "run"]


@dataclass(frozen=True)
class ReplayResult:
    mode: str
    events: int
    examples: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def as_dict(self) -> dict[str, object]:
        return {"mode": self.mode, "events": self.events, "examples": self.examples,
                "seconds": self.seconds, "events_per_s": self.rate}  # fmt: skip


def records(n_sessions: int, seed: int) -> list[LogRecord]:
    recs, _ = synthetic_sessions(n_sessions=n_sessions, seed=seed, t0=1_764_000_000.0)
    out = []
    for i, r in enumerate(recs):
        ts_ms = int(1_764_000_000_000 + i)  # broker time follows production order
        out.append(LogRecord(r.topic, 0, i, ts_ms, r.key, r.value))
    return out


def _policies(names: tuple[str, ...]) -> dict[str, Callable[[], Learner]]:
    return {n: DEFAULT_POLICIES[n] for n in names}


def run(*, n_sessions: int = 5000, seed: int = 0, repeats: int = 2) -> list[ReplayResult]:
    """Careful path (baseline), then the fast path with all, the deterministic, and one policy."""
    recs = records(n_sessions, seed)
    all_policies = tuple(DEFAULT_POLICIES)
    modes: list[tuple[str, Callable[[], Replayer]]] = [
        (f"careful, {'+'.join(all_policies)}", lambda: Replayer("raw", policies=_policies(all_policies))),
        (f"fast, {'+'.join(all_policies)}", lambda: FastReplayer(policies=_policies(all_policies))),
        ("fast, logistic+linucb", lambda: FastReplayer(policies=_policies(("logistic", "linucb")))),
        ("fast, linucb", lambda: FastReplayer(policies=_policies(("linucb",)))),
    ]
    results = []
    for name, make in modes:
        best: ReplayResult | None = None
        for _ in range(repeats):
            replayer = make()
            started = time.perf_counter()
            stats = replayer.run(recs)
            seconds = time.perf_counter() - started
            if best is None or seconds < best.seconds:
                best = ReplayResult(name, stats.events, stats.examples, seconds)
        assert best is not None  # noqa: S101  # repeats >= 1
        results.append(best)
    return results
