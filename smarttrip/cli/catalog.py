"""``smarttrip catalog …``: generate and validate trip catalogs; publish, list and roll back versions in Redis.

``publish``, ``list`` and ``rollback`` take ``--redis-url`` (env
``SMARTTRIP_REDIS_URL``), ``--namespace`` (env ``SMARTTRIP_MODEL_NAMESPACE``)
and ``--json``. Exit codes: 0 done; 1 the store refused (unknown version,
conflict); 2 invalid catalog (nothing published); 3 Redis unavailable.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from features.catalog import CatalogError
from features.catalog_records import CatalogMeta
from features.catalog_store import DEFAULT_HISTORY, CatalogStore, CatalogStoreError, StoreUnavailable
from features.generator import generate_trips
from features.loader import CatalogLoadError, load_catalog, write_catalog

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_NAMESPACE = "smarttrip"

app = typer.Typer(
    help="Trip catalogs: generate, validate; publish, list and roll back versions in Redis.",
    no_args_is_help=True,
)


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


# -- the catalog store in Redis (publish, list, rollback) -------------------------------------------

RedisUrl = Annotated[
    str, typer.Option("--redis-url", envvar="SMARTTRIP_REDIS_URL", help="Redis holding the catalog store.")
]
Namespace = Annotated[
    str, typer.Option("--namespace", envvar="SMARTTRIP_MODEL_NAMESPACE", help="Key prefix of the store.")
]
History = Annotated[
    int, typer.Option("--history", envvar="SMARTTRIP_CATALOG_HISTORY", min=1, help="Versions to keep.")
]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@contextlib.contextmanager
def _store(url: str, namespace: str, history: int) -> Iterator[CatalogStore]:
    """An open catalog store; its errors become a message and an exit code (1 refused, 2 bad input, 3 Redis away)."""
    err = Console(stderr=True)
    try:
        with CatalogStore.from_url(url, namespace=namespace, history=history) as store:
            yield store
    except CatalogLoadError as exc:
        err.print(f"[red]invalid catalog, nothing published:[/red]\n{exc}", highlight=False)
        raise typer.Exit(2) from None
    except StoreUnavailable as exc:
        err.print(f"[red]redis unavailable:[/red] {exc}", highlight=False)
        raise typer.Exit(3) from None
    except (CatalogStoreError, CatalogError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None


def _show(meta: CatalogMeta, as_json: bool, verb: str) -> None:
    if as_json:
        typer.echo(meta.to_json().decode())
        return
    statuses = ", ".join(f"{k} {v:,}" for k, v in meta.by_status.items())
    Console().print(
        f"{verb} catalog version [bold]{meta.version}[/bold] ({meta.source}): {meta.trips:,} trips, "
        f"{meta.available:,} available ({statuses})",
        highlight=False,
    )


@app.command("publish")
def publish(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="Catalog file (.jsonl or .csv)."),
    redis_url: RedisUrl = DEFAULT_REDIS_URL,
    namespace: Namespace = DEFAULT_NAMESPACE,
    history: History = DEFAULT_HISTORY,
    as_json: AsJson = False,
) -> None:
    """Validate FILE strictly (every bad row listed, nothing published if any) and publish it as a new version."""
    with _store(redis_url, namespace, history) as store, Console(stderr=True).status(f"validating {path}…"):
        meta = store.publish_file(path)
    _show(meta, as_json, "published")


@app.command("rollback")
def rollback(
    version: int = typer.Argument(..., min=1, help="Version to serve again (re-published as a new version)."),
    redis_url: RedisUrl = DEFAULT_REDIS_URL,
    namespace: Namespace = DEFAULT_NAMESPACE,
    history: History = DEFAULT_HISTORY,
    as_json: AsJson = False,
) -> None:
    """Re-publish an earlier version's trips as the newest version (live updates continue after it)."""
    with _store(redis_url, namespace, history) as store:
        meta = store.rollback(version)
    _show(meta, as_json, f"rolled back to {version} as")


@app.command("list")
def list_versions(
    redis_url: RedisUrl = DEFAULT_REDIS_URL,
    namespace: Namespace = DEFAULT_NAMESPACE,
    as_json: AsJson = False,
) -> None:
    """The kept catalog versions, newest first."""
    with _store(redis_url, namespace, DEFAULT_HISTORY) as store:
        metas = store.history()
    if as_json:
        typer.echo(json.dumps([json.loads(m.to_json()) for m in metas]))
        return
    table = Table("version", "published (UTC)", "source", "trips", "available", "updates", "rejected",
                  box=box.SIMPLE)  # fmt: skip
    for m in metas:
        when = dt.datetime.fromtimestamp(m.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(str(m.version), when, m.source, f"{m.trips:,}", f"{m.available:,}",
                      str(m.updates_applied), str(m.updates_rejected))  # fmt: skip
    Console().print(table)
