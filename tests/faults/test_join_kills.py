"""The join worker SIGKILLed at seeded random moments while a driver produces live traffic.

The driver (:class:`tests.faults.helpers.PacedProducer`) produces seeded
synthetic sessions — one 5-trip slate each, known clicks, some clicks sent
twice upstream, some without ``request_id`` — at a fixed rate with event
times following the wall clock, while one join worker consumes them. The
worker is killed (SIGKILL, no clean shutdown) at least five times, each time
at a seeded random moment after it has made progress, and restarted. After
the run, every valid click the driver produced is in exactly one positive
example: counted exactly, against the driver's own record of its clicks.

Sizes: 20,000 events in CI (~13,000 sessions at 1,000 events/s);
``SMARTTRIP_FAULTS_SCALE=full``: 100,000 events (~65,000 sessions at
1,500 events/s), the issue's figure. Learner kills are covered by
``tests/stream/test_learner_worker.py::test_killed_learner_converges_to_the_uninterrupted_models``.
"""

from __future__ import annotations

import random
import time

import pytest

from stream.embedded import EmbeddedServices
from stream.worker_process import WorkerProcess
from tests.faults.helpers import (
    EVENTS_PER_SESSION,
    PacedProducer,
    audit_examples,
    read_examples,
    read_records,
    sessions_for,
)
from tests.faults.scale import sized
from tests.stream.kafka_helpers import new_run

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(sized(420, 1500))]

KILLS = 5


def test_join_worker_killed_five_times_every_click_in_exactly_one_positive_example(
    fresh_services: EmbeddedServices,
) -> None:
    services = fresh_services
    n_events = sized(20_000, 100_000)
    rate = float(sized(1_000, 1_500))
    run = new_run(services)
    duration = n_events / rate
    records, expected = sessions_for(
        n_events, seed=41, t0=time.time() + 1.0, spacing_s=duration * EVENTS_PER_SESSION / n_events,
        impressions=run.impressions, interactions=run.interactions,
    )  # fmt: skip
    rng = random.Random(41)
    # Kill moments: seeded, spread over the production time (sorted offsets from its start).
    moments = sorted(rng.uniform(0.05, 1.0) * duration for _ in range(KILLS))
    worker = WorkerProcess(run.env, name="join-0")
    driver = PacedProducer(services, records, rate)
    kills: list[tuple[float, int]] = []  # (seconds into the run, events the killed incarnation had read)
    try:
        driver.start()
        started = time.monotonic()
        for k, moment in enumerate(moments, start=1):
            # Each incarnation first reads something, so every kill interrupts work in progress.
            worker.wait_for("smarttrip_stream_events_total", 1, timeout=90)
            time.sleep(max(0.0, started + moment - time.monotonic()) + rng.uniform(0.0, 0.5))
            read = int(worker.total("smarttrip_stream_events_total"))
            worker.kill()
            kills.append((round(time.monotonic() - started, 1), read))
            worker = WorkerProcess(run.env, name=f"join-{k}")
        sent = driver.finish(timeout=duration + 120)
        examples = read_examples(services, run.examples, distinct=expected.examples, timeout=240)
        assert worker.alive(), worker.log_tail()
    finally:
        worker.stop()
    assert sent == len(records) >= n_events
    assert len(kills) >= KILLS and all(read > 0 for _, read in kills), kills
    audit = audit_examples(examples, expected)
    assert audit.problems == [], (audit.problems, kills, worker.log_tail())
    assert audit.positives == len(expected.clicks)
    # Nothing went to the dead-letter topic: no click was taken for an orphan across the restarts.
    assert read_records(services, run.deadletter, 4) == []
    print(f"\n{len(records)} events, {len(expected.clicks)} clicks, {audit.distinct} examples; "
          f"kills (s, events read by the killed worker): {kills}; re-delivered records: {audit.redelivered}")  # fmt: skip
