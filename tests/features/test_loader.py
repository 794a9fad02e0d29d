"""Catalog loading: every kind of bad row is reported with its line and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from features.generator import generate_trips
from features.loader import CatalogLoadError, load_catalog, write_catalog
from tests.features.factories import trip_row


def _write_jsonl(path: Path, rows: list[Any]) -> Path:
    lines = [r if isinstance(r, bytes) else json.dumps(r).encode() for r in rows]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


BAD_ROWS: list[tuple[str, Any, str]] = [
    ("missing field", trip_row(price=...), "line 2: price: missing required field"),
    ("wrong type", trip_row(difficulty="hard"), "line 2: difficulty: must be an integer, got str"),
    ("bool is not int", trip_row(duration_days=True), "line 2: duration_days: must be an integer, got bool"),
    ("out of range", trip_row(difficulty=9), "line 2: difficulty: must be between 1 and 5, got 9"),
    (
        "unknown status",
        trip_row(status="sold"),
        "line 2: status: unknown status 'sold'; expected one of guaranteed, last_places, open",
    ),
    ("negative price", trip_row(price=-5), "line 2: price: must be >= 0, got -5"),
    (
        "bad date",
        trip_row(departure_date="2026-02-30"),
        "line 2: departure_date: not a valid date (YYYY-MM-DD): '2026-02-30'",
    ),
    ("non-finite", trip_row(price=float("inf")), "line 2: price: must be finite, got inf"),
    ("empty id", trip_row(trip_id="  "), "line 2: trip_id: must not be empty"),
    ("bad theme", trip_row(themes=["ok", 3]), "line 2: themes[1]: must be a non-empty string"),
    (
        "unknown continent",
        trip_row(continent="Atlantis"),
        "line 2: continent: unknown continent 'Atlantis'; expected one of ['Africa', 'Antarctica', 'Asia', 'Europe', 'North America', 'Oceania', 'South America']",
    ),
    ("not an object", [1, 2], "line 2: must be a JSON object, got list"),
    ("bad json", b'{"trip_id": ', "line 2: invalid JSON (Expecting value at column 13)"),
    ("non-utf8", b'{"trip_id": "caf\xe9"}', "line 2: not valid UTF-8 (byte 0xe9 at column 17)"),
    (
        "duplicate trip_id",
        trip_row(trip_id="GOOD"),
        "line 2: trip_id: duplicate 'GOOD' (first seen on line 1)",
    ),
]


@pytest.mark.parametrize(("kind", "bad", "message"), BAD_ROWS, ids=[b[0] for b in BAD_ROWS])
def test_bad_row_is_reported_with_exact_message(tmp_path: Path, kind: str, bad: Any, message: str) -> None:
    path = _write_jsonl(
        tmp_path / "cat.jsonl", [trip_row(trip_id="GOOD"), bad, trip_row(trip_id="ALSO_GOOD")]
    )
    result = load_catalog(path, strict=False)
    assert [str(p) for p in result.problems] == [message]
    # Lenient mode keeps the good rows on both sides of the bad one.
    assert [t.trip_id for t in result.catalog.trips] == ["GOOD", "ALSO_GOOD"]
    with pytest.raises(CatalogLoadError) as err:
        load_catalog(path, strict=True)
    assert message in str(err.value)
    assert err.value.problems == result.problems


def test_strict_error_lists_every_problem(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "cat.jsonl",
        [trip_row(trip_id="A", price=-1), trip_row(trip_id="B"), trip_row(trip_id="C", status="x")],
    )
    with pytest.raises(CatalogLoadError) as err:
        load_catalog(path)
    assert [p.line for p in err.value.problems] == [1, 3]
    assert str(err.value).startswith("2 invalid row(s) in catalog:")


def test_continent_is_derived_for_known_countries(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "c.jsonl",
        [trip_row(continent=...), trip_row(trip_id="X", continent=..., country="Narnia")],
    )
    result = load_catalog(path, strict=False)
    assert result.catalog.trips[0].continent == "South America"
    assert [str(p) for p in result.problems] == [
        "line 2: continent: missing, and country 'Narnia' is not a known country"
    ]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_round_trip_through_file(tmp_path: Path, suffix: str) -> None:
    trips = generate_trips(n_trips=250, seed=5)
    path = tmp_path / f"cat{suffix}"
    assert write_catalog(trips, path) == 250
    loaded = load_catalog(path)
    assert loaded.problems == []
    assert list(loaded.catalog.trips) == trips


def test_csv_reports_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "cat.csv"
    write_catalog(generate_trips(n_trips=3, seed=1), path)
    lines = path.read_text().splitlines()
    cols = lines[1].split(",")
    cols[7] = "-3"  # price
    lines[1] = ",".join(cols)
    lines.append("only,three,columns")
    lines[2] = lines[2].replace(",2026-", ",20x6-")
    path.write_text("\n".join(lines) + "\n")
    result = load_catalog(path, strict=False)
    date = lines[2].split(",")[9]
    assert [str(p) for p in result.problems] == [
        "line 2: price: must be >= 0, got -3",
        f"line 3: departure_date: not a valid date (YYYY-MM-DD): {date!r}",
        "line 5: expected 12 columns, got 3",
    ]
    assert len(result.catalog) == 1
