"""The join's example encoder writes exactly what ``codec.encode`` writes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.codec import decode_example, encode
from stream.events import Example, Labels
from stream.example_bytes import ExampleEncoder

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
