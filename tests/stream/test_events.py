"""The topic contract: round trips, and a table of bad payloads with their exact errors."""

from __future__ import annotations

import base64
import copy
import json
import pickle
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.codec import (
    decode_dead_letter,
    decode_example,
    decode_impression,
    decode_interaction,
    encode,
    to_dict,
)
from stream.errors import EventError
from stream.events import (
    MAX_PAYLOAD_BYTES,
    DeadLetter,
    Example,
    Impression,
    Interaction,
    Labels,
    SlateItem,
)

T0 = 1_700_000_000.0


def make_impression(**changes: Any) -> Impression:
    slate = tuple(
        SlateItem(trip_id=f"t{i}", position=i, score=10.0 - i, propensity=0.25, phi=(1.0, float(i)))
        for i in range(4)
    )
    fields: dict[str, Any] = {
        "request_id": "r1",
        "session_id": "s1",
        "user_id": "u-9f2c",
        "segment": "family",
        "policy": "linucb",
        "model_version": "m7",
        "feature_version": "phi-v1",
        "ts": T0,
        "slate": slate,
        "phi_names": ("BASE_SCORE", "PRICE_GAP"),
    }
    return Impression(**(fields | changes))


def make_example(**changes: Any) -> Example:
    fields: dict[str, Any] = {
        "example_id": "r1:t2",
        "request_id": "r1",
        "trip_id": "t2",
        "session_id": "s1",
        "user_id": "u-9f2c",
        "segment": "family",
        "policy": "linucb",
        "model_version": "m7",
        "feature_version": "phi-v1",
        "phi": (1.0, 2.0),
        "position": 2,
        "propensity": 0.25,
        "reward": 2.0,
        "labels": Labels(click=1, save=1, dwell_s=12.5),
        "clicked": True,
        "examined": True,
        "ts": T0,
    }
    return Example(**(fields | changes))


CLICK = Interaction("e1", "s1", "t2", "click", T0 + 5, request_id="r1")


def payload(record: Impression | Interaction | Example, edit: Callable[[dict[str, Any]], object]) -> bytes:
    """Encode ``record`` after ``edit`` changed its dict form (``edit`` may return raw bytes)."""
    data = copy.deepcopy(to_dict(record))
    result = edit(data)
    return result if isinstance(result, bytes) else json.dumps(data).encode()


def setter(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """Edit that sets a dotted path (``slate.3.propensity``) to ``value``."""

    def edit(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return edit


def deleter(key: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        del data[key]

    return edit


def raw(text: bytes) -> Callable[[dict[str, Any]], bytes]:
    return lambda data: text


def empty_phi(data: dict[str, Any]) -> None:
    data["phi_names"] = []
    for item in data["slate"]:
        item["phi"] = []


BAD_IMPRESSIONS: list[tuple[Callable[[dict[str, Any]], object], str, str]] = [
    (raw(b"not json"), "payload: invalid JSON: Expecting value at char 0", "bad_json"),
    (
        raw(b'{"v": 1,'),
        "payload: invalid JSON: Expecting property name enclosed in double quotes at char 8",
        "bad_json",
    ),
    (raw(b"\xff\xfe\x00"), "payload: invalid JSON: UnicodeDecodeError", "bad_json"),
    (raw(b"[" * 100_000), "payload: invalid JSON: RecursionError", "bad_json"),
    (raw(b"[1, 2]"), "payload: must be a JSON object, got array", "bad_json"),
    (raw(b" " * (MAX_PAYLOAD_BYTES + 1)), "payload: must be at most 1048576 bytes, got 1048577", "too_large"),
    (deleter("v"), "v: is required", "unknown_version"),
    (setter("v", 2), "v: unsupported schema version 2 (supported: 1)", "unknown_version"),
    (setter("v", "1"), "v: must be an integer, got string", "unknown_version"),
    (setter("v", True), "v: must be an integer, got bool", "unknown_version"),
    (setter("kind", "interaction"), "kind: must be 'impression', got 'interaction'", "invalid_field"),
    (deleter("request_id"), "request_id: is required", "invalid_field"),
    (setter("request_id", None), "request_id: is required", "invalid_field"),
    (setter("request_id", ""), "request_id: must be a non-empty string", "invalid_field"),
    (setter("session_id", "s" * 129), "session_id: must be at most 128 characters, got 129", "invalid_field"),
    (setter("user_id", 7), "user_id: must be a string, got integer", "invalid_field"),
    (setter("catalog_version", ""), "catalog_version: must be a non-empty string", "invalid_field"),
    (setter("ts", "now"), "ts: must be a number, got string", "invalid_field"),
    (setter("ts", True), "ts: must be a number, got bool", "invalid_field"),
    (setter("ts", 0), "ts: must be seconds since the epoch in (0, 4102444800], got 0", "invalid_field"),
    (
        setter("ts", 1_700_000_000_000),
        "ts: must be seconds since the epoch in (0, 4102444800], got 1700000000000",
        "invalid_field",
    ),
    (raw(b'{"v":1,"kind":"impression","ts":NaN}'), "request_id: is required", "invalid_field"),
    (
        lambda d: json.dumps(d).replace(str(T0), "NaN").encode(),
        "ts: must be finite, got nan",
        "invalid_field",
    ),
    (setter("slate", []), "slate: must have 1 to 1000 items, got 0", "invalid_field"),
    (setter("slate", "t1,t2"), "slate: must be an array, got string", "invalid_field"),
    (setter("slate.1", 5), "slate[1]: must be an object, got integer", "invalid_field"),
    (setter("slate.3.propensity", 0), "slate[3].propensity: must be in (0, 1], got 0", "invalid_field"),
    (setter("slate.0.propensity", 1.5), "slate[0].propensity: must be in (0, 1], got 1.5", "invalid_field"),
    (setter("slate.0.propensity", None), "slate[0].propensity: is required", "invalid_field"),
    (setter("slate.1.position", 1.0), "slate[1].position: must be an integer, got number", "invalid_field"),
    (setter("slate.1.position", True), "slate[1].position: must be an integer, got bool", "invalid_field"),
    (setter("slate.1.position", -1), "slate[1].position: must be in [0, 99999], got -1", "invalid_field"),
    (setter("slate.2.position", 0), "slate[2].position: duplicate position 0", "invalid_field"),
    (setter("slate.1.trip_id", "t0"), "slate[1].trip_id: duplicate trip_id 't0'", "invalid_field"),
    (setter("slate.2.score", "high"), "slate[2].score: must be a number, got string", "invalid_field"),
    (
        setter("slate.2.phi", [1.0, 2.0, 3.0]),
        "slate[2].phi: must have 2 values like slate[0].phi, got 3",
        "invalid_field",
    ),
    (setter("slate.0.phi", {"a": 1}), "slate[0].phi: must be an array, got object", "invalid_field"),
    (setter("slate.0.phi.0", "a"), "slate[0].phi[0]: must be a number, got string", "invalid_field"),
    (setter("slate.0.phi.1", False), "slate[0].phi[1]: must be a number, got bool", "invalid_field"),
    (
        lambda d: json.dumps(d).replace("[1.0, 0.0]", "[1.0, 1e400]").encode(),
        "slate[0].phi[1]: must be finite, got inf",
        "invalid_field",
    ),
    (setter("slate.0.phi", [0.0] * 257), "slate[0].phi: must have 0 to 256 items, got 257", "invalid_field"),
    (
        setter("phi_names", ["a", "b", "c"]),
        "phi_names: must have one name per phi value (2), got 3",
        "invalid_field",
    ),
    (setter("phi_names", ["a", "a"]), "phi_names[1]: duplicate value 'a'", "invalid_field"),
    (empty_phi, "slate[0].phi: must be non-empty unless catalog_version is set", "invalid_field"),
]


@pytest.mark.parametrize(("edit", "message", "reason"), BAD_IMPRESSIONS)
def test_bad_impression_is_rejected_with_named_field(
    edit: Callable[[dict[str, Any]], object], message: str, reason: str
) -> None:
    with pytest.raises(EventError) as info:
        decode_impression(payload(make_impression(), edit))
    assert str(info.value) == message
    assert info.value.reason == reason


def test_slate_of_1001_items_is_too_long() -> None:
    items = tuple(SlateItem(f"t{i}", i, 0.0, 1.0, (1.0,)) for i in range(1001))
    with pytest.raises(EventError, match=r"^slate: must have 1 to 1000 items, got 1001$"):
        decode_impression(encode(make_impression(slate=items, phi_names=()), validate=False))


BAD_INTERACTIONS: list[tuple[Callable[[dict[str, Any]], object], str]] = [
    (setter("type", "view"), "type: must be one of click, save, booking_start, contact, dwell, got 'view'"),
    (setter("type", 1), "type: must be a string, got integer"),
    (setter("value", -1), "value: must be >= 0, got -1"),
    (setter("value", True), "value: must be a number, got bool"),
    (setter("request_id", ""), "request_id: must be a non-empty string"),
    (deleter("event_id"), "event_id: is required"),
    (setter("trip_id", ["t2"]), "trip_id: must be a string, got array"),
    (setter("kind", "impression"), "kind: must be 'interaction', got 'impression'"),
]


@pytest.mark.parametrize(("edit", "message"), BAD_INTERACTIONS)
def test_bad_interaction_is_rejected_with_named_field(
    edit: Callable[[dict[str, Any]], object], message: str
) -> None:
    with pytest.raises(EventError) as info:
        decode_interaction(payload(CLICK, edit))
    assert str(info.value) == message
    assert info.value.reason == "invalid_field"


BAD_EXAMPLES: list[tuple[Callable[[dict[str, Any]], object], str]] = [
    (setter("example_id", "r1-t2"), "example_id: must be request_id:trip_id, got 'r1-t2'"),
    (setter("is_correction", True), "is_correction: must be false for revision 0"),
    (setter("revision", -1), "revision: must be in [0, 1000000000], got -1"),
    (setter("labels.click", -1), "labels.click: must be in [0, 1000000000], got -1"),
    (setter("labels.dwell_s", -0.5), "labels.dwell_s: must be >= 0, got -0.5"),
    (setter("labels", [1]), "labels: must be an object, got array"),
    (setter("clicked", 1), "clicked: must be a boolean, got integer"),
    (setter("propensity", 0.0), "propensity: must be in (0, 1], got 0"),
]


@pytest.mark.parametrize(("edit", "message"), BAD_EXAMPLES)
def test_bad_example_is_rejected_with_named_field(
    edit: Callable[[dict[str, Any]], object], message: str
) -> None:
    with pytest.raises(EventError) as info:
        decode_example(payload(make_example(), edit))
    assert str(info.value) == message


def test_round_trips() -> None:
    imp = make_impression(catalog_version="cat-2024-06")
    assert decode_impression(encode(imp)) == imp
    assert decode_interaction(encode(CLICK)) == CLICK
    no_request = Interaction("e2", "s1", "t3", "dwell", T0 + 9.5, value=42.0)
    assert decode_interaction(encode(no_request)) == no_request
    example = make_example(revision=2)
    assert example.is_correction
    assert decode_example(encode(example)) == example
    assert json.loads(encode(example))["is_correction"] is True
    empty_phi = make_impression(
        slate=(SlateItem("t1", 0, 1.0, 1.0, ()),), phi_names=(), catalog_version="cat-1"
    )
    assert decode_impression(encode(empty_phi)) == empty_phi


def test_encoding_is_versioned_compact_json() -> None:
    data = json.loads(encode(CLICK))
    assert data == {
        "v": 1,
        "kind": "interaction",
        "event_id": "e1",
        "session_id": "s1",
        "request_id": "r1",
        "trip_id": "t2",
        "type": "click",
        "value": 0.0,
        "ts": T0 + 5,
    }
    assert b" " not in encode(CLICK)


def test_unknown_fields_are_ignored_and_optional_fields_default() -> None:
    data = to_dict(CLICK) | {"client": "ios", "request_id": None}
    del data["value"]
    ev = decode_interaction(json.dumps(data).encode())
    assert (ev.request_id, ev.value) == (None, 0.0)


def test_encode_validates_by_default() -> None:
    bad = make_impression(slate=(SlateItem("t1", 0, 1.0, 0.0, (1.0, 0.0)),))
    with pytest.raises(EventError, match=r"^slate\[0\]\.propensity: must be in \(0, 1\], got 0$"):
        encode(bad)
    with pytest.raises(EventError, match=r"^payload: not encodable as JSON"):
        encode(make_impression(ts=float("nan")), validate=False)


def test_dead_letter_keeps_a_bounded_base64_excerpt() -> None:
    original = b"\x00garbage" * 100
    try:
        decode_interaction(original)
    except EventError as err:
        letter = DeadLetter.from_error(original, err, source_topic="interactions", ts=T0)
    assert letter.reason == "bad_json"
    assert letter.stage == "decode"
    assert letter.detail.startswith("payload: invalid JSON")
    assert letter.size == 800
    assert letter.excerpt() == original[:512]
    assert decode_dead_letter(encode(letter)) == letter
    empty = DeadLetter.from_bytes(
        b"", source_topic="impressions", reason="bad_json", stage="decode", detail="x", ts=T0
    )
    assert decode_dead_letter(encode(empty)) == empty
    bad = to_dict(letter) | {"excerpt_b64": "!!"}
    with pytest.raises(EventError, match=r"^excerpt_b64: must be base64$"):
        decode_dead_letter(json.dumps(bad).encode())


def test_event_error_pickles_with_its_reason() -> None:
    err = EventError("v", "is required", reason="unknown_version")
    back: EventError = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own object
    assert (str(back), back.reason, back.field) == ("v: is required", "unknown_version", "v")
    assert isinstance(back, ValueError)
    assert not back.retriable


ids = st.text(st.characters(codec="utf-8"), min_size=1, max_size=128)
floats = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def impressions(draw: st.DrawFn) -> Impression:
    dim = draw(st.integers(1, 4))
    trips = draw(st.lists(ids, min_size=1, max_size=6, unique=True))
    positions = draw(st.permutations(range(len(trips))))
    slate = tuple(
        SlateItem(
            trip,
            pos,
            draw(floats),
            draw(st.floats(min_value=1e-9, max_value=1.0)),
            tuple(draw(st.lists(floats, min_size=dim, max_size=dim))),
        )
        for trip, pos in zip(trips, positions, strict=True)
    )
    names = draw(st.one_of(st.just(()), st.lists(ids, min_size=dim, max_size=dim, unique=True).map(tuple)))
    request_id, session_id, user_id, segment, policy, model_version, feature_version = (
        draw(ids) for _ in range(7)
    )
    return Impression(
        request_id,
        session_id,
        user_id,
        segment,
        policy,
        model_version,
        feature_version,
        ts=draw(st.floats(min_value=1.0, max_value=4e9)),
        slate=slate,
        phi_names=names,
        catalog_version=draw(st.none() | ids),
    )


@settings(max_examples=60, deadline=None)
@given(impressions())
def test_any_valid_impression_round_trips(imp: Impression) -> None:
    assert decode_impression(encode(imp)) == imp


def test_excerpt_is_base64() -> None:
    letter = DeadLetter.from_bytes(
        b"\xff" * 600, source_topic="t", reason="r", stage="decode", detail="d", ts=T0
    )
    assert base64.b64decode(letter.excerpt_b64) == b"\xff" * 512
