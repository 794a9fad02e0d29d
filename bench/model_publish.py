"""Cost of one model publish to the store: the index added at every publish (before) against once.

``python -m bench.model_publish [--publishes 300] [--rounds 5] [--seed 0]``
starts a redis-server on loopback and publishes, conditionally as the
learner does, the same model over and over under two stores in the same run:

- baseline: ``ModelStore(index_refresh_s=0)``, which adds the model to the
  index set (``SADD``) before every publish — the commands the store sent
  before it remembered what it had indexed;
- this code: the default store, which adds it once per process (and every
  ``index_refresh_s``, 60 s).

Two payloads: a VW policy through :meth:`ModelStore.publish_learner` (its
``serialize``, the guardrail check and the store, as the learner publishes
it) and the same bytes through :meth:`ModelStore.publish` alone. Reported
per publish: the process's CPU (``time.process_time``; Redis's own CPU not
included), wall time (the learner waits for the replies), and the commands
sent (round trips). Rounds alternate the stores; the median round is shown.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import redis
from rich.console import Console
from rich.table import Table

from bandit.vw_policy import VWPolicy
from stream.embedded import embedded_services
from stream.guardrails import learner_weights
from stream.model_store import ModelStore

__all__ = ["CountingRedis", "Row", "measure"]

Row = dict[str, Any]
STORES = (("SADD each (before)", 0.0), ("SADD once", 60.0))


class CountingRedis(redis.Redis):
    """A client that counts the commands it sends (one round trip each; no pipelines here)."""

    sent = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent += 1
        return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


def _policy(seed: int) -> VWPolicy:
    rng = np.random.default_rng(seed)
    n = 2000
    X = (rng.random((n, 20)) < 0.3).astype(float) * rng.random((n, 20))
    policy = VWPolicy(bits=16, seed=seed)  # as the learner configures it
    policy.learn_many(X, (rng.random(n) < 0.2).astype(float), positions=rng.integers(0, 10, n))
    return policy


def _round(
    store: ModelStore, client: CountingRedis, publish: Callable[[ModelStore, int], int], n: int
) -> Row:
    version = publish(store, 0)  # the first publish indexes the model (both stores)
    sent, cpu, wall = client.sent, time.process_time(), time.perf_counter()
    for _ in range(n):
        version = publish(store, version)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"cpu_us": cpu / n * 1e6, "wall_us": wall / n * 1e6, "round_trips": (client.sent - sent) / n}


def measure(*, publishes: int = 300, rounds: int = 5, seed: int = 0) -> list[Row]:
    """Per payload and store: median CPU and wall µs per publish, round trips, ratio to the baseline."""
    if publishes < 1 or rounds < 1:
        raise ValueError(f"publishes and rounds must be >= 1, got publishes={publishes!r}, rounds={rounds!r}")
    policy = _policy(seed)
    blob, weights = policy.to_bytes(), learner_weights(policy)

    def learner(store: ModelStore, version: int) -> int:
        return store.publish_learner("vw", "luxury", policy, offsets={0: version}, log_epoch="e",
                                     expected_version=version)  # fmt: skip

    def raw(store: ModelStore, version: int) -> int:
        return store.publish("vw", "luxury", blob, weights=weights, examples_seen=policy.n_examples,
                             offsets={0: version}, log_epoch="e", kind="vw_cb", expected_version=version)  # fmt: skip

    payloads = (("publish_learner", learner), ("publish bytes", raw))
    samples: dict[tuple[str, str], list[Row]] = {}
    with embedded_services(kafka=False) as svc:
        client = CountingRedis.from_url(svc.redis_url)
        assert isinstance(client, CountingRedis)  # noqa: S101  # from_url builds cls
        try:
            for r in range(rounds):
                for payload, publish in payloads:
                    for label, refresh in STORES if r % 2 == 0 else STORES[::-1]:
                        store = ModelStore(
                            client, namespace=f"pub{uuid.uuid4().hex[:8]}", index_refresh_s=refresh
                        )
                        samples.setdefault((payload, label), []).append(
                            _round(store, client, publish, publishes)
                        )
        finally:
            client.close()
    rows: list[Row] = []
    for payload, _ in payloads:
        base: Row | None = None
        for label, _ in STORES:
            runs = samples[(payload, label)]
            row: Row = {"payload": payload, "store": label}
            for key in ("cpu_us", "wall_us", "round_trips"):
                row[key] = statistics.median(s[key] for s in runs)
            base = base or row
            row["cpu_vs_baseline"] = row["cpu_us"] / base["cpu_us"]
            row["wall_vs_baseline"] = row["wall_us"] / base["wall_us"]
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--publishes", type=int, default=300, help="timed publishes per store and round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (median shown)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.publishes < 1 or args.rounds < 1:
        parser.error("--publishes and --rounds: must be >= 1")
    console = Console()
    with console.status(f"publishing {args.publishes:,} × 4 × {args.rounds} rounds to a local redis-server…"):
        rows = measure(publishes=args.publishes, rounds=args.rounds, seed=args.seed)
    table = Table(title=f"One model publish (median of {args.rounds} rounds of {args.publishes})")
    for col in ("payload", "store", "CPU µs", "× baseline", "wall µs", "× baseline", "round trips"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["payload"], r["store"], f"{r['cpu_us']:.0f}", f"{r['cpu_vs_baseline']:.2f}",
                      f"{r['wall_us']:.0f}", f"{r['wall_vs_baseline']:.2f}", f"{r['round_trips']:g}")  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    main()
