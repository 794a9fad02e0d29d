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
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import chain

from stream._fields import as_object, check_int, check_list, check_str, join, require
from stream.codec import impression_from_dict
from stream.errors import EventError
from stream.events import MAX_PHI_DIM, MAX_SLATE_SIZE, SCHEMA_VERSION, Impression, SlateItem

__all__ = ["PackedImpression"]


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
        values = memoryview(self.phi).cast("d")
        return [tuple(values[k : k + d]) for k in range(0, len(values), d)]

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
        try:
            raw = base64.b64decode(
                check_str(require(obj, "phi64", prefix), path, max_len=1 << 22), validate=True
            )
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
        keys = (
            "request_id",
            "session_id",
            "user_id",
            "segment",
            "policy",
            "model_version",
            "feature_version",
        )
        record = {k: obj.get(k) for k in keys} | {
            "v": SCHEMA_VERSION, "kind": "impression", "ts": obj.get("ts"), "phi_names": obj.get("phi_names"),
            "catalog_version": obj.get("catalog_version"), "slate": slate,
        }  # fmt: skip
        return cls.of(impression_from_dict(record, prefix))


_LITTLE = array("d", [1.0]).tobytes() == b"\x00\x00\x00\x00\x00\x00\xf0?"


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
