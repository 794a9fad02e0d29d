"""The join's example encoder writes exactly what ``codec.encode`` writes."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring.stream_metrics import StreamMetrics
from stream.codec import decode_example, encode
from stream.events import Example, Impression, Labels
from stream.example_bytes import ExampleEncoder
from stream.join import Outcome
from stream.join_runtime import JoinRuntime, Output, RawRecord
from stream.session import EmittedSlate
from stream.settings import StreamSettings
from tests.stream.test_join import SCRIPT, T0

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

    def _handle(self, outcomes: Sequence[Outcome], now: float, out: list[Output]) -> None:
        assert not any(isinstance(o, EmittedSlate) for o in outcomes)
        super()._handle(outcomes, now, out)


def test_the_runtime_encodes_slates_as_it_would_encode_their_examples() -> None:
    """Closes, late corrections, a user cap running out mid-slate: the same records, byte for byte."""
    settings = StreamSettings(user_cap_examples=5, user_cap_window_s=1e6)  # all of SCRIPT is user u1
    records = [
        RawRecord(
            "impressions" if isinstance(e, Impression) else "interactions",
            0,
            e.session_id.encode(),
            encode(e),
        )
        for e in SCRIPT
    ]
    outputs = []
    dropped = []
    for runtime_type in (JoinRuntime, _EagerRuntime):
        clock = [T0]
        rt = runtime_type(settings, StreamMetrics(), clock=lambda c=clock: c[0], changelog_topic="log")
        got: list[Output] = []
        for i, rec in enumerate(records):
            # the wall clock is ahead of event time and the other topic idle: each record moves the watermark
            clock[0] = T0 + 2000 + i * (settings.idle_s + 1)
            got += rt.process([rec])
        clock[0] += 10_000
        got += rt.tick() + rt.flush_all()
        outputs.append(got)
        dropped.append(rt.gate.dropped)
    lazy, eager = outputs
    assert lazy == eager
    examples = [decode_example(o.value) for o in lazy if o.topic == "examples" and o.value is not None]
    assert any(ex.is_correction for ex in examples)
    assert dropped[0] == dropped[1] and dropped[0]["user_cap"] > 0
    assert len(examples) == 5
