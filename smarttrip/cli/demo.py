"""``smarttrip demo``: the main job (what ``make demo`` runs)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import typer
from rich.columns import Columns
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from scoring.linear import rule_scorer
from scoring.ranking import rank_catalog
from smarttrip.cli.rank import ranked_table
from smarttrip.static_demo import TODAY, run_static_demo, weight_rows


def demo(
    minutes: float = typer.Option(3.0, min=0.25, max=60, help="How long to drive simulated traffic."),
    config: Path | None = typer.Option(None, "--config", exists=True, dir_okay=False, help="Simulator JSON."),
    out: Path | None = typer.Option(None, "--out", help="Folder for the charts and report.json."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the report JSON here."),
    offline: bool = typer.Option(False, "--offline", help="The quick offline demo (no services)."),
    seed: int | None = typer.Option(None, help="Override the simulator's seed."),
) -> None:
    """Closed loop: embedded Kafka + Redis, Faust join and learners, the scoring worker, simulated users."""
    if offline:
        _offline(seed or 0)
        return
    from sim.config import ConfigError, load_config
    from sim.demo import run_demo

    console = Console()
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    cfg = cfg.with_overrides(duration_s=minutes * 60, **({"seed": seed} if seed is not None else {}))
    out_dir = out or Path("out") / f"demo-{dt.datetime.now():%Y%m%d-%H%M%S}"
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("starting", total=1.0)
        result = run_demo(
            cfg, out_dir, progress=lambda msg, frac: bar.update(task, description=msg, completed=frac)
        )

    table = Table(
        title=f"A/B test, {len(result.driver.outcomes):,} ranked requests over {result.driver.duration_s:.0f} s"
    )
    for col in (
        "variant",
        "CTR [95% CI]",
        "lift vs rules",
        "share of oracle",
        "… last minute",
        "p50 ms",
        "p99 ms",
    ):
        table.add_column(col, justify="right")
    for r in result.reports:
        lift = "—" if r.lift_over_rules is None else f"{r.lift_over_rules:+.1%}"
        table.add_row(
            r.variant,
            f"{r.ctr:.2%} [{r.ctr_low:.2%}, {r.ctr_high:.2%}]",
            lift,
            f"{r.share_of_oracle:.1%}",
            f"{r.share_of_oracle_last_minute:.1%}",
            f"{r.latency_p50_ms:.1f}",
            f"{r.latency_p99_ms:.1f}",
        )
    console.print(table)
    if result.freshness_p50_s is not None:
        console.print(
            f"impression → served model (clicked examples): p50 {result.freshness_p50_s:.1f} s, "
            f"p99 {result.freshness_p99_s:.1f} s (includes the 3 s attribution window)"
        )
    if result.driver.errors:
        console.print(f"[yellow]request errors:[/yellow] {result.driver.errors}")
    console.print(f"charts and report.json in {out_dir}")
    if json_out:
        json_out.write_text(json.dumps(result.as_dict(), indent=2) + "\n")


def _offline(seed: int) -> None:
    """Rules vs weights fitted on simulated clicks, side by side, in seconds and without services."""
    console = Console()
    with console.status("generating a catalog, simulating clicks, fitting weights…"):
        result = run_static_demo(seed=seed)
    cat, learned = result.catalog, result.learned
    console.rule("SmartTrip Learner — offline demo")
    console.print(
        f"{len(cat):,} trips; {result.n_train:,} simulated impressions of random trips with clicks drawn "
        "from a hidden taste; logistic regression fitted on φ.\n"
    )
    for prefs in result.users[:3]:
        console.print(f"[bold]user[/bold] {prefs.to_dict()}", highlight=False)
        rules = rank_catalog(cat, prefs, TODAY, rule_scorer(), 5)
        mine = rank_catalog(cat, prefs, TODAY, learned, 5)
        console.print(
            Columns(
                [
                    ranked_table(cat, rules, "rules", compact=True),
                    ranked_table(cat, mine, "learned", compact=True),
                ]
            )
        )
    weights = Table(title="Weights: hand-tuned rules vs learned (log-odds) vs the hidden truth")
    for col in ("feature", "rules", "learned", "hidden truth"):
        weights.add_column(col, justify="left" if col == "feature" else "right")
    for name, rule_w, learned_w, true_w in weight_rows(learned):
        weights.add_row(name, f"{rule_w:g}", f"{learned_w:+.2f}", f"{true_w:+.2f}")
    console.print(weights)
    ctr = result.ctr_top10
    summary = Table(title=f"Expected click-through of the top 10, {len(result.users)} held-out users")
    for col in ("policy", "CTR", "share of oracle"):
        summary.add_column(col, justify="right")
    for name in ("rules", "learned", "oracle"):
        summary.add_row(name, f"{ctr[name]:.3%}", f"{ctr[name] / ctr['oracle']:.1%}")
    console.print(summary)
