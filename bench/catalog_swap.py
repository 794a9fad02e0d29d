"""Ranking latency while catalog versions swap in, against the same worker without swaps (same run).

Setup: the embedded broker and redis-server; a synthetic catalog published
to the catalog store; one scoring worker process (``python -m scoring.server``,
``SMARTTRIP_CATALOG_SOURCE=redis``, rules policy) under load from ``wrk``
(else an asyncio client) at a fixed concurrency, ``POST /v1/rank`` with 200
candidates. Two phases of equal length: **steady** (no publish) and **swapping**
(a new version — 200 trips with a changed price, status or availability — is
published every ``swap_every_s``; each one the worker reads, validates and
builds aside in a thread, then swaps in). The worker's own counters give the
number of versions swapped in during the second phase.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.serve import API_TOKEN, Load, _asyncio_load, _bodies, _get, _wrk
from features.catalog import STATUSES
from features.catalog_records import encode_trips
from features.catalog_store import CatalogStore
from features.generator import generate_trips
from features.trip_update import TripState
from stream._managed_process import stop_popen
from stream.embedded import embedded_services, ensure_topics
from stream.worker_process import free_port

__all__ = ["CatalogSwapResult", "run"]


@dataclass(frozen=True)
class CatalogSwapResult:
    tool: str
    catalog_trips: int
    concurrency: int
    duration_s: float
    swap_every_s: float
    steady: Load
    swapping: Load
    versions_published: int
    versions_swapped_in: int

    @property
    def p99_ratio(self) -> float:
        return self.swapping.p99_ms / self.steady.p99_ms if self.steady.p99_ms else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {
            "benchmark": "catalog_swap",
            **{k: v for k, v in dataclasses.asdict(self).items() if k not in ("steady", "swapping")},
            "steady": self.steady.as_dict(),
            "swapping": self.swapping.as_dict(),
            "p99_ratio": self.p99_ratio,
        }


def _metric(base: str, name: str) -> float:
    _, text = _get(base + "/metrics", API_TOKEN)
    for line in text.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def _changed(rng: random.Random, trips: list[TripState], n: int) -> list[TripState]:
    out = list(trips)
    for i in rng.sample(range(len(out)), n):
        s, kind = out[i], rng.random()
        if kind < 0.4:
            out[i] = TripState(dataclasses.replace(s.trip, status=rng.choice(STATUSES)), s.available)
        elif kind < 0.8:
            out[i] = TripState(
                dataclasses.replace(s.trip, price=float(rng.randrange(300, 6000))), s.available
            )
        else:
            out[i] = TripState(s.trip, not s.available)
    return out


def run(
    *,
    n_trips: int = 5000,
    duration_s: float = 8.0,
    swap_every_s: float = 0.5,
    concurrency: int = 8,
    seed: int = 0,
    tool: str = "auto",
    progress: Callable[[str], None] | None = None,
) -> CatalogSwapResult:
    """Run the benchmark (module docstring); the machine is shared by the worker, the services and the load."""
    use = ("wrk" if shutil.which("wrk") else "asyncio") if tool == "auto" else tool
    say = progress or (lambda _m: None)
    uid = uuid.uuid4().hex[:8]
    ns, impressions = f"bench-{uid}", f"bench-impressions-{uid}"
    spool = tempfile.mkdtemp(prefix="smarttrip-bench-spool-")
    rng = random.Random(seed)
    trips = [TripState(t) for t in generate_trips(n_trips=n_trips, seed=seed, start=time_today())]
    with embedded_services(topics={}) as svc:
        ensure_topics(svc.bootstrap_servers, {impressions: 4, f"bench-interactions-{uid}": 4})
        store = CatalogStore.from_url(svc.redis_url, namespace=ns, history=3)
        store.publish(trips, expected_version=0, source="bench")
        port, metrics_port = free_port(), free_port()
        base, worker = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}"
        rules = {"name": "b", "salt": "b", "variants": [{"name": "rules", "policy": "rules", "traffic": 1.0}]}
        env = {
            **os.environ, "SMARTTRIP_API_TOKENS": API_TOKEN, "SMARTTRIP_ADMIN_TOKENS": "bench-admin-token-0123456789",
            "SMARTTRIP_PSEUDONYM_KEY": "bench-pseudonym-key-0123", "SMARTTRIP_CATALOG_SOURCE": "redis",
            "SMARTTRIP_REDIS_URL": svc.redis_url, "SMARTTRIP_MODEL_NAMESPACE": ns,
            "SMARTTRIP_KAFKA_BOOTSTRAP": svc.bootstrap_servers, "SMARTTRIP_TOPIC_IMPRESSIONS": impressions,
            "SMARTTRIP_TOPIC_INTERACTIONS": f"bench-interactions-{uid}", "SMARTTRIP_SPOOL_DIR": spool,
            "SMARTTRIP_EXPERIMENT": json.dumps(rules), "SMARTTRIP_SERVE_PORT": str(port),
            "SMARTTRIP_METRICS_PORT": str(metrics_port),
        }  # fmt: skip
        log_path = Path(tempfile.mkstemp(prefix="smarttrip-bench-catalog-", suffix=".log")[1])
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen([sys.executable, "-m", "scoring.server"], env=env, stdout=log_file,
                                    stderr=subprocess.STDOUT)  # fmt: skip
            try:
                say("starting the scoring worker")
                deadline = time.monotonic() + 60
                while _get(base + "/readyz")[0] != 200:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"scoring worker not ready:\n{log_path.read_text()[-2000:]}")
                    time.sleep(0.1)
                bodies = _bodies(n_trips, 200, 10, seed)

                def load(secs: float) -> Load:
                    if use == "wrk":
                        return _wrk(base, "POST", "/v1/rank", bodies, concurrency, secs)
                    return asyncio.run(_asyncio_load(port, "POST", "/v1/rank", bodies, concurrency, secs))

                say("warming up")
                load(2.0)
                say("measuring: steady catalog")
                steady = load(duration_s)
                swaps_before = _metric(worker, "smarttrip_scoring_catalog_swaps_total")
                stop, published = threading.Event(), [0]

                say("encoding the catalog versions of the second phase")
                current, encoded = trips, []
                for _ in range(int(duration_s / swap_every_s) + 2):  # encoded now: the publisher only writes
                    current = _changed(rng, current, 200)
                    encoded.append(encode_trips(current))

                def publisher() -> None:
                    for enc in encoded:
                        if stop.wait(swap_every_s):
                            return
                        store.publish(enc, expected_version=store.current_version(), source="bench")
                        published[0] += 1

                say(f"measuring: a new catalog version every {swap_every_s:.1f} s")
                thread = threading.Thread(target=publisher, daemon=True)
                thread.start()
                swapping = load(duration_s)
                stop.set()
                thread.join(10)
                time.sleep(0.5)
                swapped = int(_metric(worker, "smarttrip_scoring_catalog_swaps_total") - swaps_before)
            finally:
                store.close()
                stop_popen(proc)
        log_path.unlink(missing_ok=True)
    shutil.rmtree(spool, ignore_errors=True)
    return CatalogSwapResult(use, n_trips, concurrency, duration_s, swap_every_s, steady, swapping,
                             published[0], swapped)  # fmt: skip


def time_today() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC).date()
