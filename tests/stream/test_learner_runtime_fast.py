"""The learner worker's fast path learns the same models as the reference path, record for record."""

from __future__ import annotations

import time

import numpy as np
import orjson
import pytest

from bandit import LinUCB, LogisticLearner, VWPolicy
from bandit.fast_kernels import AVAILABLE, FastLinUCB, FastLogisticLearner, FastVW
from stream.learner_runtime import ExampleRecord, LearnerRuntime
from stream.settings import StreamSettings
from stream.synthetic import synthetic_examples


def _records(n: int, seed: int) -> list[ExampleRecord]:
    """Examples on 3 partitions, some randomized, served by several policies, with a few bad and repeated ones."""
    rng = np.random.default_rng(seed)
    out: list[ExampleRecord] = []
    offsets = [0, 0, 0]
    for i, rec in enumerate(synthetic_examples(n=n, seed=seed, t0=time.time())):
        value = orjson.loads(rec.value)
        if i >= n // 2:  # clicks stop half-way: a drift the monitor answers (when it may)
            value.update(clicked=False, reward=0.0, labels=value["labels"] | {"click": 0})
        value["randomized"] = bool(rng.random() < 0.25)
        value["policy"] = ["rules", "logistic", "linucb", "vw", "other"][i % 5]
        raw = orjson.dumps(value)
        if i % 397 == 5:
            raw = raw.replace(b'"propensity":1.0', b'"propensity":0')  # a dead letter
        if i % 211 == 7:
            raw = b"{not json"
        partition = i % 3
        out.append(ExampleRecord(partition, offsets[partition], raw))
        offsets[partition] += 1
        if i % 101 == 3:  # the join re-emitting an example: a duplicate id at a later offset
            out.append(ExampleRecord(partition, offsets[partition], raw))
            offsets[partition] += 1
    return out


def _samples(runtime: LearnerRuntime) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in runtime.metrics.registry.collect()
        for s in family.samples
        if s.name.startswith(("smarttrip_learner_examples", "smarttrip_learner_deadletters", "smarttrip_learner_loss",
                              "smarttrip_learner_drift")) and not s.name.endswith("_created")
    }  # fmt: skip


@pytest.mark.parametrize("drift_response", [0, 1])
def test_fast_path_learns_what_the_reference_path_learns(drift_response: int) -> None:
    settings = StreamSettings(
        drift_response=drift_response, drift_min_examples=200, drift_cooldown=300, drift_min_change=0.05
    )
    ref = LearnerRuntime(settings, None, clock=lambda: 1000.0)
    fast = LearnerRuntime(settings, None, clock=lambda: 1000.0, fast=True)
    records = _records(4000, seed=11)
    rng = np.random.default_rng(0)
    start, dead_ref, dead_fast, moved = 0, [], [], False
    while start < len(records):
        size = int(rng.choice([1, 7, 40, 230, 500]))
        batch = records[start : start + size]
        dead_ref += ref.process(batch)
        dead_fast += fast.process(batch)
        start += size
        if start > 2000 and not moved:  # models ahead of the others on a partition (as after a reload)
            for runtime in (ref, fast):
                runtime._slots[("vw", "budget")].offsets[1] += 40
                runtime._slots[("logistic", "luxury")].offsets[2] += 70
            moved = True
    assert dead_fast == dead_ref and len(dead_ref) >= 20
    assert ref.slots().keys() == fast.slots().keys() and len(ref.slots()) == 15
    for (policy, segment), learner in fast.slots().items():
        reference = ref.model(policy, segment)
        assert learner.n_examples == reference.n_examples > 500
        assert fast._slots[(policy, segment)].offsets == ref._slots[(policy, segment)].offsets
        assert fast._slots[(policy, segment)].clicked_ts == ref._slots[(policy, segment)].clicked_ts
        if isinstance(reference, LinUCB):
            assert isinstance(learner, LinUCB)
            np.testing.assert_allclose(learner.A_inv, reference.A_inv, rtol=0, atol=1e-9)
            np.testing.assert_allclose(learner.theta, reference.theta, rtol=0, atol=1e-9)
        else:  # logistic and VW: bit for bit
            assert learner.to_bytes() == reference.to_bytes(), (policy, segment)
        if AVAILABLE:
            assert type(learner) in (FastLogisticLearner, FastLinUCB, FastVW)
        assert type(reference) in (LogisticLearner, LinUCB, VWPolicy)
    samples = _samples(fast)
    assert samples == _samples(ref)
    assert sum(v for (name, labels), v in samples.items() if ("outcome", "skipped_offset") in labels) > 0
    assert sum(v for (name, labels), v in samples.items() if ("outcome", "duplicate") in labels) > 0
    if drift_response:
        assert any(e.response for e in ref.drift.events), [
            (e.policy, e.signal, e.direction, e.before, e.after, e.seen) for e in ref.drift.events
        ]
    assert [(e.policy, e.segment, e.signal, e.seen, e.response) for e in fast.drift.events] == [
        (e.policy, e.segment, e.signal, e.seen, e.response) for e in ref.drift.events
    ]


def test_without_numba_the_fast_path_keeps_the_reference_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    from bandit import fast_kernels, vw_fast_learn

    monkeypatch.setattr(fast_kernels, "AVAILABLE", False)
    settings = StreamSettings(drift_response=0)
    ref = LearnerRuntime(settings, None, clock=lambda: 1000.0)
    fast = LearnerRuntime(settings, None, clock=lambda: 1000.0, fast=True)
    records = _records(600, seed=5)
    for start in range(0, len(records), 100):
        assert fast.process(records[start : start + 100]) == ref.process(records[start : start + 100])
    for (policy, segment), learner in fast.slots().items():
        reference = ref.model(policy, segment)
        if isinstance(reference, VWPolicy) and vw_fast_learn.AVAILABLE:
            assert type(learner) is vw_fast_learn.FastVWPolicy  # needs no numba
        else:
            assert type(learner) is type(reference)
        assert learner.to_bytes() == reference.to_bytes(), (policy, segment)
