"""Load benchmark of the scoring worker over real HTTP on 127.0.0.1.

Setup, all in one run on this machine: the embedded broker and redis-server;
a LinUCB model (trained on synthetic clicks) published for every segment; the
scoring worker started as its own processes (``python -m scoring.server``
with ``SMARTTRIP_SERVE_WORKERS`` workers sharing the port, 2 by default: one
Python process is one core) with an experiment that sends 100 % of users to
a ``linucb`` variant with ε = 0.1 exploration; impressions logged to Kafka. The load generator is
``wrk`` when it is on PATH (C, one thread: leaves the server most of a core;
``apt-get install wrk``), else a small asyncio HTTP/1.1 client (costs the
server more CPU, so its figures are lower bounds).

Both endpoints are measured in the same run with the same concurrency:
``GET /healthz`` (the trivial endpoint: the framework, the middleware and a
JSON reply) and ``POST /v1/rank`` with 200 candidate trip ids and k = 10,
rotating over 64 distinct request bodies (users, sessions, preferences).
After the run the impressions topic's end offsets are compared with the
number of ranking responses.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bandit.lin_ucb import LinUCB
from features.context import SEGMENTS, Preferences
from features.generator import generate_catalog, sample_preferences
from features.phi import phi
from scoring.weights import SCORING_WEIGHTS
from stream._managed_process import stop_popen
from stream.embedded import EmbeddedServices, embedded_services, ensure_topics
from stream.model_store import ModelStore
from stream.worker_process import free_port

__all__ = ["Load", "ServeBenchResult", "run"]

API_TOKEN = "bench-api-token-0123456789"  # noqa: S105 - a throwaway server on 127.0.0.1
ADMIN_TOKEN = "bench-admin-token-0123456789"  # noqa: S105
N_BODIES = 64


@dataclass(frozen=True)
class Load:
    """One endpoint under load."""

    endpoint: str
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "requests_per_s": self.rps}


@dataclass(frozen=True)
class ServeBenchResult:
    tool: str
    workers: int
    concurrency: int
    candidates: int
    k: int
    catalog_trips: int
    duration_s: float
    trivial: Load
    rank: Load
    impressions_in_topic: int
    log_counters: dict[str, float] = field(default_factory=dict)
    server_cpu_us_per_rank: float = 0.0  # the worker's CPU time (user + system) per /v1/rank request

    @property
    def targets_met(self) -> bool:
        return self.rank.rps >= 2000 and self.rank.p99_ms <= 10.0 and self.rank.errors == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "benchmark": "serve",
            "tool": self.tool,
            "workers": self.workers,
            "concurrency": self.concurrency,
            "candidates": self.candidates,
            "k": self.k,
            "catalog_trips": self.catalog_trips,
            "duration_s": self.duration_s,
            "trivial": self.trivial.as_dict(),
            "rank": self.rank.as_dict(),
            "impressions_in_topic": self.impressions_in_topic,
            "log_counters": self.log_counters,
            "server_cpu_us_per_rank": self.server_cpu_us_per_rank,
            "targets": {"min_requests_per_s": 2000, "max_p99_ms": 10.0, "met": self.targets_met},
        }


def _publish_models(store: ModelStore, seed: int) -> None:
    """A LinUCB trained on synthetic clicks, published for every segment."""
    rng = np.random.default_rng(seed)
    cat = generate_catalog(n_trips=2000, seed=seed)
    model = LinUCB(prior=dict(SCORING_WEIGHTS), prior_scale=0.002, alpha=0.5, position_bias="none")
    for prefs in sample_preferences(rng, 20):
        X = phi(cat, prefs, cat.trips[0].departure_date, rng.choice(len(cat), 100, replace=False))
        model.learn_many(X, (rng.random(len(X)) < 0.1).astype(float))
    for segment in SEGMENTS:
        store.publish_learner("linucb", segment, model, offsets={}, log_epoch="bench")


def _bodies(n_trips: int, candidates: int, k: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for i, prefs in enumerate(sample_preferences(rng, N_BODIES)):
        ids = [f"T{int(r):06d}" for r in rng.choice(n_trips, candidates, replace=False)]
        body = {
            "session_id": f"bench-session-{i}",
            "user_id": f"bench-user-{i}",
            "preferences": _prefs_json(prefs),
            "trip_ids": ids,
            "k": k,
        }
        out.append(json.dumps(body, separators=(",", ":")).encode())
    return out


def _prefs_json(p: Preferences) -> dict[str, Any]:
    return {k: v for k, v in p.to_dict().items() if v not in ([], None)}


def _server_env(
    svc: EmbeddedServices, topics: dict[str, str], n_trips: int, seed: int, spool: str
) -> dict[str, str]:
    ns = f"bench-{uuid.uuid4().hex[:8]}"
    experiment = {
        "name": "bench",
        "salt": "bench",
        "variants": [{"name": "linucb", "policy": "linucb", "traffic": 1.0, "epsilon": 0.1}],
    }
    return {
        "SMARTTRIP_API_TOKENS": API_TOKEN,
        "SMARTTRIP_ADMIN_TOKENS": ADMIN_TOKEN,
        "SMARTTRIP_PSEUDONYM_KEY": "bench-pseudonym-key-0123",
        "SMARTTRIP_SYNTHETIC_TRIPS": str(n_trips),
        "SMARTTRIP_SYNTHETIC_SEED": str(seed),
        "SMARTTRIP_REDIS_URL": svc.redis_url,
        "SMARTTRIP_MODEL_NAMESPACE": ns,
        "SMARTTRIP_KAFKA_BOOTSTRAP": svc.bootstrap_servers,
        "SMARTTRIP_TOPIC_IMPRESSIONS": topics["impressions"],
        "SMARTTRIP_TOPIC_INTERACTIONS": topics["interactions"],
        "SMARTTRIP_SPOOL_DIR": spool,
        "SMARTTRIP_EXPERIMENT": json.dumps(experiment),
    }


def _get(url: str, token: str | None = None, timeout: float = 2.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 - 127.0.0.1 only
            return int(r.status), r.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except OSError:
        return 0, b""


def _wait_ready(bases: list[str], proc: subprocess.Popen[bytes], models: int, timeout: float = 60.0) -> None:
    """Every worker (each on its own metrics port) has its catalog, its models and a Kafka producer."""
    deadline = time.monotonic() + timeout
    waiting = list(bases)
    while waiting and time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"scoring worker exited with {proc.returncode}")
        status, body = _get(waiting[0] + "/readyz")
        if status == 200:
            info = json.loads(body)
            if info["models"]["models_loaded"] >= models and info["impressions"]["kafka"] == "ok":
                waiting.pop(0)
                continue
        time.sleep(0.1)
    if waiting:
        raise TimeoutError(f"scoring workers not ready in time: {waiting}")


def _log_counters(bases: list[str]) -> dict[str, float]:
    """The impression log's counters, summed over the workers."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for base in bases:
        _, text = _get(base + "/metrics", API_TOKEN)
        for fam in text_string_to_metric_families(text.decode()):
            for s in fam.samples:
                if s.name == "smarttrip_scoring_log_records_total":
                    out[s.labels["outcome"]] = out.get(s.labels["outcome"], 0.0) + s.value
    return out


def _free_port_range(n: int) -> int:
    """A base port whose next ``n`` ports were all free a moment ago."""
    import socket

    for _ in range(50):
        base = free_port()
        if base + n > 65535:
            continue
        try:
            for p in range(base, base + n):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", p))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (Linux /proc)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _topic_size(bootstrap: str, topic: str) -> int:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return int(sum(consumer.end_offsets(parts).values()))
    finally:
        consumer.close()


# -- load generators
_WRK_LUA = """
local bodies = {%s}
local reqs = {}
local i = 0
init = function(args)
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %s"}
  for n, b in ipairs(bodies) do reqs[n] = wrk.format("%s", "%s", headers, b) end
end
request = function()
  i = i %% #reqs + 1
  return reqs[i]
end
done = function(summary, latency, requests)
  io.write(string.format('@@{"requests":%%d,"us":%%d,"status_errors":%%d,"socket_errors":%%d,' ..
    '"p50":%%d,"p90":%%d,"p99":%%d,"max":%%d}\\n', summary.requests, summary.duration,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def _wrk(base: str, method: str, path: str, bodies: list[bytes], concurrency: int, seconds: float) -> Load:
    lua_bodies = ",".join("[==[" + b.decode() + "]==]" for b in bodies) if bodies else '""'
    script = _WRK_LUA % (lua_bodies, API_TOKEN, method, path)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(int(seconds), 1)}s", "-s", f.name, base + path]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=True).stdout  # noqa: S603
    finally:
        os.unlink(f.name)
    line = next(ln for ln in out.splitlines() if ln.startswith("@@"))
    r = json.loads(line[2:])
    return Load(path, r["requests"], r["us"] / 1e6, r["status_errors"] + r["socket_errors"],
                r["p50"] / 1e3, r["p90"] / 1e3, r["p99"] / 1e3, r["max"] / 1e3)  # fmt: skip


async def _asyncio_load(
    port: int, method: str, path: str, bodies: list[bytes], concurrency: int, seconds: float
) -> Load:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {API_TOKEN}\r\n"
    reqs = [
        (head + f"Content-Type: application/json\r\nContent-Length: {len(b)}\r\n\r\n").encode() + b
        for b in (bodies or [b""])
    ]
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def conn(n: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = n
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            writer.write(reqs[i % len(reqs)])
            i += 1
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            if b" 200 " not in status_line:
                errors += 1
        writer.close()

    t_start = time.perf_counter()
    await asyncio.gather(*(conn(n) for n in range(concurrency)))
    elapsed = time.perf_counter() - t_start
    ms = np.array(latencies) * 1e3
    return Load(path, len(ms), elapsed, errors, float(np.percentile(ms, 50)), float(np.percentile(ms, 90)),
                float(np.percentile(ms, 99)), float(ms.max()))  # fmt: skip


def run(
    *,
    duration_s: float = 10.0,
    concurrency: int = 16,
    candidates: int = 200,
    k: int = 10,
    n_trips: int = 5000,
    seed: int = 0,
    workers: int = 2,
    tool: str = "auto",
    progress: Callable[[str], None] | None = None,
) -> ServeBenchResult:
    """Run the benchmark (see the module docstring); ``tool`` is ``wrk``, ``asyncio`` or ``auto``.

    The server, its workers, the broker, Redis and the load generator all share this machine.
    """
    use = ("wrk" if shutil.which("wrk") else "asyncio") if tool == "auto" else tool
    say = progress or (lambda _m: None)
    uid = uuid.uuid4().hex[:8]
    topics = {"impressions": f"bench-impressions-{uid}", "interactions": f"bench-interactions-{uid}"}
    spool = tempfile.mkdtemp(prefix="smarttrip-bench-spool-")
    with embedded_services(topics={}) as svc:
        ensure_topics(svc.bootstrap_servers, dict.fromkeys(topics.values(), 4))
        env = _server_env(svc, topics, n_trips, seed, spool)
        say("publishing LinUCB models")
        with ModelStore.from_url(svc.redis_url, namespace=env["SMARTTRIP_MODEL_NAMESPACE"]) as store:
            _publish_models(store, seed)
        port = free_port()
        metrics_port = _free_port_range(workers)
        base = f"http://127.0.0.1:{port}"
        worker_bases = [f"http://127.0.0.1:{metrics_port + i}" for i in range(workers)]
        log_path = Path(tempfile.mkstemp(prefix="smarttrip-bench-serve-", suffix=".log")[1])
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "scoring.server"],
                env={
                    **os.environ,
                    **env,
                    "SMARTTRIP_SERVE_PORT": str(port),
                    "SMARTTRIP_SERVE_WORKERS": str(workers),
                    "SMARTTRIP_METRICS_PORT": str(metrics_port),
                },
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            try:
                say("starting the scoring worker")
                _wait_ready(worker_bases, proc, models=len(SEGMENTS))
                bodies = _bodies(n_trips, candidates, k, seed)

                def load(method: str, path: str, b: list[bytes], secs: float) -> Load:
                    if use == "wrk":
                        return _wrk(base, method, path, b, concurrency, secs)
                    return asyncio.run(_asyncio_load(port, method, path, b, concurrency, secs))

                say("warming up")
                load("POST", "/v1/rank", bodies, 2.0)
                say("measuring GET /healthz")
                trivial = load("GET", "/healthz", [], duration_s)
                before = _topic_size(svc.bootstrap_servers, topics["impressions"])
                say("measuring POST /v1/rank")
                cpu0 = _cpu_seconds(proc.pid)
                rank = load("POST", "/v1/rank", bodies, duration_s)
                cpu_us = (_cpu_seconds(proc.pid) - cpu0) / max(rank.requests, 1) * 1e6
                say("counting impressions")
                deadline = time.monotonic() + 30
                while (in_topic := _topic_size(svc.bootstrap_servers, topics["impressions"]) - before) < (
                    rank.requests - rank.errors
                ) and time.monotonic() < deadline:
                    time.sleep(0.2)
                counters = _log_counters(worker_bases)
            finally:
                stop_popen(proc)
        log_path.unlink(missing_ok=True)
    shutil.rmtree(spool, ignore_errors=True)
    return ServeBenchResult(
        tool=use,
        workers=workers,
        concurrency=concurrency,
        candidates=candidates,
        k=k,
        catalog_trips=n_trips,
        duration_s=duration_s,
        trivial=trivial,
        rank=rank,
        impressions_in_topic=in_topic,
        log_counters=counters,
        server_cpu_us_per_rank=cpu_us,
    )
