"""Learner CPU per example: the reference path against the fast path, measured in the same run.

Two measurements, each with the reference path (``SMARTTRIP_LEARNER_FAST=0``:
the codec's :class:`~stream.events.Example` objects, River SGD, LinUCB's
Woodbury blocks, VW through its Python wrappers) next to the fast path
(:func:`stream.learner_decode.learn_rows`, :mod:`bandit.fast_kernels`), which
learns the same models:

In-process (:func:`run_inprocess`)
    :class:`~stream.learner_runtime.LearnerRuntime` with a real redis-server
    model store, fed micro-batches of the size the worker's
    ``take_events(batch_size, within=batch_within_s)`` gathers at a steady
    input rate (``rate × batch_within_s`` records), with a simulated clock so
    models are published at the worker's cadence (every ``publish_interval_s``
    of input). CPU time (``time.process_time``) per example, split into
    learning (:meth:`~stream.learner_runtime.LearnerRuntime.process`) and
    publishing (:meth:`~stream.learner_runtime.LearnerRuntime.maybe_publish`;
    Redis's own CPU not included). Rounds alternate the two paths; the
    median round is reported.
Worker (:func:`run_worker`)
    A learner worker process catches up on pre-produced examples through
    Kafka, per path and round (separate consumer groups and model namespaces
    on the same topic; rounds alternate the paths): examples/s and the
    worker's CPU per example (``/proc``), Faust included; the median round.
    A third mode reads the same examples from a topic with one record per
    slate of 10 (the join's default, :func:`stream.example_bytes.pack_examples`).

The examples are :func:`stream.synthetic.synthetic_examples` with a serving
policy mix, 10 % randomized examples and a segment per slate of 10, keyed by
segment (5 segments) on 4 partitions, as the join emits them. Run: ``smarttrip bench learner-cpu``.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import orjson
from kafka import KafkaProducer

from bench.freshness import _env
from bench.join import ModeResult, measure_rate
from stream.embedded import embedded_services, ensure_topics
from stream.example_bytes import pack_examples
from stream.faust_app import partition_of
from stream.guardrails import Guardrails
from stream.learner_runtime import ExampleRecord, LearnerRuntime
from stream.model_store import ModelStore
from stream.settings import StreamSettings
from stream.synthetic import SEGMENTS, synthetic_examples
from stream.worker_process import WorkerProcess

__all__ = ["PATHS", "WORKER_MODES", "PathCPU", "examples", "run_inprocess", "run_worker"]

PATHS = ("reference", "fast")
#: The worker's runs: a path, and whether the examples topic holds a record per example or per slate.
WORKER_MODES = {
    "reference": ("reference", False),
    "fast": ("fast", False),
    "fast, slate records": ("fast", True),
}
_PARTITIONS = 4
_SERVING = ("rules", "logistic", "linucb", "vw")


@dataclass(frozen=True)
class PathCPU:
    """One path at one input rate: median CPU µs per example over the rounds."""

    path: str
    rate: float
    batch: int
    examples: int
    learn_us: float
    publish_us: float
    rounds: int

    @property
    def total_us(self) -> float:
        return self.learn_us + self.publish_us

    def as_dict(self) -> dict[str, float | int | str]:
        return {**asdict(self), "total_us": self.total_us}


def examples(n: int, seed: int, *, per_slate: bool = False) -> list[tuple[int, bytes, bytes]]:
    """``(partition, key, value)`` of ``n`` examples as the join emits them (see the module docstring):
    a record per example, or (``per_slate``) a record per slate of 10."""
    rng = np.random.default_rng(seed)
    out = []
    for i, rec in enumerate(synthetic_examples(n=n, seed=seed, t0=time.time())):
        value = orjson.loads(rec.value)
        value["policy"] = _SERVING[(i // 10) % len(_SERVING)]
        value["segment"] = SEGMENTS[(i // 10) % len(SEGMENTS)]  # one segment per slate, as the join's
        value["randomized"] = bool(rng.random() < 0.1)
        key = value["segment"].encode()
        out.append((partition_of(key, _PARTITIONS), key, orjson.dumps(value)))
    if not per_slate:
        return out
    return [(out[s][0], out[s][1], packed) for s in range(0, n, 10)
            for packed in pack_examples([v for _, _, v in out[s : s + 10]])]  # fmt: skip


def _one_round(
    fast: bool, records: list[ExampleRecord], batch: int, settings: StreamSettings, redis_url: str
) -> tuple[float, float]:
    """CPU seconds (learning, publishing) of one path over ``records`` after a two-batch warm-up."""
    store = ModelStore.from_url(
        redis_url,
        namespace=f"cpu{uuid.uuid4().hex[:8]}",
        guardrails=Guardrails(max_abs_weight=settings.max_abs_weight, min_examples=settings.min_examples),
    )
    now = [1_000_000.0]
    runtime = LearnerRuntime(settings, store, clock=lambda: now[0], fast=fast)
    step = settings.batch_within_s  # input time per batch at the steady rate
    learn = publish = 0.0
    try:
        for start in range(0, len(records), batch):
            chunk = records[start : start + batch]
            t0 = time.process_time()
            runtime.process(chunk)
            t1 = time.process_time()
            now[0] += step
            runtime.maybe_publish()
            t2 = time.process_time()
            if start >= 2 * batch:  # the first two batches load, create and first publish the models
                learn += t1 - t0
                publish += t2 - t1
    finally:
        store.close()
    return learn, publish


def run_inprocess(
    *,
    rates: tuple[float, ...] = (1425.0, 4750.0),
    seconds: float = 4.0,
    rounds: int = 3,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[PathCPU]:
    """Both paths at each input rate (examples/s), ``seconds`` of input per round."""
    say = progress or (lambda _: None)
    settings = StreamSettings(log_epoch="bench")
    out: list[PathCPU] = []
    with embedded_services(kafka=False) as svc:
        for rate in rates:
            batch = max(1, round(rate * settings.batch_within_s))
            n = int(rate * seconds) + 2 * batch
            records = [ExampleRecord(p, i, v) for i, (p, _, v) in enumerate(examples(n, seed))]
            timed = n - 2 * batch
            samples: dict[str, list[tuple[float, float]]] = {p: [] for p in PATHS}
            for r in range(rounds):
                order = PATHS if r % 2 == 0 else PATHS[::-1]
                for path in order:
                    say(f"{rate:,.0f} examples/s, round {r + 1}/{rounds}, {path} path")
                    samples[path].append(_one_round(path == "fast", records, batch, settings, svc.redis_url))
            for path in PATHS:
                learn = statistics.median(s[0] for s in samples[path]) / timed * 1e6
                publish = statistics.median(s[1] for s in samples[path]) / timed * 1e6
                out.append(PathCPU(path, rate, batch, timed, learn, publish, rounds))
    return out


def run_worker(
    *, n_examples: int = 30_000, rounds: int = 2, seed: int = 0, progress: Callable[[str], None] | None = None
) -> list[ModeResult]:
    """A learner worker per mode (:data:`WORKER_MODES`) and round catching up on the same ``n_examples``
    through Kafka.

    Rounds alternate the order of the modes; per mode, the round with the median CPU per
    example is returned (of an even number, the lower middle one).
    """
    say = progress or (lambda _: None)
    uid = uuid.uuid4().hex[:8]
    topics = {False: f"cpu-examples-{uid}", True: f"cpu-slates-{uid}"}
    runs: dict[str, list[ModeResult]] = {m: [] for m in WORKER_MODES}
    with embedded_services(topics={}) as svc:
        ensure_topics(svc.bootstrap_servers, {**dict.fromkeys(topics.values(), _PARTITIONS),
                                              f"fresh-dead-{uid}": _PARTITIONS})  # fmt: skip
        producer = KafkaProducer(bootstrap_servers=svc.bootstrap_servers, linger_ms=20, batch_size=1 << 20)
        for per_slate, topic in topics.items():
            for partition, key, value in examples(n_examples, seed, per_slate=per_slate):
                producer.send(topic, key=key, value=value, partition=partition)
        producer.flush(60)
        producer.close()
        modes = list(WORKER_MODES)
        for r in range(rounds):
            for mode in modes if r % 2 == 0 else modes[::-1]:
                path, per_slate = WORKER_MODES[mode]
                say(f"worker, round {r + 1}/{rounds}, {mode}")
                group = f"{path}{int(per_slate)}{r}{uid}"
                env = {
                    **_env(svc, uid, topics[per_slate], f"cpu{group}"),
                    "SMARTTRIP_APP_ID": f"cpu-{group}",
                    "SMARTTRIP_LEARNER_FAST": "1" if path == "fast" else "0",
                }
                worker = WorkerProcess(env, mode="learn", name=f"cpu-learn-{path}")
                try:
                    metric = "smarttrip_learner_examples_total{outcome=learned,policy=linucb"
                    runs[mode].append(measure_rate(worker, metric, n_examples, mode))
                finally:
                    worker.stop()
    return [_median_run(runs[mode]) for mode in WORKER_MODES]


def _median_run(results: list[ModeResult]) -> ModeResult:
    ordered = sorted(results, key=lambda m: m.cpu_us_per_event or m.seconds)
    return ordered[(len(ordered) - 1) // 2]
