"""How far the short demo's learned variants lead the rules, in standard errors, over repeated runs.

The figures behind ``tests/sim/test_demo_e2e.py``'s choice of rate: that
test asserts a lead of three standard errors over the second half of a 60 s
run, and the lead varies from run to run (timing moves even the rules' own
CTR). Each run is the full real loop (:func:`sim.demo.run_demo`).

    python -m bench.demo_margin --rate 60 --runs 3
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sim.config import load_config
from sim.demo import run_demo
from sim.driver import RequestOutcome

VARIANTS = ("rules", "logistic", "linucb", "vw")


def margin(rate: int, duration_s: int, seed: int) -> tuple[float, dict[str, float]]:
    """(lead of the pooled learned CTR over the rules' in standard errors, CTR per variant), second half."""
    cfg = load_config({"seed": seed, "traffic": {"rate_rps": rate, "duration_s": duration_s}})
    with tempfile.TemporaryDirectory() as out:
        result = run_demo(cfg, Path(out))
    half = [o for o in result.driver.outcomes if o.t >= duration_s / 2]
    ctr = {}
    for v in VARIANTS:
        rows = [o for o in half if o.variant == v]
        ctr[v] = sum(o.clicks for o in rows) / max(1, sum(o.slots for o in rows))
    p_l, p_r, se = learned_vs_rules(half)
    return (p_l - p_r) / se, ctr


def learned_vs_rules(outcomes: Sequence[RequestOutcome]) -> tuple[float, float, float]:
    """(pooled CTR of the learned variants, the rules' CTR, standard error of their difference)."""
    rules = [o for o in outcomes if o.variant == "rules"]
    learned = [o for o in outcomes if o.variant != "rules"]
    c_r, n_r = sum(o.clicks for o in rules), sum(o.slots for o in rules)
    c_l, n_l = sum(o.clicks for o in learned), sum(o.slots for o in learned)
    p_r, p_l = c_r / n_r, c_l / n_l
    return p_l, p_r, math.sqrt(p_r * (1 - p_r) / n_r + p_l * (1 - p_l) / n_l)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=60, help="requests per second")
    parser.add_argument("--duration", type=int, default=60, help="seconds of traffic per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=3, help="the e2e test's seed")
    args = parser.parse_args()
    table = Table(title=f"Demo margin: {args.rate} req/s for {args.duration} s, seed {args.seed}")
    for name in ("run", "lead (SE)", *VARIANTS):
        table.add_column(name, justify="right")
    for run in range(1, args.runs + 1):
        z, ctr = margin(args.rate, args.duration, args.seed)
        table.add_row(str(run), f"{z:.2f}", *(f"{ctr[v]:.2%}" for v in VARIANTS))
    Console().print(table)


if __name__ == "__main__":
    main()
