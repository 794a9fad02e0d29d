"""The learner's decoder accepts what the codec accepts, with the same fields, and rejects the rest alike."""

from __future__ import annotations

import math
import time

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream import learner_decode
from stream.codec import decode_example, decode_examples
from stream.errors import EventError
from stream.events import MAX_SLATE_SIZE
from stream.example_bytes import pack_examples
from stream.learner_decode import LearnRow, learn_rows
from stream.synthetic import synthetic_examples

RAWS = [r.value for r in synthetic_examples(n=200, seed=4, t0=time.time())]
BASE = orjson.loads(RAWS[0])


def _same(raw: bytes) -> None:
    """learn_rows(raw) of a one-example record is the codec's verdict: the same fields, or the same error."""
    _same_many(raw)


def test_valid_records_take_the_fast_path_with_the_codecs_fields() -> None:
    for raw in RAWS:
        assert learner_decode._fast(orjson.loads(raw)) is not None
        _same(raw)
    randomized = orjson.dumps(BASE | {"randomized": True, "revision": 2, "is_correction": True})
    assert learn_rows(randomized)[0].randomized and learn_rows(randomized)[0].revision == 2
    _same(randomized)


@pytest.mark.parametrize(
    "change",
    [
        {"propensity": 0}, {"propensity": 1.5}, {"position": True}, {"position": -1}, {"position": 10**9},
        {"phi": [1.0, "x"]}, {"phi": [1.0, 1e308, 1e308]}, {"phi": "nope"}, {"reward": None},
        {"is_correction": True}, {"randomized": 1}, {"v": 99}, {"kind": "impression"},
        {"example_id": "other:id"}, {"segment": ""}, {"labels": {"click": -1}}, {"ts": 0},
        {"labels": {"click": 1, "save": 0, "booking_start": 0, "contact": 0, "dwell_s": -1.0}},
        {"clicked": "yes"}, {"position": 3.0}, {"reward": 2}, {"propensity": 1},
    ],
)  # fmt: skip
def test_odd_records_get_the_codecs_verdict(change: dict[str, object]) -> None:
    _same(orjson.dumps(BASE | change))


@pytest.mark.parametrize(
    "raw",
    [b"", b"[]", b"{", b'{"v": 1}', b"\xff\xfe", b"x" * 2_000_000,
     RAWS[0].replace(b'"reward":0.0', b'"reward":NaN')],
)  # fmt: skip
def test_malformed_payloads_get_the_codecs_error(raw: bytes) -> None:
    _same(raw)


def test_non_finite_phi_is_left_to_the_codec() -> None:
    raw = orjson.dumps(BASE).replace(b'"phi":[1.0', b'"phi":[1e400')
    assert learner_decode._fast(BASE | {"phi": [math.inf, *BASE["phi"][1:]]}) is None
    _same(raw)


@settings(max_examples=200, deadline=None)
@given(
    key=st.sampled_from(sorted(BASE)),
    value=st.one_of(
        st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
        st.text(max_size=5), st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=3),
    ),
)  # fmt: skip
def test_mutated_records_get_the_codecs_verdict(key: str, value: object) -> None:
    try:
        raw = orjson.dumps(BASE | {key: value})
    except TypeError:  # an integer orjson cannot write
        raw = orjson.dumps(BASE | {key: str(value)})
    _same(raw)


def _same_many(raw: bytes) -> None:
    """learn_rows(raw) is the codec's verdict on a record of one example or of a slate's."""
    try:
        expected: list[LearnRow] | EventError = [LearnRow.of(ex) for ex in decode_examples(raw)]
    except EventError as err:
        expected = err
    if isinstance(expected, EventError):
        with pytest.raises(EventError) as got:
            learn_rows(raw)
        assert (got.value.field, got.value.reason, str(got.value)) == (
            expected.field, expected.reason, str(expected),
        )  # fmt: skip
    else:
        assert learn_rows(raw) == expected


SLATE = pack_examples(RAWS[:10])[0]


def test_a_slates_record_gives_its_examples_in_order() -> None:
    rows = learn_rows(SLATE)
    assert rows == [row for raw in RAWS[:10] for row in learn_rows(raw)]
    assert [LearnRow.of(decode_example(raw)) for raw in RAWS[:10]] == rows
    _same_many(SLATE)


@pytest.mark.parametrize(
    "change", [{"propensity": 0}, {"phi": [1.0, "x"]}, {"v": 99}, {"kind": "impression"}, {"ts": 0}]
)
def test_one_bad_item_rejects_the_whole_record_naming_it(change: dict[str, object]) -> None:
    items = [orjson.loads(r) for r in RAWS[:5]]
    items[3] |= change
    raw = orjson.dumps({"v": 1, "kind": "examples", "examples": items})
    with pytest.raises(EventError, match=r"^examples\[3\]\."):
        decode_examples(raw)
    _same_many(raw)


@pytest.mark.parametrize(
    "envelope",
    [
        {"v": True}, {"v": 2}, {"v": None}, {"examples": []}, {"examples": None}, {"examples": "x"},
        {"examples": [1, 2]}, {"examples": [orjson.loads(RAWS[0])] * (MAX_SLATE_SIZE + 1)},
    ],
)  # fmt: skip
def test_a_bad_envelope_gets_the_codecs_error(envelope: dict[str, object]) -> None:
    raw = orjson.dumps(
        {"v": 1, "kind": "examples", "examples": [orjson.loads(r) for r in RAWS[:3]]} | envelope
    )
    with pytest.raises(EventError):
        decode_examples(raw)
    _same_many(raw)
