"""An impression as the join keeps it: φ rows packed into one float64 buffer.

Why: the join holds every slate for its attribution window plus the allowed
lateness (15 minutes by default), and the φ rows are most of a slate. As a
tuple of Python floats a value costs 32 bytes (a float object and a pointer),
packed it costs 8, and the packing is exact (IEEE binary64 both ways), so the
examples and late corrections built from a packed slate are the same as from
the decoded impression. The rest of the slate is kept as columns (one tuple
per field instead of one object per item) with a trip → index map for the
join's lookups.

The changelog form (:meth:`PackedImpression.to_compact`) carries φ as
base64 of the packed buffer — smaller than JSON decimals and much cheaper to
write — and :meth:`PackedImpression.from_compact` rebuilds the impression
record and validates it exactly as decoding an ``impressions`` record would.

>>> from stream.events import SlateItem
>>> imp = Impression("r1", "s1", "u1", "family", "rules", "m0", "phi-v1", 1000.0,
...                  (SlateItem("t1", 0, 2.0, 0.5, (0.1, 1e-300)), SlateItem("t2", 1, 1.0, 1.0, (-0.0, 3.0))))
>>> packed = PackedImpression.of(imp)
>>> packed.impression() == imp, packed.row(1)
(True, (-0.0, 3.0))
>>> PackedImpression.from_compact(packed.to_compact(), "state") == packed
True
"""

from __future__ import annotations

import base64
import binascii
import functools
import struct
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import cast

import orjson

from stream._fields import MAX_ID_LEN, as_object, check_int, check_list, join, require, type_name
from stream.codec import decode_impression, impression_from_dict
from stream.errors import EventError
from stream.events import (
    MAX_PAYLOAD_BYTES,
    MAX_PHI_DIM,
    MAX_POSITION,
    MAX_SLATE_SIZE,
    MAX_TS,
    SCHEMA_VERSION,
    Impression,
    SlateItem,
)

__all__ = ["PackedImpression", "decode_packed_impression"]


@dataclass(frozen=True, slots=True)
class PackedImpression:
    """The fields of an :class:`~stream.events.Impression`, with the slate as columns and φ packed.

    ``phi`` holds the rows one after the other (``dim`` values each) as
    native float64; ``index`` maps a trip id to its slate index.
    """

    request_id: str
    session_id: str
    user_id: str
    segment: str
    policy: str
    model_version: str
    feature_version: str
    ts: float
    phi_names: tuple[str, ...]
    catalog_version: str | None
    trips: tuple[str, ...]
    positions: tuple[int, ...]
    scores: tuple[float, ...]
    propensities: tuple[float, ...]
    randomized: tuple[bool, ...]
    dim: int
    phi: bytes
    index: dict[str, int] = field(compare=False, repr=False)

    @classmethod
    def of(cls, imp: Impression) -> PackedImpression:
        """Pack a decoded impression (φ rows of one length, as decoding guarantees)."""
        slate = imp.slate
        trips = tuple([s.trip_id for s in slate])
        return cls(
            imp.request_id, imp.session_id, imp.user_id, imp.segment, imp.policy, imp.model_version,
            imp.feature_version, imp.ts, imp.phi_names, imp.catalog_version, trips,
            tuple([s.position for s in slate]), tuple([s.score for s in slate]),
            tuple([s.propensity for s in slate]), tuple([s.randomized for s in slate]),
            len(slate[0].phi), array("d", chain.from_iterable([s.phi for s in slate])).tobytes(),
            {t: i for i, t in enumerate(trips)},
        )  # fmt: skip

    def __len__(self) -> int:
        """Number of shown trips."""
        return len(self.trips)

    def rows(self) -> list[tuple[float, ...]]:
        """The φ rows, in slate order."""
        d = self.dim
        if d == 0:
            return [()] * len(self.trips)
        # struct unpacks each row into its tuple in C (a memoryview slice per row cost 5x more)
        return list(_row_struct(d).iter_unpack(self.phi))

    def row(self, k: int) -> tuple[float, ...]:
        """The φ row of slate item ``k``."""
        d = self.dim
        return tuple(memoryview(self.phi).cast("d")[k * d : (k + 1) * d])

    def impression(self) -> Impression:
        """The impression record this was packed from (equal to it)."""
        slate = tuple(
            SlateItem(t, p, s, q, phi, r)
            for t, p, s, q, phi, r in zip(
                self.trips, self.positions, self.scores, self.propensities, self.rows(), self.randomized,
                strict=True,
            )
        )  # fmt: skip
        return Impression(
            self.request_id, self.session_id, self.user_id, self.segment, self.policy, self.model_version,
            self.feature_version, self.ts, slate, self.phi_names, self.catalog_version,
        )  # fmt: skip

    def to_compact(self) -> dict[str, object]:
        """JSON-able form with φ as base64 of the packed float64 buffer (little-endian)."""
        phi = self.phi if _LITTLE else _swapped(self.phi)
        return {
            "request_id": self.request_id, "session_id": self.session_id, "user_id": self.user_id,
            "segment": self.segment, "policy": self.policy, "model_version": self.model_version,
            "feature_version": self.feature_version, "ts": self.ts, "phi_names": list(self.phi_names),
            "catalog_version": self.catalog_version, "trips": list(self.trips),
            "positions": list(self.positions), "scores": list(self.scores),
            "propensities": list(self.propensities), "randomized": list(self.randomized),
            "dim": self.dim, "phi64": base64.b64encode(phi).decode("ascii"),
        }  # fmt: skip

    def compact_fields(self) -> dict[str, object]:
        """:meth:`to_compact` for ``orjson.dumps`` only: the same JSON, columns left as tuples.

        orjson writes a tuple as the array of its list, so the bytes are
        those of :meth:`to_compact` (tested) without copying five columns
        into lists; the join's changelog writes go through this.
        """
        phi = self.phi if _LITTLE else _swapped(self.phi)
        return {
            "request_id": self.request_id, "session_id": self.session_id, "user_id": self.user_id,
            "segment": self.segment, "policy": self.policy, "model_version": self.model_version,
            "feature_version": self.feature_version, "ts": self.ts, "phi_names": self.phi_names,
            "catalog_version": self.catalog_version, "trips": self.trips, "positions": self.positions,
            "scores": self.scores, "propensities": self.propensities, "randomized": self.randomized,
            "dim": self.dim, "phi64": binascii.b2a_base64(phi, newline=False).decode("ascii"),
        }  # fmt: skip

    @classmethod
    def from_compact(cls, value: object, prefix: str) -> PackedImpression:
        """Rebuild from :meth:`to_compact` output, validated like an ``impressions`` record.

        Raises :class:`~stream.errors.EventError` naming the field.
        """
        obj = as_object(value, prefix)
        trips = _column(obj, "trips", prefix)
        n = len(trips)
        columns = {
            k: _column(obj, k, prefix, n) for k in ("positions", "scores", "propensities", "randomized")
        }
        dim = check_int(require(obj, "dim", prefix), join(prefix, "dim"), lo=0, hi=MAX_PHI_DIM)
        path = join(prefix, "phi64")
        text = obj.get("phi64")
        if not isinstance(text, str):  # "" is the buffer of an empty φ (catalog_version set)
            raise EventError(path, f"must be a string, got {type_name(text)}")
        try:
            raw = base64.b64decode(text, validate=True)
        except binascii.Error:
            raise EventError(path, "must be base64") from None
        if len(raw) != 8 * n * dim:
            raise EventError(path, f"must hold {n} x {dim} float64 values, got {len(raw)} bytes")
        values = array("d", raw if _LITTLE else _swapped(raw))
        slate = [
            {"trip_id": t, "position": p, "score": s, "propensity": q,
             "phi": values[k * dim : (k + 1) * dim].tolist(), "randomized": r}
            for k, (t, p, s, q, r) in enumerate(zip(trips, *columns.values(), strict=True))
        ]  # fmt: skip
        record = {k: obj.get(k) for k in _IMPRESSION_STRS} | {
            "v": SCHEMA_VERSION, "kind": "impression", "ts": obj.get("ts"), "phi_names": obj.get("phi_names"),
            "catalog_version": obj.get("catalog_version"), "slate": slate,
        }  # fmt: skip
        return cls.of(impression_from_dict(record, prefix))


def decode_packed_impression(raw: bytes) -> PackedImpression:
    """Decode and validate one ``impressions`` record straight into its packed form.

    Same rules, result and errors as ``PackedImpression.of(decode_impression(raw))``
    (tested): a valid record parsed by orjson takes :func:`_packed_fast`,
    anything in doubt the careful decoder, which raises the
    :class:`~stream.errors.EventError`.
    """
    if type(raw) is bytes and len(raw) <= MAX_PAYLOAD_BYTES:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            obj = None
        if type(obj) is dict:
            try:
                fast = _packed_fast(obj)
            except (KeyError, TypeError, ValueError, OverflowError):  # odd records: the careful path decides
                fast = None
            if fast is not None:
                return fast
    return PackedImpression.of(decode_impression(raw))


def _packed_fast(obj: dict[str, object]) -> PackedImpression | None:
    """The packed impression of a valid record, or None at the first doubt.

    ``obj`` must come from ``orjson.loads``, which never yields a non-finite
    number (it refuses NaN, and overflow). The join's hottest path: no
    :class:`~stream.events.SlateItem` and no per-row tuple is built; φ goes
    from the JSON arrays into one float64 buffer. Errors (and their
    messages) are left to the careful decoder.
    """
    version = obj.get("v")
    if type(version) is not int or version != SCHEMA_VERSION or obj.get("kind") != "impression":
        return None
    strs = list(map(obj.get, _IMPRESSION_STRS))
    if set(map(type, strs)) != _STR or min(map(len, strs)) == 0 or max(map(len, strs)) > MAX_ID_LEN:  # type: ignore[arg-type]
        return None
    ts, names, catalog_version, items = (
        obj.get("ts"),
        obj.get("phi_names"),
        obj.get("catalog_version"),
        obj.get("slate"),
    )
    if type(ts) not in _NUMBERS or not 0 < ts <= MAX_TS:  # type: ignore[operator]
        return None
    if names is None or names == []:
        phi_names: tuple[str, ...] = ()
    elif type(names) is list and len(names) <= MAX_PHI_DIM and len(set(names)) == len(names):
        phi_names = tuple(names)
        if any(type(x) is not str or not 0 < len(x) <= MAX_ID_LEN for x in phi_names):
            return None
    else:
        return None
    if catalog_version is not None and (
        type(catalog_version) is not str or not 0 < len(catalog_version) <= MAX_ID_LEN
    ):
        return None
    if type(items) is not list or not 0 < len(items) <= MAX_SLATE_SIZE:
        return None
    columns = _columns_fast(items)
    if columns is None:
        return None
    trips, positions, scores, propensities, randomized, dim, phi = columns
    if (phi_names and len(phi_names) != dim) or (dim == 0 and catalog_version is None):
        return None
    request_id, session_id, user_id, segment, policy, model_version, feature_version = strs
    return PackedImpression(
        request_id, session_id, user_id, segment, policy, model_version, feature_version,  # type: ignore[arg-type]
        float(ts), phi_names, catalog_version, trips, positions, scores, propensities, randomized, dim,  # type: ignore[arg-type]
        phi, {t: i for i, t in enumerate(trips)},
    )  # fmt: skip


_IMPRESSION_STRS = (
    "request_id",
    "session_id",
    "user_id",
    "segment",
    "policy",
    "model_version",
    "feature_version",
)
_NUMBERS = frozenset({int, float})

_Columns = tuple[
    tuple[str, ...], tuple[int, ...], tuple[float, ...], tuple[float, ...], tuple[bool, ...], int, bytes
]


def _columns_fast(items: list[object]) -> _Columns | None:
    # Column by column with C-level map/set calls: a Python loop per item cost twice as much.
    if set(map(type, items)) != _DICT:
        return None
    slate = cast("list[dict[str, object]]", items)
    # the five fields of every item, transposed into five column tuples by zip (KeyError when
    # one is missing: the careful path)
    trips, positions, scores, propensities, rows = cast(
        "tuple[tuple[str, ...], tuple[int, ...], tuple[float, ...], tuple[float, ...], tuple[list[float], ...]]",
        tuple(zip(*map(_FIELDS, slate), strict=True)),
    )
    randomized = [item.get("randomized", False) for item in slate]
    n = len(slate)
    if (
        set(map(type, trips)) != _STR
        or set(map(type, positions)) != _INT
        or not set(map(type, scores)) <= _NUMBERS
        or not set(map(type, propensities)) <= _NUMBERS
        or set(map(type, randomized)) != _BOOL
        or set(map(type, rows)) != _LIST
    ):
        return None
    widths = set(map(len, rows))
    dim = rows[0].__len__()
    if (
        len(widths) != 1
        or dim > MAX_PHI_DIM
        or min(map(len, trips)) == 0
        or max(map(len, trips)) > MAX_ID_LEN
        or min(positions) < 0
        or max(positions) > MAX_POSITION
        or not min(propensities) > 0
        or max(propensities) > 1
        or len(set(trips)) != n
        or len(set(positions)) != n
    ):
        return None
    flat = list(chain.from_iterable(rows))
    try:  # one struct call packs the buffer array("d", flat) would hold, 3x faster
        phi = _row_struct(len(flat)).pack(*flat)
    except struct.error:  # anything but numbers and booleans
        return None
    # JSON booleans are the one non-number packing takes (as 1.0 or 0.0): φ needs a per-value
    # type check only when the buffer holds either value's 8 bytes (anywhere: a match across
    # two values only costs the check), which measured values rarely do.
    if (_ONE in phi or _ZERO in phi) and not set(map(type, flat)) <= _NUMBERS:
        return None
    return (
        trips, positions, tuple(map(float, scores)), tuple(map(float, propensities)),
        cast("tuple[bool, ...]", tuple(randomized)), dim, phi,
    )  # fmt: skip


_DICT, _STR, _INT, _BOOL, _LIST = (frozenset({t}) for t in (dict, str, int, bool, list))
_FIELDS = itemgetter("trip_id", "position", "score", "propensity", "phi")


_LITTLE = array("d", [1.0]).tobytes() == b"\x00\x00\x00\x00\x00\x00\xf0?"
_ONE, _ZERO = array("d", [1.0]).tobytes(), array("d", [0.0]).tobytes()  # what True and False pack to


@functools.lru_cache(maxsize=256)
def _row_struct(count: int) -> struct.Struct:
    """``count`` native float64 values: one φ row, or a slate's whole buffer."""
    return struct.Struct(f"@{count}d")


def _swapped(raw: bytes) -> bytes:
    values = array("d", raw)
    values.byteswap()
    return values.tobytes()


def _column(obj: Mapping[str, object], key: str, prefix: str, n: int | None = None) -> list[object]:
    path = join(prefix, key)
    items = check_list(require(obj, key, prefix), path, min_len=1, max_len=MAX_SLATE_SIZE)
    if n is not None and len(items) != n:
        raise EventError(path, f"must have {n} entries like {join(prefix, 'trips')}, got {len(items)}")
    return items
