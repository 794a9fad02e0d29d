"""The trip catalog: validated trip records plus the column arrays the maths runs on.

A :class:`Catalog` is built once per catalog version and is immutable; the
feature map reads its columns (`numpy` arrays, one entry per trip) so scoring a
whole catalog is a handful of vector operations instead of a Python loop.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from features.geo import CONTINENT_INDEX, CONTINENTS

STATUSES: tuple[str, ...] = ("guaranteed", "last_places", "open")
STATUS_INDEX: dict[str, int] = {s: i for i, s in enumerate(STATUSES)}
TRIP_TYPES: tuple[str, ...] = ("group", "private", "self_guided", "expedition")

#: Themes a synthetic catalog draws from; a real catalog may use others (up to MAX_THEMES).
THEMES: tuple[str, ...] = (
    "hiking",
    "trekking",
    "mountaineering",
    "cycling",
    "diving",
    "wildlife",
    "safari",
    "culture",
    "history",
    "food",
    "photography",
    "beach",
    "wellness",
    "city",
    "family",
)
#: Themes are held as a 64-bit mask per trip so matching is a popcount.
MAX_THEMES = 64

EPOCH = dt.date(1970, 1, 1)


def day_number(d: dt.date) -> int:
    """Days since 1970-01-01: dates become integers the arrays can subtract."""
    return (d - EPOCH).days


@dataclass(frozen=True, slots=True)
class Trip:
    """One bookable trip departure, as validated by :mod:`features.loader`."""

    trip_id: str
    title: str
    country: str
    continent: str
    themes: tuple[str, ...]
    difficulty: int
    duration_days: int
    price: float
    status: str
    departure_date: dt.date
    trip_type: str
    popularity: float = 0.5

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict, the inverse of the loader's row parsing."""
        return {
            "trip_id": self.trip_id,
            "title": self.title,
            "country": self.country,
            "continent": self.continent,
            "themes": list(self.themes),
            "difficulty": self.difficulty,
            "duration_days": self.duration_days,
            "price": self.price,
            "status": self.status,
            "departure_date": self.departure_date.isoformat(),
            "trip_type": self.trip_type,
            "popularity": self.popularity,
        }


class CatalogError(ValueError):
    """A catalog cannot be built (duplicate ids, too many themes...)."""


@dataclass(frozen=True, eq=False)
class Catalog:
    """An immutable list of trips with per-column arrays for vectorized scoring.

    Country and theme vocabularies are local to the catalog: indices are only
    meaningful together with the catalog that produced them.
    """

    trips: tuple[Trip, ...]
    version: str = "local"
    countries: tuple[str, ...] = field(init=False)
    themes: tuple[str, ...] = field(init=False)
    trip_ids: npt.NDArray[np.str_] = field(init=False, repr=False)
    country_idx: npt.NDArray[np.int32] = field(init=False, repr=False)
    continent_idx: npt.NDArray[np.int8] = field(init=False, repr=False)
    theme_mask: npt.NDArray[np.uint64] = field(init=False, repr=False)
    theme_count: npt.NDArray[np.int16] = field(init=False, repr=False)
    difficulty: npt.NDArray[np.int8] = field(init=False, repr=False)
    duration: npt.NDArray[np.int16] = field(init=False, repr=False)
    price: npt.NDArray[np.float64] = field(init=False, repr=False)
    status_idx: npt.NDArray[np.int8] = field(init=False, repr=False)
    departure_day: npt.NDArray[np.int32] = field(init=False, repr=False)
    popularity: npt.NDArray[np.float32] = field(init=False, repr=False)
    index: dict[str, int] = field(init=False, repr=False)
    theme_bit: dict[str, int] = field(init=False, repr=False)
    country_index: dict[str, int] = field(init=False, repr=False)
    #: Per-request-date caches of date-dependent columns (see features.phi); at most a few entries.
    day_cache: dict[object, object] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        trips = self.trips
        index: dict[str, int] = {}
        for i, t in enumerate(trips):
            if t.trip_id in index:
                raise CatalogError(f"duplicate trip_id {t.trip_id!r}")
            index[t.trip_id] = i
        countries = tuple(sorted({t.country for t in trips}))
        themes = tuple(sorted({th for t in trips for th in t.themes}))
        if len(themes) > MAX_THEMES:
            raise CatalogError(f"catalog uses {len(themes)} themes; at most {MAX_THEMES} are supported")
        c_index = {c: i for i, c in enumerate(countries)}
        th_bit = {th: np.uint64(1) << np.uint64(i) for i, th in enumerate(themes)}
        masks = np.zeros(len(trips), dtype=np.uint64)
        for i, t in enumerate(trips):
            m = np.uint64(0)
            for th in t.themes:
                m |= th_bit[th]
            masks[i] = m
        put = object.__setattr__
        put(self, "index", index)
        put(self, "theme_bit", {th: i for i, th in enumerate(themes)})
        put(self, "country_index", c_index)
        put(self, "day_cache", {})
        put(self, "countries", countries)
        put(self, "themes", themes)
        put(self, "trip_ids", np.array([t.trip_id for t in trips], dtype=np.str_))
        put(self, "country_idx", np.array([c_index[t.country] for t in trips], dtype=np.int32))
        put(self, "continent_idx", np.array([CONTINENT_INDEX[t.continent] for t in trips], dtype=np.int8))
        put(self, "theme_mask", masks)
        put(self, "theme_count", np.bitwise_count(masks).astype(np.int16))
        put(self, "difficulty", np.array([t.difficulty for t in trips], dtype=np.int8))
        put(self, "duration", np.array([t.duration_days for t in trips], dtype=np.int16))
        put(self, "price", np.array([t.price for t in trips], dtype=np.float64))
        put(self, "status_idx", np.array([STATUS_INDEX[t.status] for t in trips], dtype=np.int8))
        put(self, "departure_day", np.array([day_number(t.departure_date) for t in trips], dtype=np.int32))
        put(self, "popularity", np.array([t.popularity for t in trips], dtype=np.float32))
        for name in (
            "trip_ids",
            "country_idx",
            "continent_idx",
            "theme_mask",
            "theme_count",
            "difficulty",
            "duration",
            "price",
            "status_idx",
            "departure_day",
            "popularity",
        ):
            getattr(self, name).setflags(write=False)

    def __len__(self) -> int:
        return len(self.trips)

    def positions(self, trip_ids: Iterable[str]) -> npt.NDArray[np.intp]:
        """Catalog row of each trip id; raises KeyError naming the first unknown id."""
        rows = []
        for tid in trip_ids:
            try:
                rows.append(self.index[tid])
            except KeyError:
                raise KeyError(f"unknown trip_id {tid!r}") from None
        return np.array(rows, dtype=np.intp)

    def theme_mask_of(self, themes: Sequence[str]) -> np.uint64:
        """Bit mask of the given themes in this catalog's vocabulary (unknown themes set no bit)."""
        m = 0
        for th in themes:
            bit = self.theme_bit.get(th)
            if bit is not None:
                m |= 1 << bit
        return np.uint64(m)

    def country_lookup(self, countries: Iterable[str]) -> npt.NDArray[np.bool_]:
        """Boolean table over this catalog's country vocabulary: True for the given countries."""
        table = np.zeros(len(self.countries), dtype=np.bool_)
        for c in countries:
            i = self.country_index.get(c)
            if i is not None:
                table[i] = True
        return table


def continent_lookup(continents: Iterable[str]) -> npt.NDArray[np.bool_]:
    """Boolean table over :data:`~features.geo.CONTINENTS`."""
    wanted = set(continents)
    return np.array([c in wanted for c in CONTINENTS], dtype=np.bool_)
