"""The join's example encoder writes exactly what ``codec.encode`` writes."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring.stream_metrics import StreamMetrics
from stream.codec import decode_example, decode_examples, encode
from stream.events import Example, Labels
from stream.example_bytes import MAX_RECORD_BYTES, ExampleEncoder, pack_examples
from stream.join import Outcome
from stream.join_runtime import JoinRuntime, Output
from stream.session import EmittedSlate
from stream.settings import SettingsError, StreamSettings
from tests.stream.test_join import T0, script_records

finite = st.floats(allow_nan=False, allow_infinity=False)
ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=10)
labels = st.builds(
    Labels, st.integers(0, 3), st.integers(0, 3), st.integers(0, 2), st.integers(0, 2), st.floats(0, 1e4)
) | st.just(Labels())


@st.composite
def slates(draw: st.DrawFn) -> list[Example]:
    """The examples of one or two slates, in emission order (shared fields, per-item values)."""
    out: list[Example] = []
    for _ in range(draw(st.integers(1, 2))):
        rid, sid, uid, seg = draw(ids), draw(ids), draw(ids), draw(ids)
        ts = draw(st.floats(1.0, 4.1e9))
        dim = draw(st.integers(0, 4))
        shared = Labels()  # unlabelled items share one object, as in the join
        for _ in range(draw(st.integers(1, 5))):
            trip = draw(ids)
            lab = draw(labels | st.just(shared))
            out.append(Example(
                f"{rid}:{trip}", rid, trip, sid, uid, seg, draw(ids), draw(ids), "phi-v1",
                tuple(draw(st.lists(finite, min_size=dim, max_size=dim))), draw(st.integers(0, 99_999)),
                draw(st.floats(1e-9, 1.0)), draw(finite), lab, lab.click > 0, draw(st.booleans()), ts,
                draw(st.integers(0, 5)), draw(st.booleans()),
            ))  # fmt: skip
    return out


@settings(max_examples=200, deadline=None)
@given(slates())
def test_encoder_output_equals_codec_encode_byte_for_byte(examples: list[Example]) -> None:
    encoder = ExampleEncoder()
    for ex in examples:
        raw = encoder.encode(ex)
        assert raw == encode(ex, validate=False)
        assert decode_example(raw) == ex


class _EagerRuntime(JoinRuntime):
    """The runtime with outcomes handled as a subclass would: Emitted examples, encoded one by one."""

    def _handle(self, outcomes: Sequence[Outcome], now: float, out: list[Output], partition: int) -> None:
        assert not any(isinstance(o, EmittedSlate) for o in outcomes)
        super()._handle(outcomes, now, out, partition)


def _run(runtime_type: type[JoinRuntime], settings: StreamSettings) -> tuple[list[Output], dict[str, int]]:
    records = script_records()
    clock = [T0]
    rt = runtime_type(settings, StreamMetrics(), clock=lambda c=clock: c[0], changelog_topic="log")
    got: list[Output] = []
    for i, rec in enumerate(records):
        # the wall clock is ahead of event time and the other topic idle: each record moves the watermark
        clock[0] = T0 + 2000 + i * (settings.idle_s + 1)
        got += rt.process([rec])
    clock[0] += 10_000
    got += rt.tick() + rt.flush_all()
    return got, dict(rt.gate.dropped)


def test_the_runtime_encodes_slates_as_it_would_encode_their_examples() -> None:
    """Closes, late corrections, a user cap running out mid-slate: the same records, byte for byte."""
    settings = StreamSettings(user_cap_examples=5, user_cap_window_s=1e6, examples_per_record="one")
    (lazy, lazy_dropped), (eager, eager_dropped) = (_run(t, settings) for t in (JoinRuntime, _EagerRuntime))
    assert lazy == eager
    examples = [decode_example(o.value) for o in lazy if o.topic == "examples" and o.value is not None]
    assert any(ex.is_correction for ex in examples)
    assert lazy_dropped == eager_dropped and lazy_dropped["user_cap"] > 0
    assert len(examples) == 5


def test_a_slates_examples_go_out_in_one_record_holding_the_same_examples() -> None:
    """The default (one record per closed slate): the per-example records' examples, in order."""
    settings = StreamSettings(user_cap_examples=5, user_cap_window_s=1e6)
    per_slate, _ = _run(JoinRuntime, settings)
    one, _ = _run(
        JoinRuntime, StreamSettings(user_cap_examples=5, user_cap_window_s=1e6, examples_per_record="one")
    )
    values = [o.value for o in per_slate if o.topic == "examples" and o.value is not None]
    singles = [o.value for o in one if o.topic == "examples" and o.value is not None]
    assert [ex for v in values for ex in decode_examples(v)] == [decode_example(v) for v in singles]
    assert len(values) < len(singles)  # a slate's examples shared a record
    assert [o for o in per_slate if o.topic != "examples"] == [o for o in one if o.topic != "examples"]


def test_pack_examples_splits_at_the_record_size_limit() -> None:
    raws = [b'{"x":"' + bytes([97 + i % 26]) * 100_000 + b'"}' for i in range(12)]
    packed = pack_examples(raws)
    assert len(packed) == 3 and all(len(p) <= MAX_RECORD_BYTES for p in packed)
    items = [orjson.dumps(item) for p in packed for item in orjson.loads(p)["examples"]]
    assert items == raws


def test_examples_per_record_is_slate_or_one() -> None:
    assert StreamSettings.from_env({}).examples_per_record == "slate"
    assert StreamSettings.from_env({"SMARTTRIP_EXAMPLES_PER_RECORD": "one"}).examples_per_record == "one"
    with pytest.raises(SettingsError, match="SMARTTRIP_EXAMPLES_PER_RECORD: must be slate or one"):
        StreamSettings.from_env({"SMARTTRIP_EXAMPLES_PER_RECORD": "trip"})
