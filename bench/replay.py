"""Replay throughput: input events per second through the join and the learners, offline.

Input: seeded synthetic sessions (one 10-trip slate with 20 φ values and
~0.9 clicks each, :func:`stream.synthetic.synthetic_sessions`) as export
records with broker timestamps, held in memory. For each set of learners
(none: the join alone; each default policy alone; all three) every path
replays the same records:

``careful``
    the join and learner agents' runtimes with the JSON round trip between
    them and the reference learners — the baseline, measured in the same run;
``fast``
    :class:`stream.replay_fast.FastReplayer`: the same join, examples as
    objects, compiled learner loops (:mod:`bandit.fast_kernels`);
``columnar``
    :class:`stream.replay_columnar.ColumnarReplayer`: the join's outcome per
    slate, the learners fed arrays (this input meets its preconditions; the
    run fails if it fell back).

Each figure is the best of ``repeats`` runs, in wall-clock and in CPU time
of the process (the machine may be shared); ``vs careful`` compares paths on
the same learners, in both. Run: ``smarttrip bench replay``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bandit.protocol import Learner
from stream.events import Example
from stream.export import LogRecord
from stream.learner_runtime import DEFAULT_POLICIES, ExampleRecord
from stream.replay import Replayer
from stream.replay_columnar import ColumnarReplayer
from stream.replay_fast import FastReplayer
from stream.synthetic import synthetic_sessions

__all__ = ["LEARNER_SETS", "ReplayResult", "run"]

#: (row label, policies); an empty tuple is the join alone (examples counted, not learned).
LEARNER_SETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("join only", ()),
    ("join + linucb", ("linucb",)),
    ("join + logistic", ("logistic",)),
    ("join + vw", ("vw",)),
    ("join + all three", tuple(DEFAULT_POLICIES)),
)


@dataclass(frozen=True)
class ReplayResult:
    learners: str
    path: str
    events: int
    examples: int
    seconds: float
    cpu_seconds: float
    baseline_rate: float  # the careful path on the same learners, same run
    baseline_cpu_rate: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_rate(self) -> float:
        return self.events / self.cpu_seconds

    @property
    def vs_careful(self) -> float:
        return self.rate / self.baseline_rate

    @property
    def vs_careful_cpu(self) -> float:
        return self.cpu_rate / self.baseline_cpu_rate

    @property
    def mode(self) -> str:
        return f"{self.path}, {self.learners}"

    def as_dict(self) -> dict[str, object]:
        return {"learners": self.learners, "path": self.path, "events": self.events, "examples": self.examples,
                "seconds": self.seconds, "cpu_seconds": self.cpu_seconds, "events_per_s": self.rate,
                "events_per_cpu_s": self.cpu_rate, "vs_careful": self.vs_careful,
                "vs_careful_cpu": self.vs_careful_cpu}  # fmt: skip


def records(n_sessions: int, seed: int) -> list[LogRecord]:
    recs, _ = synthetic_sessions(n_sessions=n_sessions, seed=seed, t0=1_764_000_000.0)
    out = []
    for i, r in enumerate(recs):
        ts_ms = int(1_764_000_000_000 + i)  # broker time follows production order
        out.append(LogRecord(r.topic, 0, i, ts_ms, r.key, r.value))
    return out


class _CarefulJoinOnly(Replayer):
    """The careful join; example records are counted, not learned."""

    def _learn(self, records: list[ExampleRecord]) -> None:
        self.stats.examples += len(records)


class _FastJoinOnly(FastReplayer):
    """The fast path's join; examples are counted, not learned."""

    def _learn_items(self, items: list[tuple[ExampleRecord, Example]]) -> None:
        self.stats.examples += len(items)


class _ColumnarJoinOnly(ColumnarReplayer):
    """The columnar join and example arrays; examples are counted, not learned."""

    def _fit(self, meta: list[tuple[str, str, int, int]], order: list[list[int]], **arrays: Any) -> None:
        self.stats.examples += sum(meta[i][3] for batch in order for i in batch)


def _policies(names: tuple[str, ...]) -> dict[str, Callable[[], Learner]]:
    return {n: DEFAULT_POLICIES[n] for n in names}


def paths(names: tuple[str, ...]) -> list[tuple[str, Callable[[], Replayer | ColumnarReplayer]]]:
    """(path name, replayer factory) for one learner set, the careful path first."""
    if not names:
        return [("careful", lambda: _CarefulJoinOnly("raw")), ("fast", lambda: _FastJoinOnly()),
                ("columnar", lambda: _ColumnarJoinOnly())]  # fmt: skip
    return [
        ("careful", lambda: Replayer("raw", policies=_policies(names))),
        ("fast", lambda: FastReplayer(policies=_policies(names))),
        ("columnar", lambda: ColumnarReplayer(policies=_policies(names))),
    ]


def run(
    *,
    n_sessions: int = 3000,
    seed: int = 0,
    repeats: int = 2,
    progress: Callable[[str], None] | None = None,
) -> list[ReplayResult]:
    """Every learner set through every path; best of ``repeats`` each."""
    recs = records(n_sessions, seed)
    ColumnarReplayer(policies=_policies(tuple(DEFAULT_POLICIES))).run(recs[:200])  # compile the kernels first
    results: list[ReplayResult] = []
    for label, names in LEARNER_SETS:
        baseline = baseline_cpu = 0.0
        for path, make in paths(names):
            if progress is not None:
                progress(f"{path}, {label}")
            best: tuple[float, int, int] | None = None
            best_cpu = float("inf")
            for _ in range(repeats):
                replayer = make()
                started, cpu = time.perf_counter(), time.process_time()
                stats = replayer.run(recs)
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
                if isinstance(replayer, ColumnarReplayer) and replayer.fallback is not None:
                    raise RuntimeError(f"the columnar replay fell back: {replayer.fallback}")
                best_cpu = min(best_cpu, cpu)
                if best is None or seconds < best[0]:
                    best = (seconds, stats.events, stats.examples)
            assert best is not None  # noqa: S101  # repeats >= 1
            seconds, events, examples = best
            baseline, baseline_cpu = baseline or events / seconds, baseline_cpu or events / best_cpu
            results.append(
                ReplayResult(label, path, events, examples, seconds, best_cpu, baseline, baseline_cpu)
            )
    return results
