"""Replaying a recorded run reproduces the online models: learner worker vs export + replay."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bandit import learner_from_bytes
from smarttrip.cli.main import app
from stream.embedded import EmbeddedServices, ensure_topics
from stream.export import read_export, read_kafka
from stream.model_store import ModelStore
from stream.replay import Replayer
from stream.settings import StreamSettings
from stream.synthetic import SEGMENTS, synthetic_examples
from stream.worker_process import WorkerProcess
from tests.stream.kafka_helpers import produce

pytestmark = [pytest.mark.integration]

PARTITIONS = 4
N = 3000


@pytest.mark.timeout(240)
def test_export_and_replay_reproduce_the_learner_worker(services: EmbeddedServices, tmp_path: Path) -> None:
    uid = uuid.uuid4().hex[:8]
    topic, dead, namespace = f"examples-{uid}", f"deadletter-{uid}", f"replay{uid}"
    ensure_topics(services.bootstrap_servers, {topic: PARTITIONS, dead: PARTITIONS})
    started_ms = int(time.time() * 1000)
    produce(services, synthetic_examples(n=N, seed=8, t0=time.time(), topic=topic))
    env = {
        "SMARTTRIP_KAFKA_BOOTSTRAP": services.bootstrap_servers, "SMARTTRIP_REDIS_URL": services.redis_url,
        "SMARTTRIP_APP_ID": f"learn-{uid}", "SMARTTRIP_PARTITIONS": str(PARTITIONS),
        "SMARTTRIP_SESSION_TIMEOUT_S": "2", "SMARTTRIP_HEARTBEAT_S": "0.2", "SMARTTRIP_TOPIC_EXAMPLES": topic,
        "SMARTTRIP_TOPIC_DEADLETTER": dead, "SMARTTRIP_MODEL_NAMESPACE": namespace,
        "SMARTTRIP_PUBLISH_INTERVAL_S": "0.2",
    }  # fmt: skip
    worker = WorkerProcess(env, mode="learn", name="learner")
    store = ModelStore.from_url(services.redis_url, namespace=namespace)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            seen = {(m.policy, m.segment): m.meta.examples_seen for m in store.models() if m.meta is not None}
            if len(seen) == 3 * len(SEGMENTS) and set(seen.values()) == {N // len(SEGMENTS)}:
                break
            assert worker.alive(), worker.log_tail()
            time.sleep(0.3)
        else:
            raise AssertionError(f"models did not catch up: {seen}\n{worker.log_tail()}")
    finally:
        worker.stop()

    out = tmp_path / "run.jsonl"
    result = CliRunner().invoke(app, ["export", "--bootstrap", services.bootstrap_servers, "--topics", topic,
                                      "--since", str(started_ms / 1000 - 60), "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    records = list(read_export(out))
    assert len(records) == N and {r.partition for r in records} <= set(range(PARTITIONS))
    assert read_kafka(services.bootstrap_servers, [topic], since_ms=int(time.time() * 1000) + 60_000) == []

    probe = np.random.default_rng(0).random((50, 20))
    for compiled in (False, True):  # the reference learners, and the compiled loops of bandit.fast_kernels
        replay = Replayer("examples", settings=StreamSettings.from_env(env), compiled=compiled)
        stats = replay.run(records)
        assert stats.examples == N and not stats.deadletters
        for segment in SEGMENTS:
            for policy in ("logistic", "linucb"):
                online = learner_from_bytes(store.get(policy, segment).model_bytes)
                offline = replay.models()[(policy, segment)]
                assert online.n_examples == offline.n_examples == N // len(SEGMENTS)
                np.testing.assert_allclose(
                    online.score_many(probe), offline.score_many(probe), rtol=0, atol=1e-9
                )
                w_on, w_off = online.weights, offline.weights  # type: ignore[attr-defined]
                assert max(abs(w_on[k] - w_off[k]) for k in w_on) <= 1e-9
    assert json.loads(out.read_text().splitlines()[0])["topic"] == topic

    # The live models as evaluation policies: `smarttrip ope --policy store:linucb`.
    ope_out = tmp_path / "ope.json"
    result = CliRunner().invoke(app, [
        "ope", "--logs", str(out), "--policy", "store:linucb", "--redis-url", services.redis_url,
        "--namespace", namespace, "--estimators", "ipw,snipw", "--bootstrap-samples", "20", "--json", str(ope_out),
    ], env={"SMARTTRIP_TOPIC_EXAMPLES": topic})  # fmt: skip
    assert result.exit_code == 0, result.output
    estimates = json.loads(ope_out.read_text())["estimates"]
    assert {e["estimator"] for e in estimates} == {"ipw", "snipw"}
    assert all(e["n"] > 0 for e in estimates) and estimates[0]["n"] == N
    base = ["ope", "--logs", str(out), "--redis-url", services.redis_url, "--namespace", namespace,
            "--estimators", "ipw", "--bootstrap-samples", "0"]  # fmt: skip
    env_topic = {"SMARTTRIP_TOPIC_EXAMPLES": topic}
    assert CliRunner().invoke(app, [*base, "--policy", "store:linucb@1"], env=env_topic).exit_code == 0
    missing = CliRunner().invoke(app, [*base, "--policy", "store:nope"], env=env_topic)
    assert missing.exit_code == 2 and "nope" in missing.output
    store.close()
