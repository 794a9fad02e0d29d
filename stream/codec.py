"""Versioned JSON encoding of the topic records, and validation on decode.

Why: decoding is the one place where untrusted bytes become records. A record
that decodes is valid; one that does not raises
:class:`~stream.errors.EventError` whose message starts with the field path
(``slate[3].propensity: must be in (0, 1], got 0``) and whose ``reason`` says
what to count (``bad_json``, ``too_large``, ``unknown_version``,
``invalid_field``); the caller dead-letters it and goes on.

Format (schema version 1): one compact UTF-8 JSON object per record with
``"v": 1`` and ``"kind"`` (``impression``, ``interaction``, ``example``,
``dead_letter``), then the dataclass fields under their own names (tuples as
arrays, ``None`` as ``null``; an example also carries ``is_correction``).
Unknown fields are ignored, so optional fields can be added within version 1;
renaming, removing or changing the meaning of a field needs ``"v": 2``.
Payloads are at most 1 MiB. ``ts`` is float seconds since the epoch, in
(0, 4102444800] (2100-01-01), which rejects millisecond timestamps. ``null``
counts as absent: required fields must be present and non-null.
An ``examples`` record holds one example, or (kind ``examples``, the join's
default) a closed slate's: ``{"v": 1, "kind": "examples", "examples": [...]}``
with each item exactly a one-example record; :func:`decode_examples` reads
both, a slate's record valid as a whole or not at all.

>>> from stream.events import Impression, SlateItem
>>> imp = Impression(
...     request_id="r1", session_id="s1", user_id="u-7f3a", segment="family", policy="linucb",
...     model_version="m42", feature_version="phi-v1", ts=1_700_000_000.0,
...     slate=(SlateItem(trip_id="t9", position=0, score=1.5, propensity=0.8, phi=(1.0, 0.0)),),
... )
>>> decode_impression(encode(imp)) == imp
True
>>> decode_interaction(b'{"v": 1, "kind": "interaction", "event_id": "e1", "session_id": "s1",'
...                    b' "trip_id": "t9", "type": "view", "ts": 1700000001}')
Traceback (most recent call last):
    ...
stream.errors.EventError: type: must be one of click, save, booking_start, contact, dwell, got 'view'
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping
from typing import Final, cast

import orjson

from stream._fields import (
    MAX_ID_LEN,
    MAX_TEXT_LEN,
    as_object,
    at_least,
    check_float,
    check_list,
    check_str,
    float_row,
    in_range,
    join,
    opt_bool,
    opt_str,
    req_bool,
    req_float,
    req_int,
    req_str,
    require,
    show,
    show_num,
    str_row,
    type_name,
)
from stream.errors import EventError
from stream.events import (
    EXCERPT_BYTES,
    INTERACTION_TYPES,
    MAX_COUNT,
    MAX_PAYLOAD_BYTES,
    MAX_PHI_DIM,
    MAX_POSITION,
    MAX_SLATE_SIZE,
    MAX_TS,
    SCHEMA_VERSION,
    DeadLetter,
    Example,
    Impression,
    Interaction,
    InteractionType,
    Labels,
    Record,
    SlateItem,
)

__all__ = [
    "dead_letter_from_dict",
    "decode_dead_letter",
    "decode_example",
    "decode_examples",
    "decode_impression",
    "decode_interaction",
    "encode",
    "example_from_dict",
    "examples_from_dict",
    "impression_from_dict",
    "interaction_from_dict",
    "to_dict",
]

_TYPE_OF: Final[dict[str, InteractionType]] = {t: t for t in INTERACTION_TYPES}


def to_dict(record: Record) -> dict[str, object]:
    """The JSON-able form of ``record`` (what :func:`encode` serialises)."""
    head: dict[str, object] = {"v": SCHEMA_VERSION}
    if isinstance(record, Impression):
        # "randomized" is written only when true, so records without exploration keep their bytes.
        slate = [
            {"trip_id": s.trip_id, "position": s.position, "score": s.score, "propensity": s.propensity,
             "phi": list(s.phi)} | ({"randomized": True} if s.randomized else {})
            for s in record.slate
        ]  # fmt: skip
        return head | {
            "kind": "impression", "request_id": record.request_id, "session_id": record.session_id,
            "user_id": record.user_id, "segment": record.segment, "policy": record.policy,
            "model_version": record.model_version, "feature_version": record.feature_version,
            "phi_names": list(record.phi_names), "catalog_version": record.catalog_version,
            "ts": record.ts, "slate": slate,
        }  # fmt: skip
    if isinstance(record, Interaction):
        return head | {
            "kind": "interaction", "event_id": record.event_id, "session_id": record.session_id,
            "request_id": record.request_id, "trip_id": record.trip_id, "type": record.type,
            "value": record.value, "ts": record.ts,
        }  # fmt: skip
    if isinstance(record, Example):
        lab = record.labels
        labels = {"click": lab.click, "save": lab.save, "booking_start": lab.booking_start,
                  "contact": lab.contact, "dwell_s": lab.dwell_s}  # fmt: skip
        return head | {
            "kind": "example", "example_id": record.example_id, "request_id": record.request_id,
            "trip_id": record.trip_id, "session_id": record.session_id, "user_id": record.user_id,
            "segment": record.segment, "policy": record.policy, "model_version": record.model_version,
            "feature_version": record.feature_version, "phi": list(record.phi), "position": record.position,
            "propensity": record.propensity, "reward": record.reward, "labels": labels,
            "clicked": record.clicked, "examined": record.examined, "ts": record.ts,
            "revision": record.revision, "is_correction": record.is_correction,
        } | ({"randomized": True} if record.randomized else {})  # fmt: skip
    return head | {
        "kind": "dead_letter", "source_topic": record.source_topic, "reason": record.reason,
        "stage": record.stage, "detail": record.detail, "excerpt_b64": record.excerpt_b64,
        "size": record.size, "ts": record.ts,
    }  # fmt: skip


def encode(record: Record, *, validate: bool = True) -> bytes:
    """Serialise ``record``; with ``validate`` it is first checked exactly as
    decoding would, so producers never emit what consumers reject."""
    data = to_dict(record)
    if validate:
        _FROM_DICT[type(record)](data, "")
    try:
        # orjson is ~10x faster than json here (the join encodes ten examples per slate);
        # it writes NaN as null, so non-finite values are rejected first when validating.
        raw = orjson.dumps(data)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise EventError("payload", f"not encodable as JSON: {exc}") from None
    if b"null" in raw and _has_non_finite(data):
        raise EventError("payload", "not encodable as JSON: non-finite number")
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise EventError(
            "payload", f"must be at most {MAX_PAYLOAD_BYTES} bytes, got {len(raw)}", reason="too_large"
        )
    return raw


def _has_non_finite(value: object) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_non_finite(v) for v in value)
    return False


def _load(raw: bytes) -> dict[str, object]:
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise EventError("payload", f"must be bytes, got {type(raw).__name__}", reason="bad_json")
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise EventError(
            "payload", f"must be at most {MAX_PAYLOAD_BYTES} bytes, got {len(raw)}", reason="too_large"
        )
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = _load_slow(bytes(raw))
    if not isinstance(value, dict):
        raise EventError("payload", f"must be a JSON object, got {type_name(value)}", reason="bad_json")
    return value


def _load_slow(raw: bytes) -> object:
    """The standard library's parser: what orjson refuses (huge integers, NaN) and exact messages."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise EventError("payload", f"invalid JSON: {exc.msg} at char {exc.pos}", reason="bad_json") from None
    except (ValueError, RecursionError) as exc:  # bad UTF-8, absurd nesting or number length
        raise EventError("payload", f"invalid JSON: {type(exc).__name__}", reason="bad_json") from None
    # The stdlib lets lone surrogates through ("\\ud800", or their UTF-8 bytes): a record holding
    # one could not be encoded again (orjson refuses it), so a worker would fail on its output.
    if _has_surrogate(value):
        raise EventError("payload", "invalid JSON: a string holds a lone surrogate", reason="bad_json")
    return value


def _has_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return not value.isascii() and any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


def _envelope(value: object, kind: str, prefix: str) -> Mapping[str, object]:
    obj = as_object(value, prefix or "payload")
    version, path = obj.get("v"), join(prefix, "v")
    if version is None:
        raise EventError(path, "is required", reason="unknown_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise EventError(path, f"must be an integer, got {type_name(version)}", reason="unknown_version")
    if version != SCHEMA_VERSION:
        raise EventError(
            path,
            f"unsupported schema version {show(version)} (supported: {SCHEMA_VERSION})",
            reason="unknown_version",
        )
    got = req_str(obj, "kind", prefix)
    if got != kind:
        raise EventError(join(prefix, "kind"), f"must be {kind!r}, got {show(got)}")
    return obj


def _ts(obj: Mapping[str, object], prefix: str, key: str = "ts") -> float:
    ts, path = req_float(obj, key, prefix), join(prefix, key)
    if not 0 < ts <= MAX_TS:
        raise EventError(
            path, f"must be seconds since the epoch in (0, {show_num(MAX_TS)}], got {show_num(ts)}"
        )
    return ts


def _propensity(obj: Mapping[str, object], prefix: str) -> float:
    return in_range(
        req_float(obj, "propensity", prefix), join(prefix, "propensity"), lo=0, hi=1, lo_open=True
    )


def _slate_fast(raw_items: list[object]) -> tuple[SlateItem, ...] | None:
    """The slate of a valid impression, or None at the first doubt.

    Decoding slates is the join's hottest path; this checks the same rules
    with fewer calls and leaves every error (and its exact message) to the
    careful path in :func:`_slate`.
    """
    items: list[SlateItem] = []
    width = -1
    total = 0.0
    for raw in raw_items:
        if type(raw) is not dict:
            return None
        trip_id, position = raw.get("trip_id"), raw.get("position")
        score, propensity, phi = raw.get("score"), raw.get("propensity"), raw.get("phi")
        randomized = raw.get("randomized", False)
        if type(trip_id) is not str or not 0 < len(trip_id) <= MAX_ID_LEN or type(randomized) is not bool:
            return None
        if type(position) is not int or not 0 <= position <= MAX_POSITION:
            return None
        if type(score) not in _NUMBERS or type(propensity) not in _NUMBERS or type(phi) is not list:
            return None
        if not (math.isfinite(score) and 0 < propensity <= 1):  # type: ignore[arg-type, operator]
            return None
        if (
            len(phi) > MAX_PHI_DIM
            or (width >= 0 and len(phi) != width)
            or not set(map(type, phi)) <= _NUMBERS
        ):
            return None
        width = len(phi)
        row = tuple(map(float, phi))
        total += math.fsum(row)
        items.append(SlateItem(trip_id, position, float(score), float(propensity), row, randomized))  # type: ignore[arg-type]
    n = len(items)
    if (
        not math.isfinite(total)
        or len({i.trip_id for i in items}) != n
        or len({i.position for i in items}) != n
    ):
        return None
    return tuple(items)


_NUMBERS = frozenset({int, float})


def _slate(obj: Mapping[str, object], prefix: str) -> tuple[SlateItem, ...]:
    path = join(prefix, "slate")
    raw_items = check_list(require(obj, "slate", prefix), path, min_len=1, max_len=MAX_SLATE_SIZE)
    try:
        fast = _slate_fast(raw_items)
    except OverflowError:  # fsum of huge finite values: let the careful path decide
        fast = None
    if fast is not None:
        return fast
    items: list[SlateItem] = []
    trips: set[str] = set()
    positions: set[int] = set()
    for i, raw in enumerate(raw_items):
        at = f"{path}[{i}]"
        item = as_object(raw, at)
        trip_id = req_str(item, "trip_id", at)
        if trip_id in trips:
            raise EventError(join(at, "trip_id"), f"duplicate trip_id {show(trip_id)}")
        position = req_int(item, "position", at, lo=0, hi=MAX_POSITION)
        if position in positions:
            raise EventError(join(at, "position"), f"duplicate position {position}")
        score = req_float(item, "score", at)
        propensity = _propensity(item, at)
        phi = float_row(require(item, "phi", at), join(at, "phi"), max_len=MAX_PHI_DIM)
        if items and len(phi) != len(items[0].phi):
            raise EventError(
                join(at, "phi"), f"must have {len(items[0].phi)} values like {path}[0].phi, got {len(phi)}"
            )
        randomized = opt_bool(item, "randomized", at)
        trips.add(trip_id)
        positions.add(position)
        items.append(SlateItem(trip_id, position, score, propensity, phi, randomized))
    return tuple(items)


def impression_from_dict(value: object, prefix: str = "") -> Impression:
    """Validate a decoded JSON value as an :class:`Impression` (``prefix`` names its place)."""
    obj = _envelope(value, "impression", prefix)
    ids = [req_str(obj, key, prefix) for key in ("request_id", "session_id", "user_id", "segment", "policy")]
    model_version, feature_version = (
        req_str(obj, "model_version", prefix),
        req_str(obj, "feature_version", prefix),
    )
    ts = _ts(obj, prefix)
    names_value = obj.get("phi_names")
    phi_names = (
        () if names_value is None else str_row(names_value, join(prefix, "phi_names"), max_len=MAX_PHI_DIM)
    )
    catalog_version = opt_str(obj, "catalog_version", prefix)
    slate = _slate(obj, prefix)
    dim = len(slate[0].phi)
    if phi_names and len(phi_names) != dim:
        raise EventError(
            join(prefix, "phi_names"), f"must have one name per phi value ({dim}), got {len(phi_names)}"
        )
    if dim == 0 and catalog_version is None:
        raise EventError(join(prefix, "slate[0].phi"), "must be non-empty unless catalog_version is set")
    request_id, session_id, user_id, segment, policy = ids
    return Impression(
        request_id, session_id, user_id, segment, policy, model_version, feature_version, ts, slate,
        phi_names, catalog_version,
    )  # fmt: skip


def _interaction_fast(obj: dict[str, object]) -> Interaction | None:
    """The interaction of a valid record, or None at the first doubt (same rules, fewer calls)."""
    version, kind = obj.get("v"), obj.get("type")
    if type(version) is not int or version != SCHEMA_VERSION or obj.get("kind") != "interaction":
        return None
    event_id, session_id, trip_id = obj.get("event_id"), obj.get("session_id"), obj.get("trip_id")
    request_id, number, ts = obj.get("request_id"), obj.get("value"), obj.get("ts")
    for text in (
        (event_id, session_id, trip_id) if request_id is None else (event_id, session_id, trip_id, request_id)
    ):
        if type(text) is not str or not 0 < len(text) <= MAX_ID_LEN:
            return None
    if type(kind) is not str or kind not in _TYPE_OF or type(ts) not in _NUMBERS:
        return None
    if number is None:
        number = 0.0
    elif type(number) not in _NUMBERS or not 0 <= number < math.inf:  # type: ignore[operator]
        return None
    if not 0 < ts <= MAX_TS:  # type: ignore[operator]
        return None
    return Interaction(
        cast(str, event_id), cast(str, session_id), cast(str, trip_id), _TYPE_OF[kind],
        float(cast(float, ts)), float(cast(float, number)), cast("str | None", request_id),
    )  # fmt: skip


def interaction_from_dict(value: object, prefix: str = "") -> Interaction:
    """Validate a decoded JSON value as an :class:`Interaction`."""
    if not prefix and type(value) is dict:
        fast = _interaction_fast(value)
        if fast is not None:
            return fast
    obj = _envelope(value, "interaction", prefix)
    event_id, session_id = req_str(obj, "event_id", prefix), req_str(obj, "session_id", prefix)
    request_id = opt_str(obj, "request_id", prefix)
    trip_id = req_str(obj, "trip_id", prefix)
    kind = req_str(obj, "type", prefix)
    if kind not in _TYPE_OF:
        raise EventError(
            join(prefix, "type"), f"must be one of {', '.join(INTERACTION_TYPES)}, got {show(kind)}"
        )
    raw_value = obj.get("value")
    number = 0.0 if raw_value is None else check_float(raw_value, join(prefix, "value"))
    at_least(number, join(prefix, "value"), lo=0)
    return Interaction(event_id, session_id, trip_id, _TYPE_OF[kind], _ts(obj, prefix), number, request_id)


def _labels(value: object, path: str) -> Labels:
    obj = as_object(value, path)
    click, save, booking_start, contact = (
        req_int(obj, key, path, lo=0, hi=MAX_COUNT) for key in ("click", "save", "booking_start", "contact")
    )
    dwell_s = at_least(req_float(obj, "dwell_s", path), join(path, "dwell_s"), lo=0)
    return Labels(click, save, booking_start, contact, dwell_s)


_EXAMPLE_STRS = (
    "request_id", "trip_id", "session_id", "user_id", "segment", "policy", "model_version", "feature_version",
)  # fmt: skip
_LABEL_COUNTS = ("click", "save", "booking_start", "contact")


#: An accepted example record's fields, from :func:`example_fields`: the ``_EXAMPLE_STRS`` in order, φ row,
#: position, revision, propensity, reward, ts, clicked, examined, randomized, the ``_LABEL_COUNTS`` in order,
#: dwell. A plain tuple: a NamedTuple cost ~0.3 µs more per record on the learner's hot path.
ExampleFields = tuple[
    list[str], tuple[float, ...], int, int, float, float, float, bool, bool, bool, list[int], float
]


def example_fields(obj: dict[str, object]) -> ExampleFields | None:
    """The fields of a valid example record, or None at the first doubt (the learners' hot path).

    Same rules as the careful path of :func:`example_from_dict`, in fewer calls;
    errors and their messages are left to that path. Shared by
    :func:`_example_fast` and :mod:`stream.learner_decode`, so the two fast
    paths cannot drift apart. May raise ``OverflowError`` (fsum of huge
    finite values): the careful path decides then.
    """
    if obj.get("v") != SCHEMA_VERSION or obj.get("kind") != "example":
        return None
    strs = [obj.get(k) for k in _EXAMPLE_STRS]
    for value in strs:
        if type(value) is not str or not 0 < len(value) <= MAX_ID_LEN:
            return None
    if obj.get("example_id") != f"{strs[0]}:{strs[1]}":
        return None
    phi, labels = obj.get("phi"), obj.get("labels")
    position, revision = obj.get("position"), obj.get("revision")
    propensity, reward, ts = obj.get("propensity"), obj.get("reward"), obj.get("ts")
    clicked, examined, correction = obj.get("clicked"), obj.get("examined"), obj.get("is_correction")
    randomized = obj.get("randomized", False)
    if type(randomized) is not bool:
        return None
    if type(phi) is not list or len(phi) > MAX_PHI_DIM or not set(map(type, phi)) <= _NUMBERS:
        return None
    if type(labels) is not dict or type(position) is not int or type(revision) is not int:
        return None
    if type(propensity) not in _NUMBERS or type(reward) not in _NUMBERS or type(ts) not in _NUMBERS:
        return None
    if type(clicked) is not bool or type(examined) is not bool or correction is not (revision > 0):
        return None
    counts = [labels.get(k) for k in _LABEL_COUNTS]
    dwell = labels.get("dwell_s")
    if any(type(c) is not int or not 0 <= c <= MAX_COUNT for c in counts) or type(dwell) not in _NUMBERS:
        return None
    row = tuple(map(float, phi))
    if not (
        0 <= position <= MAX_POSITION
        and 0 <= revision <= MAX_COUNT
        and 0 < propensity <= 1  # type: ignore[operator]
        and math.isfinite(reward)  # type: ignore[arg-type]
        and 0 < ts <= MAX_TS  # type: ignore[operator]
        and 0 <= dwell < math.inf  # type: ignore[operator]
        and math.isfinite(math.fsum(row))
    ):
        return None
    return (
        cast("list[str]", strs), row, position, revision, float(cast(float, propensity)),
        float(cast(float, reward)), float(cast(float, ts)), clicked, examined, randomized,
        cast("list[int]", counts), float(cast(float, dwell)),
    )  # fmt: skip


def _example_fast(obj: dict[str, object]) -> Example | None:
    """The example of a valid record, or None at the first doubt (the learner's hot path)."""
    f = example_fields(obj)
    if f is None:
        return None
    strs, row, position, revision, propensity, reward, ts, clicked, examined, randomized, c, dwell = f
    request_id, trip_id, session_id, user_id, segment, policy, model_version, feature_version = strs
    return Example(
        f"{request_id}:{trip_id}", request_id, trip_id, session_id, user_id, segment, policy, model_version,
        feature_version, row, position, propensity, reward, Labels(c[0], c[1], c[2], c[3], dwell),
        clicked, examined, ts, revision, randomized,
    )  # fmt: skip


def example_from_dict(value: object, prefix: str = "") -> Example:
    """Validate a decoded JSON value as an :class:`Example`."""
    if not prefix and type(value) is dict:
        try:
            fast = _example_fast(value)
        except OverflowError:  # fsum of huge finite values: the careful path decides
            fast = None
        if fast is not None:
            return fast
    obj = _envelope(value, "example", prefix)
    request_id, trip_id = req_str(obj, "request_id", prefix), req_str(obj, "trip_id", prefix)
    example_id = req_str(obj, "example_id", prefix, max_len=2 * MAX_ID_LEN + 1)
    if example_id != f"{request_id}:{trip_id}":
        raise EventError(join(prefix, "example_id"), f"must be request_id:trip_id, got {show(example_id)}")
    keys = ("session_id", "user_id", "segment", "policy", "model_version", "feature_version")
    session_id, user_id, segment, policy, model_version, feature_version = (
        req_str(obj, k, prefix) for k in keys
    )
    phi = float_row(require(obj, "phi", prefix), join(prefix, "phi"), max_len=MAX_PHI_DIM)
    position = req_int(obj, "position", prefix, lo=0, hi=MAX_POSITION)
    propensity = _propensity(obj, prefix)
    reward = req_float(obj, "reward", prefix)
    labels = _labels(require(obj, "labels", prefix), join(prefix, "labels"))
    clicked, examined = req_bool(obj, "clicked", prefix), req_bool(obj, "examined", prefix)
    ts = _ts(obj, prefix)
    revision = req_int(obj, "revision", prefix, lo=0, hi=MAX_COUNT)
    if req_bool(obj, "is_correction", prefix) != (revision > 0):
        raise EventError(
            join(prefix, "is_correction"), f"must be {str(revision > 0).lower()} for revision {revision}"
        )
    randomized = opt_bool(obj, "randomized", prefix)
    return Example(
        example_id, request_id, trip_id, session_id, user_id, segment, policy, model_version, feature_version,
        phi, position, propensity, reward, labels, clicked, examined, ts, revision, randomized,
    )  # fmt: skip


def examples_from_dict(value: object) -> list[Example]:
    """Validate a decoded ``examples`` record: one example, or a slate's (:mod:`stream.example_bytes`).

    A record of kind ``examples`` holds a non-empty array ``examples`` of
    example objects, each exactly what a one-example record would be. It is
    valid as a whole or not at all: the first bad item raises, its path
    prefixed (``examples[3].propensity: ...``).
    """
    obj = as_object(value, "payload")
    if obj.get("kind") != "examples":
        return [example_from_dict(value)]
    items = check_list(
        require(_envelope(obj, "examples", ""), "examples", ""), "examples", min_len=1, max_len=MAX_SLATE_SIZE
    )
    out = []
    for i, item in enumerate(items):
        try:
            fast = _example_fast(item) if type(item) is dict else None
        except OverflowError:  # fsum of huge finite values: the careful path decides
            fast = None
        out.append(fast if fast is not None else example_from_dict(item, f"examples[{i}]"))
    return out


def dead_letter_from_dict(value: object, prefix: str = "") -> DeadLetter:
    """Validate a decoded JSON value as a :class:`DeadLetter`."""
    obj = _envelope(value, "dead_letter", prefix)
    source_topic, reason, stage = (req_str(obj, k, prefix) for k in ("source_topic", "reason", "stage"))
    detail = req_str(obj, "detail", prefix, max_len=MAX_TEXT_LEN)
    excerpt_path = join(prefix, "excerpt_b64")
    raw_excerpt = require(obj, "excerpt_b64", prefix)  # "" is the excerpt of an empty record
    excerpt = (
        "" if raw_excerpt == "" else check_str(raw_excerpt, excerpt_path, max_len=4 * EXCERPT_BYTES // 3 + 4)
    )
    try:
        base64.b64decode(excerpt, validate=True)
    except ValueError:
        raise EventError(excerpt_path, "must be base64") from None
    size = req_int(obj, "size", prefix, lo=0, hi=1 << 40)
    return DeadLetter(source_topic, reason, stage, detail, excerpt, size, _ts(obj, prefix))


_FROM_DICT: Final[dict[type, Callable[[object, str], Record]]] = {
    Impression: impression_from_dict,
    Interaction: interaction_from_dict,
    Example: example_from_dict,
    DeadLetter: dead_letter_from_dict,
}


def decode_impression(raw: bytes) -> Impression:
    """Decode and validate one ``impressions`` record; raises :class:`EventError`."""
    return impression_from_dict(_load(raw))


def decode_interaction(raw: bytes) -> Interaction:
    """Decode and validate one ``interactions`` record; raises :class:`EventError`."""
    return interaction_from_dict(_load(raw))


def decode_example(raw: bytes) -> Example:
    """Decode and validate one ``examples`` record; raises :class:`EventError`."""
    return example_from_dict(_load(raw))


def decode_examples(raw: bytes) -> list[Example]:
    """Decode and validate one ``examples`` record, of one example or of a slate's; raises :class:`EventError`."""
    return examples_from_dict(_load(raw))


def decode_dead_letter(raw: bytes) -> DeadLetter:
    """Decode and validate one ``deadletter`` record; raises :class:`EventError`."""
    return dead_letter_from_dict(_load(raw))
