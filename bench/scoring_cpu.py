"""CPU per ranked request of the whole scoring worker, this code against a baseline revision, same run.

``python -m bench.scoring_cpu [--baseline REF] [--rate 250] [--seconds 20] [--rounds 3] [--json FILE]``
starts the embedded broker and redis-server, then, in each round, two
scoring workers side by side (``python -m scoring.server``, the soak's
environment: the demo's four-variant experiment, models polled every
second): one from the baseline's source (``git archive REF``, by default the
commit before the scoring-CPU work) and one from this working tree. Both run
at the same time on the same machine, so load from other jobs hits both
alike (run one after the other, the per-rank figures of one code swung by
±15 % between rounds on the shared machine). Each worker gets its own copy
of the soak's traffic (:func:`sim.driver.drive`: ranks at ``--rate`` over the
simulator's 1,500-trip catalog, k = 10, with their clicks posted to
``/v1/events``), all drivers in this process: a 5 s warm-up, then 5 s with no
traffic, then ``--seconds`` measured. Meanwhile a thread publishes a new
version of every (policy, segment) model every 0.25 s, as the learner does
(``publish_interval_s``), so the workers reload models as in the soak.

Reported per configuration (the median over the rounds) from ``/proc/PID/stat``
(user + system, all threads): the worker's fixed CPU with no traffic (ms per
second: model reloads, polls) and its CPU per ranked request under load (µs;
the clicks' ``/v1/events`` calls included, as in the soak's "CPU scoring per
rank"), with the ratio to the baseline. The drivers are not counted. The
machine may be shared: compare rows of one run only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from bandit.protocol import Learner
from bench.soak import DWELL_S, cpu_seconds
from features.context import SEGMENTS
from features.loader import write_catalog
from sim.config import SimConfig
from sim.demo import scoring_env
from sim.driver import DriverResult, drive
from sim.world import World
from stream._managed_process import stop_popen, wait_for_http
from stream.embedded import EmbeddedServices, embedded_services
from stream.learner_runtime import DEFAULT_POLICIES
from stream.model_store import ModelStore
from stream.settings import StreamSettings
from stream.worker_process import free_port

__all__ = ["BASELINE", "measure", "source_tree"]

#: The code before the scoring worker's CPU work (issue 11, part 3): ``git log`` of this branch.
BASELINE = "6a7e936"
REPO = Path(__file__).resolve().parent.parent
WARMUP_S = 5.0
IDLE_S = 5.0
PUBLISH_EVERY_S = 0.25  # stream.settings.StreamSettings.publish_interval_s


def source_tree(ref: str, into: Path) -> Path:
    """The files of revision ``ref`` of this repository, extracted under ``into``.

    Raises
    ------
    ValueError
        ``ref`` is not a revision of the repository (or this is not a git checkout).
    """
    proc = subprocess.run(  # noqa: S603 - fixed argv, ref passed as one argument
        ["git", "-C", str(REPO), "archive", "--format=tar", ref],  # noqa: S607
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ValueError(
            f"baseline: cannot read revision {ref!r}: {proc.stderr.decode(errors='replace').strip()}"
        )
    out = into / f"tree-{ref}"
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        tar.extractall(out, filter="data")
    return out


def _trained(seed: int) -> dict[str, list[Learner]]:
    """Two versions of every learned policy's model, as the learner builds them, to publish in turn."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[Learner]] = {}
    for policy, make in DEFAULT_POLICIES.items():
        versions = []
        for _ in range(2):
            learner = make()
            X = (rng.random((2000, 20)) < 0.3).astype(float)
            learner.learn_many(X, (rng.random(2000) < 0.1 + 0.3 * X[:, 1]).astype(float),
                               positions=rng.integers(0, 10, 2000))  # fmt: skip
            versions.append(learner)
        out[policy] = versions
    return out


class _Publisher(threading.Thread):
    """Publishes a new version of every (policy, segment) every ``PUBLISH_EVERY_S``, as the learner does."""

    def __init__(self, store: ModelStore, models: dict[str, list[Learner]]) -> None:
        super().__init__(name="bench-publisher", daemon=True)
        self.store, self.models = store, models
        self.stopping = threading.Event()
        self.published = 0

    def publish_all(self) -> None:
        for policy, versions in self.models.items():
            for segment in SEGMENTS:
                learner = versions[self.published % len(versions)]
                self.store.publish_learner(policy, segment, learner, offsets={0: self.published},
                                           log_epoch="bench")  # fmt: skip
        self.published += 1

    def run(self) -> None:
        while not self.stopping.wait(PUBLISH_EVERY_S):
            self.publish_all()


@contextmanager
def _worker(tree: Path, env: dict[str, str], port: int, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The scoring worker of source ``tree`` (its own modules first on the path)."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scoring.server"],
            env={**os.environ, **env, "PYTHONPATH": str(tree)},
            cwd=tree,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        if not wait_for_http(
            f"http://127.0.0.1:{port}/readyz", timeout=60.0, alive=lambda: proc.poll() is None
        ):
            raise RuntimeError(f"scoring worker of {tree} did not become ready: see {log_path}")
        yield proc
    finally:
        stop_popen(proc)


def _paired_round(
    trees: dict[str, Path],
    svc: EmbeddedServices,
    tmp: Path,
    *,
    rate: float,
    seconds: float,
    seed: int,
    tag: str,
) -> dict[str, dict[str, float]]:
    """Every tree's worker at once, each driven at ``rate`` by its own driver in one event loop."""
    with contextlib.ExitStack() as stack:
        running: dict[str, tuple[subprocess.Popen[bytes], str, str]] = {}
        for i, (name, tree) in enumerate(trees.items()):
            port = free_port()
            env, token = scoring_env(
                svc, port=port, catalog=tmp / "catalog.jsonl", spool=tmp / f"spool-{tag}-{i}", seed=seed
            )
            env |= {"SMARTTRIP_RATE_LIMIT_RPS": str(max(1000.0, 4 * rate)),
                    "SMARTTRIP_RATE_LIMIT_BURST": str(int(max(2000.0, 8 * rate)))}  # fmt: skip
            proc = stack.enter_context(_worker(tree, env, port, tmp / f"scoring-{tag}-{i}.log"))
            running[name] = (proc, f"http://127.0.0.1:{port}", token)
        config = SimConfig(seed=seed, rate_rps=rate, duration_s=seconds, concurrency=32, dwell_s=DWELL_S)

        async def drive_all(cfg: SimConfig, drive_seed: int, stop_after_s: float) -> list[DriverResult]:
            return list(await asyncio.gather(*(drive(World(cfg), url, token, seed=drive_seed,
                                                     stop_after_s=stop_after_s)
                                               for _, url, token in running.values())))  # fmt: skip

        def cpu() -> list[float]:
            out = [cpu_seconds(proc.pid) for proc, _, _ in running.values()]
            if any(c is None for c in out) or any(proc.poll() is not None for proc, _, _ in running.values()):
                raise RuntimeError(f"a scoring worker died: see {tmp}/scoring-{tag}-*.log")
            return [c for c in out if c is not None]

        asyncio.run(drive_all(config.with_overrides(duration_s=WARMUP_S), seed, WARMUP_S))
        cpu0 = cpu()
        time.sleep(IDLE_S)
        cpu1 = cpu()
        results = asyncio.run(drive_all(config, seed + 1, seconds))
        cpu2 = cpu()
    out = {}
    for i, (name, result) in enumerate(zip(running, results, strict=True)):
        ranks = len(result.outcomes)
        out[name] = {
            "idle_cpu_ms_per_s": (cpu1[i] - cpu0[i]) / IDLE_S * 1e3,
            "cpu_us_per_rank": (cpu2[i] - cpu1[i]) / max(ranks, 1) * 1e6,
            "ranks_per_s": ranks / result.duration_s,
            "events": float(result.events_posted),
            "errors": float(sum(result.errors.values())),
        }
    return out


def measure(
    *, baseline: str = BASELINE, rate: float = 250.0, seconds: float = 20.0, rounds: int = 3, seed: int = 0
) -> list[dict[str, Any]]:
    """One row per configuration (baseline first): medians over ``rounds`` paired rounds."""
    with tempfile.TemporaryDirectory(prefix="smarttrip-scoring-cpu-") as tmp_name:
        tmp = Path(tmp_name)
        trees = {f"baseline {baseline}": source_tree(baseline, tmp), "this code": REPO}
        world = World(SimConfig(seed=seed))
        write_catalog(world.catalog.trips, tmp / "catalog.jsonl")
        stream = StreamSettings()
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        with embedded_services(topics=stream.topics(), topic_configs=stream.topic_configs()) as svc:
            store = ModelStore.from_url(svc.redis_url)
            publisher = _Publisher(store, _trained(seed))
            publisher.publish_all()
            publisher.start()
            try:
                for r in range(rounds):
                    paired = _paired_round(
                        trees, svc, tmp, rate=rate, seconds=seconds, seed=seed + r, tag=str(r)
                    )
                    for name, result in paired.items():
                        runs[name].append(result)
            finally:
                publisher.stopping.set()
                publisher.join(5)
                store.close()
    rows = []
    for name, results in runs.items():
        row: dict[str, Any] = {"config": name, "rounds": results}
        for key in results[0]:
            row[key] = statistics.median(x[key] for x in results)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--baseline", default=BASELINE, help="git revision to compare with")
    parser.add_argument("--rate", type=float, default=250.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.rate <= 0:
        parser.error("--rate: must be > 0")
    if args.seconds < 1:
        parser.error("--seconds: must be >= 1")
    if args.rounds < 1:
        parser.error("--rounds: must be >= 1")
    console = Console()
    with console.status(
        f"measuring the scoring worker: {args.rounds} paired rounds, ~{args.seconds + 25:.0f} s each"
    ):
        rows = measure(baseline=args.baseline, rate=args.rate, seconds=args.seconds, rounds=args.rounds,
                       seed=args.seed)  # fmt: skip
    table = Table(title=f"scoring worker CPU, soak traffic at {args.rate:g} ranks/s offered, "
                        f"{args.seconds:g} s × {args.rounds} rounds (median); load {os.getloadavg()[0]:.1f}")  # fmt: skip
    for col in ("code", "ranks/s", "CPU µs / rank", "× baseline", "idle CPU ms/s (model reloads)", "× baseline",
                "errors"):  # fmt: skip
        table.add_column(col, justify="right")
    base = rows[0]
    for r in rows:
        table.add_row(r["config"], f"{r['ranks_per_s']:,.1f}", f"{r['cpu_us_per_rank']:,.0f}",
                      f"{r['cpu_us_per_rank'] / base['cpu_us_per_rank']:.2f}", f"{r['idle_cpu_ms_per_s']:,.1f}",
                      f"{r['idle_cpu_ms_per_s'] / base['idle_cpu_ms_per_s']:.2f}", f"{r['errors']:.0f}")  # fmt: skip
    console.print(table)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
