"""``smarttrip rank``: rank a catalog for one user's preferences."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from features.catalog import Catalog
from features.context import PreferenceError, Preferences, assign_segment
from features.loader import CatalogLoadError, load_catalog
from features.phi import PHI_NAMES
from scoring.linear import LinearScorer, rule_scorer
from scoring.ranking import RankedList, rank_catalog
from scoring.weights import WeightsError, load_weights


def rank(
    catalog: Path = typer.Option(..., "--catalog", exists=True, dir_okay=False, help="Catalog file."),
    prefs: Path = typer.Option(..., "--prefs", exists=True, dir_okay=False, help="Preferences JSON file."),
    k: int = typer.Option(10, "-k", min=1, max=1000, help="How many trips to return."),
    weights: Path | None = typer.Option(None, "--weights", exists=True, dir_okay=False, help="Weights JSON."),
    today: str | None = typer.Option(None, "--today", help="Request date (YYYY-MM-DD); default: today."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Rank the catalog with the rule score, or with the given weights."""
    console = Console()
    try:
        cat = load_catalog(catalog).catalog
        preferences = Preferences.from_dict(json.loads(prefs.read_text(encoding="utf-8")))
        scorer = LinearScorer(load_weights(weights), name=weights.stem) if weights else rule_scorer()
        day = dt.date.fromisoformat(today) if today else dt.date.today()
    except (CatalogLoadError, PreferenceError, WeightsError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    ranked = rank_catalog(cat, preferences, day, scorer, k)
    if as_json:
        print(json.dumps(ranked_json(cat, ranked, scorer, assign_segment(preferences)), indent=2))
        return
    console.print(ranked_table(cat, ranked, f"{scorer.name} — segment {assign_segment(preferences)}"))


def ranked_json(cat: Catalog, ranked: RankedList, scorer: LinearScorer, segment: str) -> dict[str, object]:
    return {
        "policy": scorer.name,
        "segment": segment,
        "candidates": ranked.n_candidates,
        "items": [
            {
                "position": pos,
                "trip_id": str(cat.trip_ids[row]),
                "score": float(score),
                "phi": dict(zip(PHI_NAMES, map(float, x), strict=True)),
            }
            for pos, (row, score, x) in enumerate(zip(ranked.rows, ranked.scores, ranked.phi, strict=True))
        ],
    }


def ranked_table(cat: Catalog, ranked: RankedList, title: str, *, compact: bool = False) -> Table:
    """A readable table of the ranked trips; ``compact`` fits two side by side in 100 columns."""
    columns = ["#", "trip", "country", "themes", "days", "price", "score"]
    if not compact:
        columns.insert(2, "title")
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="left" if col in ("trip", "title", "country", "themes") else "right")
    for pos, (row, score) in enumerate(zip(ranked.rows, ranked.scores, strict=True), start=1):
        t = cat.trips[int(row)]
        cells = {
            "#": str(pos),
            "trip": t.trip_id,
            "title": t.title,
            "country": t.country,
            "themes": ",".join(t.themes),
            "days": str(t.duration_days),
            "price": f"{t.price:,.0f}",
            "score": f"{score:.2f}",
        }
        table.add_row(*(cells[c] for c in columns))
    return table
