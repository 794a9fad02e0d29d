"""What we know about the user at request time: preferences and segment.

Preferences are all optional: a user who gives no budget gets no budget feature,
which the feature map documents rule by rule. The segment decides which
per-segment model scores the request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from features.geo import CONTINENTS

__all__ = [
    "ADVENTURE_THEMES",
    "CULTURE_THEMES",
    "SEGMENTS",
    "PreferenceError",
    "Preferences",
    "assign_segment",
]

SEGMENTS: tuple[str, ...] = ("adventure", "luxury", "budget", "culture", "general")
ADVENTURE_THEMES = frozenset({"trekking", "mountaineering", "cycling", "diving"})
CULTURE_THEMES = frozenset({"culture", "history", "food", "city"})

_MAX_LIST = 64
_MAX_STR = 128


class PreferenceError(ValueError):
    """Invalid preferences; the message names the field."""


@dataclass(frozen=True, slots=True)
class Preferences:
    """A user's stated or inferred wishes. Every field may be absent.

    ``travel_date`` is when the user wants to leave; it drives the date-window
    filter, while ``DEPARTING_SOON`` is measured from the request date.
    """

    themes: tuple[str, ...] = ()
    difficulty: int | None = None
    duration_days: int | None = None
    budget: float | None = None
    countries: tuple[str, ...] = ()
    continents: tuple[str, ...] = ()
    travel_date: dt.date | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Preferences:
        """Parse and validate a JSON object; raises :class:`PreferenceError` naming the field."""
        if not isinstance(raw, Mapping):
            raise PreferenceError(f"preferences: must be an object, got {type(raw).__name__}")
        known = {"themes", "difficulty", "duration_days", "budget", "countries", "continents", "travel_date"}
        extra = sorted(set(raw) - known)
        if extra:
            raise PreferenceError(f"{extra[0]}: unknown preference field")
        themes = _str_list(raw.get("themes"), "themes")
        countries = _str_list(raw.get("countries"), "countries")
        continents = _str_list(raw.get("continents"), "continents")
        for c in continents:
            if c not in CONTINENTS:
                raise PreferenceError(f"continents: unknown continent {c!r}")
        difficulty = _opt_int(raw.get("difficulty"), "difficulty", 1, 5)
        duration = _opt_int(raw.get("duration_days"), "duration_days", 1, 365)
        budget_raw = raw.get("budget")
        budget: float | None = None
        if budget_raw is not None:
            if isinstance(budget_raw, bool) or not isinstance(budget_raw, int | float):
                raise PreferenceError(f"budget: must be a number, got {type(budget_raw).__name__}")
            budget = float(budget_raw)
            if not (0 < budget < 1e9):
                raise PreferenceError(f"budget: must be > 0 and < 1e9, got {budget_raw}")
        travel_raw = raw.get("travel_date")
        travel: dt.date | None = None
        if travel_raw is not None:
            if not isinstance(travel_raw, str):
                raise PreferenceError("travel_date: must be an ISO date string (YYYY-MM-DD)")
            try:
                travel = dt.date.fromisoformat(travel_raw)
            except ValueError:
                raise PreferenceError(f"travel_date: not an ISO date (YYYY-MM-DD): {travel_raw!r}") from None
        return cls(
            themes=themes,
            difficulty=difficulty,
            duration_days=duration,
            budget=budget,
            countries=countries,
            continents=continents,
            travel_date=travel,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "themes": list(self.themes),
            "countries": list(self.countries),
            "continents": list(self.continents),
        }
        if self.difficulty is not None:
            out["difficulty"] = self.difficulty
        if self.duration_days is not None:
            out["duration_days"] = self.duration_days
        if self.budget is not None:
            out["budget"] = self.budget
        if self.travel_date is not None:
            out["travel_date"] = self.travel_date.isoformat()
        return out


def assign_segment(prefs: Preferences, explicit: str | None = None) -> str:
    """The segment whose model serves this user: the first rule that matches.

    1. ``explicit`` (validated against :data:`SEGMENTS`) when the caller gives one;
    2. ``adventure``: difficulty ≥ 4, or any theme in :data:`ADVENTURE_THEMES`;
    3. ``luxury``: budget ≥ 5,000;
    4. ``budget``: budget < 1,500;
    5. ``culture``: any theme in :data:`CULTURE_THEMES`;
    6. ``general``: everyone else (including users who gave nothing).

    >>> assign_segment(Preferences(difficulty=4, budget=9000))
    'adventure'
    >>> assign_segment(Preferences(budget=1000, themes=("food",)))
    'budget'
    """
    if explicit is not None:
        if explicit not in SEGMENTS:
            raise PreferenceError(f"segment: unknown segment {explicit!r}; expected one of {list(SEGMENTS)}")
        return explicit
    themes = set(prefs.themes)
    if (prefs.difficulty is not None and prefs.difficulty >= 4) or themes & ADVENTURE_THEMES:
        return "adventure"
    if prefs.budget is not None and prefs.budget >= 5000:
        return "luxury"
    if prefs.budget is not None and prefs.budget < 1500:
        return "budget"
    if themes & CULTURE_THEMES:
        return "culture"
    return "general"


def _str_list(value: object, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise PreferenceError(f"{name}: must be a list of strings, got {type(value).__name__}")
    if len(value) > _MAX_LIST:
        raise PreferenceError(f"{name}: at most {_MAX_LIST} entries, got {len(value)}")
    out: list[str] = []
    for i, v in enumerate(value):
        if not isinstance(v, str) or not v or len(v) > _MAX_STR:
            raise PreferenceError(f"{name}[{i}]: must be a non-empty string of at most {_MAX_STR} chars")
        if v not in out:
            out.append(v)
    return tuple(out)


def _opt_int(value: object, name: str, lo: int, hi: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise PreferenceError(f"{name}: must be an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise PreferenceError(f"{name}: must be between {lo} and {hi}, got {value}")
    return value
