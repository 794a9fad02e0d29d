"""The Faust join worker through the real (embedded) broker: counts, labels, poison, crashes."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from stream.embedded import EmbeddedServices
from stream.synthetic import Expected, synthetic_sessions
from stream.worker_process import WorkerProcess
from tests.stream.kafka_helpers import consume_until, distinct_examples, example_dicts, new_run, produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for w in started:
        w.stop()


def _examples(values: list[bytes]) -> list[dict[str, object]]:
    return [ex for v in values for ex in example_dicts(v)]


def _check_examples(examples: list[dict[str, object]], expected: Expected, slate_size: int) -> None:
    final: dict[str, dict[str, object]] = {}
    for ex in examples:
        eid = str(ex["example_id"])
        prev = final.get(eid)
        if prev is None or int(ex["revision"]) >= int(prev["revision"]):  # type: ignore[call-overload]
            final[eid] = ex
    assert len(final) == expected.examples
    clicked = {(str(e["request_id"]), str(e["trip_id"])) for e in final.values() if e["clicked"]}
    assert clicked == expected.clicks
    for e in final.values():
        key = (str(e["request_id"]), str(e["trip_id"]))
        if key in expected.positions:
            assert e["position"] == expected.positions[key]
        assert 0 <= int(e["position"]) < slate_size  # type: ignore[call-overload]
        assert e["reward"] == (1.0 if e["clicked"] else 0.0)
    # Cascade rule: in each slate, everything up to one past the last click is examined.
    by_request: dict[str, list[dict[str, object]]] = {}
    for e in final.values():
        by_request.setdefault(str(e["request_id"]), []).append(e)
    for slate in by_request.values():
        last = max((int(e["position"]) for e in slate if e["clicked"]), default=None)  # type: ignore[call-overload]
        limit = 2 if last is None else last + 1  # top 3 without a click
        assert all(bool(e["examined"]) == (int(e["position"]) <= limit) for e in slate)  # type: ignore[call-overload]


def test_ten_thousand_sessions_join_exactly(services: EmbeddedServices, workers: list[WorkerProcess]) -> None:
    run = new_run(services)
    records, expected = synthetic_sessions(
        n_sessions=10_000, seed=11, t0=time.time(), slate_size=5,
        impressions_topic=run.impressions, interactions_topic=run.interactions,
    )  # fmt: skip
    produce(services, records)
    workers.append(WorkerProcess(run.env))
    values = consume_until(services, run.examples, distinct_examples(expected.examples), timeout=180)
    examples = _examples(values)
    # No crash, so nothing is emitted twice; a click read after its window closed (the
    # consumer may read one topic ahead of the other) is a correction: a new revision.
    ids = Counter((str(e["example_id"]), int(e["revision"])) for e in examples)  # type: ignore[call-overload]
    assert max(ids.values()) == 1
    _check_examples(examples, expected, slate_size=5)
    w = workers[0]
    assert w.total("smarttrip_stream_events_total{outcome=ok") == len(records)
    assert w.total("smarttrip_stream_deadletters_total") == 0
    duplicates = len(records) - 10_000 - len(expected.clicks)
    assert w.total("smarttrip_stream_join_events_total{kind=duplicate_interaction") == duplicates
    # Every click joined either in its window (a clicked example at revision 0) or late (a correction).
    on_time = w.total("smarttrip_stream_joined_clicks_total")
    late = w.total("smarttrip_stream_join_events_total{kind=late_attached")
    assert on_time + late == len(expected.clicks)


POISON: list[tuple[str, bytes | None, str]] = [
    ("impressions", b"{not json", "bad_json"),
    ("interactions", b'{"v": 1, "kind": "interaction", "event_id": 5}', "invalid_field"),
    ("impressions", b'{"v": 99, "kind": "impression"}', "unknown_version"),
    ("interactions", b'{"v": 1, "kind": "interaction", "pad": "' + b"x" * (1_100_000) + b'"}', "too_large"),
    ("interactions", None, "bad_json"),
]


def test_poison_goes_to_deadletter_while_good_events_flow(
    services: EmbeddedServices, workers: list[WorkerProcess]
) -> None:
    run = new_run(services)
    records, expected = synthetic_sessions(
        n_sessions=200, seed=5, t0=time.time(), slate_size=4,
        impressions_topic=run.impressions, interactions_topic=run.interactions,
    )  # fmt: skip
    topic_of = {"impressions": run.impressions, "interactions": run.interactions}
    poison = [(topic_of[t], b"poison", v) for t, v, _ in POISON]
    half = len(records) // 2
    produce(services, [*records[:half], *poison, *records[half:]])
    workers.append(WorkerProcess(run.env))
    examples = _examples(consume_until(services, run.examples, distinct_examples(expected.examples), 120))
    _check_examples(examples, expected, slate_size=4)
    dead = [
        json.loads(v) for v in consume_until(services, run.deadletter, lambda v: len(v) >= len(POISON), 30)
    ]
    assert sorted(d["reason"] for d in dead) == sorted(r for _, _, r in POISON)
    assert all(d["stage"] == "decode" for d in dead)
    assert {d["source_topic"] for d in dead} == {run.impressions, run.interactions}
    too_large = next(d for d in dead if d["reason"] == "too_large")
    assert too_large["size"] > 1_048_576 and len(too_large["excerpt_b64"]) < 1024
    assert workers[0].total("smarttrip_stream_deadletters_total{reason=bad_json") == 2


def test_two_workers_one_killed_still_yield_every_example(
    fresh_services: EmbeddedServices, workers: list[WorkerProcess]
) -> None:
    services = fresh_services
    run = new_run(services)
    records, expected = synthetic_sessions(
        n_sessions=6000, seed=7, t0=time.time(), slate_size=4, spacing_s=0.002,
        impressions_topic=run.impressions, interactions_topic=run.interactions,
    )  # fmt: skip
    produce(services, records)
    a, b = WorkerProcess(run.env, name="a"), WorkerProcess(run.env, name="b")
    workers += [a, b]
    # Both in the group and working: each has processed some input.
    for w in (a, b):
        w.wait_for("smarttrip_stream_events_total", 1, timeout=60)
    a.kill()
    values = consume_until(services, run.examples, distinct_examples(expected.examples), 180)
    examples = _examples(values)
    _check_examples(examples, expected, slate_size=4)
    # Re-deliveries after the crash may repeat an example, always under its own id and content.
    seen: dict[tuple[str, int], tuple[object, ...]] = {}
    for e in examples:
        content = (e["clicked"], e["position"], e["reward"], e["examined"])
        key = (str(e["example_id"]), int(e["revision"]))  # type: ignore[call-overload]
        assert seen.setdefault(key, content) == content
