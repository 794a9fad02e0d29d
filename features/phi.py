"""The feature map φ(user, trips) → float32 matrix (n_trips × d), vectorized.

Every policy (the hand-tuned rules, logistic regression, LinUCB, VW) scores the
same φ, so a learned weight reads like a rule weight ("BUDGET_PERFECT is now 9.3").

Firing rules of the 15 rule indicators (1.0 when they fire, else 0.0). Let U be
the user's themes, T the trip's themes, m = |U ∩ T|:

======================  =====================================================
BASE_SCORE              always.
THEME_FULL              U non-empty and m ≥ 2.
THEME_PARTIAL           U non-empty and m = 1.
THEME_PENALTY           U non-empty and m = 0 (no penalty when U is empty).
DIFFICULTY_PERFECT      difficulty given and equal to the trip's.
DURATION_IDEAL          duration given and |trip − wanted| ≤ 4 days.
DURATION_GOOD           duration given and 4 < |trip − wanted| ≤ 7 days.
BUDGET_PERFECT          budget B given and price ≤ B.
BUDGET_GOOD             budget given and B < price ≤ B × 1.1.
BUDGET_ACCEPTABLE       budget given and B × 1.1 < price ≤ B × 1.2.
STATUS_GUARANTEED       status is ``guaranteed``.
STATUS_LAST_PLACES      status is ``last_places``.
DEPARTING_SOON          0 ≤ departure − today ≤ 30 days (today = request date).
GEO_DIRECT_COUNTRY      the trip's country is among the wanted countries.
GEO_CONTINENT           not GEO_DIRECT_COUNTRY, and the trip's continent is
                        among the wanted continents.
======================  =====================================================

Tiers within a group are exclusive (a trip is never both DURATION_IDEAL and
DURATION_GOOD); all thresholds are inclusive; budget thresholds are computed in
float64 exactly as written (``price <= budget * 1.1``).

Continuous features for the learners (rule weight 0):

======================  =====================================================
PRICE_GAP               (price − B) / B clipped to [−1, 1]; 0 without budget.
DURATION_GAP            |trip − wanted| / wanted clipped to [0, 1]; 0 without.
THEME_JACCARD           m / |U ∪ T|; 0 when U is empty.
POPULARITY              the catalog's popularity prior in [0, 1].
DEPARTURE_HORIZON       (departure − today) / 365 clipped to [0, 1].
======================  =====================================================
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import numpy.typing as npt

from features.catalog import STATUS_INDEX, Catalog, continent_lookup, day_number
from features.context import Preferences

__all__ = ["INDICATOR_NAMES", "PHI_NAMES", "D", "FeatureMap", "phi"]

INDICATOR_NAMES: tuple[str, ...] = (
    "BASE_SCORE",
    "THEME_FULL",
    "THEME_PARTIAL",
    "THEME_PENALTY",
    "DIFFICULTY_PERFECT",
    "DURATION_IDEAL",
    "DURATION_GOOD",
    "BUDGET_PERFECT",
    "BUDGET_GOOD",
    "BUDGET_ACCEPTABLE",
    "STATUS_GUARANTEED",
    "STATUS_LAST_PLACES",
    "DEPARTING_SOON",
    "GEO_DIRECT_COUNTRY",
    "GEO_CONTINENT",
)
CONTINUOUS_NAMES: tuple[str, ...] = (
    "PRICE_GAP",
    "DURATION_GAP",
    "THEME_JACCARD",
    "POPULARITY",
    "DEPARTURE_HORIZON",
)
PHI_NAMES: tuple[str, ...] = INDICATOR_NAMES + CONTINUOUS_NAMES
D = len(PHI_NAMES)
#: Bump when a firing rule or a column changes: logged impressions name it so φ can be rebuilt.
FEATURE_VERSION = "phi-v1"

_COL = {name: i for i, name in enumerate(PHI_NAMES)}
_GUARANTEED = STATUS_INDEX["guaranteed"]
_LAST_PLACES = STATUS_INDEX["last_places"]

_MAX_CACHED_DAYS = 4


def _static_block(catalog: Catalog, today: dt.date) -> npt.NDArray[np.float32]:
    """Columns that depend only on the trip and the request date, cached per date.

    Stored feature-major (D × n) so that each per-request column write below is
    one contiguous store; :func:`phi` returns the transpose, an (n × D) view.
    """
    day = day_number(today)
    cached = catalog.day_cache.get(day)
    if cached is not None:
        return cached  # type: ignore[return-value]
    F = np.zeros((D, len(catalog)), dtype=np.float32)
    F[_COL["BASE_SCORE"]] = 1.0
    F[_COL["STATUS_GUARANTEED"]] = catalog.status_idx == _GUARANTEED
    F[_COL["STATUS_LAST_PLACES"]] = catalog.status_idx == _LAST_PLACES
    days = catalog.departure_day - day
    F[_COL["DEPARTING_SOON"]] = (days >= 0) & (days <= 30)
    F[_COL["DEPARTURE_HORIZON"]] = np.clip(days / 365.0, 0.0, 1.0)
    F[_COL["POPULARITY"]] = catalog.popularity
    F.setflags(write=False)
    if len(catalog.day_cache) >= 2 * _MAX_CACHED_DAYS:
        catalog.day_cache.clear()
    catalog.day_cache[day] = F
    return F


def phi(
    catalog: Catalog,
    prefs: Preferences,
    today: dt.date,
    rows: npt.NDArray[np.intp] | None = None,
) -> npt.NDArray[np.float32]:
    """φ for the given catalog rows (all rows when ``rows`` is None), shape (n, :data:`D`).

    The result is a Fortran-ordered view (feature-major storage), which numpy
    matrix products and row indexing handle transparently.

    Examples
    --------
    >>> from features.generator import generate_catalog
    >>> cat = generate_catalog(n_trips=5, seed=1)
    >>> X = phi(cat, Preferences(budget=2000.0), dt.date(2026, 1, 1))
    >>> X.shape, X.dtype.name, float(X[:, 0].sum())
    ((5, 20), 'float32', 5.0)
    """
    static = _static_block(catalog, today)
    # Gathering 8 catalog columns costs more than computing on a few extra rows:
    # when most of the catalog is wanted, compute every row and select at the end.
    full = rows is None or 2 * len(rows) >= len(catalog)
    if rows is None or full:
        F = static.copy()

        def col(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
            return a
    else:
        picked = rows
        F = static.take(picked, axis=1)

        def col(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
            return a.take(picked)

    if prefs.themes:
        m = np.bitwise_count(col(catalog.theme_mask) & catalog.theme_mask_of(prefs.themes))
        F[_COL["THEME_FULL"]] = m >= 2
        F[_COL["THEME_PARTIAL"]] = m == 1
        F[_COL["THEME_PENALTY"]] = m == 0
        # |U ∪ T| ≥ |U| ≥ 1
        F[_COL["THEME_JACCARD"]] = m / (len(prefs.themes) + col(catalog.theme_count) - m)

    if prefs.difficulty is not None:
        F[_COL["DIFFICULTY_PERFECT"]] = col(catalog.difficulty) == prefs.difficulty

    if prefs.duration_days is not None:
        gap = np.abs(col(catalog.duration) - np.int16(prefs.duration_days))
        ideal = gap <= 4
        F[_COL["DURATION_IDEAL"]] = ideal
        F[_COL["DURATION_GOOD"]] = (gap <= 7) ^ ideal
        F[_COL["DURATION_GAP"]] = np.minimum(gap, prefs.duration_days) / prefs.duration_days

    if prefs.budget is not None:
        b = prefs.budget
        price = col(catalog.price)
        # Inclusive thresholds computed in float64 exactly as documented; tiers are
        # nested (perfect ⊂ good ⊂ acceptable), so xor leaves the exclusive tier.
        perfect = price <= b
        good = price <= b * 1.1
        F[_COL["BUDGET_PERFECT"]] = perfect
        F[_COL["BUDGET_GOOD"]] = good ^ perfect
        F[_COL["BUDGET_ACCEPTABLE"]] = (price <= b * 1.2) ^ good
        gap_b = (price - b) / b
        F[_COL["PRICE_GAP"]] = np.maximum(np.minimum(gap_b, 1.0), -1.0)

    if prefs.countries:
        direct = catalog.country_lookup(prefs.countries).take(col(catalog.country_idx))
        F[_COL["GEO_DIRECT_COUNTRY"]] = direct
        if prefs.continents:
            on_continent = continent_lookup(prefs.continents).take(col(catalog.continent_idx))
            F[_COL["GEO_CONTINENT"]] = on_continent > direct
    elif prefs.continents:
        F[_COL["GEO_CONTINENT"]] = continent_lookup(prefs.continents).take(col(catalog.continent_idx))

    if full and rows is not None and len(rows) != len(catalog):
        F = F.take(rows, axis=1)
    return F.T


class FeatureMap:
    """φ bound to one catalog; the name learners and scorers share."""

    names: tuple[str, ...] = PHI_NAMES
    version: str = FEATURE_VERSION

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def __call__(
        self, prefs: Preferences, today: dt.date, rows: npt.NDArray[np.intp] | None = None
    ) -> npt.NDArray[np.float32]:
        return phi(self.catalog, prefs, today, rows)
