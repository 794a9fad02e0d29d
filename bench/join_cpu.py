"""CPU per event of the join worker's own code (no Kafka), this code against a baseline revision.

``python -m bench.join_cpu [--baseline REF] [--sessions 8000] [--rounds 3] [--json FILE]``
runs :class:`~stream.join_runtime.JoinRuntime` in a child process over the
``smarttrip bench join`` input (synthetic sessions of one 10-trip slate with
20 φ values and a few clicks, :func:`stream.synthetic.synthetic_sessions`),
in micro-batches of 100 records on the four input partitions, with a fake
wall clock that moves with event time so windows close as they would live;
then the clock jumps past the lateness and everything is flushed. Measured:
the child's CPU time (``time.process_time``) over ``process``/``tick``
calls only — decoding, joining, the quality gate, example encoding and the
changelog's state records, what the worker does per event besides Faust
and the producer (``smarttrip bench join`` measures those too, through
real Kafka). Examples are written one per record (``examples_per_record="one"``)
in trees that have that setting, so outputs compare with older trees.

The baseline is ``git archive REF`` (default: the commit before this work),
run by the same interpreter with that tree first on ``sys.path``; the two
codes run one after the other, in alternating order, for ``--rounds``
rounds, and the median per code is reported with its ratio. Every run also
hashes its outputs (topic, key, value of every record, in order, with
``PYTHONHASHSEED=0``): the table says whether this code's outputs are
byte-identical to the baseline's. The machine may be shared: compare rows
of one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.scoring_cpu import source_tree

__all__ = ["BASELINE", "CHILD", "measure"]

#: The code before the join-CPU work of session 6 (``git log`` of this branch).
BASELINE = "5e56c87"
REPO = Path(__file__).resolve().parent.parent

#: What each child runs (``python -c``, cwd = the tree measured): prints one JSON line.
CHILD = """
import hashlib, json, sys, time
from monitoring.stream_metrics import StreamMetrics
from stream.join_runtime import JoinRuntime, RawRecord, key_partition
from stream.settings import StreamSettings
from stream.synthetic import synthetic_sessions

n_sessions = int(sys.argv[1])
t0 = 1_790_000_000.0
# one record per example where the tree has the choice: comparable with trees from before it
per_record = {"examples_per_record": "one"} if "examples_per_record" in StreamSettings.__dataclass_fields__ else {}
settings = StreamSettings(join_window_s=5.0, allowed_lateness_s=30.0, partitions=4, **per_record)
made, _ = synthetic_sessions(n_sessions=n_sessions, seed=0, t0=t0, slate_size=10,
                             impressions_topic=settings.topic_impressions,
                             interactions_topic=settings.topic_interactions)
records = [RawRecord(r.topic, key_partition(r.key.decode(), 4), r.key, r.value) for r in made]
from stream.faust_app import tune_gc
tune_gc()  # as the worker runs: start-up frozen, young collections every 20,000 allocations
clock = [t0]
runtime = JoinRuntime(settings, StreamMetrics(), clock=lambda: clock[0], changelog_topic="changelog")
outputs = []
started = time.process_time()
for i in range(0, len(records), 100):
    clock[0] = t0 + i / len(records) * n_sessions * 0.001 + 1.5  # the clicks' event time, about
    outputs.append(runtime.process(records[i:i + 100]))
clock[0] += 60.0  # past window, delay and lateness: every slate closes, every session goes
outputs.append(runtime.tick())
cpu = time.process_time() - started
digest, topics = hashlib.sha256(), {}
for batch in outputs:
    for o in batch:
        digest.update(b"%d:%b%d:%b%d:%b" % (len(o.topic), o.topic.encode(), len(o.key), o.key,
                      -1 if o.value is None else len(o.value), o.value or b""))
        topics[o.topic] = topics.get(o.topic, 0) + 1
print(json.dumps({"events": len(records), "cpu_s": cpu, "digest": digest.hexdigest(), "outputs": topics}))
"""


def measure(tree: Path, n_sessions: int) -> dict[str, Any]:
    """One child run of the join over ``n_sessions`` with the code of ``tree``; its JSON line."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the changelog's order follows a set of session ids
    proc = subprocess.run(  # noqa: S603 - our interpreter, our code
        [sys.executable, "-c", CHILD, str(n_sessions)],
        cwd=tree,
        env=env,
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"join run in {tree} failed: {proc.stderr.decode(errors='replace')[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default=BASELINE, help="git revision to compare with")
    parser.add_argument("--sessions", type=int, default=8000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.rounds < 1:
        parser.error("--sessions and --rounds must be >= 1")
    console = Console()
    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "this code": []}
    with tempfile.TemporaryDirectory(prefix="join-cpu-") as tmp:
        trees = {"baseline": source_tree(args.baseline, Path(tmp)), "this code": REPO}
        with console.status("") as status:
            for r in range(args.rounds):
                order = list(trees) if r % 2 == 0 else list(reversed(trees))
                for name in order:
                    status.update(f"round {r + 1}/{args.rounds}: {name}")
                    runs[name].append(measure(trees[name], args.sessions))
    base_digest = runs["baseline"][0]["digest"]
    per_event = {name: [x["cpu_s"] / x["events"] * 1e6 for x in rs] for name, rs in runs.items()}
    medians = {name: statistics.median(v) for name, v in per_event.items()}
    table = Table(
        title=f"JoinRuntime CPU per event, no Kafka ({args.sessions:,} sessions, {args.rounds} rounds)"
    )
    for col in ("code", "events", "CPU µs / event (median)", "runs", "× baseline", "outputs = baseline"):
        table.add_column(col, justify="left" if col == "code" else "right")
    for name, rs in runs.items():
        same = all(x["digest"] == base_digest for x in rs)
        table.add_row(
            name if name == "this code" else f"baseline {args.baseline}",
            f"{rs[0]['events']:,}",
            f"{medians[name]:.1f}",
            ", ".join(f"{v:.1f}" for v in per_event[name]),
            f"{medians[name] / medians['baseline']:.3f}",
            "yes" if same else "NO",
        )
    console.print(table)
    console.print(f"outputs per topic: {runs['this code'][0]['outputs']}")
    if args.json is not None:
        args.json.write_text(json.dumps({"baseline": args.baseline, "sessions": args.sessions,
                                         "runs": runs, "median_us_per_event": medians}, indent=2))  # fmt: skip
    return 0 if all(x["digest"] == base_digest for rs in runs.values() for x in rs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
