from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from features.context import SEGMENTS, PreferenceError, Preferences, assign_segment


@pytest.mark.parametrize(
    ("prefs", "segment"),
    [
        (Preferences(), "general"),
        (Preferences(difficulty=4, budget=9000.0), "adventure"),
        (Preferences(themes=("diving",), budget=1000.0), "adventure"),
        (Preferences(budget=5000.0), "luxury"),
        (Preferences(budget=1499.0, themes=("food",)), "budget"),
        (Preferences(budget=1500.0, themes=("food",)), "culture"),
        (Preferences(themes=("beach",), difficulty=2), "general"),
    ],
)
def test_segment_rules_in_order(prefs: Preferences, segment: str) -> None:
    assert assign_segment(prefs) == segment


def test_explicit_segment_wins_and_is_validated() -> None:
    assert assign_segment(Preferences(difficulty=5), explicit="culture") == "culture"
    with pytest.raises(PreferenceError, match="segment: unknown segment 'vip'"):
        assign_segment(Preferences(), explicit="vip")
    assert set(SEGMENTS) >= {"general"}


def test_preferences_round_trip() -> None:
    raw = {
        "themes": ["hiking", "food"],
        "difficulty": 3,
        "duration_days": 9,
        "budget": 2000,
        "countries": ["Peru"],
        "continents": ["Europe"],
        "travel_date": "2026-07-01",
    }
    prefs = Preferences.from_dict(raw)
    assert prefs.travel_date == dt.date(2026, 7, 1) and prefs.budget == 2000.0
    assert Preferences.from_dict(prefs.to_dict()) == prefs


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"difficulty": "3"}, "difficulty: must be an integer, got str"),
        ({"difficulty": 0}, "difficulty: must be between 1 and 5, got 0"),
        ({"budget": -1}, "budget: must be > 0 and < 1e9, got -1"),
        ({"budget": True}, "budget: must be a number, got bool"),
        ({"themes": "hiking"}, "themes: must be a list of strings, got str"),
        ({"themes": ["", "x"]}, "themes[0]: must be a non-empty string of at most 128 chars"),
        ({"continents": ["Mars"]}, "continents: unknown continent 'Mars'"),
        ({"travel_date": "tomorrow"}, "travel_date: not an ISO date (YYYY-MM-DD): 'tomorrow'"),
        ({"colour": "red"}, "colour: unknown preference field"),
    ],
)
def test_bad_preferences_name_the_field(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(PreferenceError) as err:
        Preferences.from_dict(raw)
    assert str(err.value) == message
