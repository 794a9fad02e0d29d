"""``smarttrip bench …``: benchmarks that print a table and optionally write JSON."""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from bench.join import ModeResult

app = typer.Typer(help="Benchmarks (each measures its baseline in the same run).", no_args_is_help=True)


@app.command("scoring")
def scoring(
    json_out: Path | None = typer.Option(None, "--json", help="Also write the results to this JSON file."),
    seed: int = typer.Option(0, help="Seed for the catalog and the users."),
    quick: bool = typer.Option(False, help="Fewer repetitions (for smoke tests)."),
    sizes: str = typer.Option("30,1000,10000,100000", help="Comma-separated candidate counts."),
) -> None:
    """Per-request ranking latency: reference loop + heap of 30 vs the vectorized path."""
    from bench import scoring as bench_scoring

    console = Console()
    with console.status("timing the reference loop and the vectorized path…"):
        results = bench_scoring.run(sizes=_parse_sizes(sizes), seed=seed, quick=quick)
    table = Table(title="Ranking latency, rule score, top-30 (ms per request)")
    columns = (
        "candidates",
        "reference p50",
        "reference p99",
        "tight loop p50",
        "vectorized p50",
        "vectorized p99",
        "× vs reference",
        "× vs tight loop",
    )
    for col in columns:
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            f"{r.candidates:,}",
            f"{r.reference.p50_ms:.3f}",
            f"{r.reference.p99_ms:.3f}",
            f"{r.tight_loop.p50_ms:.3f}",
            f"{r.vectorized.p50_ms:.3f}",
            f"{r.vectorized.p99_ms:.3f}",
            f"{r.speedup_p50:.0f}",
            f"{r.speedup_tight_p50:.0f}",
        )
    console.print(table)
    if json_out:
        payload = {
            "benchmark": "scoring",
            "machine": {"python": platform.python_version(), "cpu": platform.machine()},
            "results": [r.as_dict() for r in results],
        }
        json_out.write_text(json.dumps(payload, indent=2) + "\n")
        console.print(f"wrote {json_out}")


@app.command("join")
def join(
    json_out: Path | None = typer.Option(None, "--json", help="Also write the results to this JSON file."),
    sessions: int = typer.Option(20_000, min=100, help="Sessions to pre-produce (one 10-trip slate each)."),
    seed: int = typer.Option(0, help="Seed for the synthetic sessions."),
) -> None:
    """Join throughput per worker through the embedded broker, next to a bare counting agent."""
    from bench import join as bench_join

    console = Console()
    with console.status("starting the broker…") as status:
        results = bench_join.run(
            n_sessions=sessions, seed=seed, progress=lambda m: status.update(f"measuring the {m} worker…")
        )
    console.print(
        _rate_table("Stream worker throughput through Kafka (one worker, 4 partitions)", "events", results)
    )
    cpu = ", ".join(f"{r.mode} {r.cpu_us_per_event:.0f}" for r in results if r.cpu_us_per_event is not None)
    if cpu:
        console.print(f"worker CPU per event (µs, user + system, all threads): {cpu}")
    rss = ", ".join(f"{r.mode} {r.rss_mib:.0f}" for r in results if r.rss_mib is not None)
    if rss:
        console.print(f"worker RSS at the end (MiB; the join then holds every session): {rss}")
    if json_out:
        payload = {"benchmark": "join", "sessions": sessions, "results": [r.as_dict() for r in results]}
        json_out.write_text(json.dumps(payload, indent=2) + "\n")
        console.print(f"wrote {json_out}")


@app.command("freshness")
def freshness(
    json_out: Path | None = typer.Option(None, "--json", help="Also write the results to this JSON file."),
    examples: int = typer.Option(30_000, min=1000, help="Examples to pre-produce for the throughput phase."),
    probes: int = typer.Option(40, min=5, help="Single-example freshness probes."),
    seed: int = typer.Option(0, help="Seed for the synthetic examples and probe timing."),
) -> None:
    """Example-to-model freshness (p50/p99) and learner throughput, next to a bare counting agent."""
    from bench import freshness as bench_freshness

    console = Console()
    with console.status("starting the broker and redis-server…") as status:
        result = bench_freshness.run(
            n_examples=examples, probes=probes, seed=seed, progress=lambda m: status.update(f"measuring {m}…")
        )
    title = "Learner throughput through Kafka (one worker; 3 policies per example)"
    console.print(_rate_table(title, "examples", result.throughput))
    summary = result.summary()
    fresh = Table(
        title=f"Freshness: example produced → new model version readable in Redis ({probes} probes)"
    )
    for col in ("p50", "p99", "max"):
        fresh.add_column(col, justify="right")
    fresh.add_row(*(f"{summary[k] * 1000:.0f} ms" for k in ("p50_s", "p99_s", "max_s")))
    console.print(fresh)
    if json_out:
        payload = {
            "benchmark": "freshness",
            "throughput": [r.as_dict() for r in result.throughput],
            "freshness": summary,
            "latencies_s": result.latencies_s,
        }
        json_out.write_text(json.dumps(payload, indent=2) + "\n")
        console.print(f"wrote {json_out}")


@app.command("learner-cpu")
def learner_cpu(
    json_out: Path | None = typer.Option(None, "--json", help="Also write the results to this JSON file."),
    rates: str = typer.Option(
        "1425,4750", help="Input rates in examples/s (~9.5 per rank: 150 and 500 ranks/s)."
    ),
    seconds: float = typer.Option(4.0, min=0.5, help="Seconds of input per in-process round."),
    rounds: int = typer.Option(
        3, min=1, help="In-process rounds per path (alternating; the median is shown)."
    ),
    worker_examples: int = typer.Option(30_000, min=0, help="Examples for the worker catch-up (0: skip it)."),
    worker_rounds: int = typer.Option(
        3, min=1, help="Worker runs per path (alternating; the median is shown)."
    ),
    seed: int = typer.Option(0, help="Seed for the synthetic examples."),
) -> None:
    """Learner CPU per example: the reference path vs the fast path (same models), in the same run."""
    from bench import learner_cpu as bench_cpu

    console = Console()
    with console.status("starting redis-server…") as status:
        inproc = bench_cpu.run_inprocess(
            rates=tuple(float(r) for r in _parse_sizes(rates)), seconds=seconds, rounds=rounds, seed=seed,
            progress=lambda m: status.update(f"measuring {m}…"),
        )  # fmt: skip
    table = Table(
        title=f"Learner runtime, CPU µs per example (median of {rounds} rounds; Redis's own CPU excluded)"
    )
    for col in (
        "input rate",
        "batch",
        "path",
        "learn",
        "publish",
        "total",
        "learn vs reference",
        "total vs reference",
    ):
        table.add_column(col, justify="right")
    base = {r.rate: r for r in inproc if r.path == "reference"}
    for r in inproc:
        ref = base[r.rate]
        table.add_row(f"{r.rate:,.0f}/s", str(r.batch), r.path, f"{r.learn_us:.1f}", f"{r.publish_us:.1f}",
                      f"{r.total_us:.1f}", f"{ref.learn_us / r.learn_us:.2f}×", f"{ref.total_us / r.total_us:.2f}×")  # fmt: skip
    console.print(table)
    workers = []
    if worker_examples:
        with console.status("starting the broker and redis-server…") as status:
            workers = bench_cpu.run_worker(
                n_examples=worker_examples, rounds=worker_rounds, seed=seed,
                progress=lambda m: status.update(f"measuring {m}…"),
            )  # fmt: skip
        wt = Table(
            title=f"Learner worker catching up through Kafka (Faust included; median of {worker_rounds})"
        )
        for col in (
            "path",
            "examples",
            "examples/s",
            "CPU µs/example",
            "rate vs reference",
            "CPU vs reference",
        ):
            wt.add_column(col, justify="right")
        ref_w = workers[0]
        for w in workers:
            cpu, ref_cpu = w.cpu_us_per_event, ref_w.cpu_us_per_event
            ratio = f"{ref_cpu / cpu:.2f}×" if cpu and ref_cpu else "n/a"
            wt.add_row(w.mode, f"{w.events:,}", f"{w.rate:,.0f}", f"{cpu:.0f}" if cpu else "n/a",
                       f"{w.rate / ref_w.rate:.2f}×", ratio)  # fmt: skip
        console.print(wt)
    if json_out:
        payload = {
            "benchmark": "learner-cpu",
            "machine": platform.platform(),
            "inprocess": [r.as_dict() for r in inproc],
            "worker": [w.as_dict() for w in workers],
        }
        json_out.write_text(json.dumps(payload, indent=2) + "\n")
        console.print(f"wrote {json_out}")


@app.command("serve")
def serve(
    json_out: Path | None = typer.Option(None, "--json", help="Also write the results to this JSON file."),
    duration: float = typer.Option(10.0, min=1, help="Seconds of load per endpoint."),
    concurrency: int = typer.Option(16, min=1, help="Connections kept busy."),
    candidates: int = typer.Option(200, min=1, help="Candidate trip ids per rank request."),
    workers: int = typer.Option(2, min=1, help="Scoring worker processes on the port."),
    tool: str = typer.Option("auto", help="Load generator: wrk, asyncio, or auto (wrk when installed)."),
) -> None:
    """Ranking RPC throughput and latency over real HTTP (linucb variant, impressions logged)."""
    from bench import serve as bench_serve

    console = Console()
    with console.status("starting the broker, redis-server and the scoring worker…") as status:
        result = bench_serve.run(
            duration_s=duration, concurrency=concurrency, candidates=candidates, k=10, n_trips=5000,
            workers=workers, tool=tool, progress=lambda m: status.update(m),
        )  # fmt: skip
    payload = result.as_dict()
    console.print_json(data=payload)
    if json_out:
        json_out.write_text(json.dumps({"benchmark": "serve", **payload}, indent=2) + "\n")
        console.print(f"wrote {json_out}")


@app.command("replay")
def replay(
    json_out: Path | None = typer.Option(None, "--json", help="Also write the results to this JSON file."),
    sessions: int = typer.Option(3000, help="Synthetic sessions (one 10-trip slate each)."),
    seed: int = typer.Option(0),
    repeats: int = typer.Option(2, min=1, help="Best of this many runs per mode."),
) -> None:
    """Offline replay: input events/s through the join and each learner set, careful vs fast vs columnar."""
    from bench import replay as bench_replay

    console = Console()
    with console.status("replaying synthetic sessions…") as status:
        results = bench_replay.run(n_sessions=sessions, seed=seed, repeats=repeats,
                                   progress=lambda m: status.update(f"replaying: {m}"))  # fmt: skip
    table = Table(title="Replay throughput (join + learners, in process)")
    for col in (
        "learners",
        "path",
        "events",
        "examples",
        "events/s",
        "vs careful",
        "events/CPU-s",
        "vs careful (CPU)",
    ):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(r.learners, r.path, f"{r.events:,}", f"{r.examples:,}", f"{r.rate:,.0f}", f"{r.vs_careful:.2f}",
                      f"{r.cpu_rate:,.0f}", f"{r.vs_careful_cpu:.2f}")  # fmt: skip
    console.print(table)
    if json_out:
        payload = {"benchmark": "replay", "sessions": sessions, "results": [r.as_dict() for r in results],
                   "machine": {"python": platform.python_version(), "cpu": platform.machine()}}  # fmt: skip
        json_out.write_text(json.dumps(payload, indent=2) + "\n")


@app.command("catalog")
def catalog(
    json_out: Path | None = typer.Option(None, "--json", help="Also write the results to this JSON file."),
    trips: int = typer.Option(5000, min=100, help="Trips in the catalog."),
    duration: float = typer.Option(8.0, min=1, help="Seconds of load per phase."),
    swap_every: float = typer.Option(
        0.5, min=0.05, help="Seconds between catalog versions in the second phase."
    ),
    concurrency: int = typer.Option(8, min=1, help="Connections kept busy."),
) -> None:
    """Rank latency while catalog versions hot-swap, next to the same worker with a steady catalog."""
    from bench import catalog_swap

    console = Console()
    with console.status("starting the broker, redis-server and the scoring worker…") as status:
        r = catalog_swap.run(n_trips=trips, duration_s=duration, swap_every_s=swap_every, concurrency=concurrency,
                             progress=lambda m: status.update(m))  # fmt: skip
    table = Table(
        title=f"POST /v1/rank, {trips:,} trips, 200 candidates, {r.tool}, concurrency {concurrency}"
    )
    for col in (
        "catalog",
        "requests/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "versions swapped in",
        "p99 × steady",
    ):
        table.add_column(col, justify="right")
    for name, load, swapped in (
        ("steady", r.steady, 0),
        (f"new every {swap_every:g} s", r.swapping, r.versions_swapped_in),
    ):
        table.add_row(name, f"{load.rps:,.0f}", f"{load.p50_ms:.2f}", f"{load.p99_ms:.2f}", f"{load.max_ms:.1f}",
                      str(load.errors), str(swapped), f"{load.p99_ms / r.steady.p99_ms:.2f}")  # fmt: skip
    console.print(table)
    if json_out:
        json_out.write_text(json.dumps(r.as_dict(), indent=2) + "\n")
        console.print(f"wrote {json_out}")


@app.command("soak")
def soak(
    json_out: Path | None = typer.Option(None, "--json", help="Also write the results to this JSON file."),
    minutes: float = typer.Option(10.0, min=0.1, max=24 * 60, help="Length of the measured run."),
    rate: float = typer.Option(500.0, min=1, help="Ranking requests per second to offer."),
    warmup: float = typer.Option(
        130.0,
        min=1,
        help="Load before RSS is read (>= longest state horizon: join TTL, learner dedupe + 4 s).",
    ),
    drain: float = typer.Option(20.0, min=0, help="Seconds to wait for the consumer lag to drain."),
    concurrency: int = typer.Option(32, min=1, help="Requests in flight at most."),
    lateness: float = typer.Option(30.0, min=0, help="The join's allowed lateness (s): sets the state TTLs."),
    dedupe_horizon: float = typer.Option(
        120.0, min=0.001, help="The learner's duplicate-filter horizon (s)."
    ),
    seed: int = typer.Option(0, help="Seed of the simulator."),
) -> None:
    """The whole loop (RPC + Kafka + Faust join and learner + Redis) at a fixed rate; exit 1 if a target fails."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from bench import soak as bench_soak
    from bench.soak_report import table as soak_table

    console = Console()
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("starting", total=1.0)
            r = bench_soak.run(
                rate=rate, minutes=minutes, warmup_s=warmup, drain_s=drain, concurrency=concurrency, seed=seed,
                allowed_lateness_s=lateness, dedupe_horizon_s=dedupe_horizon,
                progress=lambda phase, frac: bar.update(task, description=phase, completed=frac),
            )  # fmt: skip
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    console.print(soak_table(r))
    for note in r.notes:
        console.print(note)
    met = r.targets()
    console.print("targets: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in met.items()))
    if json_out:
        json_out.write_text(json.dumps(r.as_dict(), indent=2) + "\n")
        console.print(f"wrote {json_out}")
    if not all(met.values()):
        raise typer.Exit(1)


def _rate_table(title: str, unit: str, results: Sequence[ModeResult]) -> Table:
    """Throughput rows, each as a ratio to the first (the baseline measured in the same run)."""
    table = Table(title=title)
    for col in ("worker", unit, "seconds", f"{unit}/s", "vs bare agent"):
        table.add_column(col, justify="right")
    base = results[0].rate
    for r in results:
        table.add_row(r.mode, f"{r.events:,}", f"{r.seconds:.2f}", f"{r.rate:,.0f}", f"{r.rate / base:.2f}")
    return table


def _parse_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"--sizes: expected comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise typer.BadParameter("--sizes: every size must be >= 1")
    return sizes
