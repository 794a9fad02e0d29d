"""Analysts' commands: ``smarttrip ope``, ``replay``, ``export`` and ``ab report``.

Input is an export file (``smarttrip export``, JSON Lines) or a topic range
read from Kafka (``--bootstrap`` with ``--since``/``--until``), or for
``ope``/``replay`` an Open Bandit Dataset CSV (``--format obd``). Each
command prints a table and, with ``--json FILE``, writes its figures.
Exit codes: 0 done; 2 bad argument or bad input (the message names it).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bandit.ope_validation import OPEInputError
from stream.export import ExportError, LogRecord
from stream.settings import StreamSettings

console = Console()

LogsOpt = Annotated[Path | None, typer.Option("--logs", help="Export file (.jsonl[.gz]) or OBD CSV.")]
BootstrapOpt = Annotated[
    str | None, typer.Option("--bootstrap", help="Kafka bootstrap servers (instead of --logs).")
]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="Start (ISO 8601 or epoch seconds, broker time).")
]
UntilOpt = Annotated[str | None, typer.Option("--until", help="End, exclusive (ISO 8601 or epoch seconds).")]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="Also write the results to this JSON file.")]


def fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def _epoch_ms(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value) * 1000)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{name}: not ISO 8601 or epoch seconds: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)


def input_records(logs: Path | None, bootstrap: str | None, since: str | None, until: str | None,
             topics: list[str]) -> list[LogRecord]:  # fmt: skip
    from stream.export import read_export, read_kafka

    if (logs is None) == (bootstrap is None):
        raise fail("give exactly one of --logs FILE or --bootstrap SERVERS")
    try:
        if logs is not None:
            return list(read_export(logs))
        assert bootstrap is not None  # noqa: S101
        with console.status(f"reading {', '.join(topics)} from {bootstrap}…"):
            return read_kafka(bootstrap, topics, since_ms=_epoch_ms(since, "--since"),
                              until_ms=_epoch_ms(until, "--until"))  # fmt: skip
    except (ExportError, OSError) as exc:
        raise fail(str(exc)) from None


def write_json(path: Path | None, payload: object) -> None:
    if path is not None:
        path.write_text(json.dumps(payload, indent=2, default=str))
        console.print(f"wrote {path}")


# ----------------------------------------------------------------------------- export
def export(
    out: Annotated[Path, typer.Option("--out", help="Output file; .gz compresses.")],
    bootstrap: Annotated[
        str, typer.Option("--bootstrap", envvar="SMARTTRIP_KAFKA_BOOTSTRAP")
    ] = "127.0.0.1:9092",
    since: SinceOpt = None,
    until: UntilOpt = None,
    topics: Annotated[
        str, typer.Option(help="Comma-separated topics.")
    ] = "impressions,interactions,examples",
) -> None:
    """Write a topic range to a JSON Lines file (schema: ``stream/export.py``)."""
    from stream.export import write_export

    records = input_records(None, bootstrap, since, until, [t for t in topics.split(",") if t])
    n = write_export(records, out)
    console.print(f"exported {n:,} records to {out}")


# ----------------------------------------------------------------------------- replay
def replay(
    logs: LogsOpt = None,
    bootstrap: BootstrapOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    mode: Annotated[
        str, typer.Option(help="raw (join + learn) or examples (learn the logged examples).")
    ] = "raw",
    fast: Annotated[
        bool,
        typer.Option(help="Fast path (raw mode): columnar when the input allows it, else record by record."),
    ] = True,
    fmt: Annotated[
        str, typer.Option("--format", help="ours or obd (OBD: Li et al. replay evaluation).")
    ] = "ours",
    policy_table: Annotated[
        Path | None, typer.Option("--policy-table", help="OBD: CSV table to evaluate.")
    ] = None,
    save_models: Annotated[
        Path | None, typer.Option("--save-models", help="Write each model's bytes here.")
    ] = None,
    seed: int = 0,
    json_out: JsonOpt = None,
) -> None:
    """Re-run the join and the learners over past records (or, for OBD, the Li et al. replay evaluator)."""
    if fmt == "obd":
        _replay_obd(logs, policy_table, seed, json_out)
        return
    from stream.replay import Replayer
    from stream.replay_columnar import ColumnarReplayer

    if mode not in ("raw", "examples"):
        raise fail(f"--mode: must be raw or examples, got {mode!r}")
    s = StreamSettings.from_env()
    wanted = [s.topic_impressions, s.topic_interactions] if mode == "raw" else [s.topic_examples]
    records = input_records(logs, bootstrap, since, until, wanted)
    replayer: Replayer | ColumnarReplayer = (
        ColumnarReplayer(settings=s) if fast and mode == "raw" else Replayer(mode, settings=s)  # type: ignore[arg-type]
    )
    with Progress(TextColumn("replaying"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"),
                  TimeElapsedColumn(), console=console, transient=True) as progress:  # fmt: skip
        task = progress.add_task("replay", total=len(records))
        stats = replayer.run(records, progress=lambda n: progress.advance(task, n))
    table = Table(title=f"Replay ({mode}{', fast' if fast and mode == 'raw' else ''})")
    for col in ("events", "ignored", "examples", "corrections", "dead letters", "seconds", "events/s"):
        table.add_column(col, justify="right")
    table.add_row(f"{stats.events:,}", f"{stats.ignored:,}", f"{stats.examples:,}", f"{stats.corrections:,}",
                  f"{sum(stats.deadletters.values()):,}", f"{stats.seconds:.2f}", f"{stats.events_per_s:,.0f}")  # fmt: skip
    console.print(table)
    fallback = getattr(replayer, "fallback", None)
    if fallback is not None:
        console.print(f"columnar replay not applicable ({fallback}): replayed record by record")
    models = {}
    for (policy, segment), learner in sorted(replayer.models().items()):
        weights = getattr(learner, "weights", None)
        models[f"{policy}/{segment}"] = {"n_examples": learner.n_examples,
                                         "weights": dict(weights) if isinstance(weights, dict) else None}  # fmt: skip
        if save_models is not None:
            save_models.mkdir(parents=True, exist_ok=True)
            (save_models / f"{policy}.{segment}.model").write_bytes(learner.to_bytes())
    write_json(json_out, {"stats": stats.as_dict(), "models": models})


def _replay_obd(logs: Path | None, policy_table: Path | None, seed: int, json_out: Path | None) -> None:
    from bandit.ope_tables import read_table
    from bandit.replay_evaluator import TablePolicy, replay_evaluate
    from stream.obd import read_obd

    if logs is None or policy_table is None:
        raise fail("--format obd replay needs --logs CSV and --policy-table CSV")
    try:
        data = read_obd(logs)
        table = read_table(policy_table, kind="policy")
        rows = []
        for k in range(data.len_list):
            mask = data.position == k
            X = np.zeros((int(mask.sum()), data.n_actions, 1))
            result = replay_evaluate(X, data.action[mask], data.reward[mask], TablePolicy(table[:, k], seed=seed + k),
                                     pscore=data.pscore[mask], tolerance=1e-4)  # fmt: skip
            lo, hi = result.ci()
            rows.append({"position": k, "n": result.n, "accepted": result.accepted, "value": result.value,
                         "ci_low": lo, "ci_high": hi})  # fmt: skip
    except (OPEInputError, OSError) as exc:
        raise fail(str(exc)) from None
    table_out = Table(title="Li et al. (2011) replay evaluation, per position")
    for col in ("position", "events", "accepted", "CTR", "95% CI"):
        table_out.add_column(col, justify="right")
    for r in rows:
        table_out.add_row(str(r["position"]), f"{r['n']:,}", f"{r['accepted']:,}", f"{r['value']:.4f}",
                          f"[{r['ci_low']:.4f}, {r['ci_high']:.4f}]")  # fmt: skip
    console.print(table_out)
    write_json(json_out, {"replay": rows})
