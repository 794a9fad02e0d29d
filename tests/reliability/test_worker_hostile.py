"""Hostile records through a running join worker: each is dead-lettered with its reason, none stops it."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest

from stream.embedded import EmbeddedServices
from stream.synthetic import synthetic_sessions
from stream.worker_process import WorkerProcess
from tests.reliability.strategies import dumps
from tests.stream.kafka_helpers import consume_until, distinct_examples, new_run, produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _hostile_impressions(valid: bytes) -> list[tuple[bytes, str]]:
    base: dict[str, Any] = json.loads(valid)

    def variant(i: int, **changes: Any) -> dict[str, Any]:
        return {**base, "request_id": f"evil-{i}", **changes}

    slate = base["slate"]
    out = [
        # a lone surrogate, which the stdlib parser lets through and no encoder accepts
        (dumps(variant(0)).replace(b'"evil-0"', b'"evil-\\ud800"'), "bad_json"),
        (dumps(variant(1, slate=[{**slate[0], "position": -1}, *slate[1:]])), "invalid_field"),
        (dumps(variant(2, slate=[{**slate[0], "position": 10**12}, *slate[1:]])), "invalid_field"),
        (dumps(variant(3, slate=[{**slate[0], "propensity": float("nan")}, *slate[1:]])), "invalid_field"),
        (dumps(variant(4, slate=[{**slate[0], "score": float("inf")}, *slate[1:]])), "invalid_field"),
        (dumps(variant(5, ts=10**40)), "invalid_field"),
        (b"[" * 50_000 + b"]" * 50_000, "bad_json"),
        (b'{"v": 1, "kind": "impression", "request_id": ' + b"9" * 5000 + b"}", "bad_json"),
        (b"\xff\xfe\x00garbage", "bad_json"),
    ]
    return out


def test_hostile_records_are_dead_lettered_and_the_worker_goes_on(services: EmbeddedServices) -> None:
    run = new_run(services, partitions=2)
    records, expected = synthetic_sessions(
        n_sessions=60, seed=21, t0=time.time(), slate_size=4,
        impressions_topic=run.impressions, interactions_topic=run.interactions,
    )  # fmt: skip
    valid = next(r.value for r in records if r.topic == run.impressions)
    hostile = _hostile_impressions(valid)
    bad_interactions = [
        (b'{"v": 1, "kind": "interaction", "event_id": "e", "session_id": "s", "trip_id": "t", "type": "view",'
         b' "ts": 1700000000}', "invalid_field"),
        (b'{"v": 1, "kind": "interaction", "event_id": "e", "session_id": "s", "trip_id": "t", "type": "dwell",'
         b' "value": -3, "ts": 1700000000}', "invalid_field"),
    ]  # fmt: skip
    poison = [(run.impressions, b"k", raw) for raw, _ in hostile]
    poison += [(run.interactions, b"k", raw) for raw, _ in bad_interactions]
    half = len(records) // 2
    produce(services, [*records[:half], *poison, *records[half:]])
    worker = WorkerProcess(run.env, name="hostile-join")
    try:
        consume_until(services, run.examples, distinct_examples(expected.examples), 90)
        dead = [
            json.loads(v)
            for v in consume_until(services, run.deadletter, lambda v: len(v) >= len(poison), 30)
        ]
        assert worker.alive(), worker.log_tail()
        want = Counter(reason for _, reason in [*hostile, *bad_interactions])
        assert Counter(d["reason"] for d in dead) == want
        assert all(d["stage"] == "decode" and d["detail"] for d in dead)
        counted = worker.total("smarttrip_stream_deadletters_total")
        assert counted == len(poison)
    finally:
        worker.stop()
