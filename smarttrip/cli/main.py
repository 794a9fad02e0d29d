"""Root of the ``smarttrip`` CLI; each command group lives in its own module."""

from __future__ import annotations

import typer

from smarttrip.cli import (
    analyst,
    analyst_eval,
    bench,
    catalog,
    demo,
    models,
    rank,
    serve,
    services,
    simulate,
    worker,
)

app = typer.Typer(
    name="smarttrip",
    help="SmartTrip Learner: real-time learning-to-rank for a trip marketplace.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(catalog.app, name="catalog")
app.add_typer(bench.app, name="bench")
app.add_typer(services.app, name="services")
app.add_typer(models.app, name="models")
app.command("rank")(rank.rank)
app.command("demo")(demo.demo)
app.command("worker")(worker.worker)
app.command("serve")(serve.serve)
app.command("ope")(analyst_eval.ope)
app.command("replay")(analyst.replay)
app.command("export")(analyst.export)
app.add_typer(analyst_eval.ab_app, name="ab")
app.command("simulate")(simulate.simulate)

if __name__ == "__main__":  # pragma: no cover
    app()
