"""The learner's duplicate filter remembers ids for SMARTTRIP_DEDUPE_HORIZON_S of event time (stream.recent_ids)."""

from __future__ import annotations

import orjson
import pytest

from stream.learner_runtime import ExampleRecord, LearnerRuntime
from stream.settings import SettingsError, StreamSettings
from stream.synthetic import synthetic_examples


def _example(request_id: str, ts: float) -> bytes:
    value = orjson.loads(next(iter(synthetic_examples(n=1, seed=0, t0=ts))).value)
    ids = {"request_id": request_id, "example_id": f"{request_id}:{value['trip_id']}"}
    return orjson.dumps(value | ids | {"ts": ts, "segment": "adventure"})


def _count(runtime: LearnerRuntime, outcome: str) -> float:
    return sum(
        s.value
        for family in runtime.metrics.registry.collect()
        for s in family.samples
        if s.name == "smarttrip_learner_examples_total" and s.labels.get("outcome") == outcome
    )


@pytest.mark.parametrize(("horizon_s", "dropped"), [(120.0, True), (10.0, False)])
@pytest.mark.parametrize("fast", [False, True])
def test_a_re_emitted_example_is_dropped_within_the_horizon_only(
    horizon_s: float, dropped: bool, fast: bool
) -> None:
    runtime = LearnerRuntime(
        StreamSettings(dedupe_horizon_s=horizon_s), None, clock=lambda: 1000.0, fast=fast
    )
    t0 = 1000.0
    # "a" at t0; later examples move event time 30 s on; then the join re-emits "a" (its ts unchanged)
    values = [_example("a", t0), _example("b", t0 + 15.0), _example("c", t0 + 30.0), _example("a", t0)]
    for offset, raw in enumerate(values):
        assert runtime.process([ExampleRecord(0, offset, raw)]) == []  # no dead letter
    # one per policy when dropped; with a 10 s horizon "a" was forgotten after 5-10 s of event time
    policies = len(runtime.policies)
    assert _count(runtime, "duplicate") == (policies if dropped else 0)
    assert _count(runtime, "learned") == (3 if dropped else 4) * policies


def test_the_horizon_is_validated() -> None:
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(SettingsError, match="SMARTTRIP_DEDUPE_HORIZON_S: must be > 0"):
            StreamSettings(dedupe_horizon_s=bad)
    assert StreamSettings.from_env({"SMARTTRIP_DEDUPE_HORIZON_S": "30"}).dedupe_horizon_s == 30.0
