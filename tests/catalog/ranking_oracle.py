"""What /v1/rank must answer on a given catalog version with the rules policy: the test oracle.

Built from the version's stored trips the way an analyst would (no scoring
worker code beyond φ and the rule weights), so a response computed on a mix of
two versions, or on the wrong one, disagrees with the oracle of the version it names.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from features.catalog import STATUSES, day_number
from features.catalog_records import serving_catalog
from features.context import Preferences
from features.phi import phi
from features.trip_update import TripState
from scoring.policies import score_request

PREFS: dict[str, Any] = {
    "budget": 2500,
    "themes": ["hiking", "culture"],
    "duration_days": 10,
    "difficulty": 3,
}


def expected_scores(
    trips: Sequence[TripState], trip_ids: Sequence[str], today: dt.date, prefs: Mapping[str, Any] = PREFS
) -> dict[str, float]:
    """Rule score of every requested trip the version may serve (available, not departed)."""
    cat = serving_catalog(trips, "oracle")
    rows = np.array(sorted(cat.index[t] for t in trip_ids if t in cat.index), dtype=np.intp)
    rows = rows[cat.departure_day[rows] >= day_number(today)]
    X = phi(cat, Preferences.from_dict(dict(prefs)), today, rows)
    scores = score_request("rules", None, X, "general").scores
    return dict(zip(cat.trip_ids[rows].tolist(), scores.tolist(), strict=True))


def check_response(body: Mapping[str, Any], versions: Mapping[str, Sequence[TripState]], ids: Sequence[str],
                   today: dt.date) -> str:  # fmt: skip
    """Assert that ``body`` is exactly the ranking of the version it names; returns that version."""
    version = body["catalog_version"]
    want = expected_scores(versions[version], ids, today)
    assert body["candidates"] == len(want), (version, body["candidates"], len(want))
    for item in body["items"]:
        assert item["trip_id"] in want, (version, item["trip_id"])
        assert item["score"] == want[item["trip_id"]], (version, item, want[item["trip_id"]])
    top = sorted(want.values(), reverse=True)[: len(body["items"])]
    assert sorted((it["score"] for it in body["items"]), reverse=True) == top, version
    return str(version)


def random_change(rng: random.Random, trip: TripState) -> dict[str, Any]:
    """A random ``set`` for a trip update: status, price or availability."""
    kind = rng.random()
    if kind < 0.4:
        return {"status": rng.choice([s for s in STATUSES if s != trip.trip.status])}
    if kind < 0.8:
        return {"price": float(rng.randrange(300, 6000))}
    return {"available": not trip.available}
