"""Hard filters: which catalog rows may be ranked at all.

Trips that have already departed are never candidates. The other filters are
optional: countries, a departure date window, a maximum price, an explicit
list of candidate trip ids. When the request gives no date window but the
user gave a ``travel_date``, departures within ±``TRAVEL_DATE_FLEX_DAYS`` of
it are kept.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from features.catalog import Catalog, day_number
from features.context import Preferences

__all__ = ["TRAVEL_DATE_FLEX_DAYS", "FilterError", "Filters", "candidate_rows"]

TRAVEL_DATE_FLEX_DAYS = 14


class FilterError(ValueError):
    """Invalid filters; the message names the field."""


@dataclass(frozen=True, slots=True)
class Filters:
    countries: tuple[str, ...] = ()
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    max_price: float | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Filters:
        if not isinstance(raw, Mapping):
            raise FilterError(f"filters: must be an object, got {type(raw).__name__}")
        extra = sorted(set(raw) - {"countries", "date_from", "date_to", "max_price"})
        if extra:
            raise FilterError(f"filters.{extra[0]}: unknown filter")
        countries = raw.get("countries") or []
        if not isinstance(countries, list) or not all(isinstance(c, str) and c for c in countries):
            raise FilterError("filters.countries: must be a list of non-empty strings")
        dates: dict[str, dt.date | None] = {}
        for key in ("date_from", "date_to"):
            value = raw.get(key)
            if value is None:
                dates[key] = None
                continue
            if not isinstance(value, str):
                raise FilterError(f"filters.{key}: must be an ISO date string (YYYY-MM-DD)")
            try:
                dates[key] = dt.date.fromisoformat(value)
            except ValueError:
                raise FilterError(f"filters.{key}: not an ISO date (YYYY-MM-DD): {value!r}") from None
        if dates["date_from"] and dates["date_to"] and dates["date_from"] > dates["date_to"]:
            raise FilterError("filters.date_to: must not be before date_from")
        max_price = raw.get("max_price")
        if max_price is not None and (
            isinstance(max_price, bool)
            or not isinstance(max_price, int | float)
            or not math.isfinite(max_price)
        ):
            raise FilterError("filters.max_price: must be a finite number")
        return cls(
            countries=tuple(countries),
            date_from=dates["date_from"],
            date_to=dates["date_to"],
            max_price=None if max_price is None else float(max_price),
        )


def candidate_rows(
    catalog: Catalog,
    today: dt.date,
    filters: Filters | None = None,
    prefs: Preferences | None = None,
    trip_ids: Sequence[str] | None = None,
) -> npt.NDArray[np.intp]:
    """Catalog rows that pass every filter, in catalog order."""
    f = filters or Filters()
    date_from, date_to = f.date_from, f.date_to
    if date_from is None and date_to is None and prefs is not None and prefs.travel_date is not None:
        flex = dt.timedelta(days=TRAVEL_DATE_FLEX_DAYS)
        date_from, date_to = prefs.travel_date - flex, prefs.travel_date + flex
    if trip_ids is None and date_from is None and date_to is None and f.max_price is None and not f.countries:
        return _bookable_rows(catalog, today)
    if trip_ids is not None:
        rows = np.unique(catalog.positions(trip_ids))
    else:
        rows = np.arange(len(catalog), dtype=np.intp)
    keep = catalog.departure_day[rows] >= day_number(today)
    if date_from is not None:
        keep &= catalog.departure_day[rows] >= day_number(date_from)
    if date_to is not None:
        keep &= catalog.departure_day[rows] <= day_number(date_to)
    if f.max_price is not None:
        keep &= catalog.price[rows] <= f.max_price
    if f.countries:
        keep &= catalog.country_lookup(f.countries)[catalog.country_idx[rows]]
    return rows[keep]


def _bookable_rows(catalog: Catalog, today: dt.date) -> npt.NDArray[np.intp]:
    """Rows not yet departed; the common unfiltered case, cached per request date."""
    key = ("bookable", day_number(today))
    rows = catalog.day_cache.get(key)
    if rows is None:
        rows = np.flatnonzero(catalog.departure_day >= key[1])
        rows.setflags(write=False)
        catalog.day_cache[key] = rows
    return cast("npt.NDArray[np.intp]", rows)
