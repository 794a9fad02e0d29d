"""End to end: a published catalog, 1,000 trip updates through Kafka, two scoring workers hot-swapping.

Processes: the catalog update agent (``smarttrip worker --mode catalog``) and
one ``python -m scoring.server`` supervising two workers (each reachable on
its own metrics port, which serves the whole API); all stopped by PID.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from features.catalog_store import CatalogStore
from features.generator import generate_trips
from features.loader import write_catalog
from features.trip_update import TripState, TripUpdate, apply_update
from smarttrip.cli.main import app as cli
from stream._managed_process import stop_popen
from stream.codec import decode_dead_letter
from stream.embedded import EmbeddedServices, ensure_topics
from stream.worker_process import WorkerProcess, free_port
from tests.catalog.ranking_oracle import PREFS, check_response, expected_scores, random_change
from tests.scoring.serving import API_TOKEN, experiment, new_env
from tests.stream.kafka_helpers import consume_until, produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

N_UPDATES = 1000
RULES_ONLY = json.dumps(experiment(("rules", "rules", 1.0, 0.0)))


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _post(port: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/rank", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {"error": exc.read().decode(errors="replace")}
    except OSError as exc:
        return 0, {"error": str(exc)}


def _metric(port: int, name: str) -> float | None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=2) as r:  # noqa: S310
            text = r.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def _record(update: dict[str, Any]) -> tuple[str, bytes, bytes]:
    return (
        "",
        update["trip_id"].encode(),
        json.dumps({"v": 1, "op": "upsert", "ts": time.time(), **update}).encode(),
    )


def test_updates_reach_every_worker_within_seconds(services: EmbeddedServices, tmp_path: Path) -> None:
    today = _today()
    trips = [TripState(t) for t in generate_trips(n_trips=1000, seed=31, start=today)]
    ids = [s.trip.trip_id for s in trips[:200]]
    before = expected_scores(trips, ids, today)
    gone, promoted = [s.trip.trip_id for s in trips if s.trip.status == "open" and s.trip.trip_id in before][
        :2
    ]
    env = new_env(services)
    uid = uuid.uuid4().hex[:8]
    topic, deadletter = f"trips-{uid}", f"deadletter-{uid}"
    ensure_topics(
        services.bootstrap_servers, {topic: 2, deadletter: 1}, configs={topic: {"cleanup.policy": "compact"}}
    )

    # 1. an operator publishes the catalog file (strictly validated) through the CLI
    path = tmp_path / "trips.jsonl"
    write_catalog([s.trip for s in trips], path)
    common = {"SMARTTRIP_REDIS_URL": services.redis_url, "SMARTTRIP_MODEL_NAMESPACE": env.namespace}
    out = CliRunner().invoke(cli, ["catalog", "publish", str(path), "--history", "50"], env=common)
    assert out.exit_code == 0, out.output
    assert "published catalog version 1" in out.output

    # 2. the agent and two scoring workers
    agent = WorkerProcess({
        **common, "SMARTTRIP_KAFKA_BOOTSTRAP": services.bootstrap_servers, "SMARTTRIP_TOPIC_TRIPS": topic,
        "SMARTTRIP_TOPIC_DEADLETTER": deadletter, "SMARTTRIP_CATALOG_INTERVAL_S": "0.5",
        "SMARTTRIP_CATALOG_HISTORY": "50",
    }, mode="catalog", name="catalog-agent")  # fmt: skip
    metrics = free_port()
    while metrics + 1 == (port := free_port()):
        pass
    workers = subprocess.Popen([sys.executable, "-m", "scoring.server"], env={
        **os.environ, **common, "SMARTTRIP_API_TOKENS": API_TOKEN,
        "SMARTTRIP_ADMIN_TOKENS": "admin-token-for-catalog-test", "SMARTTRIP_PSEUDONYM_KEY": "catalog-test-key-0123",
        "SMARTTRIP_CATALOG_SOURCE": "redis", "SMARTTRIP_EXPERIMENT": RULES_ONLY, "SMARTTRIP_MODEL_POLL_S": "2",
        "SMARTTRIP_KAFKA_BOOTSTRAP": services.bootstrap_servers, "SMARTTRIP_TOPIC_IMPRESSIONS": env.impressions,
        "SMARTTRIP_TOPIC_INTERACTIONS": env.interactions, "SMARTTRIP_SPOOL_DIR": tempfile.mkdtemp(prefix="spool-"),
        "SMARTTRIP_SERVE_PORT": str(port), "SMARTTRIP_SERVE_WORKERS": "2", "SMARTTRIP_METRICS_PORT": str(metrics),
    }, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    ports = (metrics, metrics + 1)  # worker i serves the whole API on metrics + i
    body = {"session_id": "s", "trip_ids": ids, "preferences": PREFS, "k": 20, "explore": False}
    responses: list[tuple[int, dict[str, Any]]] = []
    stop = threading.Event()
    store = CatalogStore.from_url(services.redis_url, namespace=env.namespace, history=50)
    try:
        deadline = time.monotonic() + 40
        while not all(_post(p, body)[1].get("catalog_version") == "1" for p in ports):
            assert time.monotonic() < deadline and workers.poll() is None, "workers not serving version 1"
            time.sleep(0.2)
        for p in ports:
            check_response(_post(p, body)[1], {"1": trips}, ids, today)

        # 3. requests keep flowing to both workers while the updates stream in
        def hammer(p: int) -> None:
            while not stop.is_set():
                responses.append(_post(p, body))

        threads = [threading.Thread(target=hammer, args=(p,), daemon=True) for p in ports]
        for t in threads:
            t.start()

        # 4. 1,000 updates (status, price, availability) + one of each bad kind, then measure
        rng = random.Random(5)
        final = {s.trip.trip_id: s for s in trips}
        records = []
        movable = [s.trip.trip_id for s in trips if s.trip.trip_id not in (gone, promoted)]
        for _ in range(N_UPDATES - 2):
            tid = rng.choice(movable)
            change = random_change(rng, final[tid])
            records.append(_record({"trip_id": tid, "set": change}))
            apply_update(final, TripUpdate("upsert", tid, 0.0, dict(change)))
        records.insert(300, _record({"trip_id": gone, "set": {"available": False}}))
        records.insert(700, _record({"trip_id": promoted, "set": {"status": "last_places"}}))
        apply_update(final, TripUpdate("upsert", gone, 0.0, {"available": False}))
        apply_update(final, TripUpdate("upsert", promoted, 0.0, {"status": "last_places"}))
        bad = [
            _record({"trip_id": "NO-SUCH-TRIP", "set": {"price": 100}}),
            _record({"trip_id": ids[0], "set": {"price": "cheap"}}),
            _record({"trip_id": ids[1], "set": {"status": 7}}),
            _record({"trip_id": ids[2], "set": {"price": -40}}),
        ]
        records[500:500] = bad
        for start in range(0, len(records), 250):  # in bursts, so the agent publishes several versions
            produce(services, [(topic, k, v) for _, k, v in records[start : start + 250]])
            time.sleep(0.4)
        produced_at = time.monotonic() - 0.4

        def serves_everything(p: int) -> bool:
            version = _post(p, body)[1].get("catalog_version")
            if version is None:
                return False
            meta = store.meta(int(version))
            return sum(meta.offsets.values()) == len(records)

        caught_up: dict[int, float] = {}
        deadline = time.monotonic() + 30
        while len(caught_up) < 2:
            assert time.monotonic() < deadline, f"workers did not catch up: {caught_up}\n{agent.log_tail()}"
            for p in ports:
                if p not in caught_up and serves_everything(p):
                    caught_up[p] = time.monotonic() - produced_at
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(10)

        # 5. every worker serves the final state: the unavailable trip is gone, the promoted one
        #    gained exactly STATUS_LAST_PLACES (15), and the whole ranking equals the oracle's
        latest = {str(m.version): m for m in store.history()}
        final_version = max(latest, key=int)
        final_trips = list(final.values())
        assert store.get(int(final_version)).trips == final_trips  # bad updates changed nothing
        for p in ports:
            status, got = _post(p, {**body, "trip_ids": [gone, promoted]})
            assert status == 200 and got["catalog_version"] == final_version
            assert [it["trip_id"] for it in got["items"]] == [promoted] and got["ignored_trip_ids"] == [gone]
            assert got["items"][0]["score"] == before[promoted] + 15
            check_response(_post(p, body)[1], {final_version: final_trips}, ids, today)
            assert _metric(p, "smarttrip_scoring_catalog_version") == int(final_version)

        # 6. requests during the swaps never failed and each is exactly one version's ranking
        failed = [r for r in responses if r[0] != 200]
        assert not failed, failed[:3]
        versions = {v: store.get(int(v)).trips for v in {r["catalog_version"] for _, r in responses}}
        seen = {check_response(r, versions, ids, today) for _, r in responses}
        assert len(seen) >= 2 and len(responses) > 100, (sorted(seen, key=int), len(responses))

        # 7. the bad updates were dead-lettered with their reasons and counted
        letters = consume_until(services, deadletter, lambda v: len(v) >= 4, timeout=15)
        reasons = sorted(decode_dead_letter(v).reason for v in letters)
        assert reasons == ["invalid_field", "invalid_field", "invalid_field", "unknown_trip"]
        assert base64.b64decode(decode_dead_letter(letters[0]).excerpt_b64) in {v for _, _, v in bad}
        assert agent.total("smarttrip_catalog_rejected_updates_total") == 4
        assert agent.total("smarttrip_catalog_update_lag_seconds_count") == N_UPDATES
        print(f"\nworkers serving all {len(records)} updates after: "
              + ", ".join(f"{s:.2f} s" for s in caught_up.values())
              + f"; {len(responses)} requests during the swaps over {len(seen)} versions, 0 failed")  # fmt: skip
        assert max(caught_up.values()) < 10.0
    finally:
        stop.set()
        store.close()
        stop_popen(workers, timeout=20)
        agent.stop()
