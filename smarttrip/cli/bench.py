"""``smarttrip bench …``: benchmarks that print a table and optionally write JSON."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Benchmarks (each measures its baseline in the same run).", no_args_is_help=True)


@app.command("scoring")
def scoring(
    json_out: Path | None = typer.Option(None, "--json", help="Also write the results to this JSON file."),
    seed: int = typer.Option(0, help="Seed for the catalog and the users."),
    quick: bool = typer.Option(False, help="Fewer repetitions (for smoke tests)."),
    sizes: str = typer.Option("30,1000,10000,100000", help="Comma-separated candidate counts."),
) -> None:
    """Per-request ranking latency: reference loop + heap of 30 vs the vectorized path."""
    from bench import scoring as bench_scoring

    console = Console()
    with console.status("timing the reference loop and the vectorized path…"):
        results = bench_scoring.run(sizes=_parse_sizes(sizes), seed=seed, quick=quick)
    table = Table(title="Ranking latency, rule score, top-30 (ms per request)")
    columns = (
        "candidates",
        "reference p50",
        "reference p99",
        "tight loop p50",
        "vectorized p50",
        "vectorized p99",
        "× vs reference",
        "× vs tight loop",
    )
    for col in columns:
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            f"{r.candidates:,}",
            f"{r.reference.p50_ms:.3f}",
            f"{r.reference.p99_ms:.3f}",
            f"{r.tight_loop.p50_ms:.3f}",
            f"{r.vectorized.p50_ms:.3f}",
            f"{r.vectorized.p99_ms:.3f}",
            f"{r.speedup_p50:.0f}",
            f"{r.speedup_tight_p50:.0f}",
        )
    console.print(table)
    if json_out:
        payload = {
            "benchmark": "scoring",
            "machine": {"python": platform.python_version(), "cpu": platform.machine()},
            "results": [r.as_dict() for r in results],
        }
        json_out.write_text(json.dumps(payload, indent=2) + "\n")
        console.print(f"wrote {json_out}")


def _parse_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"--sizes: expected comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise typer.BadParameter("--sizes: every size must be >= 1")
    return sizes
