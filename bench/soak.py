"""Soak test of the whole loop at a fixed rate: throughput, latency, errors, memory, lag.

Setup, all in one run on this machine (as the demo, :mod:`sim.demo`): the
embedded broker and redis-server; the join and learner workers (Faust, child
processes); the scoring worker (``python -m scoring.server``, one process)
with the demo's A/B experiment (rules, logistic, LinUCB, VW, ε = 0.02); the
simulator's traffic driver (:func:`sim.driver.drive`) posting ``/v1/rank`` at
``rate`` requests/s and the sampled clicks to ``/v1/events``.

Phases: a warm-up (models get published, caches and allocators settle), then
the measured run. The resident set size (RSS, ``/proc/PID/status``) of every
process is read after the warm-up and at the end; consumer lag of both stream
workers is read at the end and again after a short drain. Errors are HTTP
answers other than 200/202, client-side failures (timeouts, resets) and
processes that died. The run is fixed-length: requests the loop could not
take in time are not sent but counted (``unsent``). Targets (issue 11): ``rate`` ranks/s sustained (≥ 98 %),
0 errors, RSS growth < 10 % after warm-up for the scoring, join and learner
workers (the embedded broker keeps its whole log in memory and the driver
every request's outcome, so their growth is reported, not judged).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from features.loader import write_catalog
from sim.config import SimConfig
from sim.demo import _stream_env, scoring_env
from sim.driver import DriverResult, drive
from sim.scoring_process import scoring_worker
from sim.world import World
from stream.embedded import embedded_services
from stream.settings import StreamSettings
from stream.worker_process import WorkerProcess, free_port

__all__ = ["RSS_GROWTH_LIMIT", "SoakResult", "rss_bytes", "run"]

#: Largest allowed RSS growth of our processes between the end of warm-up and the end.
RSS_GROWTH_LIMIT = 0.10
#: Processes whose RSS growth is judged: the embedded broker holds its whole log in memory and the
#: driver keeps every request's outcome, both by design, so their growth is reported, not judged.
JUDGED = ("scoring", "join", "learner")


def rss_bytes(pid: int) -> int | None:
    """Resident set size of ``pid`` in bytes (None when the process is gone).

    >>> rss_bytes(os.getpid()) > 0
    True
    """
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


@dataclass
class SoakResult:
    rate: float
    minutes: float
    warmup_s: float
    ranks: int
    duration_s: float
    latency_ms: dict[str, float]
    errors: dict[str, int]
    events_posted: int
    unsent: int
    rss_start: dict[str, int | None]
    rss_end: dict[str, int | None]
    lag_end: dict[str, float]
    lag_drained: dict[str, float]
    drain_s: float
    examples_joined: float
    examples_learned: float
    dead_letters: float
    notes: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.ranks / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def rss_growth(self, name: str) -> float | None:
        start, end = self.rss_start.get(name), self.rss_end.get(name)
        if not start or end is None:
            return None
        return end / start - 1.0

    def targets(self) -> dict[str, bool]:
        growths = [self.rss_growth(n) for n in JUDGED]
        return {
            "throughput": self.throughput >= 0.98 * self.rate,
            "errors": self.error_count == 0,
            "rss_growth": all(g is not None and g < RSS_GROWTH_LIMIT for g in growths),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "minutes": self.minutes,
            "warmup_s": self.warmup_s,
            "ranks": self.ranks,
            "duration_s": self.duration_s,
            "throughput": self.throughput,
            "latency_ms": self.latency_ms,
            "errors": self.errors,
            "events_posted": self.events_posted,
            "unsent": self.unsent,
            "rss_start": self.rss_start,
            "rss_end": self.rss_end,
            "rss_growth": {n: self.rss_growth(n) for n in self.rss_start},
            "lag_end": self.lag_end,
            "lag_drained": self.lag_drained,
            "drain_s": self.drain_s,
            "examples_joined": self.examples_joined,
            "examples_learned": self.examples_learned,
            "dead_letters": self.dead_letters,
            "targets": self.targets(),
            "notes": self.notes,
        }


def _percentiles(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {}
    arr = np.asarray(latencies) * 1000.0
    return {f"p{q}": float(np.percentile(arr, q)) for q in (50, 90, 99)} | {"max": float(arr.max())}


def _lag(join: WorkerProcess, learner: WorkerProcess) -> dict[str, float]:
    return {
        "join": join.total("smarttrip_stream_consumer_lag_records"),
        "learner": learner.total("smarttrip_learner_consumer_lag_records"),
    }


def _merge_errors(into: dict[str, int], more: dict[str, int]) -> None:
    for key, n in more.items():
        into[key] = into.get(key, 0) + n


def run(
    *,
    rate: float = 500.0,
    minutes: float = 10.0,
    warmup_s: float = 30.0,
    drain_s: float = 20.0,
    concurrency: int = 32,
    seed: int = 0,
    progress: Callable[[str, float], None] | None = None,
) -> SoakResult:
    """Run the soak (see the module docstring); ``progress(phase, fraction)`` is called as it goes."""
    say = progress or (lambda _phase, _frac: None)
    duration_s = minutes * 60.0
    config = SimConfig(seed=seed, rate_rps=rate, duration_s=duration_s, concurrency=concurrency)
    log_dir = Path(tempfile.mkdtemp(prefix="smarttrip-soak-"))
    world = World(config)
    warm_world = World(config.with_overrides(duration_s=warmup_s))  # same seed: the same catalog and users
    catalog_path = log_dir / "catalog.jsonl"
    write_catalog(world.catalog.trips, catalog_path)
    stream = StreamSettings()
    errors: dict[str, int] = {}
    notes: list[str] = []
    say("starting Kafka (embedded) and redis-server", 0.0)
    with embedded_services(topics=stream.topics(), topic_configs=stream.topic_configs()) as svc:
        port = free_port()
        base = _stream_env(svc)
        join = WorkerProcess(base, mode="join", name="soak-join")
        learner = WorkerProcess(base, mode="learn", name="soak-learn")
        serve_env, token = scoring_env(
            svc, port=port, catalog=catalog_path, spool=log_dir / "spool", seed=seed
        )
        serve_env |= {
            # One client sends every request here (ranks and events): keep the limit, above the load.
            "SMARTTRIP_RATE_LIMIT_RPS": str(max(1000.0, 4 * rate)),
            "SMARTTRIP_RATE_LIMIT_BURST": str(int(max(2000.0, 8 * rate))),
        }
        url = f"http://127.0.0.1:{port}"
        try:
            say("starting the scoring, join and learner workers", 0.0)
            with scoring_worker(serve_env, port, log_dir / "scoring.log") as scoring:
                pids = {
                    "scoring": scoring.pid,
                    "join": join.pid,
                    "learner": learner.pid,
                    "kafka": svc.kafka_pid,
                    "redis": svc.redis_pid,
                    "driver": os.getpid(),
                }
                warm = asyncio.run(
                    drive(warm_world, url, token, seed=seed, stop_after_s=warmup_s,
                          progress=lambda t: say("warm-up", min(1.0, t / max(warmup_s, 1e-9))))
                )  # fmt: skip
                _merge_errors(errors, warm.errors)
                rss_start = {n: (rss_bytes(p) if p else None) for n, p in pids.items()}
                main: DriverResult = asyncio.run(
                    drive(world, url, token, seed=seed + 1, stop_after_s=duration_s,
                          progress=lambda t: say("soak", min(1.0, t / duration_s)))
                )  # fmt: skip
                _merge_errors(errors, main.errors)
                rss_end = {n: (rss_bytes(p) if p else None) for n, p in pids.items()}
                lag_end = _lag(join, learner)
                say("draining", 1.0)
                deadline = time.monotonic() + drain_s
                lag_drained = lag_end
                while time.monotonic() < deadline:
                    lag_drained = _lag(join, learner)
                    if sum(lag_drained.values()) == 0:
                        break
                    time.sleep(0.5)
                for name, proc_alive in (("scoring", scoring.poll() is None), ("join", join.alive()),
                                         ("learner", learner.alive())):  # fmt: skip
                    if not proc_alive:
                        errors[f"{name}_died"] = 1
                for name in svc.crashed():
                    errors[f"{name}_died"] = 1
                joined = join.total("smarttrip_stream_examples_total")
                learned = learner.total("smarttrip_learner_examples_total")
                dead = join.total("smarttrip_stream_deadletters_total") + learner.total(
                    "smarttrip_learner_deadletters_total"
                )
                reasons = {
                    k: v for w in (join, learner) for k, v in w.metrics().items() if "deadletters_total{" in k
                }
                if any(reasons.values()):
                    notes.append(
                        "dead letters: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(reasons.items()) if v)
                    )
        finally:
            join.stop()
            learner.stop()
    return SoakResult(
        rate=rate, minutes=minutes, warmup_s=warmup_s, ranks=len(main.outcomes), duration_s=main.duration_s,
        latency_ms=_percentiles([o.latency_s for o in main.outcomes]), errors=errors,
        events_posted=warm.events_posted + main.events_posted, unsent=main.unsent, rss_start=rss_start, rss_end=rss_end,
        lag_end=lag_end, lag_drained=lag_drained, drain_s=drain_s, examples_joined=joined,
        examples_learned=learned, dead_letters=dead, notes=notes,
    )  # fmt: skip
