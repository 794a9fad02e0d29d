"""The dashboards and alert rules against a real Prometheus scraping the running stack.

The embedded broker and redis-server, the join and learner workers, the
scoring worker (HTTP) and simulated traffic (``sim.driver``) run while a
Prometheus on 127.0.0.1 scrapes all three processes every second with the
real ``alerts.yml``. While traffic flows, every dashboard query (template
variables set as Grafana would for "All") must return at least one finite
sample; every alert expression must parse, and every rule must evaluate
without error. Then Redis is stopped and ``SmartTripRedisUnreachable`` must
go to firing for the scoring worker.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from features.loader import write_catalog
from sim.config import SimConfig
from sim.driver import DriverResult, drive
from sim.scoring_process import scoring_worker
from sim.world import World
from stream.embedded import EmbeddedServices
from stream.worker_process import WorkerProcess, free_port
from tests.monitoring.prometheus_server import Prometheus, prometheus, require
from tests.monitoring.promql import (
    ALERTS,
    Query,
    alert_queries,
    dashboard_queries,
    substitute,
    variable_queries,
)
from tests.stream.kafka_helpers import produce

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POLICIES = ("rules", "logistic", "linucb", "vw")


def _experiment() -> str:
    variants: list[dict[str, Any]] = [{"name": p, "policy": p, "traffic": 0.25} for p in POLICIES]
    return json.dumps({"name": "monitoring", "salt": "monitoring-salt", "variants": variants})


class _Traffic:
    """``sim.driver.drive`` in a thread of its own, cancellable once the checks are done."""

    def __init__(self, world: World, url: str, token: str, seed: int) -> None:
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[DriverResult] | None = None
        self.result: DriverResult | None = None
        self.error: BaseException | None = None

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._task = self._loop.create_task(drive(world, url, token, seed=seed))
            try:
                self.result = self._loop.run_until_complete(self._task)
            except asyncio.CancelledError:
                pass
            except BaseException as exc:
                self.error = exc
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, name="sim-traffic", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive() and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(20)


def _wait(what: str, check: Callable[[], str | None], timeout: float, diagnose: Callable[[], str]) -> None:
    """Poll ``check`` (None = satisfied, else the reason it is not yet) until ``timeout``."""
    deadline = time.monotonic() + timeout
    reason: str | None = "not checked"
    while time.monotonic() < deadline:
        reason = check()
        if reason is None:
            return
        time.sleep(0.5)
    pytest.fail(f"{what} within {timeout:.0f} s: {reason}\n{diagnose()}")


def _finite_samples(result: dict[str, Any]) -> int:
    data = result.get("data", {})
    if data.get("resultType") != "vector":
        return 0
    return sum(1 for s in data["result"] if math.isfinite(float(s["value"][1])))


def _missing_data(prom: Prometheus, queries: list[Query]) -> list[str]:
    missing = []
    for q in queries:
        answer = prom.query(substitute(q.expr))
        if answer.get("status") != "success":
            missing.append(f"{q.where}: {answer.get('error')}")
        elif _finite_samples(answer) == 0:
            missing.append(f"{q.where}: no finite sample")
    return missing


@pytest.mark.timeout(240)
def test_dashboard_queries_return_data_and_redis_alert_fires(
    fresh_services: EmbeddedServices, tmp_path: Path
) -> None:
    require("prometheus")
    svc = fresh_services
    started = time.monotonic()
    cfg = SimConfig(seed=5, catalog_trips=600, users=400, rate_rps=25.0, duration_s=90.0, concurrency=4)
    world = World(cfg)
    catalog = tmp_path / "catalog.jsonl"
    write_catalog(world.catalog.trips, catalog)
    token, admin = secrets.token_hex(16), secrets.token_hex(16)
    port = free_port()
    stream_env = {
        **svc.env(),
        "SMARTTRIP_SESSION_TIMEOUT_S": "2",
        "SMARTTRIP_HEARTBEAT_S": "0.2",
        "SMARTTRIP_JOIN_WINDOW_S": "2",
        "SMARTTRIP_WATERMARK_DELAY_S": "0.5",
        "SMARTTRIP_IDLE_S": "1",
    }
    serve_env = {
        **svc.env(),
        "SMARTTRIP_SERVE_PORT": str(port),
        "SMARTTRIP_API_TOKENS": token,
        "SMARTTRIP_ADMIN_TOKENS": admin,
        "SMARTTRIP_PSEUDONYM_KEY": secrets.token_hex(16),
        "SMARTTRIP_CATALOG": str(catalog),
        "SMARTTRIP_SPOOL_DIR": str(tmp_path / "spool"),
        "SMARTTRIP_EXPERIMENT": _experiment(),
        "SMARTTRIP_MODEL_POLL_S": "0.5",
        "SMARTTRIP_REDIS_TIMEOUT_S": "0.5",
    }
    join = WorkerProcess(stream_env, mode="join", name="mon-join")
    learner = WorkerProcess(stream_env, mode="learn", name="mon-learn")
    traffic: _Traffic | None = None
    try:
        with scoring_worker(serve_env, port, tmp_path / "scoring.log"):
            scrape = [
                {"job_name": "stream-join", "static_configs": [{"targets": [f"127.0.0.1:{join.metrics_port}"]}]},
                {"job_name": "stream-learner", "static_configs": [{"targets": [f"127.0.0.1:{learner.metrics_port}"]}]},
                {"job_name": "scoring", "authorization": {"credentials": token},
                 "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]},
            ]  # fmt: skip
            with prometheus(scrape, [ALERTS]) as prom:

                def diagnose() -> str:
                    return (
                        f"--- prometheus\n{prom.log_tail(10)}\n--- join\n{join.log_tail(10)}"
                        f"\n--- learner\n{learner.log_tail(10)}"
                    )

                traffic = _Traffic(world, f"http://127.0.0.1:{port}", token, seed=cfg.seed)
                # Bad input the dead-letter panels must show, and a refused request for the error panel.
                produce(svc, [("impressions", b"bad-session", b"{not json"), ("examples", b"budget", b"[]")])
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/v1/rank", data=b"{}", method="POST"
                )
                with pytest.raises(urllib.error.HTTPError, match="401"):
                    urllib.request.urlopen(request, timeout=5)  # noqa: S310  # no token

                # 1. While traffic flows, every dashboard query returns finite data.
                queries = dashboard_queries() + variable_queries()
                _wait(
                    "every dashboard query returns data",
                    lambda: "; ".join(_missing_data(prom, queries)) or None,
                    timeout=90,
                    diagnose=diagnose,
                )
                data_at = time.monotonic() - started

                # 2. Every alert expression parses and every rule evaluates without error.
                for q in alert_queries():
                    answer = prom.query(q.expr)
                    assert answer["status"] == "success", f"{q.where}: {answer.get('error')}"
                rules = [r for g in prom.api("rules")["data"]["groups"] for r in g["rules"]]
                assert {r["name"] for r in rules} == {q.where.removeprefix("alert ") for q in alert_queries()}
                bad = [f"{r['name']}: {r.get('lastError')}" for r in rules if r["health"] == "err"]
                assert not bad, bad
                firing_before = {a["labels"]["alertname"] for a in prom.api("alerts")["data"]["alerts"]}
                assert "SmartTripRedisUnreachable" not in firing_before

                # 3. Redis goes away: the scoring worker's health alert goes pending, then firing.
                svc.stop_redis()
                stopped_at = time.monotonic()

                def redis_alert() -> str | None:
                    alerts = prom.api("alerts")["data"]["alerts"]
                    mine = [a for a in alerts if a["labels"]["alertname"] == "SmartTripRedisUnreachable"]
                    if any(a["state"] == "firing" and a["labels"].get("job") == "scoring" for a in mine):
                        return None
                    return f"alert states: {[(a['labels'].get('job'), a['state']) for a in mine]}"

                _wait("SmartTripRedisUnreachable fires", redis_alert, timeout=60, diagnose=diagnose)
                fired_after = time.monotonic() - stopped_at
                up = prom.query('smarttrip_scoring_redis_up{job="scoring"}')["data"]["result"]
                assert [float(s["value"][1]) for s in up] == [0.0]
                # The rule says `for: 30s`: it cannot fire sooner.
                assert fired_after >= 30, fired_after
    finally:
        if traffic is not None:
            traffic.stop()
        join.stop()
        learner.stop()
    assert traffic.error is None, repr(traffic.error)
    print(
        f"\nlive stack: all {len(queries)} dashboard queries had data {data_at:.0f} s after start; "
        f"Redis alert fired {fired_after:.1f} s after Redis stopped; total {time.monotonic() - started:.0f} s"
    )
