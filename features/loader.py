"""Load a trip catalog from JSON Lines or CSV, reporting every bad row.

Each problem names its line and field (``line 4: price: must be >= 0, got -5``).
``strict=True`` raises :class:`CatalogLoadError` listing every problem;
``strict=False`` loads the good rows and returns the problems next to them, so
a bad row is always reported, never silently skipped.

Formats (one record per physical line; chosen by file suffix):

- ``.jsonl`` / ``.json``: one JSON object per line, ``themes`` a list of strings;
- ``.csv``: a header row naming the fields, ``themes`` separated by ``|``.

Fields: trip_id, title, country, continent (optional when the country is known
to :mod:`features.geo`), themes, difficulty (1–5), duration_days (1–365),
price (≥ 0), status (guaranteed | last_places | open), departure_date
(YYYY-MM-DD), trip_type (group | private | self_guided | expedition),
popularity (optional, 0–1, default 0.5). Unknown fields are ignored.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from features.catalog import STATUSES, TRIP_TYPES, Catalog, Trip
from features.geo import CONTINENTS, COUNTRY_CONTINENT

__all__ = ["CatalogLoadError", "LoadResult", "RowProblem", "load_catalog", "parse_trip", "write_catalog"]

_MAX_ID = 128
_MAX_TITLE = 300


@dataclass(frozen=True, slots=True)
class RowProblem:
    """One reason a row was rejected."""

    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class CatalogLoadError(ValueError):
    """Strict loading found problems; ``problems`` lists them all."""

    def __init__(self, problems: list[RowProblem]) -> None:
        self.problems = problems
        shown = "\n".join(f"  {p}" for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} invalid row(s) in catalog:\n{shown}{more}")


@dataclass(frozen=True)
class LoadResult:
    catalog: Catalog
    problems: list[RowProblem]


class _FieldError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def parse_trip(row: Mapping[str, object], *, from_csv: bool = False) -> Trip:
    """Validate one record; raises ``ValueError`` whose ``field`` attribute names the culprit."""

    def req(name: str) -> object:
        value = row.get(name)
        if value is None or (from_csv and value == ""):
            raise _FieldError(name, "missing required field")
        return value

    def text(name: str, limit: int) -> str:
        value = req(name)
        if not isinstance(value, str):
            raise _FieldError(name, f"must be a string, got {type(value).__name__}")
        value = value.strip()
        if not value:
            raise _FieldError(name, "must not be empty")
        if len(value) > limit:
            raise _FieldError(name, f"must be at most {limit} characters, got {len(value)}")
        return value

    def integer(name: str, lo: int, hi: int) -> int:
        value = req(name)
        if from_csv and isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise _FieldError(name, f"must be an integer, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise _FieldError(name, f"must be an integer, got {type(value).__name__}")
        if not lo <= value <= hi:
            raise _FieldError(name, f"must be between {lo} and {hi}, got {value}")
        return value

    def number(name: str, value: object) -> float:
        if from_csv and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise _FieldError(name, f"must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _FieldError(name, f"must be a number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise _FieldError(name, f"must be finite, got {value}")
        return float(value)

    trip_id = text("trip_id", _MAX_ID)
    if any(c.isspace() for c in trip_id):
        raise _FieldError("trip_id", f"must not contain whitespace, got {trip_id!r}")
    title = text("title", _MAX_TITLE)
    country = text("country", _MAX_ID)
    continent_raw = row.get("continent")
    if continent_raw is None or continent_raw == "":
        if country not in COUNTRY_CONTINENT:
            raise _FieldError("continent", f"missing, and country {country!r} is not a known country")
        continent = COUNTRY_CONTINENT[country]
    else:
        continent = text("continent", _MAX_ID)
        if continent not in CONTINENTS:
            raise _FieldError(
                "continent", f"unknown continent {continent!r}; expected one of {list(CONTINENTS)}"
            )

    themes_raw = row.get("themes", [])
    if from_csv and isinstance(themes_raw, str):
        themes_raw = [t for t in themes_raw.split("|") if t.strip()]
    if not isinstance(themes_raw, list):
        raise _FieldError("themes", f"must be a list of strings, got {type(themes_raw).__name__}")
    themes: list[str] = []
    for i, th in enumerate(themes_raw):
        if not isinstance(th, str) or not th.strip() or len(th) > _MAX_ID:
            raise _FieldError(f"themes[{i}]", "must be a non-empty string")
        if th.strip() not in themes:
            themes.append(th.strip())

    difficulty = integer("difficulty", 1, 5)
    duration = integer("duration_days", 1, 365)
    price = number("price", req("price"))
    if price < 0:
        raise _FieldError("price", f"must be >= 0, got {price:g}")

    status = text("status", _MAX_ID)
    if status not in STATUSES:
        raise _FieldError("status", f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")

    date_raw = text("departure_date", 32)
    try:
        departure = dt.date.fromisoformat(date_raw)
    except ValueError:
        raise _FieldError("departure_date", f"not a valid date (YYYY-MM-DD): {date_raw!r}") from None

    trip_type = text("trip_type", _MAX_ID)
    if trip_type not in TRIP_TYPES:
        raise _FieldError(
            "trip_type", f"unknown trip type {trip_type!r}; expected one of {', '.join(TRIP_TYPES)}"
        )

    popularity = 0.5
    pop_raw = row.get("popularity")
    if pop_raw is not None and pop_raw != "":
        popularity = number("popularity", pop_raw)
        if not 0.0 <= popularity <= 1.0:
            raise _FieldError("popularity", f"must be between 0 and 1, got {popularity:g}")

    return Trip(
        trip_id=trip_id,
        title=title,
        country=country,
        continent=continent,
        themes=tuple(themes),
        difficulty=difficulty,
        duration_days=duration,
        price=price,
        status=status,
        departure_date=departure,
        trip_type=trip_type,
        popularity=popularity,
    )


def _decoded_lines(data: bytes, problems: list[RowProblem]) -> Iterator[tuple[int, str]]:
    """(line number, text) for each non-blank line that is valid UTF-8; others become problems."""
    for n, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.rstrip(b"\r")
        if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(
                RowProblem(
                    n, None, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
                )
            )
            continue
        if line.strip():
            yield n, line


def _rows_jsonl(data: bytes, problems: list[RowProblem]) -> Iterator[tuple[int, Mapping[str, object]]]:
    for n, line in _decoded_lines(data, problems):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(RowProblem(n, None, f"invalid JSON ({exc.msg} at column {exc.colno})"))
            continue
        except (ValueError, RecursionError) as exc:  # absurd nesting or number length
            problems.append(RowProblem(n, None, f"invalid JSON ({type(exc).__name__})"))
            continue
        if not isinstance(obj, dict):
            problems.append(RowProblem(n, None, f"must be a JSON object, got {type(obj).__name__}"))
            continue
        yield n, obj


def _rows_csv(data: bytes, problems: list[RowProblem]) -> Iterator[tuple[int, Mapping[str, object]]]:
    lines = iter(_decoded_lines(data, problems))
    try:
        _, header_line = next(lines)
    except StopIteration:
        return
    header = [h.strip() for h in next(csv.reader([header_line]))]
    for n, line in lines:
        values = next(csv.reader([line]))
        if len(values) != len(header):
            problems.append(RowProblem(n, None, f"expected {len(header)} columns, got {len(values)}"))
            continue
        yield n, dict(zip(header, values, strict=True))


def load_catalog(path: str | Path, *, strict: bool = True, version: str | None = None) -> LoadResult:
    """Load and validate a catalog file (see the module docstring for the format)."""
    path = Path(path)
    data = path.read_bytes()
    problems: list[RowProblem] = []
    is_csv = path.suffix.lower() == ".csv"
    rows = _rows_csv(data, problems) if is_csv else _rows_jsonl(data, problems)
    trips: list[Trip] = []
    first_seen: dict[str, int] = {}
    for n, row in rows:
        try:
            trip = parse_trip(row, from_csv=is_csv)
        except _FieldError as exc:
            problems.append(RowProblem(n, exc.field, str(exc)))
            continue
        if trip.trip_id in first_seen:
            problems.append(
                RowProblem(
                    n,
                    "trip_id",
                    f"duplicate {trip.trip_id!r} (first seen on line {first_seen[trip.trip_id]})",
                )
            )
            continue
        first_seen[trip.trip_id] = n
        trips.append(trip)
    problems.sort(key=lambda p: p.line)
    if strict and problems:
        raise CatalogLoadError(problems)
    return LoadResult(Catalog(tuple(trips), version=version or path.name), problems)


def write_catalog(trips: Iterable[Trip], path: str | Path) -> int:
    """Write trips as JSON Lines, or CSV when the suffix is ``.csv``; returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        if path.suffix.lower() == ".csv":
            fields = list(Trip.__dataclass_fields__)
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            for t in trips:
                row = t.to_dict()
                row["themes"] = "|".join(t.themes)
                writer.writerow(row)
                count += 1
        else:
            for t in trips:
                fh.write(json.dumps(t.to_dict(), ensure_ascii=False) + "\n")
                count += 1
    return count
