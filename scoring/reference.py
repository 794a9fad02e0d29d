"""The old way, kept as an oracle: a per-trip Python rule score and a heap of 30.

This mirrors the site's current implementation (one function call per trip,
``heapq`` for the best 30). It is deliberately written without numpy and without
sharing code with :mod:`features.phi`, so tests and the benchmark compare two
independent implementations of the same rules. Never used for serving.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Callable, Sequence

from features.catalog import Trip
from features.context import Preferences
from scoring.weights import SCORING_WEIGHTS

__all__ = ["reference_indicators", "reference_rank", "reference_score", "tight_score"]


def reference_indicators(trip: Trip, prefs: Preferences, today: dt.date) -> dict[str, bool]:
    """Which rule indicators fire for one (user, trip) pair."""
    fired = {name: False for name in SCORING_WEIGHTS}
    fired["BASE_SCORE"] = True
    if prefs.themes:
        matches = len(set(prefs.themes) & set(trip.themes))
        if matches >= 2:
            fired["THEME_FULL"] = True
        elif matches == 1:
            fired["THEME_PARTIAL"] = True
        else:
            fired["THEME_PENALTY"] = True
    if prefs.difficulty is not None and trip.difficulty == prefs.difficulty:
        fired["DIFFICULTY_PERFECT"] = True
    if prefs.duration_days is not None:
        gap = abs(trip.duration_days - prefs.duration_days)
        if gap <= 4:
            fired["DURATION_IDEAL"] = True
        elif gap <= 7:
            fired["DURATION_GOOD"] = True
    if prefs.budget is not None:
        if trip.price <= prefs.budget:
            fired["BUDGET_PERFECT"] = True
        elif trip.price <= prefs.budget * 1.1:
            fired["BUDGET_GOOD"] = True
        elif trip.price <= prefs.budget * 1.2:
            fired["BUDGET_ACCEPTABLE"] = True
    if trip.status == "guaranteed":
        fired["STATUS_GUARANTEED"] = True
    elif trip.status == "last_places":
        fired["STATUS_LAST_PLACES"] = True
    days = (trip.departure_date - today).days
    if 0 <= days <= 30:
        fired["DEPARTING_SOON"] = True
    if trip.country in prefs.countries:
        fired["GEO_DIRECT_COUNTRY"] = True
    elif trip.continent in prefs.continents:
        fired["GEO_CONTINENT"] = True
    return fired


def reference_score(trip: Trip, prefs: Preferences, today: dt.date) -> float:
    fired = reference_indicators(trip, prefs, today)
    return float(sum(SCORING_WEIGHTS[name] for name, on in fired.items() if on))


def tight_score(trip: Trip, prefs: Preferences, today: dt.date) -> float:
    """The same rules hand-inlined with literal weights: the fastest plain-Python form.

    The benchmark reports it next to :func:`reference_score` so the speed-up is
    never only measured against the slower of two loops.
    """
    s = 30
    if prefs.themes:
        m = len(set(prefs.themes).intersection(trip.themes))
        s += 25 if m >= 2 else 12 if m == 1 else -15
    if prefs.difficulty is not None and trip.difficulty == prefs.difficulty:
        s += 15
    if prefs.duration_days is not None:
        gap = abs(trip.duration_days - prefs.duration_days)
        s += 12 if gap <= 4 else 8 if gap <= 7 else 0
    if prefs.budget is not None:
        b = prefs.budget
        s += 12 if trip.price <= b else 8 if trip.price <= b * 1.1 else 5 if trip.price <= b * 1.2 else 0
    s += 7 if trip.status == "guaranteed" else 15 if trip.status == "last_places" else 0
    if 0 <= (trip.departure_date - today).days <= 30:
        s += 7
    if trip.country in prefs.countries:
        s += 15
    elif trip.continent in prefs.continents:
        s += 5
    return float(s)


def reference_rank(
    trips: Sequence[Trip],
    prefs: Preferences,
    today: dt.date,
    k: int = 30,
    score: Callable[[Trip, Preferences, dt.date], float] = reference_score,
) -> list[tuple[int, float]]:
    """(catalog row, score) of the best k, best first; ties keep catalog order."""
    heap: list[tuple[float, int]] = []  # min-heap of (score, -row): the root is the worst kept
    for row, trip in enumerate(trips):
        item = (score(trip, prefs, today), -row)
        if len(heap) < k:
            heapq.heappush(heap, item)
        elif item > heap[0]:
            heapq.heapreplace(heap, item)
    return [(-neg_row, score) for score, neg_row in sorted(heap, reverse=True)]
