"""Learner freshness and throughput through real Kafka and Redis.

Throughput: a learner worker (logistic, LinUCB and VW per segment, micro-
batched) catches up on pre-produced examples; the rate comes from its own
Prometheus counter, first to last learned example, next to a bare counting
Faust agent on the same records measured in the same run.

Freshness: with the worker caught up, single examples are produced at random
moments; each probe's latency is the time from the send until Redis serves a
LinUCB version whose stored offsets include that example.
Run: ``smarttrip bench freshness``.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from kafka import KafkaProducer

from bench.join import ModeResult, measure_rate
from stream.embedded import EmbeddedServices, embedded_services, ensure_topics
from stream.model_store import ModelStore, UnknownModel
from stream.synthetic import synthetic_examples
from stream.worker_process import WorkerProcess


@dataclass(frozen=True)
class FreshnessResult:
    throughput: list[ModeResult]
    latencies_s: list[float]

    def summary(self) -> dict[str, float]:
        lat = np.array(self.latencies_s)
        return {
            "p50_s": float(np.percentile(lat, 50)),
            "p99_s": float(np.percentile(lat, 99)),
            "max_s": float(lat.max()),
            "probes": float(len(lat)),
        }


def _env(svc: EmbeddedServices, uid: str, examples: str, namespace: str) -> dict[str, str]:
    return {
        "SMARTTRIP_KAFKA_BOOTSTRAP": svc.bootstrap_servers,
        "SMARTTRIP_REDIS_URL": svc.redis_url,
        "SMARTTRIP_SESSION_TIMEOUT_S": "2",
        "SMARTTRIP_HEARTBEAT_S": "0.2",
        "SMARTTRIP_TOPIC_EXAMPLES": examples,
        "SMARTTRIP_TOPIC_DEADLETTER": f"fresh-dead-{uid}",
        "SMARTTRIP_MODEL_NAMESPACE": namespace,
    }


def run(
    *,
    n_examples: int = 30_000,
    probes: int = 40,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> FreshnessResult:
    say = progress or (lambda _: None)
    uid = uuid.uuid4().hex[:8]
    examples, namespace = f"fresh-examples-{uid}", f"fresh{uid}"
    with embedded_services(topics={}) as svc:
        ensure_topics(svc.bootstrap_servers, {examples: 4, f"fresh-dead-{uid}": 4})
        producer = KafkaProducer(bootstrap_servers=svc.bootstrap_servers, linger_ms=20, batch_size=1 << 20)
        for r in synthetic_examples(n=n_examples, seed=seed, t0=time.time(), topic=examples):
            producer.send(r.topic, key=r.key, value=r.value)
        producer.flush(60)
        env = _env(svc, uid, examples, namespace)

        say("bare agent")
        count = WorkerProcess({**env, "SMARTTRIP_APP_ID": f"count-{uid}", "SMARTTRIP_TOPIC_IMPRESSIONS": examples},
                              mode="count", name="fresh-count")  # fmt: skip
        try:
            bare = measure_rate(count, "smarttrip_stream_events_total", n_examples, "bare agent")
        finally:
            count.stop()

        say("learner throughput")
        worker = WorkerProcess({**env, "SMARTTRIP_APP_ID": f"learn-{uid}"}, mode="learn", name="fresh-learn")
        store = ModelStore.from_url(svc.redis_url, namespace=namespace)
        try:
            learned = measure_rate(
                worker,
                "smarttrip_learner_examples_total{outcome=learned,policy=linucb",
                n_examples,
                "learner",
            )
            say("freshness probes")
            rng = random.Random(seed)
            latencies: list[float] = []
            for i, record in enumerate(
                synthetic_examples(n=probes, seed=seed + 1, t0=time.time(), topic=examples)
            ):
                time.sleep(rng.uniform(0.1, 0.6))
                segment = record.key.decode()
                t0 = time.perf_counter()
                meta = producer.send(record.topic, key=record.key, value=record.value).get(timeout=10)
                while True:
                    try:
                        offsets = store.get("linucb", segment).meta.offsets
                    except UnknownModel:
                        offsets = {}
                    if offsets.get(meta.partition, -1) >= meta.offset:
                        break
                    if time.perf_counter() - t0 > 30:
                        raise TimeoutError(f"probe {i} not published after 30 s:\n{worker.log_tail()}")
                    time.sleep(0.002)
                latencies.append(time.perf_counter() - t0)
        finally:
            worker.stop()
            store.close()
            producer.close()
    return FreshnessResult(
        [bare, learned],
        latencies,
    )
