"""Property-based fuzzing of every decoder of untrusted bytes.

The contract (stream/codec.py, features/loader.py, features/trip_update.py):
bytes either decode to a valid record or raise the boundary's error with a
field path and a dead-letter reason; nothing else escapes (no KeyError,
TypeError, RecursionError…), and the decoders' fast paths never accept what
the careful paths refuse, nor decode differently.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.loader import CatalogLoadError, load_catalog, parse_trip
from features.trip_update import TripUpdateError, decode_trip_update
from stream import codec
from stream.errors import EventError
from tests.reliability.strategies import (
    VALID_EXAMPLES,
    VALID_IMPRESSIONS,
    VALID_INTERACTIONS,
    dumps,
    json_values,
    mutated,
)

DECODERS = {
    "impression": codec.decode_impression,
    "interaction": codec.decode_interaction,
    "example": codec.decode_example,
    "examples": codec.decode_examples,
    "dead_letter": codec.decode_dead_letter,
}
REASONS = {"bad_json", "too_large", "unknown_version", "invalid_field"}
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decode_or_error(decoder: Any, raw: bytes) -> object:
    """The record, or the EventError (checked to name a field and a known reason)."""
    try:
        return decoder(raw)
    except EventError as exc:
        assert exc.field, f"error without a field: {exc}"
        assert exc.reason in REASONS, exc.reason
        assert str(exc).startswith(exc.field)
        return exc


@FAST
@given(kind=st.sampled_from(sorted(DECODERS)), raw=st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_raise_event_error(kind: str, raw: bytes) -> None:
    _decode_or_error(DECODERS[kind], raw)


@FAST
@given(kind=st.sampled_from(sorted(DECODERS)), value=json_values)
def test_arbitrary_json_decodes_or_raises_event_error(kind: str, value: object) -> None:
    _decode_or_error(DECODERS[kind], dumps(value))


def _careful_impression(value: dict[str, Any]) -> object:
    with mock.patch.object(codec, "_slate_fast", lambda items: None):
        try:
            return codec.impression_from_dict(value)
        except EventError as exc:
            return exc


@FAST
@given(obj=mutated(VALID_IMPRESSIONS))
def test_mutated_impressions_fast_path_agrees_with_careful_path(obj: dict[str, Any]) -> None:
    raw = dumps(obj)
    got = _decode_or_error(codec.decode_impression, raw)
    careful = _careful_impression(codec._load(raw))  # the same parser as the decoder
    if isinstance(got, EventError):
        assert isinstance(careful, EventError)
        assert str(got) == str(careful)
    else:
        assert got == careful


@FAST
@given(obj=mutated(VALID_EXAMPLES))
def test_mutated_examples_fast_path_agrees_with_careful_path(obj: dict[str, Any]) -> None:
    raw = dumps(obj)
    got = _decode_or_error(codec.decode_example, raw)
    try:
        careful: object = codec.example_from_dict(codec._load(raw), "p")  # a prefix forces the careful path
    except EventError as exc:
        careful = exc
    if isinstance(got, EventError):
        assert isinstance(careful, EventError)
        assert str(careful) == "p." + str(got)
    else:
        assert got == careful


@FAST
@given(obj=mutated(VALID_INTERACTIONS))
def test_mutated_interactions_decode_or_raise(obj: dict[str, Any]) -> None:
    got = _decode_or_error(codec.decode_interaction, dumps(obj))
    if not isinstance(got, EventError):
        assert codec.decode_interaction(codec.encode(got)) == got  # what decodes re-encodes


@pytest.mark.parametrize("kind", sorted(DECODERS))
@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "bad_json"),  # deep nesting
        (b'{"v": 1, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", None),  # deep but ignored field
        (b"\xff\xfe{}", "bad_json"),  # invalid UTF-8
        (b'{"v": 1, "kind": "\xed\xa0\x80"}', "bad_json"),  # an encoded surrogate is not UTF-8
        (b'{"v": 1, "kind": "interaction", "session_id": "\\udc00"}', "bad_json"),  # escaped lone surrogate
        (b'{"v": 1e999}', "unknown_version"),
        (b'{"v": NaN}', "unknown_version"),
        (b'{"v": ' + b"9" * 5000 + b"}", "bad_json"),  # past the stdlib's int-digits limit
        (b"x" * (2 << 20), "too_large"),
    ],
)
def test_explicit_hostile_payloads(kind: str, raw: bytes, reason: str | None) -> None:
    with pytest.raises(EventError) as err:
        DECODERS[kind](raw)
    if reason is not None:
        assert err.value.reason == reason


@pytest.mark.parametrize(
    ("field", "value", "message_start"),
    [
        ("position", -1, "slate[0].position: must be"),
        ("position", 10**12, "slate[0].position: must be"),
        ("score", float("nan"), "slate[0].score: must be finite"),
        ("propensity", float("inf"), "slate[0].propensity: must be"),
    ],
)
def test_impression_edge_numbers_name_the_field(field: str, value: object, message_start: str) -> None:
    obj = json.loads(VALID_IMPRESSIONS[0])
    obj["slate"][0][field] = value
    with pytest.raises(EventError) as err:
        codec.decode_impression(dumps(obj))
    assert str(err.value).startswith(message_start)


# -- the catalog loader and the trips topic
_ROW_KEYS = st.sampled_from(
    ["trip_id", "title", "country", "continent", "themes", "difficulty", "duration_days", "price", "status",
     "departure_date", "trip_type", "popularity"]
)  # fmt: skip
_GOOD_ROW: dict[str, Any] = {
    "trip_id": "t1", "title": "Alps", "country": "Austria", "themes": ["hiking"], "difficulty": 3,
    "duration_days": 7, "price": 1200.0, "status": "open", "departure_date": "2026-06-01", "trip_type": "group",
}  # fmt: skip


@FAST
@given(changes=st.dictionaries(_ROW_KEYS, json_values, max_size=4))
def test_parse_trip_accepts_or_names_the_field(changes: dict[str, Any]) -> None:
    row = {**_GOOD_ROW, **changes}
    try:
        parse_trip(row)
    except ValueError as exc:
        assert getattr(exc, "field", None), f"no field named: {exc}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(st.binary(max_size=80) | json_values.map(dumps), max_size=5),
    suffix=st.sampled_from([".jsonl", ".csv"]),
)
def test_load_catalog_reports_every_bad_row(tmp_path: Path, lines: list[bytes], suffix: str) -> None:
    path = tmp_path / f"catalog{suffix}"
    good = json.dumps(_GOOD_ROW).encode() if suffix == ".jsonl" else None
    body = b"\n".join(([good] if good else []) + lines)
    path.write_bytes(body)
    result = load_catalog(path, strict=False)
    for problem in result.problems:
        assert problem.line >= 1 and str(problem)
    try:
        load_catalog(path, strict=True)
    except CatalogLoadError as exc:
        assert exc.problems == result.problems


def test_load_catalog_deep_json_and_huge_numbers_are_row_problems(tmp_path: Path) -> None:
    path = tmp_path / "catalog.jsonl"
    path.write_bytes(
        b"\n".join(
            [
                b"[" * 100_000 + b"]" * 100_000,
                b'{"price": ' + b"9" * 5000 + b"}",
                json.dumps(_GOOD_ROW).encode(),
            ]
        )
    )
    result = load_catalog(path, strict=False)
    assert [p.line for p in result.problems] == [1, 2]
    assert len(result.catalog) == 1


@FAST
@given(
    key=st.none() | st.binary(max_size=20), value=st.none() | st.binary(max_size=200) | json_values.map(dumps)
)
def test_trip_updates_decode_or_name_the_field(key: bytes | None, value: bytes | None) -> None:
    try:
        decode_trip_update(key, value)
    except TripUpdateError as exc:
        assert exc.field and exc.reason


@pytest.mark.parametrize(
    "value",
    [b"[" * 10_000 + b"]" * 10_000, b'{"v": 1, "op": "upsert", "trip_id": "t1", "ts": ' + b"9" * 5000 + b"}",
     b'{"v": 1, "op": "upsert", "trip_id": "t1", "ts": NaN, "set": {}}', b"\xff"],
)  # fmt: skip
def test_trip_update_hostile_payloads(value: bytes) -> None:
    with pytest.raises(TripUpdateError):
        decode_trip_update(b"t1", value)
