"""Small builders for hand-made trips and catalog files."""

from __future__ import annotations

import datetime as dt
from typing import Any

from features.catalog import Trip


def make_trip(**overrides: Any) -> Trip:
    fields: dict[str, Any] = {
        "trip_id": "T1",
        "title": "Inca Trail",
        "country": "Peru",
        "continent": "South America",
        "themes": ("hiking", "culture"),
        "difficulty": 3,
        "duration_days": 10,
        "price": 1000.0,
        "status": "open",
        "departure_date": dt.date(2026, 6, 1),
        "trip_type": "group",
        "popularity": 0.5,
    }
    fields.update(overrides)
    return Trip(**fields)


def trip_row(**overrides: Any) -> dict[str, Any]:
    """A valid JSON Lines row; override or delete (value ...) fields to make it bad."""
    row = make_trip().to_dict()
    for key, value in overrides.items():
        if value is ...:
            row.pop(key)
        else:
            row[key] = value
    return row
