"""``smarttrip serve``: the scoring worker (HTTP ranking RPC).

Settings come from ``SMARTTRIP_*`` variables (see :mod:`scoring.settings`);
the options below override the most common ones. Secrets (API and admin
tokens, the pseudonym key) are only read from the environment, never from
the command line, where ``ps`` would show them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import typer

from scoring.settings import ServeSettings, SettingsError


def serve(
    host: str | None = typer.Option(None, help="Address to listen on [SMARTTRIP_SERVE_HOST, 127.0.0.1]."),
    port: int | None = typer.Option(None, min=0, max=65535, help="Port [SMARTTRIP_SERVE_PORT, 8080]."),
    workers: int | None = typer.Option(
        None, min=1, max=64, help="Worker processes sharing the port [SMARTTRIP_SERVE_WORKERS, 1]."
    ),
    catalog: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="Catalog file (.jsonl/.csv) [SMARTTRIP_CATALOG]."
    ),
    synthetic_trips: int | None = typer.Option(
        None, min=1, help="Serve a synthetic catalog of this size instead [SMARTTRIP_SYNTHETIC_TRIPS]."
    ),
    loglevel: str = typer.Option("WARNING", help="Log level."),
) -> None:
    """Serve /v1/rank, /v1/events, health, metrics and the admin API until SIGTERM/Ctrl-C."""
    overrides = {
        "SMARTTRIP_SERVE_HOST": host,
        "SMARTTRIP_SERVE_PORT": None if port is None else str(port),
        "SMARTTRIP_SERVE_WORKERS": None if workers is None else str(workers),
        "SMARTTRIP_CATALOG": None if catalog is None else str(catalog),
        "SMARTTRIP_SYNTHETIC_TRIPS": None if synthetic_trips is None else str(synthetic_trips),
    }
    # Into the environment (not only the settings): several workers are child processes reading it.
    os.environ.update({k: v for k, v in overrides.items() if v is not None})
    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = ServeSettings.from_env()
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not settings.catalog and not settings.synthetic_trips:
        typer.echo("warning: no catalog (SMARTTRIP_CATALOG or --catalog): /readyz stays 503", err=True)
    if settings.serve_workers > 1:
        from scoring.workers import supervise

        raise typer.Exit(supervise(settings))
    from scoring.server import run

    run(settings)
