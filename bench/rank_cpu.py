"""CPU time of one /v1/rank in the scoring worker's ranking code, per policy, as the soak asks it.

``python -m bench.rank_cpu [--requests 400] [--seed 0]`` ranks the soak's
requests (the simulator's users over its 1,500-trip catalog, no candidate
list, k = 10, exploration on) through :class:`scoring.service.Ranker` in
this process, with one trained model per learned policy, and reports the
CPU time (``time.process_time``) per request of each policy, impression
encoding included (the stand-in log builds every record's bytes as the
sender task would). The baseline, measured in the same run, serves the VW
policy with VW's own ``score_many`` (what the scoring worker did before
:mod:`scoring.vw_fast`); the other rows use the worker's fast scorers.
HTTP, parsing and Kafka are not included (``smarttrip bench serve`` and the
soak measure those).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from bandit.lin_ucb import LinUCB
from bandit.logistic import LogisticLearner
from bandit.protocol import Learner
from bandit.vw_policy import VWPolicy
from features.phi import phi
from monitoring.scoring_metrics import ScoringMetrics
from scoring.experiment import Experiment
from scoring.policies import LoadedModel, fast_scorer
from scoring.requests import RankRequest
from scoring.service import CatalogState, Ranker
from scoring.weights import SCORING_WEIGHTS
from sim.config import SimConfig
from sim.world import World

__all__ = ["measure"]


class _EncodingLog:
    """Stands in for the impression log: builds each record's bytes, as its sender task would."""

    def __init__(self) -> None:
        self.bytes = 0

    def submit(self, topic: str, key: bytes, payload: Callable[[], bytes]) -> None:
        self.bytes += len(payload())


def _trained(world: World, seed: int) -> dict[str, Learner]:
    rng = np.random.default_rng(seed)
    users = [world.users[int(i)] for i in rng.integers(len(world.users), size=60)]
    X = np.concatenate([phi(world.catalog, u.prefs, world.today)[rng.integers(len(world.catalog), size=50)]
                        for u in users])  # fmt: skip
    y = (rng.random(len(X)) < 0.15).astype(float)
    pos = rng.integers(0, 10, len(X))
    models: dict[str, Learner] = {
        "logistic": LogisticLearner(prior=dict(SCORING_WEIGHTS)),
        "linucb": LinUCB(prior=dict(SCORING_WEIGHTS), prior_scale=0.002, alpha=0.7),
        "vw": VWPolicy(bits=16, seed=seed),
    }
    for m in models.values():
        m.learn_many(X, y, positions=pos)
    return models


def _ranker(world: World, policy: str, model: LoadedModel | None, log: _EncodingLog) -> Ranker:
    exp = Experiment.from_request(
        {"salt": "bench", "variants": [{"name": policy, "policy": policy, "traffic": 1.0, "epsilon": 0.02}]},
        None,
    )
    state = CatalogState()
    state.set(world.catalog)
    return Ranker(
        catalog=state,
        models=SimpleNamespace(get=lambda p, s: model if p == policy else None),  # type: ignore[arg-type]
        experiments=SimpleNamespace(current=exp),  # type: ignore[arg-type]
        log=log,  # type: ignore[arg-type]
        metrics=ScoringMetrics(),
        topic="impressions",
        today=lambda: world.today,
    )


def measure(*, requests: int = 400, seed: int = 0) -> list[dict[str, Any]]:
    """CPU µs per request of each configuration (the first row is the baseline)."""
    world = World(SimConfig(seed=seed))
    learners = _trained(world, seed)
    rng = np.random.default_rng(seed + 1)
    users = [world.users[int(i)] for i in rng.integers(len(world.users), size=requests)]
    reqs = [RankRequest(f"s{i}", f"u_{u.user_id}", u.prefs, u.segment, None, None, 10, True)
            for i, u in enumerate(users)]  # fmt: skip
    configs: list[tuple[str, str, LoadedModel | None]] = [
        ("vw, VW's own score_many (before)", "vw", LoadedModel("vw", "g", 1, learners["vw"], 0.0, 0.0)),
    ]
    for policy in ("vw", "linucb", "logistic"):
        learner = learners[policy]
        configs.append((f"{policy}, fast scorer", policy,
                        LoadedModel(policy, "g", 1, learner, 0.0, 0.0, fast_scorer(learner))))  # fmt: skip
    configs.append(("rules", "rules", None))
    rows = []
    for label, policy, model in configs:
        log = _EncodingLog()
        ranker = _ranker(world, policy, model, log)
        for req in reqs[:20]:  # warm caches
            ranker.rank(req)
        t0 = time.process_time()
        for req in reqs:
            ranker.rank(req)
        cpu_us = (time.process_time() - t0) / len(reqs) * 1e6
        rows.append(
            {"config": label, "cpu_us_per_request": cpu_us, "impression_bytes": log.bytes / len(reqs)}
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.requests < 1:
        parser.error("--requests: must be >= 1")
    rows = measure(requests=args.requests, seed=args.seed)
    table = Table(
        title=f"Ranker.rank CPU per request, soak requests (1,500-trip catalog), {args.requests} each"
    )
    for col in ("configuration", "CPU µs / request", "× baseline", "impression bytes"):
        table.add_column(col, justify="right")
    base = rows[0]["cpu_us_per_request"]
    for r in rows:
        table.add_row(r["config"], f"{r['cpu_us_per_request']:,.0f}", f"{r['cpu_us_per_request'] / base:.3f}",
                      f"{r['impression_bytes']:,.0f}")  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    main()
