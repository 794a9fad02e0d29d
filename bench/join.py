"""Join throughput through real Kafka: the join worker vs a bare counting Faust agent.

Both run as one worker process against the same broker, on the same
pre-produced input (sessions of one 10-trip slate with φ rows and a few
clicks), with the same micro-batching; the rate is read from each worker's
own Prometheus counter, from its first processed event to its last, so the
consumer-group join time is excluded. Each worker's CPU time over the same
span (user + system, all threads, from ``/proc``) is reported per event too:
on a shared machine it is steadier than the wall-clock rate. Run:
``smarttrip bench join``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaProducer

from stream.embedded import EmbeddedServices, embedded_services, ensure_topics
from stream.synthetic import synthetic_sessions
from stream.worker_process import WorkerProcess


@dataclass(frozen=True)
class ModeResult:
    mode: str
    events: int
    seconds: float
    cpu_s: float | None = None  # the worker's CPU seconds over the same span (None without /proc)
    rss_mib: float | None = None  # the worker's resident memory once every event is in (all sessions held)

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_us_per_event(self) -> float | None:
        return None if self.cpu_s is None else self.cpu_s / self.events * 1e6

    def as_dict(self) -> dict[str, object]:
        return {"mode": self.mode, "events": self.events, "seconds": self.seconds, "events_per_s": self.rate,
                "cpu_s": self.cpu_s, "cpu_us_per_event": self.cpu_us_per_event, "rss_mib": self.rss_mib}  # fmt: skip


def rss_mib(pid: int) -> float | None:
    """Resident set size of a process in MiB; None where /proc is missing."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kib = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), None)
    return None if kib is None else kib / 1024


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads) so far; None where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def measure_rate(worker: WorkerProcess, metric: str, total: int, mode: str) -> ModeResult:
    """Rate of a worker's counter from its first to its ``total``-th count (group join excluded)."""
    worker.wait_for(metric, 1, timeout=120)
    t_first, v_first, cpu_first = time.perf_counter(), worker.total(metric), cpu_seconds(worker.pid)
    while (v := worker.total(metric)) < total:
        if not worker.alive():
            raise RuntimeError(worker.log_tail())
        time.sleep(0.25)  # scraping /metrics costs the worker CPU (~3 % at 10/s): poll gently
    seconds, cpu_last = time.perf_counter() - t_first, cpu_seconds(worker.pid)
    cpu = None if cpu_first is None or cpu_last is None else cpu_last - cpu_first
    return ModeResult(mode, int(v - v_first), seconds, cpu, rss_mib(worker.pid))


def _measure(svc: EmbeddedServices, mode: str, n_sessions: int, seed: int) -> ModeResult:
    uid = uuid.uuid4().hex[:8]
    names = {k: f"bench-{k}-{uid}" for k in ("impressions", "interactions", "examples", "deadletter")}
    ensure_topics(svc.bootstrap_servers, dict.fromkeys(names.values(), 4))
    records, _ = synthetic_sessions(
        n_sessions=n_sessions,
        seed=seed,
        t0=time.time(),
        slate_size=10,
        impressions_topic=names["impressions"],
        interactions_topic=names["interactions"],
    )
    producer = KafkaProducer(bootstrap_servers=svc.bootstrap_servers, linger_ms=20, batch_size=256 * 1024)
    for r in records:
        producer.send(r.topic, key=r.key, value=r.value)
    producer.flush(60)
    producer.close()
    env = {
        "SMARTTRIP_KAFKA_BOOTSTRAP": svc.bootstrap_servers,
        "SMARTTRIP_APP_ID": f"bench-{mode}-{uid}",
        "SMARTTRIP_SESSION_TIMEOUT_S": "2",
        "SMARTTRIP_HEARTBEAT_S": "0.2",
        "SMARTTRIP_JOIN_WINDOW_S": "5",
        **{f"SMARTTRIP_TOPIC_{k.upper()}": v for k, v in names.items()},
    }
    worker = WorkerProcess(env, mode=mode, name=f"bench-{mode}")
    try:
        return measure_rate(worker, "smarttrip_stream_events_total", len(records), mode)
    finally:
        worker.stop()


def run(
    *, n_sessions: int = 20_000, seed: int = 0, progress: Callable[[str], None] | None = None
) -> list[ModeResult]:
    results = []
    with embedded_services(topics={}) as svc:
        for mode in ("count", "join"):
            if progress:
                progress(mode)
            results.append(_measure(svc, mode, n_sessions, seed))
    return results
