"""The decoders' fast paths give exactly what the careful paths give."""

from __future__ import annotations

import time

import orjson
import pytest

from stream import codec
from stream.synthetic import synthetic_examples, synthetic_sessions


def test_example_fast_path_equals_careful_path() -> None:
    for rec in synthetic_examples(n=300, seed=2, t0=time.time()):
        value = orjson.loads(rec.value)
        fast = codec._example_fast(value)
        assert fast is not None
        # A prefix forces the careful, field-by-field path.
        assert fast == codec.example_from_dict(value, "p")


def test_slate_fast_path_equals_careful_path(monkeypatch: pytest.MonkeyPatch) -> None:
    records, _ = synthetic_sessions(n_sessions=100, seed=3, t0=time.time())
    raws = [r.value for r in records if r.topic == "impressions"]
    fast = [codec.decode_impression(raw) for raw in raws]
    monkeypatch.setattr(codec, "_slate_fast", lambda items: None)
    careful = [codec.decode_impression(raw) for raw in raws]
    assert fast == careful


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("propensity", 0, "propensity: must be in (0, 1], got 0"),
        ("position", True, "position: must be an integer, got bool"),
        ("phi", [1.0, float("nan")], "phi[1]: must be finite, got nan"),
        ("is_correction", True, "is_correction: must be false for revision 0"),
    ],
)
def test_fast_path_leaves_errors_to_the_careful_path(field: str, value: object, message: str) -> None:
    data = orjson.loads(synthetic_examples(n=1, seed=1, t0=time.time())[0].value)
    data[field] = value
    assert codec._example_fast(data) is None
    with pytest.raises(codec.EventError) as err:
        codec.example_from_dict(data)
    assert str(err.value) == message


def test_interaction_fast_path_equals_careful_path() -> None:
    records, _ = synthetic_sessions(n_sessions=100, seed=7, t0=time.time())
    values = [orjson.loads(r.value) for r in records if r.topic == "interactions"]
    values += [v | {"request_id": None, "type": "dwell", "value": 12} for v in values[:5]]
    for value in values:
        fast = codec._interaction_fast(value)
        assert fast is not None
        assert fast == codec.interaction_from_dict(value, "p")  # a prefix forces the careful path


@pytest.mark.parametrize(
    ("field", "value"),
    [("v", True), ("type", "view"), ("value", -1), ("value", True), ("value", float("nan")), ("ts", 1.7e12),
     ("ts", False), ("request_id", ""), ("trip_id", 5), ("event_id", "x" * 129), ("kind", "impression")],
)  # fmt: skip
def test_interaction_fast_path_leaves_errors_to_the_careful_path(field: str, value: object) -> None:
    records, _ = synthetic_sessions(n_sessions=20, seed=8, t0=time.time())
    data = orjson.loads(next(r.value for r in records if r.topic == "interactions"))
    data[field] = value
    assert codec._interaction_fast(data) is None
    with pytest.raises(codec.EventError) as careful:
        codec.interaction_from_dict(data, "p")
    with pytest.raises(codec.EventError) as fast:
        codec.interaction_from_dict(data)
    assert str(fast.value) == str(careful.value).replace("p.", "", 1)
