"""``smarttrip simulate``: simulated users against a running scoring worker (the compose ``simulator``).

The same traffic as the demo (:mod:`sim.driver`: rank over HTTP, clicks from
the simulator's ground truth at the positions shown, events posted back),
but against any URL, with settings from ``SMARTTRIP_SIM_*`` variables (or
options). The scoring worker must serve the simulator's catalog: with the
defaults that is ``SMARTTRIP_SYNTHETIC_TRIPS=1500`` and
``SMARTTRIP_SYNTHETIC_SEED=0`` (the simulator's ``catalog`` section). The API
token is the first of ``SMARTTRIP_API_TOKENS``, read from the environment only.
"""

from __future__ import annotations

import asyncio
import os
import time
import urllib.request
from functools import partial
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


def simulate(
    url: str = typer.Option(
        "http://127.0.0.1:8080",
        envvar="SMARTTRIP_SIM_URL",
        help="Scoring worker base URL.",
    ),
    rate: float = typer.Option(
        20.0,
        min=0.1,
        max=5000,
        envvar="SMARTTRIP_SIM_RATE_RPS",
        help="Ranking requests/s.",
    ),
    minutes: float = typer.Option(10.0, min=0.05, envvar="SMARTTRIP_SIM_MINUTES", help="Length of one run."),
    rounds: int = typer.Option(
        1,
        min=0,
        envvar="SMARTTRIP_SIM_ROUNDS",
        help="Runs one after the other; 0 = until stopped.",
    ),
    seed: int = typer.Option(0, envvar="SMARTTRIP_SIM_SEED", help="Seed of the simulator."),
    config: Path | None = typer.Option(
        None,
        envvar="SMARTTRIP_SIM_CONFIG",
        exists=True,
        dir_okay=False,
        help="Simulator JSON.",
    ),
    wait: float = typer.Option(
        120.0,
        min=0,
        envvar="SMARTTRIP_SIM_WAIT_S",
        help="How long to wait for /readyz.",
    ),
) -> None:
    """Drive simulated users against a scoring worker over HTTP and print CTR per variant."""
    from sim.config import ConfigError, load_config
    from sim.driver import drive
    from sim.report import summarize
    from sim.world import World

    console = Console()
    tokens = [t.strip() for t in os.environ.get("SMARTTRIP_API_TOKENS", "").split(",") if t.strip()]
    if not tokens:
        console.print("[red]error:[/red] SMARTTRIP_API_TOKENS: required (the simulator uses the first token)")
        raise typer.Exit(2)
    try:
        cfg = load_config(config).with_overrides(rate_rps=rate, duration_s=minutes * 60, seed=seed)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    base = url.rstrip("/")
    if not _wait_ready(base, wait):
        console.print(f"[red]error:[/red] {base}/readyz did not answer 200 within {wait:.0f} s")
        raise typer.Exit(1)
    world = World(cfg)
    n = 0
    while rounds == 0 or n < rounds:
        columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as bar:
            task = bar.add_task(f"round {n + 1}: {rate:g} requests/s", total=cfg.duration_s)
            result = asyncio.run(
                drive(world, base, tokens[0], seed=seed + n, progress=partial(_advance, bar, task))
            )
        for r in summarize(result.outcomes):
            console.print(f"{r.variant:>12}: {r.requests:6d} requests, CTR {r.ctr:.2%}")
        if result.errors:
            console.print(f"errors: {result.errors}")
        n += 1


def _advance(bar: Progress, task: TaskID, t: float) -> None:
    bar.update(task, completed=t)


def _wait_ready(base: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:  # noqa: S310  # operator-given URL
                if r.status == 200:
                    return True
        except OSError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
