"""Validation of the API's request bodies: plain functions, no HTTP (tested without a server).

Every problem raises :class:`~scoring.errors.RequestError` whose ``field`` is
the JSON path (``preferences.budget``, ``trip_ids[3]``, ``events[2].type``)
and whose ``problem`` says what is wrong. Unknown fields are refused, so a
misspelt option is never silently ignored. Values of ``user_id`` are never
echoed in a message (they are personal data).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from features.context import PreferenceError, Preferences, assign_segment
from scoring.errors import RequestError
from scoring.filters import FilterError, Filters
from stream.codec import interaction_from_dict
from stream.errors import EventError
from stream.events import SCHEMA_VERSION, Interaction

__all__ = ["RANK_FIELDS", "RankRequest", "check_trip_id", "parse_events", "parse_rank"]

RANK_FIELDS: Final = frozenset(
    {"session_id", "user_id", "preferences", "segment", "trip_ids", "filters", "k", "explore"}
)
EVENT_FIELDS: Final = frozenset({"event_id", "session_id", "request_id", "trip_id", "type", "value", "ts"})
DEFAULT_K: Final = 10
_ID: Final = re.compile(r"[^\x00-\x1f\x7f]{1,128}")


@dataclass(frozen=True, slots=True)
class RankRequest:
    """A validated /v1/rank body; ``user`` is already the pseudonym (or None: anonymous)."""

    session_id: str
    user: str | None
    preferences: Preferences
    segment: str
    trip_ids: tuple[str, ...] | None  # elements validated by the catalog lookup (check_trip_id)
    filters: Filters | None
    k: int
    explore: bool

    @property
    def unit(self) -> str:
        """The A/B assignment unit: the pseudonymous user, else the session."""
        return self.user if self.user is not None else "session:" + self.session_id


def _object(raw: object, field: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise RequestError(field, f"must be a JSON object, got {_type(raw)}")
    return raw


def _type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _id(value: object, field: str, *, echo: bool = True) -> str:
    if not isinstance(value, str):
        raise RequestError(field, f"must be a string, got {_type(value)}")
    if not _ID.fullmatch(value):
        shown = f", got {value[:40]!r}" if echo else ""
        raise RequestError(field, f"must be 1 to 128 characters without control characters{shown}")
    return value


def parse_rank(
    body: object, *, pseudonymize: Callable[[str], str], max_k: int, max_candidates: int
) -> RankRequest:
    """Validate a /v1/rank body (see the OpenAPI document for every field)."""
    obj = _object(body, "body")
    extra = sorted(set(obj) - RANK_FIELDS)
    if extra:
        raise RequestError(_key(extra[0]), f"unknown field; expected one of {', '.join(sorted(RANK_FIELDS))}")
    if "session_id" not in obj:
        raise RequestError("session_id", "is required")
    session_id = _id(obj["session_id"], "session_id")
    raw_user = obj.get("user_id")
    user = None if raw_user is None else pseudonymize(_id(raw_user, "user_id", echo=False))
    try:
        prefs = Preferences.from_dict(obj.get("preferences") or {})
    except PreferenceError as exc:
        raise RequestError(*_split("preferences", str(exc))) from None
    explicit = obj.get("segment")
    if explicit is not None and not isinstance(explicit, str):
        raise RequestError("segment", f"must be a string, got {_type(explicit)}")
    try:
        segment = assign_segment(prefs, explicit)
    except PreferenceError as exc:
        raise RequestError("segment", str(exc).partition(": ")[2]) from None
    trip_ids = _trip_ids(obj.get("trip_ids"), max_candidates)
    filters = None
    if obj.get("filters") is not None:
        try:
            filters = Filters.from_dict(obj["filters"])
        except FilterError as exc:
            field, _, problem = str(exc).partition(": ")
            raise RequestError(field, problem) from None
    k = obj.get("k", DEFAULT_K)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= max_k:
        raise RequestError("k", f"must be an integer between 1 and {max_k}, got {k!r}")
    explore = obj.get("explore", True)
    if not isinstance(explore, bool):
        raise RequestError("explore", f"must be a boolean, got {_type(explore)}")
    return RankRequest(session_id, user, prefs, segment, trip_ids, filters, k, explore)


def _split(prefix: str, message: str) -> tuple[str, str]:
    """``"budget: must be ..."`` → ``("preferences.budget", "must be ...")``."""
    field, sep, problem = message.partition(": ")
    if not sep:
        return prefix, message
    if field == prefix:
        return field, problem
    return f"{prefix}.{field}", problem


def _trip_ids(raw: object, max_candidates: int) -> tuple[str, ...] | None:
    """The candidate list; its elements are checked where they are looked up (:func:`check_trip_id`)."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise RequestError("trip_ids", f"must be an array of trip ids, got {_type(raw)}")
    if not 1 <= len(raw) <= max_candidates:
        raise RequestError("trip_ids", f"must hold 1 to {max_candidates} trip ids, got {len(raw)}")
    return tuple(raw)


def check_trip_id(value: object, index: int) -> str:
    """``trip_ids[index]`` if it is a valid id (the catalog lookup calls this for ids it does not know).

    Checking only the unknown ids saves a pass over every candidate: an id the
    catalog knows is a valid string by construction.
    """
    if not isinstance(value, str) or not 0 < len(value) <= 128:
        raise RequestError(f"trip_ids[{index}]", "must be a non-empty string of at most 128 characters")
    return value


def parse_events(body: object, *, max_events: int, now: Callable[[], float] = time.time) -> list[Interaction]:
    """Validate a /v1/events body: one event object, or ``{"events": [...]}``.

    ``event_id`` defaults to a fresh UUID and ``ts`` to the server's clock;
    every other rule is the topic contract's (:func:`stream.codec.interaction_from_dict`).
    """
    obj = _object(body, "body")
    if "events" in obj:
        if set(obj) != {"events"}:
            raise RequestError(_key(sorted(set(obj) - {"events"})[0]), "unknown field next to events")
        items = obj["events"]
        if not isinstance(items, list) or not 1 <= len(items) <= max_events:
            raise RequestError("events", f"must be an array of 1 to {max_events} events")
        paths = [f"events[{i}]" for i in range(len(items))]
    else:
        items, paths = [obj], [""]
    out: list[Interaction] = []
    for raw, path in zip(items, paths, strict=True):
        event = _object(raw, path or "body")
        extra = sorted(set(event) - EVENT_FIELDS)
        if extra:
            raise RequestError(_join(path, _key(extra[0])), "unknown field")
        for key in ("session_id", "trip_id"):
            if key not in event:
                raise RequestError(_join(path, key), "is required")
            _id(event[key], _join(path, key))
        full = {
            "v": SCHEMA_VERSION,
            "kind": "interaction",
            "event_id": uuid.uuid4().hex,
            "ts": now(),
            **event,
        }
        try:
            out.append(interaction_from_dict(full, path))
        except EventError as exc:
            raise RequestError(exc.field, exc.problem) from None
    return out


def _key(name: str) -> str:
    """An unknown field's name as the error's ``field`` (``""`` for the empty key, so it is never blank)."""
    return name if name else '""'


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
