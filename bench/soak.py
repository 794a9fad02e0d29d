"""Soak test of the whole loop at a fixed rate: throughput, latency, errors, memory, lag.

Setup, all in one run on this machine (as the demo, :mod:`sim.demo`): the
embedded broker and redis-server; the join and learner workers (Faust, child
processes); the scoring worker (``python -m scoring.server``, one process)
with the demo's A/B experiment (rules, logistic, LinUCB, VW, ε = 0.02); the
simulator's traffic driver (:func:`sim.driver.drive`) posting ``/v1/rank`` at
``rate`` requests/s and the sampled clicks to ``/v1/events``.

State TTLs: the join holds a session for the attribution window plus the
allowed lateness (plus the watermark delay) of event time, and the traffic
filter its verdicts and per-user counts for ``bot_state_ttl_s`` /
``user_cap_window_s``; with the service defaults (15 min, 1 h) a short soak
would measure their accumulation, not a leak. The soak therefore runs the
stream workers with stated, short TTLs (:func:`soak_stream_env`: window
``join_window_s``, lateness ``allowed_lateness_s``, every other TTL = their
sum + the watermark delay). The learner's duplicate filter
(:mod:`stream.recent_ids`) remembers example ids for ``dedupe_horizon_s``
(the service's 120 s unless stated) of the examples' event time, which
trails the clock by the window and the watermark delay; at the soak's rate
its sets reach ~50 MiB only then. The warm-up must last at least the longest
of these horizons of every judged process (:func:`state_horizons`; a shorter
one is refused, naming them), so that by its end every kind of state is being
evicted as fast as it is created and growth after it is not state filling up.
The scoring worker keeps no state with a time horizon; its caches are
bounded by count and fill within seconds (:mod:`scoring.partitioner`,
:mod:`scoring.model_cache`).

Phases: a warm-up (models get published, caches and allocators settle, state
reaches its steady size), then the measured run. The resident set size (RSS,
``/proc/PID/status``) of every process is read before the warm-up, after it
and at the end; growth is judged from the end of the warm-up to the end. The
CPU time (user + system, every thread, ``/proc/PID/stat``) of every process
over the measured run is reported per ranked request. Consumer lag of both
stream workers is read at the end and again after a short drain; dead
letters are reported by reason. Errors are HTTP
answers other than 200/202, client-side failures (timeouts, resets) and
processes that died. The run is fixed-length: requests the loop could not
take in time are not sent but counted (``unsent``). Throughput is ranks
answered over the time from the first request to the last answer (the
simulated users' dwell before their last clicks, up to 1 s after it, is not
ranking time; it counted until session 6). Targets (issue 11): ``rate`` ranks/s sustained (≥ 98 %),
0 errors, RSS growth < 10 % after warm-up for the scoring, join and learner
workers (the embedded broker keeps its whole log in memory and the driver
every request's outcome, so their growth is reported, not judged).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from features.loader import write_catalog
from monitoring import memory_probe
from sim.config import SimConfig
from sim.demo import _stream_env, scoring_env
from sim.driver import DriverResult, drive
from sim.scoring_process import scoring_worker
from sim.world import World
from stream.embedded import embedded_services
from stream.settings import StreamSettings
from stream.worker_process import WorkerProcess, free_port

__all__ = [
    "RSS_GROWTH_LIMIT",
    "SoakResult",
    "catches",
    "cpu_seconds",
    "longest_state_ttl_s",
    "rss_bytes",
    "run",
    "soak_stream_env",
    "state_horizons",
]

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
    value = _status_field(pid, "VmRSS")
    return None if value is None else int(value.split()[0]) * 1024


def _status_field(pid: int, name: str) -> str | None:
    """The value of field ``name`` in ``/proc/PID/status`` (None when the process or field is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    prefix = name + ":"
    for line in text.splitlines():
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    return None


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, all threads) ``pid`` has used, in seconds (None when it is gone).

    >>> cpu_seconds(os.getpid()) >= 0.0
    True
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # the command name may hold spaces; fields 14, 15 follow it
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


_CLK_TCK = os.sysconf("SC_CLK_TCK")
#: Attribution window of the soak (event-time seconds after an impression), the demo's.
JOIN_WINDOW_S = 3.0
#: Event-time slack before windows close (the demo's).
WATERMARK_DELAY_S = 1.0
#: A simulated user clicks uniformly within this many seconds of receiving the slate (sim.driver).
DWELL_S = 1.0


def longest_state_ttl_s(allowed_lateness_s: float) -> float:
    """Event-time seconds the soak's longest-lived stream state lasts: window + lateness + watermark delay.

    >>> longest_state_ttl_s(30.0)
    34.0
    """
    return JOIN_WINDOW_S + allowed_lateness_s + WATERMARK_DELAY_S


#: The learner's duplicate-filter horizon (event-time seconds), the service's default.
DEDUPE_HORIZON_S = StreamSettings().dedupe_horizon_s


def state_horizons(allowed_lateness_s: float, dedupe_horizon_s: float = DEDUPE_HORIZON_S) -> dict[str, float]:
    """Seconds from the first event until each judged process's longest-lived state stops growing.

    The warm-up must cover the largest (:func:`run` refuses a shorter one).

    >>> state_horizons(30.0)
    {'join': 34.0, 'learner': 124.0}
    """
    return {
        "join": longest_state_ttl_s(allowed_lateness_s),  # sessions, bot verdicts, user caps
        "learner": dedupe_horizon_s + JOIN_WINDOW_S + WATERMARK_DELAY_S,  # examples' event time trails
    }


def soak_stream_env(
    base: dict[str, str], allowed_lateness_s: float, dedupe_horizon_s: float = DEDUPE_HORIZON_S
) -> dict[str, str]:
    """The stream workers' environment with the soak's stated state TTLs (see the module docstring)."""
    ttl = longest_state_ttl_s(allowed_lateness_s)
    return base | {
        "SMARTTRIP_DEDUPE_HORIZON_S": f"{dedupe_horizon_s:g}",
        "SMARTTRIP_JOIN_WINDOW_S": f"{JOIN_WINDOW_S:g}",
        "SMARTTRIP_WATERMARK_DELAY_S": f"{WATERMARK_DELAY_S:g}",
        "SMARTTRIP_ALLOWED_LATENESS_S": f"{allowed_lateness_s:g}",
        "SMARTTRIP_BOT_STATE_TTL_S": f"{ttl:g}",
        "SMARTTRIP_USER_CAP_WINDOW_S": f"{ttl:g}",
    }


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
    rss_start: dict[str, int | None]  # processes ready, before the warm-up
    rss_warm: dict[str, int | None]  # end of the warm-up: growth is judged from here
    rss_end: dict[str, int | None]
    cpu_s: dict[str, float | None]  # CPU seconds of each process over the measured run
    lag_end: dict[str, float]
    lag_drained: dict[str, float]
    drain_s: float
    examples_joined: float
    examples_learned: float
    dead_letters: float
    dead_letters_by_reason: dict[str, float] = field(default_factory=dict)
    learned_by: dict[str, float] = field(default_factory=dict)  # learner examples by "policy/outcome"
    joined_by: dict[str, float] = field(default_factory=dict)  # join examples by kind (new, correction)
    filtered_by: dict[str, float] = field(
        default_factory=dict
    )  # examples the quality gate kept back, by reason
    open_sessions: dict[str, float] = field(default_factory=dict)  # held by the join: "warm", "end"
    join_window_s: float = JOIN_WINDOW_S
    allowed_lateness_s: float = 30.0
    dedupe_horizon_s: float = DEDUPE_HORIZON_S
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0  # the measured run until the last clicks were posted (after their simulated dwell)

    @property
    def state_ttl_s(self) -> float:
        return longest_state_ttl_s(self.allowed_lateness_s)

    @property
    def horizons(self) -> dict[str, float]:
        return state_horizons(self.allowed_lateness_s, self.dedupe_horizon_s)

    def cpu_us_per_rank(self, name: str) -> float | None:
        cpu = self.cpu_s.get(name)
        return None if cpu is None or not self.ranks else cpu / self.ranks * 1e6

    @property
    def throughput(self) -> float:
        return self.ranks / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def rss_growth(self, name: str) -> float | None:
        """Growth from the end of the warm-up to the end of the run."""
        start, end = self.rss_warm.get(name), self.rss_end.get(name)
        if not start or end is None:
            return None
        return end / start - 1.0

    def targets(self) -> dict[str, bool]:
        growths = [self.rss_growth(n) for n in JUDGED]
        return {
            "throughput": self.throughput >= 0.98 * self.rate,
            "errors": self.error_count == 0,
            "rss_growth": all(g is not None and g < RSS_GROWTH_LIMIT for g in growths),
            # A worker that cannot keep up shows here: its lag must drain within drain_s after the run.
            "lag_drained": bool(self.lag_drained) and not any(self.lag_drained.values()),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "minutes": self.minutes,
            "warmup_s": self.warmup_s,
            "ranks": self.ranks,
            "duration_s": self.duration_s,
            "wall_s": self.wall_s,
            "throughput": self.throughput,
            "latency_ms": self.latency_ms,
            "errors": self.errors,
            "events_posted": self.events_posted,
            "unsent": self.unsent,
            "rss_start": self.rss_start,
            "rss_warm": self.rss_warm,
            "rss_end": self.rss_end,
            "rss_growth": {n: self.rss_growth(n) for n in self.rss_start},
            "cpu_s": self.cpu_s,
            "cpu_us_per_rank": {n: self.cpu_us_per_rank(n) for n in self.cpu_s},
            "join_window_s": self.join_window_s,
            "allowed_lateness_s": self.allowed_lateness_s,
            "state_ttl_s": self.state_ttl_s,
            "dedupe_horizon_s": self.dedupe_horizon_s,
            "state_horizons": self.horizons,
            "lag_end": self.lag_end,
            "lag_drained": self.lag_drained,
            "drain_s": self.drain_s,
            "examples_joined": self.examples_joined,
            "examples_learned": self.examples_learned,
            "dead_letters": self.dead_letters,
            "dead_letters_by_reason": self.dead_letters_by_reason,
            "learned_by": self.learned_by,
            "joined_by": self.joined_by,
            "filtered_by": self.filtered_by,
            "open_sessions": self.open_sessions,
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


def _settle(join: WorkerProcess, learner: WorkerProcess, timeout_s: float) -> None:
    """Wait (at most ``timeout_s``) until neither the join's examples nor the learner's count moves for 3 s.

    Lag 0 is not the end: once input stops, the join closes its last slates (window + watermark delay
    later) and the learner reads them a batch after that; counted before, they look lost (session 7's
    first 10-minute run: 11,440 of 3,640,460 examples, ~2 s of traffic).
    """
    last: tuple[float, float] | None = None
    still = 0
    deadline = time.monotonic() + timeout_s
    while still < 6 and time.monotonic() < deadline:
        counts = (
            join.total("smarttrip_stream_examples_total"),
            learner.total("smarttrip_learner_examples_total"),
        )
        still = still + 1 if counts == last else 0
        last = counts
        time.sleep(0.5)


def _topic_size(bootstrap: str, topic: str) -> int:
    """Records on ``topic`` (sum of its partitions' end offsets); -1 if the broker cannot say."""
    from bench.serve import _topic_size as size

    try:
        return size(bootstrap, topic)
    except Exception:  # a figure for the report, never a reason to fail the run
        return -1


def _delta(end: float | None, start: float | None) -> float | None:
    return None if end is None or start is None else end - start


def _by_reason(join: WorkerProcess, learner: WorkerProcess) -> dict[str, float]:
    """Dead letters of both workers by reason (``stage/reason``), nonzero ones only."""
    out = _labelled(join, "smarttrip_stream_deadletters_total", ("stage", "reason"))
    for reason, n in _labelled(learner, "smarttrip_learner_deadletters_total", ("reason",)).items():
        out[f"learner/{reason}"] = out.get(f"learner/{reason}", 0.0) + n
    return out


def _labelled(worker: WorkerProcess, name: str, labels: tuple[str, ...]) -> dict[str, float]:
    """Nonzero samples of counter ``name`` summed by the values of ``labels``, keyed ``"a/b"``."""
    out: dict[str, float] = {}
    for key, value in worker.metrics().items():
        if not key.startswith(name + "{") or not value:
            continue
        found = dict(
            part.split("=", 1) for part in key.partition("{")[2].rstrip("}").split(",") if "=" in part
        )
        k = "/".join(found.get(label, "") for label in labels)
        out[k] = out.get(k, 0.0) + value
    return out


def catches(pid: int, sig: int) -> bool:
    """Whether process ``pid`` has a handler for signal ``sig`` (``SigCgt`` of ``/proc/PID/status``).

    >>> import signal
    >>> previous = signal.signal(signal.SIGUSR2, lambda *_: None)
    >>> catches(os.getpid(), signal.SIGUSR2)
    True
    >>> _ = signal.signal(signal.SIGUSR2, signal.SIG_DFL)
    >>> catches(os.getpid(), signal.SIGUSR2)
    False
    >>> _ = signal.signal(signal.SIGUSR2, previous)
    """
    value = _status_field(pid, "SigCgt")
    return value is not None and bool(int(value, 16) >> (sig - 1) & 1)


def _probe(pids: dict[str, int | None]) -> None:
    """With ``SMARTTRIP_MEMORY_PROBE`` set, ask every process that installed the probe for a memory dump."""
    if not os.environ.get(memory_probe.ENV):
        return
    sig = int(memory_probe.PROBE_SIGNAL)
    for pid in pids.values():
        if pid and pid != os.getpid() and catches(pid, sig):  # the signal would end any other process
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


def _merge_errors(into: dict[str, int], more: dict[str, int]) -> None:
    for key, n in more.items():
        into[key] = into.get(key, 0) + n


def run(
    *,
    rate: float = 500.0,
    minutes: float = 10.0,
    warmup_s: float = 130.0,
    drain_s: float = 20.0,
    concurrency: int = 32,
    seed: int = 0,
    allowed_lateness_s: float = 30.0,
    dedupe_horizon_s: float = DEDUPE_HORIZON_S,
    progress: Callable[[str, float], None] | None = None,
) -> SoakResult:
    """Run the soak (see the module docstring); ``progress(phase, fraction)`` is called as it goes.

    Raises
    ------
    ValueError
        ``warmup_s`` shorter than the longest state horizon of a judged process, a negative
        ``allowed_lateness_s`` or a ``dedupe_horizon_s`` that is not > 0.
    """
    if not allowed_lateness_s >= 0:
        raise ValueError(f"allowed_lateness_s: must be >= 0, got {allowed_lateness_s}")
    if not 0 < dedupe_horizon_s < float("inf"):
        raise ValueError(f"dedupe_horizon_s: must be a finite number > 0, got {dedupe_horizon_s}")
    horizons = state_horizons(allowed_lateness_s, dedupe_horizon_s)
    if not warmup_s >= max(horizons.values()):
        raise ValueError(
            f"warmup_s: must be >= the longest state horizon of every judged process "
            f"({max(horizons.values()):g} s), got {warmup_s:g}: join {horizons['join']:g} s (window "
            f"{JOIN_WINDOW_S:g} + lateness {allowed_lateness_s:g} + watermark delay {WATERMARK_DELAY_S:g}), "
            f"learner {horizons['learner']:g} s (duplicate filter {dedupe_horizon_s:g} + window + watermark delay)"
        )
    say = progress or (lambda _phase, _frac: None)
    duration_s = minutes * 60.0
    config = SimConfig(
        seed=seed, rate_rps=rate, duration_s=duration_s, concurrency=concurrency, dwell_s=DWELL_S
    )
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
        base = soak_stream_env(_stream_env(svc), allowed_lateness_s, dedupe_horizon_s)
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
                rss_start = {n: (rss_bytes(p) if p else None) for n, p in pids.items()}
                warm = asyncio.run(
                    drive(warm_world, url, token, seed=seed, stop_after_s=warmup_s,
                          progress=lambda t: say("warm-up", min(1.0, t / max(warmup_s, 1e-9))))
                )  # fmt: skip
                _merge_errors(errors, warm.errors)
                rss_warm = {n: (rss_bytes(p) if p else None) for n, p in pids.items()}
                _probe(pids)
                cpu_warm = {n: (cpu_seconds(p) if p else None) for n, p in pids.items()}
                sessions = {"warm": join.total("smarttrip_stream_open_sessions")}
                main: DriverResult = asyncio.run(
                    drive(world, url, token, seed=seed + 1, stop_after_s=duration_s,
                          progress=lambda t: say("soak", min(1.0, t / duration_s)))
                )  # fmt: skip
                _merge_errors(errors, main.errors)
                rss_end = {n: (rss_bytes(p) if p else None) for n, p in pids.items()}
                _probe(pids)
                cpu_s = {n: _delta(cpu_seconds(p) if p else None, cpu_warm[n]) for n, p in pids.items()}
                sessions["end"] = join.total("smarttrip_stream_open_sessions")
                lag_end = _lag(join, learner)
                say("draining", 1.0)
                deadline = time.monotonic() + drain_s
                lag_drained = lag_end
                while time.monotonic() < deadline:
                    lag_drained = _lag(join, learner)
                    if sum(lag_drained.values()) == 0:
                        break
                    time.sleep(0.5)
                _settle(join, learner, drain_s)
                for name, proc_alive in (("scoring", scoring.poll() is None), ("join", join.alive()),
                                         ("learner", learner.alive())):  # fmt: skip
                    if not proc_alive:
                        errors[f"{name}_died"] = 1
                for name in svc.crashed():
                    errors[f"{name}_died"] = 1
                joined_by = _labelled(join, "smarttrip_stream_examples_total", ("kind",))
                joined = sum(joined_by.values())
                filtered_by = _labelled(join, "smarttrip_stream_filtered_examples_total", ("reason",))
                on_topic = _topic_size(svc.bootstrap_servers, stream.topic_examples)
                notes.append(f"examples topic: {on_topic:,} records (the join counted {joined:,.0f} emitted)")
                shown_seg = _labelled(join, "smarttrip_stream_shown_total", ("segment",))
                learned_seg = _labelled(
                    learner, "smarttrip_learner_examples_total", ("outcome", "segment", "policy")
                )
                notes.append(
                    "per segment, examples first emitted by the join / learned by each policy: "
                    + ", ".join(
                        f"{seg} {n:,.0f} / "
                        + "/".join(
                            f"{v:,.0f}"
                            for k, v in sorted(learned_seg.items())
                            if k.startswith(f"learned/{seg}/")
                        )
                        for seg, n in sorted(shown_seg.items())
                    )
                )
                learned_by = _labelled(learner, "smarttrip_learner_examples_total", ("policy", "outcome"))
                learned = sum(v for k, v in learned_by.items() if k.endswith("/learned"))
                dead = join.total("smarttrip_stream_deadletters_total") + learner.total(
                    "smarttrip_learner_deadletters_total"
                )
                reasons = _by_reason(join, learner)
        finally:
            join.stop()
            learner.stop()
    return SoakResult(
        rate=rate, minutes=minutes, warmup_s=warmup_s, ranks=len(main.outcomes), duration_s=main.ranked_s,
        wall_s=main.duration_s,
        latency_ms=_percentiles([o.latency_s for o in main.outcomes]), errors=errors,
        events_posted=warm.events_posted + main.events_posted, unsent=main.unsent, rss_start=rss_start,
        rss_warm=rss_warm, rss_end=rss_end, cpu_s=cpu_s,
        lag_end=lag_end, lag_drained=lag_drained, drain_s=drain_s, examples_joined=joined,
        examples_learned=learned, dead_letters=dead, dead_letters_by_reason=reasons,
        learned_by=learned_by,
        joined_by=joined_by,
        filtered_by=filtered_by,
        open_sessions=sessions,
        join_window_s=JOIN_WINDOW_S, allowed_lateness_s=allowed_lateness_s, dedupe_horizon_s=dedupe_horizon_s,
        notes=notes,
    )  # fmt: skip
