"""The broker restarts empty (Tansu keeps its log in memory): the join worker must go on joining.

A restart of the embedded broker loses every topic, committed offset and
Faust changelog. Offsets the join worker holds from before refer to a log
that no longer exists; if it kept them, the first records of the new log
(up to the old positions) would be skipped without a trace. The test joins
a first batch, restarts the broker, recreates the topics, produces a second,
larger batch (so the old positions fall inside the new log) and requires
every example of the second batch. In the second variant the worker is
frozen (SIGSTOP) through the restart and the second batch, so it cannot see
the log empty in between: it must still notice the new log.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from stream.embedded import DEFAULT_TOPICS, EmbeddedServices
from stream.worker_process import WorkerProcess
from tests.faults.helpers import (
    audit_examples,
    produce_all,
    read_examples,
    restart_broker_empty,
    sessions_for,
)
from tests.stream.kafka_helpers import new_run

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.mark.parametrize(
    "frozen",
    [False, True],
    ids=["worker-running", "worker-frozen-through-restart"],
)
def test_join_worker_keeps_joining_after_the_broker_restarts_empty(
    fresh_services: EmbeddedServices, frozen: bool
) -> None:
    services = fresh_services
    run = new_run(services)
    topics = {
        **DEFAULT_TOPICS,
        **{t: 4 for t in (run.impressions, run.interactions, run.examples, run.deadletter)},
    }
    before, expected_before = sessions_for(
        3_000,
        seed=51,
        t0=time.time(),
        spacing_s=0.002,
        impressions=run.impressions,
        interactions=run.interactions,
    )
    worker = WorkerProcess(run.env, name="join-epoch")
    try:
        produce_all(services, before)
        first = read_examples(services, run.examples, distinct=expected_before.examples, timeout=120)
        assert audit_examples(first, expected_before).problems == []
        if frozen:
            os.kill(worker.pid, signal.SIGSTOP)
        restart_broker_empty(services, topics)
        assert worker.alive(), worker.log_tail()
        # A second, larger batch: the positions the worker held fall inside the new log.
        after, expected_after = sessions_for(
            9_000, seed=52, t0=time.time(), spacing_s=0.002, impressions=run.impressions,
            interactions=run.interactions,
        )  # fmt: skip
        produce_all(services, after)
        if frozen:
            os.kill(worker.pid, signal.SIGCONT)
        second = read_examples(services, run.examples, distinct=expected_after.examples, timeout=60)
        # Once the new log's commits caught up, every partition leaves the gate (batches take the fast path).
        # Checked for the running worker only: after a freeze through the restart, one partition stayed
        # gated for 60 s in 2 of ~8 runs (its examples all correct; cause not found, see README Known gaps).
        gated = worker.metrics()["smarttrip_stream_log_gated_partitions{}"]
        deadline = time.monotonic() + 30  # 10 s without refusals, then a commit or the 1 s check
        while gated and time.monotonic() < deadline:
            time.sleep(0.5)
            gated = worker.metrics()["smarttrip_stream_log_gated_partitions{}"]
        alive = worker.alive()
        log = worker.log_tail(60)
    finally:
        if frozen and worker.alive():
            os.kill(worker.pid, signal.SIGCONT)
        worker.stop()
    audit = audit_examples(second, expected_after)
    assert alive, log
    assert audit.problems == [], (audit.problems, log)
    assert gated == 0, log
