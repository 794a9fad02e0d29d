"""How one catalog version is held in Redis: records, static feature columns, metadata.

- **records**: JSON Lines of the trip rows (:meth:`features.catalog.Trip.to_dict`
  plus ``available``), zlib-compressed; the CLI and the update agent read
  them back through the loader's own row validation
  (:func:`features.loader.parse_trip`). The scoring worker, which must build a
  version fast and aside, checks the blob's SHA-256 against the metadata
  instead and converts rows without re-validating them (``validate=False``):
  every row was validated by the writer, and a blob that does not match its
  digest is refused.
- **columns**: the static, request-independent feature columns of every
  stored trip (price, status, departure day, duration, difficulty, theme mask,
  popularity, continent, availability…) as a ``.npz`` without pickle: what an
  analyst needs to rebuild φ of any impression that names the version.
- **meta**: JSON — version, time, source, base version, counts by status,
  the ``trips`` topic offsets the version contains, updates applied.

A scoring worker serves :func:`serving_catalog`: the available trips only,
in stored order; departed trips are filtered per request (:mod:`scoring.filters`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from features.catalog import STATUSES, Catalog, Trip
from features.loader import parse_trip
from features.trip_update import TripState

__all__ = [
    "CatalogMeta",
    "CorruptCatalog",
    "EncodedTrips",
    "check_digest",
    "columns_from_bytes",
    "decode_records",
    "encode_columns",
    "encode_records",
    "encode_trips",
    "serving_catalog",
    "static_columns",
]


class CorruptCatalog(ValueError):
    """A stored blob does not decode; the message names the part and the row."""


@dataclass(frozen=True)
class CatalogMeta:
    """Metadata of one stored version (JSON in Redis)."""

    version: int
    created_at: float
    source: str
    parent: int
    trips: int
    available: int
    by_status: dict[str, int]
    offsets: dict[int, int] = field(default_factory=dict)
    topic: str = "trips"
    updates_applied: int = 0
    updates_rejected: int = 0
    last_update_ts: float = 0.0
    records_sha256: str = ""

    def to_json(self) -> bytes:
        body = asdict(self)
        body["offsets"] = {str(p): o for p, o in self.offsets.items()}
        return json.dumps(body, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> CatalogMeta:
        try:
            body = json.loads(raw)
            body["offsets"] = {int(p): int(o) for p, o in body.get("offsets", {}).items()}
            return cls(**body)
        except (ValueError, TypeError, AttributeError) as exc:
            raise CorruptCatalog(f"meta: {exc}") from None

    @property
    def label(self) -> str:
        """The catalog version as impressions and /v1/rank responses name it."""
        return str(self.version)


def status_counts(states: Iterable[TripState]) -> dict[str, int]:
    """Trips per status, with ``unavailable`` counted apart (for metrics and meta)."""
    counts: Counter[str] = Counter()
    for s in states:
        counts[s.trip.status if s.available else "unavailable"] += 1
    return {k: counts.get(k, 0) for k in (*STATUSES, "unavailable")}


def encode_records(states: Iterable[TripState]) -> bytes:
    # One JSON document per line: decoding is then many short calls, so a reader in a worker
    # thread lets the event loop run between them (one ~10 ms parse would hold the GIL).
    lines = [orjson.dumps({**s.trip.to_dict(), "available": s.available}) for s in states]
    return zlib.compress(b"\n".join(lines), 6)


def decode_records(blob: bytes, *, validate: bool = True) -> list[TripState]:
    """The stored rows; with ``validate`` each is checked as a catalog file row would be.

    ``validate=False`` (the scoring worker, after checking the blob's digest)
    only converts types; a malformed row still raises :class:`CorruptCatalog`.
    """
    try:
        raw = zlib.decompress(blob)
    except zlib.error as exc:
        raise CorruptCatalog(f"records: {exc}") from None
    out: list[TripState] = []
    for n, line in enumerate(raw.split(b"\n") if raw else [], start=1):
        try:
            row = orjson.loads(line)
            available = row.pop("available", True)
            if not isinstance(available, bool):
                raise ValueError(f"available: must be a bool, got {type(available).__name__}")
            out.append(TripState(parse_trip(row) if validate else _trusted_trip(row), available))
        except (ValueError, AttributeError, TypeError, KeyError) as exc:  # JSONDecodeError is a ValueError
            raise CorruptCatalog(f"records row {n}: {getattr(exc, 'field', '')} {exc}".strip()) from None
    return out


def _trusted_trip(row: dict[str, Any]) -> Trip:
    """A row written by :func:`encode_records` from a validated trip: convert, do not re-check."""
    return Trip(
        trip_id=row["trip_id"], title=row["title"], country=row["country"], continent=row["continent"],
        themes=tuple(row["themes"]), difficulty=row["difficulty"], duration_days=row["duration_days"],
        price=row["price"], status=row["status"], departure_date=dt.date.fromisoformat(row["departure_date"]),
        trip_type=row["trip_type"], popularity=row["popularity"],
    )  # fmt: skip


def check_digest(blob: bytes, meta: CatalogMeta) -> None:
    """Raise :class:`CorruptCatalog` unless ``blob`` is the records blob ``meta`` describes."""
    if hashlib.sha256(blob).hexdigest() != meta.records_sha256:
        raise CorruptCatalog(f"records: SHA-256 does not match the metadata of version {meta.version}")


def static_columns(states: list[TripState]) -> dict[str, npt.NDArray[np.generic]]:
    """Request-independent feature columns of every stored trip, in stored order."""
    cat = Catalog(tuple(s.trip for s in states), version="columns")
    return {
        "trip_id": cat.trip_ids,
        "country": np.array([s.trip.country for s in states], dtype=np.str_),
        "continent_idx": cat.continent_idx,
        "themes": np.array(cat.themes, dtype=np.str_),
        "theme_mask": cat.theme_mask,
        "theme_count": cat.theme_count,
        "difficulty": cat.difficulty,
        "duration": cat.duration,
        "price": cat.price,
        "status_idx": cat.status_idx,
        "departure_day": cat.departure_day,
        "popularity": cat.popularity,
        "available": np.array([s.available for s in states], dtype=np.bool_),
    }


def encode_columns(columns: Mapping[str, npt.NDArray[np.generic]]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **columns)  # type: ignore[arg-type]
    return buf.getvalue()


def columns_from_bytes(blob: bytes) -> dict[str, npt.NDArray[np.generic]]:
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zlib.error) as exc:
        raise CorruptCatalog(f"columns: {exc}") from None


@dataclass(frozen=True)
class EncodedTrips:
    """A catalog's trips ready to store: records and columns blobs, digest and counts (see :func:`encode_trips`)."""

    records: bytes
    columns: bytes
    records_sha256: str
    trips: int
    by_status: dict[str, int]


def encode_trips(states: Sequence[TripState]) -> EncodedTrips:
    """Encode once (e.g. outside a retry loop); raises :class:`~features.catalog.CatalogError` if no catalog builds."""
    records = encode_records(states)
    columns = encode_columns(static_columns(list(states)))  # also checks the catalog builds (ids, themes)
    return EncodedTrips(
        records, columns, hashlib.sha256(records).hexdigest(), len(states), status_counts(states)
    )


def serving_catalog(states: Iterable[TripState], version: str) -> Catalog:
    """The catalog a scoring worker serves: available trips only (unavailable ones are never candidates)."""
    return Catalog(tuple(s.trip for s in states if s.available), version=version)
