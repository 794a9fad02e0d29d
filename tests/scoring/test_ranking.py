from __future__ import annotations

import datetime as dt
import heapq

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.context import Preferences
from features.generator import generate_catalog
from features.phi import PHI_NAMES
from scoring.filters import FilterError, Filters, candidate_rows
from scoring.linear import LinearScorer, rule_scorer
from scoring.ranking import rank_catalog
from scoring.topk import top_k
from scoring.weights import SCORING_WEIGHTS, WeightsError, weights_from_vector, weights_vector

TODAY = dt.date(2026, 4, 1)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-3, 3), min_size=0, max_size=60), st.integers(0, 70))
def test_top_k_equals_sorted_with_ties_by_index(values: list[int], k: int) -> None:
    scores = np.array(values, dtype=np.float64)
    expected = [i for _, i in heapq.nsmallest(k, ((-v, i) for i, v in enumerate(values)))]
    assert top_k(scores, k).tolist() == expected


def test_weights_vector_validates_names_and_values() -> None:
    w = weights_vector(SCORING_WEIGHTS)
    assert w[PHI_NAMES.index("THEME_PENALTY")] == -15 and w[PHI_NAMES.index("PRICE_GAP")] == 0
    assert weights_from_vector(w)["BASE_SCORE"] == 30
    with pytest.raises(WeightsError, match=r"^NOPE: unknown feature"):
        weights_vector({"NOPE": 1.0})
    with pytest.raises(WeightsError, match=r"^BASE_SCORE: weight must be a finite number, got nan"):
        weights_vector({"BASE_SCORE": float("nan")})


def test_filters_and_departed_trips() -> None:
    catalog = generate_catalog(n_trips=2000, seed=2, start=dt.date(2026, 1, 1))
    rows = candidate_rows(catalog, TODAY)
    assert (catalog.departure_day[rows] >= (TODAY - dt.date(1970, 1, 1)).days).all()
    assert 0 < rows.size < len(catalog)  # some trips departed before TODAY
    f = Filters.from_dict(
        {
            "countries": ["Japan", "Peru"],
            "max_price": 3000,
            "date_from": "2026-06-01",
            "date_to": "2026-08-31",
        }
    )
    kept = [catalog.trips[r] for r in candidate_rows(catalog, TODAY, f)]
    assert kept and all(
        t.country in ("Japan", "Peru")
        and t.price <= 3000
        and dt.date(2026, 6, 1) <= t.departure_date <= dt.date(2026, 8, 31)
        for t in kept
    )
    around = candidate_rows(catalog, TODAY, prefs=Preferences(travel_date=dt.date(2026, 9, 15)))
    assert all(abs((catalog.trips[r].departure_date - dt.date(2026, 9, 15)).days) <= 14 for r in around)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"max_price": "cheap"}, "filters.max_price: must be a finite number"),
        ({"date_from": "2026-13-01"}, "filters.date_from: not an ISO date (YYYY-MM-DD): '2026-13-01'"),
        (
            {"date_from": "2026-05-02", "date_to": "2026-05-01"},
            "filters.date_to: must not be before date_from",
        ),
        ({"colour": 1}, "filters.colour: unknown filter"),
    ],
)
def test_bad_filters(raw: dict[str, object], message: str) -> None:
    with pytest.raises(FilterError) as err:
        Filters.from_dict(raw)
    assert str(err.value) == message


def test_rank_catalog_with_candidates_and_learned_weights() -> None:
    catalog = generate_catalog(n_trips=500, seed=9)
    prefs = Preferences(themes=("food",), budget=2000.0)
    ids = [str(t) for t in catalog.trip_ids[100:140]]
    ranked = rank_catalog(catalog, prefs, TODAY, rule_scorer(), 10, trip_ids=ids)
    assert set(ranked.trip_ids(catalog)) <= set(ids) and len(ranked.rows) == 10
    assert (np.diff(ranked.scores) <= 0).all()
    cheap_first = LinearScorer({"PRICE_GAP": -10.0})
    ranked2 = rank_catalog(catalog, prefs, TODAY, cheap_first, 5)
    prices = catalog.price[ranked2.rows]
    assert prices[0] == catalog.price[candidate_rows(catalog, TODAY)].min()
    with pytest.raises(KeyError, match="unknown trip_id 'nope'"):
        rank_catalog(catalog, prefs, TODAY, rule_scorer(), 5, trip_ids=["nope"])
