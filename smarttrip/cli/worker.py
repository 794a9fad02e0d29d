"""``smarttrip worker``: the stream workers (session join, learners, catalog updates)."""

from __future__ import annotations

import logging
from typing import Literal

import typer

from stream.settings import SettingsError, StreamSettings


def worker(
    mode: str = typer.Option(
        "join",
        help="join: the session join; learn: the learners; catalog: the trip-update agent; "
        "gate: the promotion gate (SMARTTRIP_GATE_*); count: a bare counting agent (benchmarks).",
    ),
    loglevel: str = typer.Option("WARNING", help="Log level."),
) -> None:
    """Run a stream worker until SIGTERM/Ctrl-C. Settings come from SMARTTRIP_* variables."""
    if mode not in ("join", "learn", "count", "catalog", "gate"):
        raise typer.BadParameter(f"--mode: expected join, learn, catalog, gate or count, got {mode!r}")
    try:
        settings = StreamSettings.from_env()
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if mode == "gate":
        from stream.promotion_gate import GateSettings, GateSettingsError
        from stream.promotion_gate_worker import run_gate_worker

        logging.basicConfig(level=loglevel)
        try:
            gate_settings = GateSettings.from_env()
        except GateSettingsError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        run_gate_worker(settings, gate_settings)
        return
    if mode == "catalog":
        from stream.catalog_agent import run_catalog_agent

        run_catalog_agent(settings, loglevel)
        return
    run_worker(settings, mode, loglevel)  # type: ignore[arg-type]


def run_worker(
    settings: StreamSettings, mode: Literal["join", "learn", "count"], loglevel: str = "WARNING"
) -> None:
    import faust
    from prometheus_client import CollectorRegistry, start_http_server

    from stream.faust_app import use_event_loop

    logging.basicConfig(level=loglevel)
    use_event_loop(settings)
    registry: CollectorRegistry
    if mode == "learn":
        from stream.learner_app import create_learner_app

        app, runtime = create_learner_app(settings)
        registry = runtime.metrics.registry
    else:
        from stream.faust_app import create_app

        built = create_app(settings, mode=mode)
        app, registry = built.app, built.metrics.registry
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_addr, registry=registry)
    faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
