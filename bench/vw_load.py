"""CPU time of loading a published VW model: one VW workspace per load against the old two.

``python -m bench.vw_load [--loads 200] [--rounds 5] [--seed 0]`` loads the
bytes of a trained :class:`~bandit.VWPolicy` (16 hash bits, as the learner
publishes it) over and over and reports CPU time (``time.process_time``) per
load, and how many VW workspaces one load opens (counted by wrapping
``vowpal_wabbit_next.Workspace`` for one extra load, outside the timing):

- *scoring worker*: :func:`bandit.protocol.learner_from_bytes`, what
  :class:`scoring.model_cache.ModelCache` runs for each new version;
- *learner*: the stream learner's load of a stored model (after a start or a
  version conflict), ``learner_from_bytes`` then
  :func:`bandit.fast_kernels.accelerate` (itself a ``from_bytes``).

Each is measured twice in the same run: the baseline is
:meth:`bandit.protocol.BaseLearner.from_bytes` called for ``VWPolicy`` without
VWPolicy's own ``from_bytes`` — the constructor's empty workspace, then the
restored one, what every load did before. Rounds alternate the configurations
and the median round is shown. Freeing the workspace a load replaces (~0.7 ms)
is counted where it happens, in the next load's round, as in a long-running
worker.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import vowpal_wabbit_next
from rich.console import Console
from rich.table import Table

from bandit.fast_kernels import accelerate
from bandit.protocol import learner_from_bytes
from bandit.vw_policy import VWPolicy

__all__ = ["Row", "configurations", "measure", "trained_blob"]

Row = dict[str, Any]
Loader = Callable[[bytes], object]


def trained_blob(seed: int, n: int = 5000) -> bytes:
    """A VW policy's bytes after ``n`` synthetic examples (φ-like sparse rows, 20 columns)."""
    rng = np.random.default_rng(seed)
    X = (rng.random((n, 20)) < 0.3).astype(float) * rng.random((n, 20))
    y = (rng.random(n) < 0.1 + 0.5 * X[:, 1]).astype(float)
    policy = VWPolicy(bits=16, seed=seed)
    policy.learn_many(X, y, positions=rng.integers(0, 10, n))
    return policy.to_bytes()


def _two_workspaces(cls: type[VWPolicy], blob: bytes) -> VWPolicy:
    # BaseLearner.from_bytes bound to cls, skipping VWPolicy.from_bytes: the code before this change.
    return super(VWPolicy, cls).from_bytes(blob)


def configurations() -> list[tuple[str, Loader]]:
    """(label, load function) pairs; each baseline comes right before the code it compares with."""
    fast: type[VWPolicy] = type(accelerate(VWPolicy(bits=16)))  # FastVW, or FastVWPolicy without numba

    def old_learner_load(blob: bytes) -> object:
        return _two_workspaces(fast, _two_workspaces(VWPolicy, blob).to_bytes())

    return [
        ("scoring: before", lambda b: _two_workspaces(VWPolicy, b)),
        ("scoring: learner_from_bytes", learner_from_bytes),
        ("learner: before", old_learner_load),
        ("learner: learner_from_bytes+accelerate", lambda b: accelerate(learner_from_bytes(b))),
    ]


def _workspaces_per_load(load: Loader, blob: bytes) -> int:
    opened = 0
    real = vowpal_wabbit_next.Workspace

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal opened
        opened += 1
        return real(*args, **kwargs)

    vowpal_wabbit_next.Workspace = counting  # type: ignore[assignment,misc]
    try:
        load(blob)
    finally:
        vowpal_wabbit_next.Workspace = real  # type: ignore[misc]
    return opened


def measure(*, loads: int = 200, rounds: int = 5, seed: int = 0) -> list[Row]:
    """CPU ms per load of each configuration (median round), its ratio to its baseline, workspaces."""
    if loads < 1 or rounds < 1:
        raise ValueError(f"loads and rounds must be >= 1, got loads={loads!r}, rounds={rounds!r}")
    blob = trained_blob(seed)
    configs = configurations()
    samples: dict[str, list[float]] = {label: [] for label, _ in configs}
    for _ in range(rounds):
        for label, load in configs:
            keep = load(blob)  # warm; also the model the first timed load replaces
            t0 = time.process_time()
            for _ in range(loads):
                keep = load(blob)
            samples[label].append((time.process_time() - t0) / loads * 1e3)
            del keep
    rows: list[Row] = []
    for i, (label, load) in enumerate(configs):
        ms = statistics.median(samples[label])
        base = rows[i - 1]["cpu_ms_per_load"] if i % 2 else ms  # pairs: (baseline, this code)
        rows.append({
            "config": label,
            "cpu_ms_per_load": ms,
            "vs_baseline": ms / base,
            "workspaces_per_load": _workspaces_per_load(load, blob),
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--loads", type=int, default=200, help="loads per configuration and round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (median shown)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.loads < 1 or args.rounds < 1:
        parser.error("--loads and --rounds: must be >= 1")
    with Console().status(
        f"loading a VW model {args.loads:,} times × 4 configurations × {args.rounds} rounds…"
    ):
        rows = measure(loads=args.loads, rounds=args.rounds, seed=args.seed)
    table = Table(title=f"Loading a VW model (16 bits): CPU per load, median of {args.rounds} rounds "
                        f"of {args.loads} loads")  # fmt: skip
    for col in ("configuration", "CPU ms / load", "× baseline", "VW workspaces / load"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["config"], f"{r['cpu_ms_per_load']:.2f}", f"{r['vs_baseline']:.2f}",
                      str(r["workspaces_per_load"]))  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    main()
