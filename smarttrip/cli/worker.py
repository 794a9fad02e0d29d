"""``smarttrip worker``: the Faust stream worker (session join)."""

from __future__ import annotations

import logging
from typing import Literal

import typer

from stream.settings import SettingsError, StreamSettings


def worker(
    mode: str = typer.Option(
        "join", help="join: the session join; count: a bare counting agent (benchmarks)."
    ),
    loglevel: str = typer.Option("WARNING", help="Log level."),
) -> None:
    """Run a stream worker until SIGTERM/Ctrl-C. Settings come from SMARTTRIP_* variables."""
    if mode not in ("join", "count"):
        raise typer.BadParameter(f"--mode: expected join or count, got {mode!r}")
    try:
        settings = StreamSettings.from_env()
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    run_worker(settings, mode, loglevel)  # type: ignore[arg-type]


def run_worker(settings: StreamSettings, mode: Literal["join", "count"], loglevel: str = "WARNING") -> None:
    import faust
    from prometheus_client import start_http_server

    from stream.faust_app import create_app

    logging.basicConfig(level=loglevel)
    built = create_app(settings, mode=mode)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr="127.0.0.1", registry=built.metrics.registry)
    faust.Worker(built.app, loglevel=loglevel, quiet=True).execute_from_commandline()
