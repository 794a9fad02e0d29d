"""``smarttrip demo``: the main job (what ``make demo`` runs)."""

from __future__ import annotations

import typer
from rich.columns import Columns
from rich.console import Console
from rich.table import Table

from scoring.linear import rule_scorer
from scoring.ranking import rank_catalog
from smarttrip.cli.rank import ranked_table
from smarttrip.static_demo import TODAY, run_static_demo, weight_rows


def demo(
    seed: int = typer.Option(0, help="Seed for the catalog, the users and their clicks."),
    users: int = typer.Option(3, help="How many sample users to show rankings for.", min=1, max=20),
) -> None:
    """Rank a synthetic catalog with the rule score and with weights learned from simulated clicks."""
    console = Console()
    with console.status("generating a catalog, simulating clicks, fitting weights…"):
        result = run_static_demo(seed=seed)
    cat, learned = result.catalog, result.learned
    console.rule("SmartTrip Learner — offline demo")
    console.print(
        f"{len(cat):,} trips; {result.n_train:,} simulated impressions of random trips with clicks drawn "
        "from a hidden taste; logistic regression fitted on φ.\n"
    )
    for prefs in result.users[:users]:
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
