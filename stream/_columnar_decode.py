"""Decoding for the columnar replay: the codec's rules, checked without building objects per trip.

:func:`stream.codec.decode_impression` validates a slate by building one
:class:`~stream.events.SlateItem` (and a φ tuple) per shown trip — most of
a columnar replay's time. :func:`fast_impression` checks the *same* rules on
the parsed JSON and keeps the values the replay needs in flat lists
(:class:`Slate`); when anything is unusual (an optional field it does not
handle, a value the codec might treat specially) it returns ``None`` and the
caller decodes with the codec, which is the reference: what it rejects is a
dead letter. One rule is left to the caller: φ values must be finite — the
replay checks its whole φ matrix at once. :func:`fast_interaction` does the
same for interactions. ``tests/analysis/test_replay_columnar.py`` checks
both against the codec on valid and on mutated records.

>>> from stream.codec import encode
>>> from stream.events import Impression, SlateItem
>>> imp = Impression("r1", "s1", "u1", "family", "rules", "m0", "phi-v1", 1000.0,
...                  (SlateItem("t1", 0, 2.0, 1.0, (1.0, 0.5)), SlateItem("t2", 1, 1.0, 0.5, (0.0, 2.0))))
>>> slate = fast_impression(encode(imp))
>>> slate.trips, slate.positions, slate.phi
(['t1', 't2'], [0, 1], [[1.0, 0.5], [0.0, 2.0]])
>>> fast_impression(b'{"v": 1, "kind": "impression"}') is None
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import chain

import orjson

from stream._fields import MAX_ID_LEN
from stream.events import (
    INTERACTION_TYPES,
    MAX_PAYLOAD_BYTES,
    MAX_PHI_DIM,
    MAX_POSITION,
    MAX_SLATE_SIZE,
    MAX_TS,
    SCHEMA_VERSION,
    Impression,
    Interaction,
)

__all__ = ["Slate", "fast_impression", "fast_interaction", "slate_of"]

_NUMBERS = frozenset({int, float})
_TYPES = frozenset(INTERACTION_TYPES)
_IDS = ("request_id", "session_id", "user_id", "segment", "policy", "model_version", "feature_version")


@dataclass(slots=True)
class Slate:
    """What a replay needs of one impression, the items as parallel lists (slate order)."""

    request_id: str
    session_id: str
    user_id: str
    segment: str
    policy: str
    ts: float
    trips: list[str]
    positions: list[int]
    propensities: list[float]
    randomized: list[bool]
    phi: list[list[float]]  # as parsed: ints may remain ints (same float64 values)


def slate_of(imp: Impression) -> Slate:
    """The :class:`Slate` of an impression the codec decoded."""
    items = imp.slate
    return Slate(imp.request_id, imp.session_id, imp.user_id, imp.segment, imp.policy, imp.ts,
                 [i.trip_id for i in items], [i.position for i in items], [i.propensity for i in items],
                 [i.randomized for i in items], [list(i.phi) for i in items])  # fmt: skip


def _id(value: object) -> bool:
    return type(value) is str and 0 < len(value) <= MAX_ID_LEN


def _ts(value: object) -> bool:
    return type(value) in _NUMBERS and 0 < value <= MAX_TS  # type: ignore[operator]  # NaN, inf fail


def _load(raw: bytes, kind: str) -> dict[str, object] | None:
    if len(raw) > MAX_PAYLOAD_BYTES:
        return None
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict or type(obj.get("v")) is not int or obj["v"] != SCHEMA_VERSION:
        return None
    return obj if obj.get("kind") == kind else None


def fast_impression(raw: bytes) -> Slate | None:
    """The slate of a valid impression record, or None when the codec must decide."""
    obj = _load(raw, "impression")
    names = obj.get("phi_names") if obj is not None else None
    if obj is None or not (names is None or (type(names) is list and not names)):
        return None  # named φ columns: the codec checks them
    ids = [obj.get(k) for k in _IDS]
    ts, catalog, items = obj.get("ts"), obj.get("catalog_version"), obj.get("slate")
    if not all(map(_id, ids)) or not _ts(ts) or not (catalog is None or _id(catalog)):
        return None
    if type(items) is not list or not 1 <= len(items) <= MAX_SLATE_SIZE:
        return None
    try:  # column by column: a missing field or an item that is not an object ends it
        trips = [item["trip_id"] for item in items]
        positions = [item["position"] for item in items]
        scores = [item["score"] for item in items]
        propensities = [item["propensity"] for item in items]
        phi = [item["phi"] for item in items]
        randomized = [item.get("randomized", False) for item in items]
    except (KeyError, TypeError, AttributeError):
        return None
    if set(map(type, trips)) != {str} or min(map(len, trips)) == 0 or max(map(len, trips)) > MAX_ID_LEN:
        return None
    if set(map(type, positions)) != {int} or min(positions) < 0 or max(positions) > MAX_POSITION:
        return None
    if not set(map(type, scores)) <= _NUMBERS or not all(map(math.isfinite, scores)):
        return None
    if not set(map(type, propensities)) <= _NUMBERS or not all(0 < p <= 1 for p in propensities):
        return None
    if set(map(type, randomized)) != {bool} or set(map(type, phi)) != {list}:
        return None
    widths = set(map(len, phi))
    width = widths.pop()
    if widths or width > MAX_PHI_DIM or not set(map(type, chain.from_iterable(phi))) <= _NUMBERS:
        return None
    if width == 0 and catalog is None:
        return None
    if len(set(trips)) != len(trips) or len(set(positions)) != len(positions):
        return None
    propensities = [float(p) for p in propensities]
    request_id, session_id, user_id, segment, policy = ids[:5]
    return Slate(request_id, session_id, user_id, segment, policy, float(ts), trips, positions,  # type: ignore[arg-type]
                 propensities, randomized, phi)  # fmt: skip


def fast_interaction(raw: bytes) -> Interaction | None:
    """A valid interaction record, or None when the codec must decide."""
    obj = _load(raw, "interaction")
    if obj is None:
        return None
    event_id, session_id, trip_id = obj.get("event_id"), obj.get("session_id"), obj.get("trip_id")
    request_id, kind, value, ts = obj.get("request_id"), obj.get("type"), obj.get("value"), obj.get("ts")
    if not (_id(event_id) and _id(session_id) and _id(trip_id)) or not (
        request_id is None or _id(request_id)
    ):
        return None
    if type(kind) is not str or kind not in _TYPES or not _ts(ts):
        return None
    if value is None:
        value = 0.0
    elif type(value) not in _NUMBERS or not (math.isfinite(value) and value >= 0):  # type: ignore[arg-type, operator]
        return None
    return Interaction(event_id, session_id, trip_id, kind, float(ts), float(value), request_id)  # type: ignore[arg-type]
