"""Join and learner workers SIGKILLed at seeded random moments while a driver produces live traffic.

The join-only run is ``test_join_kills.py``; this one adds the learner and its models.

The driver (:class:`tests.faults.helpers.PacedProducer`) produces seeded
synthetic sessions — one 5-trip slate each, known clicks, some clicks sent
twice upstream, some without ``request_id`` — at a fixed rate with event
times following the wall clock, while one join worker consumes them. The
worker is killed (SIGKILL, no clean shutdown) at least five times, each time
at a seeded random moment after it has made progress, and restarted. After
the run, every valid click the driver produced is in exactly one positive
example: counted exactly, against the driver's own record of its clicks.
A learner worker reads the join's examples at the same time and is killed
five times too, at its own seeded moments; once the run is over its stored
logistic and LinUCB models must equal, to 1e-9, a learner that read the same
examples topic in one uninterrupted pass (drift responses off: they depend
on in-memory detector history).

It was xfail until session 5: a restarted join incarnation sometimes read
nothing for 90 s, then 180 s. Each incarnation first recovered the whole
sessions changelog through Faust's recovery, one record at a time (~2,000
records/s on the shared machine; Tansu never compacts it), then rebuilt its
sessions, so its time to a first record grew with the run's history: 49 s
late in a run (23 s reading ~45,000 changelog records, 10 s rebuilding 22,051
sessions, 11 s more before its first batch), on a machine that was busier
still in the failing runs. The join now reads the changelog itself in bulk
(:mod:`stream.session_store`): 62,497 records in 2.3 s at the same point.
The test prints each incarnation's time to its first record (and the
workers' counters every 10 s), so a slow restart shows in its output;
``SMARTTRIP_FAULTS_LOGLEVEL=INFO`` keeps the workers' recovery steps in their logs.

Sizes: 20,000 events in CI (~13,000 sessions at 1,000 events/s);
``SMARTTRIP_FAULTS_SCALE=full``: 100,000 events (~65,000 sessions at
1,500 events/s), the issue's figure.
"""

from __future__ import annotations

import os
import random
import time

import numpy as np
import pytest

from bandit import LinUCB, LogisticLearner, learner_from_bytes
from stream.embedded import EmbeddedServices
from stream.learner_runtime import ExampleRecord, LearnerRuntime
from stream.model_store import ModelStore
from stream.settings import StreamSettings
from stream.worker_process import WorkerProcess
from tests.faults.helpers import (
    EVENTS_PER_SESSION,
    PacedProducer,
    WorkerWatch,
    audit_examples,
    read_examples,
    read_records,
    sessions_for,
)
from tests.faults.scale import scale, sized
from tests.stream.kafka_helpers import example_dicts, new_run

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(sized(600, 2400))]

KILLS = 5
SHOWN = (
    "smarttrip_stream_events_total",
    "smarttrip_stream_examples_total",
    "smarttrip_stream_consumer_lag_records",
    "smarttrip_stream_open_sessions",
    "smarttrip_learner_examples_total",
)

#: 150-290 s on the shared machine: kept out of `make test` (CI time). At CI size (20,000 events)
#: the changelog is too short for the slow restarts this test once caught.
FULL_ONLY = pytest.mark.skipif(
    scale() != "full", reason="runs with SMARTTRIP_FAULTS_SCALE=full (make test-faults FAULTS_SCALE=full)"
)


@FULL_ONLY
def test_join_and_learner_killed_five_times_each_every_click_once_and_models_exact(
    fresh_services: EmbeddedServices,
) -> None:
    services = fresh_services
    n_events = sized(20_000, 100_000)
    rate = float(sized(1_000, 1_500))
    run = new_run(services)
    namespace = f"kills{run.uid}"
    learner_env = {
        **run.env,
        "SMARTTRIP_REDIS_URL": services.redis_url,
        "SMARTTRIP_MODEL_NAMESPACE": namespace,
        "SMARTTRIP_PUBLISH_INTERVAL_S": "0.2",
        "SMARTTRIP_DRIFT_RESPONSE": "0",
    }
    duration = n_events / rate
    records, expected = sessions_for(
        n_events, seed=41, t0=time.time() + 1.0, spacing_s=duration * EVENTS_PER_SESSION / n_events,
        impressions=run.impressions, interactions=run.interactions,
    )  # fmt: skip
    rng = random.Random(41)
    # Kill moments: seeded, spread over the production time (offsets from its start), one list per
    # worker kind, taken in time order.
    moments = sorted(
        [(rng.uniform(0.05, 1.0) * duration, "join") for _ in range(KILLS)]
        + [(rng.uniform(0.1, 1.0) * duration, "learn") for _ in range(KILLS)]
    )
    metric = {
        "join": "smarttrip_stream_events_total",
        "learn": "smarttrip_learner_examples_total{outcome=learned",
    }
    loglevel = os.environ.get("SMARTTRIP_FAULTS_LOGLEVEL", "WARNING")  # INFO: Faust's recovery steps
    workers = {
        "join": WorkerProcess(run.env, name="join-0", loglevel=loglevel),
        "learn": WorkerProcess(learner_env, mode="learn", name="learn-0", loglevel=loglevel),
    }
    # Each incarnation's time from spawn to its first record, and the counters every 10 s.
    watch = WorkerWatch(lambda: dict(workers), {k: v.split("{")[0] for k, v in metric.items()}, shown=SHOWN)
    for worker in workers.values():
        watch.spawned(worker)
    watch.start()
    driver = PacedProducer(services, records, rate)
    kills: list[
        tuple[str, float, int]
    ] = []  # (worker, seconds into the run, records the killed one had read)
    store = ModelStore.from_url(services.redis_url, namespace=namespace)
    try:
        driver.start()
        started = time.monotonic()
        for k, (moment, kind) in enumerate(moments, start=1):
            # Each incarnation first reads something, so every kill interrupts work in progress. A join
            # incarnation first reads the sessions changelog and rebuilds its sessions: 5-24 s from spawn
            # to its first record on the shared machine (session 5), most of it the rebuild late in the run.
            workers[kind].wait_for(metric[kind], 1, timeout=180)
            watch.read_first(workers[kind])
            time.sleep(max(0.0, started + moment - time.monotonic()) + rng.uniform(0.0, 0.5))
            read = int(workers[kind].total(metric[kind]))
            workers[kind].kill()
            watch.ended(workers[kind])
            kills.append((kind, round(time.monotonic() - started, 1), read))
            env = run.env if kind == "join" else learner_env
            workers[kind] = WorkerProcess(env, mode=kind, name=f"{kind}-{k}", loglevel=loglevel)
            watch.spawned(workers[kind])
        sent = driver.finish(timeout=duration + 120)
        examples = read_examples(services, run.examples, distinct=expected.examples, timeout=240)
        assert workers["join"].alive(), workers["join"].log_tail()
        # The learner catches up: every model's offsets reach the last record of its segment.
        topic = [ExampleRecord(p, o, v) for p, o, v in read_records(services, run.examples, 4)]
        last: dict[str, tuple[int, int]] = {}
        for r in topic:
            last[str(example_dicts(r.value)[0]["segment"])] = (r.partition, r.offset)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            offsets = {(m.policy, m.segment): m.meta.offsets for m in store.models() if m.meta}
            if all(
                offsets.get((policy, segment), {}).get(last[segment][0]) == last[segment][1]
                for policy in ("logistic", "linucb")
                for segment in last
            ):
                break
            assert workers["learn"].alive(), workers["learn"].log_tail()
            time.sleep(0.5)
        else:
            raise AssertionError(f"models did not catch up:\n{workers['learn'].log_tail()}")
        stored = {
            (policy, segment): learner_from_bytes(store.get(policy, segment).model_bytes)
            for policy in ("logistic", "linucb")
            for segment in last
        }
    finally:
        watch.stop()
        for worker in workers.values():
            watch.ended(worker)
            worker.stop()
        store.close()
        print("\nincarnations (log, s to first record, s lived):", *watch.summary(), sep="\n  ")
    assert sent == len(records) >= n_events
    assert [kind for kind, _, _ in kills].count("join") >= KILLS
    assert [kind for kind, _, _ in kills].count("learn") >= KILLS
    assert all(read > 0 for _, _, read in kills), kills
    audit = audit_examples(examples, expected)
    assert audit.problems == [], (audit.problems, kills, workers["join"].log_tail())
    assert audit.positives == len(expected.clicks)
    # Nothing went to the dead-letter topic: no click was taken for an orphan across the restarts.
    assert read_records(services, run.deadletter, 4) == []
    # The same examples topic, learned in one uninterrupted pass in offset order.
    reference = LearnerRuntime(StreamSettings(drift_response=0), store=None)
    for p in range(4):
        part = sorted((r for r in topic if r.partition == p), key=lambda r: r.offset)
        for i in range(0, len(part), 777):  # other micro-batch boundaries than the worker's
            reference.process(part[i : i + 777])
    probe = np.random.default_rng(0).random((50, 20))
    for (policy, segment), model in stored.items():
        want = reference.model(policy, segment)
        assert isinstance(model, LogisticLearner if policy == "logistic" else LinUCB)
        assert model.n_examples == want.n_examples > 0, (policy, segment)
        np.testing.assert_allclose(model.score_many(probe), want.score_many(probe), rtol=0, atol=1e-9)
        got_w, want_w = model.weights, want.weights  # type: ignore[attr-defined]
        assert max(abs(got_w[k] - want_w[k]) for k in want_w) <= 1e-9
    print(f"\n{len(records)} events, {len(expected.clicks)} clicks, {audit.distinct} examples "
          f"({len(topic)} records); kills (worker, s, records read by the killed one): {kills}; "
          f"re-delivered records: {audit.redelivered}")  # fmt: skip
