"""``smarttrip models …``: inspect, roll back, pin and promote the learned models in Redis.

Why: ops must see which model version each (policy, segment) serves, what its
weights are ("BUDGET_PERFECT is now 9.3" next to the rule's 12), why a publish
was refused, why the promotion gate holds a candidate back (``list`` shows
each model's gate state and the reason), and undo a bad model in seconds. Every command takes
``--redis-url`` (env ``SMARTTRIP_REDIS_URL``, default
``redis://127.0.0.1:6379/0``), ``--namespace`` (env
``SMARTTRIP_MODEL_NAMESPACE``, default ``smarttrip``) and ``--json`` for
machine-readable output; tables are for people.

Exit codes: 0 done; 1 the store refused (unknown model or version, version
conflict, corrupt record); 2 bad argument; 3 Redis unavailable (retry later).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from features.phi import PHI_NAMES
from scoring.weights import SCORING_WEIGHTS
from stream.model_store import (
    DEFAULT_NAMESPACE,
    DEFAULT_REDIS_URL,
    GateVerdict,
    ModelInputError,
    ModelMeta,
    ModelRecord,
    ModelStore,
    ModelStoreError,
    Rejections,
    StoreUnavailable,
    VersionInfo,
)

__all__ = ["app"]

app = typer.Typer(
    name="models",
    help="Learned models in Redis: list, show weights, history, rollback, pin/unpin.",
    no_args_is_help=True,
    add_completion=False,
)

RedisUrl = Annotated[
    str, typer.Option("--redis-url", envvar="SMARTTRIP_REDIS_URL", help="Redis holding the models.")
]
Namespace = Annotated[
    str, typer.Option("--namespace", envvar="SMARTTRIP_MODEL_NAMESPACE", help="Key prefix of the store.")
]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
Policy = Annotated[str, typer.Argument(help="Policy name, e.g. linucb.")]
Segment = Annotated[str, typer.Argument(help="Segment name, e.g. adventure.")]
Version = Annotated[int, typer.Argument(min=1, help="Model version.")]


@contextlib.contextmanager
def _store(url: str, namespace: str) -> Iterator[ModelStore]:
    """An open store; store errors become a message on stderr and an exit code."""
    err = Console(stderr=True)
    try:
        with ModelStore.from_url(url, namespace=namespace) as store:
            yield store
    except ModelInputError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except StoreUnavailable as exc:
        err.print(f"[red]redis unavailable:[/red] {exc}", highlight=False)
        raise typer.Exit(3) from None
    except ModelStoreError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None


def _when(ts: float | None) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat(timespec="seconds")


def _short_when(ts: float | None) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")


def _table(title: str, columns: list[tuple[str, str]]) -> Table:
    """A compact table (fits 80 columns); names never wrap or get cut, numbers are right-aligned."""
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
    for name, kind in columns:
        if kind == "name":
            table.add_column(name, no_wrap=True, overflow="fold")
        else:
            table.add_column(name, justify="right" if kind == "num" else "left", no_wrap=kind == "time")
    return table


def _meta_json(meta: ModelMeta) -> dict[str, Any]:
    body = dataclasses.asdict(meta)
    body["offsets"] = {str(p): o for p, o in sorted(meta.offsets.items())}
    body["created_at_iso"] = _when(meta.created_at)
    return body


def _echo_json(body: object) -> None:
    typer.echo(json.dumps(body, indent=2, sort_keys=True))


def _event(meta: ModelMeta) -> str:
    return f"rollback from {meta.rolled_back_from}" if meta.event == "rollback" else "publish"


@app.command("list")
def list_models(
    redis_url: RedisUrl = DEFAULT_REDIS_URL, namespace: Namespace = DEFAULT_NAMESPACE, as_json: AsJson = False
) -> None:
    """Every (policy, segment): current, pinned, promoted and served version, and the gate's verdict.

    ``serving`` is what the scoring worker serves with the gate off (pin, else
    current); ``gated`` what it serves with the gate on (pin, else promoted;
    ``rules`` while nothing is promoted). ``gate`` is where the current version
    stands: promoted, candidate-held or candidate-pending, with the reason.
    """
    with _store(redis_url, namespace) as store:
        models = store.models()
    if as_json:
        _echo_json(
            [
                {
                    "policy": m.policy,
                    "segment": m.segment,
                    "current_version": m.current_version,
                    "pinned_version": m.pinned_version,
                    "promoted_version": m.promoted_version,
                    "nominated_version": m.nominated_version,
                    "serving_version": m.serving_version,
                    "gated_serving_version": m.gated_version,
                    "gate_state": m.gate_state,
                    "gate_verdict": None if m.verdict is None else _verdict_json(m.verdict),
                    "kind": m.meta.kind if m.meta else None,
                    "examples_seen": m.meta.examples_seen if m.meta else None,
                    "created_at": m.meta.created_at if m.meta else None,
                }
                for m in models
            ]
        )
        return
    table = _table(
        f"models in {namespace} (times UTC)",
        [
            ("policy", "name"),
            ("segment", "name"),
            ("current", "num"),
            ("pinned", "num"),
            ("promoted", "num"),
            ("serving", "num"),
            ("gated", "num"),
            ("gate", "text"),
            ("kind", "text"),
            ("examples", "num"),
            ("created", "time"),
        ],
    )
    for m in models:
        table.add_row(
            m.policy,
            m.segment,
            str(m.current_version),
            "-" if m.pinned_version is None else str(m.pinned_version),
            "-" if m.promoted_version is None else str(m.promoted_version),
            str(m.serving_version),
            "rules" if m.gated_version is None else str(m.gated_version),
            m.gate_state,
            m.meta.kind if m.meta else "-",
            f"{m.meta.examples_seen:,}" if m.meta else "-",
            _short_when(m.meta.created_at if m.meta else None),
        )
    console = Console()
    console.print(table)
    for m in models:
        if m.verdict is not None:
            console.print(
                f"{m.policy}/{m.segment} v{m.current_version} {m.gate_state} "
                f"({m.verdict.source}, {_short_when(m.verdict.at)}): {m.verdict.reason}",
                highlight=False,
                soft_wrap=True,
            )


def _verdict_json(v: GateVerdict) -> dict[str, Any]:
    return {
        "decision": v.decision,
        "reason": v.reason,
        "at": v.at,
        "at_iso": _when(v.at),
        "champion_version": v.champion_version,
        "source": v.source,
        "details": v.details,
    }


def _weights_table(record: ModelRecord) -> Table:
    weights = record.meta.weights
    order = [n for n in PHI_NAMES if n in weights] + sorted(n for n in weights if n not in PHI_NAMES)
    table = _table(
        f"weights of {record.policy}/{record.segment} v{record.version}",
        [("feature", "name"), ("weight", "num"), ("rule weight", "num")],
    )
    for name in order:
        rule = SCORING_WEIGHTS.get(name)
        table.add_row(name, f"{weights[name]:.4g}", "-" if rule is None else f"{rule:g}")
    return table


def _show_json(record: ModelRecord, rejections: Rejections) -> dict[str, Any]:
    return {
        "policy": record.policy,
        "segment": record.segment,
        "version": record.version,
        "current_version": record.current_version,
        "pinned_version": record.pinned_version,
        "serving_version": record.serving_version,
        "meta": _meta_json(record.meta),
        "rejections": dataclasses.asdict(rejections),
    }


@app.command("show")
def show(
    policy: Policy,
    segment: Segment,
    version: Annotated[int | None, typer.Option("--version", min=1, help="Default: the served one.")] = None,
    redis_url: RedisUrl = DEFAULT_REDIS_URL,
    namespace: Namespace = DEFAULT_NAMESPACE,
    as_json: AsJson = False,
) -> None:
    """One version's metadata and weights (default: the version being served)."""
    with _store(redis_url, namespace) as store:
        record = store.serving(policy, segment) if version is None else store.get(policy, segment, version)
        rejections = store.rejections(policy, segment)
    if as_json:
        _echo_json(_show_json(record, rejections))
        return
    meta = record.meta
    console = Console()
    pinned = "-" if record.pinned_version is None else str(record.pinned_version)
    lines = [
        f"[bold]{policy}/{segment}[/] version {record.version} ({_event(meta)})",
        f"  current {record.current_version}, pinned {pinned}, serving {record.serving_version}",
        f"  kind {meta.kind}, {meta.examples_seen:,} examples, created {_when(meta.created_at)}",
        f"  {meta.size:,} bytes, sha256 {meta.sha256[:16]}…, parent version {meta.parent_version or '-'}",
        f"  log epoch {meta.log_epoch!r}, offsets "
        + (", ".join(f"p{p}:{o}" for p, o in sorted(meta.offsets.items())) or "-"),
    ]
    if meta.metrics:
        lines.append("  metrics " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(meta.metrics.items())))
    if rejections.counts:
        counts = ", ".join(f"{k}={v}" for k, v in rejections.counts.items())
        lines.append(f"  [yellow]guardrail refusals[/] {counts}; last {_when(rejections.last_at)}")
        lines.extend(f"    {reason}" for reason in rejections.last_reasons)
    for line in lines:
        console.print(line, highlight=False)
    if meta.weights:
        console.print(_weights_table(record))
    else:
        console.print("  (no named weights stored for this model kind)")


def _history_json(info: VersionInfo) -> dict[str, Any]:
    return {
        "version": info.version,
        "current": info.current,
        "pinned": info.pinned,
        "promoted": info.promoted,
        "gate_verdict": None if info.verdict is None else _verdict_json(info.verdict),
        "meta": _meta_json(info.meta),
    }


@app.command("history")
def history(
    policy: Policy,
    segment: Segment,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Show the newest N only.")] = None,
    redis_url: RedisUrl = DEFAULT_REDIS_URL,
    namespace: Namespace = DEFAULT_NAMESPACE,
    as_json: AsJson = False,
) -> None:
    """Versions that can still be served or rolled back to, newest first."""
    with _store(redis_url, namespace) as store:
        entries = store.history(policy, segment)[:limit]
    if as_json:
        _echo_json([_history_json(e) for e in entries])
        return
    table = _table(
        f"history of {policy}/{segment} (times UTC)",
        [
            ("version", "num"),
            ("", "text"),
            ("created", "time"),
            ("event", "text"),
            ("kind", "text"),
            ("examples", "num"),
            ("bytes", "num"),
            ("sha256", "text"),
        ],
    )
    for e in entries:
        flags = " ".join(
            f for f, on in (("current", e.current), ("pinned", e.pinned), ("promoted", e.promoted)) if on
        )
        if e.verdict is not None and not e.promoted:
            flags = f"{flags} {e.verdict.decision}".strip()
        m = e.meta
        table.add_row(
            str(e.version),
            flags,
            _short_when(m.created_at),
            _event(m),
            m.kind,
            f"{m.examples_seen:,}",
            f"{m.size:,}",
            m.sha256[:8],
        )
    Console().print(table)


@app.command("rollback")
def rollback(
    policy: Policy,
    segment: Segment,
    version: Version,
    redis_url: RedisUrl = DEFAULT_REDIS_URL,
    namespace: Namespace = DEFAULT_NAMESPACE,
    as_json: AsJson = False,
) -> None:
    """Make VERSION current again: its exact bytes are re-published as a new version."""
    with _store(redis_url, namespace) as store:
        new = store.rollback(policy, segment, version)
        serving = store.serving_version(policy, segment)
    if as_json:
        _echo_json(
            {
                "policy": policy,
                "segment": segment,
                "version": new,
                "rolled_back_from": version,
                "serving_version": serving,
            }
        )
        return
    console = Console()
    console.print(
        f"{policy}/{segment}: version {new} is current, with the bytes of version {version}", highlight=False
    )
    if serving != new:
        console.print(
            f"[yellow]note:[/] version {serving} is pinned and still served; `unpin` to serve {new}"
        )


@app.command("pin")
def pin(
    policy: Policy,
    segment: Segment,
    version: Version,
    redis_url: RedisUrl = DEFAULT_REDIS_URL,
    namespace: Namespace = DEFAULT_NAMESPACE,
    as_json: AsJson = False,
) -> None:
    """Serve VERSION regardless of newer publishes (it is never trimmed) until `unpin`."""
    with _store(redis_url, namespace) as store:
        store.pin(policy, segment, version)
        current = store.current_version(policy, segment)
    if as_json:
        _echo_json(
            {"policy": policy, "segment": segment, "pinned_version": version, "current_version": current}
        )
        return
    Console().print(f"{policy}/{segment}: pinned version {version} (current is {current})", highlight=False)


@app.command("unpin")
def unpin(
    policy: Policy,
    segment: Segment,
    redis_url: RedisUrl = DEFAULT_REDIS_URL,
    namespace: Namespace = DEFAULT_NAMESPACE,
    as_json: AsJson = False,
) -> None:
    """Serve the current version again."""
    with _store(redis_url, namespace) as store:
        was = store.unpin(policy, segment)
        current = store.current_version(policy, segment)
    if as_json:
        _echo_json(
            {"policy": policy, "segment": segment, "unpinned_version": was, "serving_version": current}
        )
        return
    what = "was not pinned" if was is None else f"unpinned version {was}"
    Console().print(f"{policy}/{segment}: {what}; serving version {current}", highlight=False)


@app.command("promote")
def promote(
    policy: Policy,
    segment: Segment,
    version: Version,
    reason: Annotated[
        str, typer.Option("--reason", help="Why (kept as the verdict's reason).")
    ] = "promoted by ops",
    redis_url: RedisUrl = DEFAULT_REDIS_URL,
    namespace: Namespace = DEFAULT_NAMESPACE,
    as_json: AsJson = False,
) -> None:
    """Promote VERSION by hand (bypassing the gate): with the gate on, it serves unless a version is pinned."""
    import time

    with _store(redis_url, namespace) as store:
        previous = store.promoted_version(policy, segment)
        verdict = GateVerdict("promote", reason, time.time(), champion_version=previous, source="ops")
        store.promote(policy, segment, version, verdict)
    if as_json:
        _echo_json(
            {"policy": policy, "segment": segment, "promoted_version": version, "previous_promoted": previous}
        )
        return
    was = "none" if previous is None else str(previous)
    Console().print(f"{policy}/{segment}: promoted version {version} (was {was})", highlight=False)
