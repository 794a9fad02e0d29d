"""A seeded synthetic trip catalog with realistic, long-tailed distributions.

Prices and durations are log-normal (a few very long, very expensive
expeditions), popularity is Beta-distributed, countries follow a Zipf-like
preference so a handful of destinations dominate as in real marketplaces.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from features.catalog import STATUSES, THEMES, TRIP_TYPES, Catalog, Trip
from features.context import Preferences
from features.geo import CONTINENTS, COUNTRIES, COUNTRY_CONTINENT

__all__ = ["generate_catalog", "generate_trips", "sample_preferences"]

_ADJECTIVES = ("Classic", "Hidden", "Grand", "Wild", "Essential", "Slow", "Ultimate", "Secret", "Coastal")
_NOUNS = ("Trail", "Journey", "Circuit", "Traverse", "Discovery", "Odyssey", "Escape", "Loop", "Expedition")


def generate_trips(*, n_trips: int, seed: int, start: dt.date | None = None) -> list[Trip]:
    """``n_trips`` trips drawn from a fixed-seed generator: same seed, same trips.

    Departures spread over the year after ``start`` (default 2026-01-01).
    """
    if n_trips < 0:
        raise ValueError(f"n_trips: must be >= 0, got {n_trips}")
    rng = np.random.default_rng(seed)
    start = start or dt.date(2026, 1, 1)
    n_c = len(COUNTRIES)
    country_p = 1.0 / np.arange(1, n_c + 1) ** 0.8
    country_p = rng.permutation(country_p / country_p.sum())
    theme_p = rng.dirichlet(np.full(len(THEMES), 2.0))

    countries = rng.choice(n_c, size=n_trips, p=country_p)
    difficulty = np.clip(np.round(rng.normal(2.8, 1.1, n_trips)), 1, 5).astype(int)
    duration = np.clip(np.round(rng.lognormal(np.log(10.0), 0.45, n_trips)), 2, 60).astype(int)
    # Price grows with duration, with a heavy tail for premium and expedition trips.
    per_day = rng.lognormal(np.log(180.0), 0.5, n_trips)
    price = np.round(np.clip(per_day * duration, 200, 60_000), 0)
    status = rng.choice(len(STATUSES), size=n_trips, p=[0.35, 0.15, 0.50])
    days_out = rng.integers(1, 366, n_trips)
    trip_type = rng.choice(len(TRIP_TYPES), size=n_trips, p=[0.6, 0.15, 0.15, 0.10])
    popularity = rng.beta(2.0, 5.0, n_trips)
    n_themes = rng.choice([1, 2, 3, 4], size=n_trips, p=[0.25, 0.4, 0.25, 0.10])

    # Weighted sampling of themes without replacement, vectorized (Gumbel top-k).
    theme_order = np.argsort(-(np.log(theme_p) + rng.gumbel(size=(n_trips, len(THEMES)))), axis=1)
    adjective = rng.integers(len(_ADJECTIVES), size=n_trips)
    noun = rng.integers(len(_NOUNS), size=n_trips)

    trips: list[Trip] = []
    for i in range(n_trips):
        country = COUNTRIES[int(countries[i])]
        themes = theme_order[i, : int(n_themes[i])]
        title = f"{_ADJECTIVES[int(adjective[i])]} {country} {_NOUNS[int(noun[i])]}"
        trips.append(
            Trip(
                trip_id=f"T{i:06d}",
                title=title,
                country=country,
                continent=COUNTRY_CONTINENT[country],
                themes=tuple(THEMES[int(t)] for t in sorted(themes)),
                difficulty=int(difficulty[i]),
                duration_days=int(duration[i]),
                price=float(price[i]),
                status=STATUSES[int(status[i])],
                departure_date=start + dt.timedelta(days=int(days_out[i])),
                trip_type=TRIP_TYPES[int(trip_type[i])],
                popularity=round(float(popularity[i]), 4),
            )
        )
    return trips


def generate_catalog(
    *, n_trips: int, seed: int, start: dt.date | None = None, version: str | None = None
) -> Catalog:
    """A :class:`~features.catalog.Catalog` of :func:`generate_trips`."""
    trips = generate_trips(n_trips=n_trips, seed=seed, start=start)
    return Catalog(tuple(trips), version=version or f"synthetic-{n_trips}-{seed}")


def sample_preferences(rng: np.random.Generator, n: int) -> list[Preferences]:
    """Synthetic users with every preference given, so every rule is evaluated."""
    out = []
    for _ in range(n):
        out.append(
            Preferences(
                themes=tuple(rng.choice(THEMES, size=int(rng.integers(1, 4)), replace=False).tolist()),
                difficulty=int(rng.integers(1, 6)),
                duration_days=int(rng.integers(5, 21)),
                budget=float(rng.choice([1000.0, 2000.0, 3500.0, 6000.0])),
                countries=tuple(rng.choice(COUNTRIES, size=2, replace=False).tolist()),
                continents=(str(rng.choice(CONTINENTS)),),
            )
        )
    return out
