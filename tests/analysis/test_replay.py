"""Replay: the fast path equals the careful one; examples mode equals the learner agent's runtime."""

from __future__ import annotations

import gzip
import random
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bandit import LinUCB
from bandit.protocol import Learner
from stream.codec import decode_examples
from stream.export import ExportError, LogRecord, read_export, read_records, write_export
from stream.learner_runtime import ExampleRecord, LearnerRuntime
from stream.replay import Replayer
from stream.replay_fast import FastReplayer
from tests.analysis.replay_data import SETTINGS, session_records


@pytest.fixture(scope="module")
def records() -> list[LogRecord]:
    return session_records()


def assert_same_models(careful: Replayer, fast: Replayer) -> None:
    """Logistic and VW bit for bit; LinUCB (compiled: rank-one steps, not Woodbury blocks) to 1e-9."""
    assert careful.models().keys() == fast.models().keys()
    for key, model in careful.models().items():
        other = fast.models()[key]
        assert model.n_examples == other.n_examples, key
        if isinstance(model, LinUCB) and isinstance(other, LinUCB):
            np.testing.assert_allclose(other.A_inv, model.A_inv, rtol=0, atol=1e-9, err_msg=str(key))
            np.testing.assert_allclose(other.theta, model.theta, rtol=0, atol=1e-9, err_msg=str(key))
            np.testing.assert_array_equal(other.examination_curve, model.examination_curve)
        else:
            assert model.to_bytes() == other.to_bytes(), key


@pytest.mark.parametrize("compiled", [False, True])
def test_fast_path_learns_exactly_what_the_careful_path_learns(
    records: list[LogRecord], compiled: bool
) -> None:
    careful = Replayer("raw", settings=SETTINGS)
    fast = FastReplayer(settings=SETTINGS, compiled=compiled)
    a, b = careful.run(records), fast.run(records)
    assert a.corrections > 0, "the input must exercise late clicks"
    assert a.deadletters["bad_json"] == 1 and a.deadletters["invalid_field"] >= 1
    assert (a.events, a.examples, a.corrections, a.deadletters) == (
        b.events,
        b.examples,
        b.corrections,
        b.deadletters,
    )
    if compiled:
        assert_same_models(careful, fast)
    else:
        assert careful.models().keys() == fast.models().keys()
        for key, model in careful.models().items():
            assert model.to_bytes() == fast.models()[key].to_bytes(), key


def test_fast_path_applies_the_quality_gate(records: list[LogRecord]) -> None:
    """A tight user cap and click rules drop examples in the join: the fast path drops the same ones."""
    gated = replace(SETTINGS, user_cap_examples=5, bot_max_fast_clicks=1, bot_min_click_gap_s=5.0)
    careful = Replayer("raw", settings=gated)
    fast = FastReplayer(settings=gated)
    a, b = careful.run(records), fast.run(records)
    assert (
        careful.join.gate.dropped.get("user_cap", 0) > 0
        and careful.join.gate.dropped.get("fast_clicks", 0) > 0
    )
    assert fast.join.gate.dropped == careful.join.gate.dropped
    assert a.examples == b.examples < Replayer("raw", settings=SETTINGS).run(records).examples
    assert_same_models(careful, fast)


class JoinOnly(Replayer):
    """Keeps the example records the join emits, in order, instead of learning them."""

    emitted: list[bytes]

    def _learn(self, records: list[ExampleRecord]) -> None:
        if not hasattr(self, "emitted"):
            self.emitted = []
        self.emitted += [r.value for r in records if r.value is not None]


def test_examples_mode_equals_the_learner_runtime_fed_online(records: list[LogRecord]) -> None:
    """The examples topic as the join produced it (2 partitions by segment, with re-deliveries)
    learned by replay equals the learner agent's runtime fed in other micro-batches."""
    join_only = JoinOnly("raw", settings=SETTINGS)
    join_only.run(records)
    emitted = join_only.emitted
    rng = random.Random(3)
    partitions: dict[int, list[bytes]] = {0: [], 1: []}
    for value in emitted:
        p = zlib.crc32(value.split(b'"segment":')[1][:12]) % 2
        partitions[p].append(value)
        if rng.random() < 0.03:  # the join re-emitting after a crash: same (example_id, revision)
            partitions[p].append(value)
    topic = [
        LogRecord("examples", p, o, 0, None, v) for p, vs in partitions.items() for o, v in enumerate(vs)
    ]
    online = LearnerRuntime(SETTINGS, None)
    for p, vs in partitions.items():
        for start in range(0, len(vs), 37):
            online.process([ExampleRecord(p, start + k, v) for k, v in enumerate(vs[start : start + 37])])
    replay = Replayer("examples", settings=SETTINGS)
    stats = replay.run(records + topic)  # the raw topics are ignored in this mode
    assert stats.ignored == len(records)
    assert online.slots().keys() == replay.models().keys()
    for key, model in online.slots().items():
        assert_same_model(model, replay.models()[key])
    assert stats.examples == sum(len(decode_examples(v)) for v in set(emitted))


def assert_same_model(a: Learner, b: Learner) -> None:
    """Same examples learned, same weights and scores within 1e-9 (micro-batch boundaries differ)."""
    assert a.n_examples == b.n_examples
    probe = np.random.default_rng(0).random((50, a.n_features))
    np.testing.assert_allclose(a.score_many(probe), b.score_many(probe), rtol=0, atol=1e-9)
    wa, wb = getattr(a, "weights", None), getattr(b, "weights", None)
    if isinstance(wa, dict) and isinstance(wb, dict):
        assert max(abs(wa[k] - wb[k]) for k in wa) <= 1e-9


def test_export_round_trip_keeps_exact_bytes(tmp_path: Path, records: list[LogRecord]) -> None:
    odd = [LogRecord("impressions", 1, 5, 0, None, b"\xff\xfe binary"), LogRecord("x", 0, 0, 0, b"k", None)]
    for name in ("out.jsonl", "out.jsonl.gz"):
        path = tmp_path / name
        assert write_export(records + odd, path) == len(records) + 2
        assert list(read_export(path)) == records + odd
    with gzip.open(tmp_path / "out.jsonl.gz", "rb") as fh:
        assert fh.readline().startswith(b'{"v":1,"topic":"impressions"')


def test_export_errors_name_the_line() -> None:
    good = b'{"v":1,"topic":"t","partition":0,"offset":0,"timestamp_ms":0,"key":null,"value":{"a":1}}'
    assert next(iter(read_records([good]))).value == b'{"a":1}'
    with pytest.raises(ExportError, match="line 2: field 'offset' must be an integer >= 0"):
        list(read_records([good, good.replace(b'"offset":0', b'"offset":-1')]))
    with pytest.raises(ExportError, match="line 1: field 'v' must be 1"):
        list(read_records([b'{"v":2}']))
    with pytest.raises(ExportError, match="line 1: not JSON"):
        list(read_records([b"{"]))
