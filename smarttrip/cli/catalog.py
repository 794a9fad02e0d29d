"""``smarttrip catalog …``: generate and validate trip catalogs."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from features.generator import generate_trips
from features.loader import load_catalog, write_catalog

app = typer.Typer(help="Trip catalogs: generate synthetic ones, validate files.", no_args_is_help=True)


@app.command("generate")
def generate(
    out: Path = typer.Option(..., "--out", help="Output file (.jsonl or .csv)."),
    trips: int = typer.Option(1000, "--trips", min=1, max=5_000_000, help="Number of trips."),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed, same catalog."),
) -> None:
    """Write a seeded synthetic catalog."""
    count = write_catalog(generate_trips(n_trips=trips, seed=seed), out)
    Console().print(f"wrote {count:,} trips to {out}")


@app.command("validate")
def validate(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="Catalog file (.jsonl or .csv)."),
) -> None:
    """Check every row; list each problem with its line and field. Exit 1 if any."""
    console = Console()
    result = load_catalog(path, strict=False)
    for problem in result.problems:
        console.print(f"[red]{problem}[/red]", highlight=False)
    console.print(f"{len(result.catalog):,} valid trips, {len(result.problems):,} problem(s)")
    if result.problems:
        raise typer.Exit(1)
