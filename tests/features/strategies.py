"""Hypothesis strategies for trips and preferences that hit every rule threshold."""

from __future__ import annotations

import datetime as dt

from hypothesis import strategies as st

from features.catalog import STATUSES, THEMES, TRIP_TYPES, Trip
from features.context import Preferences
from features.geo import CONTINENTS, COUNTRIES, COUNTRY_CONTINENT

TODAY = dt.date(2026, 5, 1)
_FEW_COUNTRIES = COUNTRIES[:8]
_FEW_THEMES = THEMES[:6]

preferences = st.builds(
    Preferences,
    themes=st.lists(st.sampled_from((*_FEW_THEMES, "unknown-theme")), max_size=3, unique=True).map(tuple),
    difficulty=st.none() | st.integers(1, 5),
    duration_days=st.none() | st.integers(1, 30),
    budget=st.none() | st.sampled_from([500.0, 999.99, 1000.0, 1234.5, 3000.0]),
    countries=st.lists(st.sampled_from(_FEW_COUNTRIES), max_size=3, unique=True).map(tuple),
    continents=st.lists(st.sampled_from(CONTINENTS), max_size=2, unique=True).map(tuple),
)


@st.composite
def trip_lists(draw: st.DrawFn, prefs: Preferences, max_size: int = 40) -> list[Trip]:
    n = draw(st.integers(1, max_size))
    budget = prefs.budget or 1000.0
    wanted = prefs.duration_days or 10
    trips = []
    for i in range(n):
        country = draw(st.sampled_from(_FEW_COUNTRIES))
        # Prices and durations exactly at, just below and just above each threshold.
        price = draw(
            st.sampled_from([budget * f for f in (0.5, 1.0, 1.1, 1.2, 1.3)])
            | st.floats(0, budget * 1.5, allow_nan=False)
        )
        duration = max(1, wanted + draw(st.sampled_from([-8, -7, -5, -4, 0, 3, 4, 5, 7, 8])))
        days = draw(st.sampled_from([-1, 0, 1, 29, 30, 31, 200]))
        trips.append(
            Trip(
                trip_id=f"T{i}",
                title=f"trip {i}",
                country=country,
                continent=COUNTRY_CONTINENT[country],
                themes=tuple(draw(st.lists(st.sampled_from(_FEW_THEMES), max_size=3, unique=True))),
                difficulty=draw(st.integers(1, 5)),
                duration_days=duration,
                price=float(price),
                status=draw(st.sampled_from(STATUSES)),
                departure_date=TODAY + dt.timedelta(days=days),
                trip_type=draw(st.sampled_from(TRIP_TYPES)),
                popularity=draw(st.floats(0, 1)),
            )
        )
    return trips
