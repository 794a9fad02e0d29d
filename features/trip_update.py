"""Trip updates: the records of the compacted ``trips`` topic, their validation, and how they apply.

Why: trips change every day (a departure becomes ``last_places``, a price
moves, a trip sells out); these changes travel as small records keyed by
``trip_id`` on a compacted topic and are applied, in order, to the catalog
held in Redis (:mod:`features.catalog_store`, :mod:`stream.catalog_agent`).

Record (JSON, ``"v": 1``), key = the ``trip_id`` (UTF-8):

- ``{"v": 1, "op": "upsert", "trip_id": "T1", "ts": 1767225600.0, "set": {...}}``
  changes fields of a known trip. ``set`` may hold ``status`` (guaranteed |
  last_places | open), ``price`` (finite, >= 0), ``departure_date``
  (YYYY-MM-DD), ``available`` (bool: false = sold out or withdrawn, never
  served), ``popularity`` (0–1) and ``title``.
- ``{"v": 1, "op": "upsert", "trip_id": "T9", "ts": ..., "trip": {...}}``
  inserts a new trip or replaces a known one whole; ``trip`` is a catalog row
  (:func:`features.loader.parse_trip`), optionally with ``available``.
- ``{"v": 1, "op": "delete", "trip_id": "T1", "ts": ...}``, or a Kafka
  tombstone (key ``T1``, no value), removes the trip.

Every problem raises :class:`TripUpdateError` with the field it names and a
``reason`` for the dead-letter counters: ``bad_json``, ``too_large``,
``unknown_version``, ``invalid_field``, ``key_mismatch``, ``unknown_trip``.

>>> u = decode_trip_update(b"T1", b'{"v":1,"op":"upsert","trip_id":"T1","ts":1.0,"set":{"price":-5}}')
Traceback (most recent call last):
...
features.trip_update.TripUpdateError: set.price: must be >= 0, got -5
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Final, Literal

from features.catalog import STATUSES, Trip
from features.loader import parse_trip

__all__ = [
    "MAX_UPDATE_BYTES",
    "PATCH_FIELDS",
    "TripState",
    "TripUpdate",
    "TripUpdateError",
    "apply_update",
    "decode_trip_update",
    "encode_trip_update",
]

UPDATE_VERSION: Final = 1
MAX_UPDATE_BYTES: Final = 64 * 1024
MAX_TS: Final = 4_102_444_800.0  # 2100-01-01: catches millisecond timestamps
PATCH_FIELDS: Final = ("status", "price", "departure_date", "available", "popularity", "title")
_MAX_ID: Final = 128

Op = Literal["upsert", "delete"]


class TripUpdateError(ValueError):
    """A trip update that cannot be applied; ``field`` and ``reason`` say why."""

    def __init__(self, field: str, message: str, reason: str = "invalid_field") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TripState:
    """A trip as the catalog store holds it: the record and whether it may be served."""

    trip: Trip
    available: bool = True


@dataclass(frozen=True, slots=True)
class TripUpdate:
    """One validated update (build it with :func:`decode_trip_update`).

    ``changes`` holds the validated ``set`` fields (dates as :class:`datetime.date`);
    ``trip`` a whole record for inserts and replacements.
    """

    op: Op
    trip_id: str
    ts: float
    changes: Mapping[str, object] = dataclasses.field(default_factory=dict)
    trip: TripState | None = None


def _text(value: object, field: str, limit: int = _MAX_ID) -> str:
    if not isinstance(value, str):
        raise TripUpdateError(field, f"must be a string, got {type(value).__name__}")
    value = value.strip()
    if not value or len(value) > limit:
        raise TripUpdateError(field, f"must be a non-empty string of at most {limit} characters")
    return value


def _number(value: object, field: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TripUpdateError(field, f"must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise TripUpdateError(field, f"must be finite, got {value}")
    if value < lo:
        raise TripUpdateError(field, f"must be >= {lo:g}, got {value:g}")
    if value > hi:
        raise TripUpdateError(field, f"must be <= {hi:g}, got {value:g}")
    return float(value)


def _available(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise TripUpdateError(field, f"must be true or false, got {type(value).__name__}")
    return value


def _patch(raw: object) -> dict[str, object]:
    if not isinstance(raw, dict):
        raise TripUpdateError("set", f"must be an object, got {type(raw).__name__}")
    if not raw:
        raise TripUpdateError("set", "must change at least one field")
    unknown = sorted(set(raw) - set(PATCH_FIELDS))
    if unknown:
        raise TripUpdateError(f"set.{unknown[0]}", f"cannot be updated; allowed: {', '.join(PATCH_FIELDS)}")
    out: dict[str, object] = {}
    if "status" in raw:
        status = _text(raw["status"], "set.status")
        if status not in STATUSES:
            raise TripUpdateError(
                "set.status", f"unknown status {status!r}; expected one of {', '.join(STATUSES)}"
            )
        out["status"] = status
    if "price" in raw:
        out["price"] = _number(raw["price"], "set.price", 0.0, 1e9)
    if "departure_date" in raw:
        text = _text(raw["departure_date"], "set.departure_date", 32)
        try:
            out["departure_date"] = dt.date.fromisoformat(text)
        except ValueError:
            raise TripUpdateError("set.departure_date", f"not a valid date (YYYY-MM-DD): {text!r}") from None
    if "available" in raw:
        out["available"] = _available(raw["available"], "set.available")
    if "popularity" in raw:
        out["popularity"] = _number(raw["popularity"], "set.popularity", 0.0, 1.0)
    if "title" in raw:
        out["title"] = _text(raw["title"], "set.title", 300)
    return out


def _whole_trip(raw: object, trip_id: str) -> TripState:
    if not isinstance(raw, dict):
        raise TripUpdateError("trip", f"must be an object, got {type(raw).__name__}")
    try:
        trip = parse_trip(raw)
    except ValueError as exc:
        raise TripUpdateError(f"trip.{getattr(exc, 'field', '?')}", str(exc)) from None
    if trip.trip_id != trip_id:
        raise TripUpdateError("trip.trip_id", f"must equal trip_id {trip_id!r}, got {trip.trip_id!r}")
    available = _available(raw.get("available", True), "trip.available")
    return TripState(trip, available)


def decode_trip_update(key: bytes | None, value: bytes | None) -> TripUpdate:
    """Validate one record of the ``trips`` topic (a ``None`` value is a tombstone: delete ``key``)."""
    key_id: str | None = None
    if key is not None:
        try:
            key_id = key.decode("utf-8")
        except UnicodeDecodeError:
            raise TripUpdateError("key", "not valid UTF-8", "key_mismatch") from None
    if value is None:
        if not key_id:
            raise TripUpdateError("key", "a tombstone needs the trip_id as its key", "key_mismatch")
        return TripUpdate("delete", _text(key_id, "key"), 0.0)
    if len(value) > MAX_UPDATE_BYTES:
        raise TripUpdateError(
            "payload", f"must be at most {MAX_UPDATE_BYTES} bytes, got {len(value)}", "too_large"
        )
    try:
        obj = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TripUpdateError("payload", f"not JSON: {exc}", "bad_json") from None
    except (ValueError, RecursionError) as exc:  # absurd nesting or number length
        raise TripUpdateError("payload", f"not JSON: {type(exc).__name__}", "bad_json") from None
    if not isinstance(obj, dict):
        raise TripUpdateError("payload", f"must be a JSON object, got {type(obj).__name__}", "bad_json")
    if obj.get("v") != UPDATE_VERSION:
        raise TripUpdateError("v", f"unsupported version {obj.get('v')!r}; expected 1", "unknown_version")
    op = obj.get("op")
    if op not in ("upsert", "delete"):
        raise TripUpdateError("op", f"must be 'upsert' or 'delete', got {op!r}")
    trip_id = _text(obj.get("trip_id"), "trip_id")
    if any(c.isspace() for c in trip_id):
        raise TripUpdateError("trip_id", f"must not contain whitespace, got {trip_id!r}")
    if key_id is not None and key_id != trip_id:
        raise TripUpdateError(
            "trip_id", f"must equal the record key {key_id!r}, got {trip_id!r}", "key_mismatch"
        )
    ts = _number(obj.get("ts"), "ts", 0.0, float("inf")) if obj.get("ts") is not None else 0.0
    if ts > MAX_TS:
        raise TripUpdateError("ts", f"must be seconds since the epoch (before 2100), got {ts:g}")
    if op == "delete":
        if "set" in obj or "trip" in obj:
            raise TripUpdateError("op", "a delete carries neither 'set' nor 'trip'")
        return TripUpdate("delete", trip_id, ts)
    if ("set" in obj) == ("trip" in obj):
        raise TripUpdateError(
            "set", "an upsert carries exactly one of 'set' (a change) or 'trip' (a whole record)"
        )
    if "trip" in obj:
        return TripUpdate("upsert", trip_id, ts, trip=_whole_trip(obj["trip"], trip_id))
    return TripUpdate("upsert", trip_id, ts, changes=_patch(obj["set"]))


def encode_trip_update(update: TripUpdate) -> bytes:
    """The JSON record of ``update`` (what producers send; the inverse of :func:`decode_trip_update`)."""
    body: dict[str, object] = {
        "v": UPDATE_VERSION,
        "op": update.op,
        "trip_id": update.trip_id,
        "ts": update.ts,
    }
    if update.trip is not None:
        body["trip"] = {**update.trip.trip.to_dict(), "available": update.trip.available}
    elif update.op == "upsert":
        body["set"] = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in update.changes.items()}
    return json.dumps(body).encode()


def apply_update(trips: MutableMapping[str, TripState], update: TripUpdate) -> str:
    """Apply ``update`` to ``trips`` in place; returns ``inserted``, ``updated``, ``deleted`` or ``unchanged``.

    Raises :class:`TripUpdateError` (reason ``unknown_trip``) for a change or a
    delete of a trip that is not in ``trips``; ``trips`` is then unchanged.

    >>> from features.generator import generate_trips
    >>> trips = {t.trip_id: TripState(t) for t in generate_trips(n_trips=2, seed=0)}
    >>> apply_update(trips, TripUpdate("upsert", "T000001", 0.0, {"status": "last_places", "available": False}))
    'updated'
    >>> trips["T000001"].trip.status, trips["T000001"].available
    ('last_places', False)
    """
    current = trips.get(update.trip_id)
    if update.op == "delete":
        if current is None:
            raise TripUpdateError("trip_id", f"unknown trip {update.trip_id!r}", "unknown_trip")
        del trips[update.trip_id]
        return "deleted"
    if update.trip is not None:
        trips[update.trip_id] = update.trip
        return "inserted" if current is None else ("unchanged" if current == update.trip else "updated")
    if current is None:
        raise TripUpdateError("trip_id", f"unknown trip {update.trip_id!r}", "unknown_trip")
    changes = dict(update.changes)
    available = changes.pop("available", current.available)
    trip = dataclasses.replace(current.trip, **changes) if changes else current.trip  # type: ignore[arg-type]
    new = TripState(trip, bool(available))
    if new == current:
        return "unchanged"
    trips[update.trip_id] = new
    return "updated"
