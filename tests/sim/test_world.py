from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from features.phi import phi
from scoring.linear import LinearScorer, rule_scorer
from scoring.topk import top_k
from sim.config import ConfigError, load_config
from sim.driver import RequestOutcome
from sim.report import summarize, wilson
from sim.world import World

TODAY = dt.date(2026, 3, 1)


def test_same_seed_same_world() -> None:
    a, b = World(load_config({"seed": 3}), today=TODAY), World(load_config({"seed": 3}), today=TODAY)
    assert [u.prefs for u in a.users] == [u.prefs for u in b.users]
    np.testing.assert_array_equal(a.appeal, b.appeal)
    c = World(load_config({"seed": 4}), today=TODAY)
    assert [u.prefs for u in a.users] != [u.prefs for u in c.users]


def test_oracle_beats_every_policy_and_best_linear_is_close() -> None:
    world = World(load_config({"users": {"count": 300}}), today=TODAY)
    rules = rule_scorer()
    totals = {"rules": 0.0, "best_linear": 0.0, "oracle": 0.0}
    for user in world.users[:200]:
        rows = world.candidates(user)
        X = phi(world.catalog, user.prefs, TODAY, rows)
        taste = dict(world.config.taste[user.segment])
        taste["POPULARITY"] = taste.get("POPULARITY", 0.0) + world.config.appeal_scale
        for name, scorer in (("rules", rules), ("best_linear", LinearScorer(taste))):
            shown = rows[top_k(scorer.score_many(X), 10)]
            totals[name] += float(world.click_probabilities(user, shown).sum())
        oracle = world.oracle_expected_clicks(user, 10)
        totals["oracle"] += oracle
        assert oracle + 1e-12 >= float(world.click_probabilities(user, rows[:10]).sum())
    # The demo's targets are reachable: a linear policy over φ gets > 85% of the oracle; the rules do not.
    assert totals["best_linear"] / totals["oracle"] > 0.88
    assert totals["rules"] / totals["oracle"] < 0.75


def test_drift_changes_the_truth() -> None:
    cfg = load_config(
        {"drift": {"at_fraction": 0.5, "taste": {"budget": {"PRICE_GAP": 2.0, "BUDGET_PERFECT": -1.0}}}}
    )
    world = World(cfg, today=TODAY)
    user = next(u for u in world.users if u.segment == "budget")
    rows = world.candidates(user)[:50]
    assert not np.allclose(world.attractiveness(user, rows), world.attractiveness(user, rows, drifted=True))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"colour": 1}, "colour: unknown configuration key"),
        ({"taste": {"vip": {}}}, "taste.vip: unknown segment"),
        ({"taste": {"budget": {"NOPE": 1.0}}}, "taste.budget.NOPE: unknown feature"),
        ({"traffic": {"rate_rps": 0}}, "rate_rps: must be > 0, got 0.0"),
        ({"conversion": {"save": 2}}, "conversion.save: must be in [0, 1], got 2.0"),
        ({"users": {"count": "many"}}, "users.count: must be int, got str"),
        ({"drift": {"at_fraction": 1.5}}, "drift.at_fraction: must be in (0, 1), got 1.5"),
    ],
)
def test_bad_configs_name_the_field(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(raw)
    assert str(err.value).startswith(message)


def test_config_from_file(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    path.write_text(json.dumps({"seed": 9, "traffic": {"duration_s": 30}}))
    cfg = load_config(path)
    assert cfg.seed == 9 and cfg.duration_s == 30.0


def test_wilson_and_summary() -> None:
    low, high = wilson(50, 1000)
    assert low < 0.05 < high and high - low < 0.03
    outcomes = [
        RequestOutcome(
            float(i),
            "rules" if i % 2 else "linucb",
            "p",
            "general",
            10,
            1 if i % 2 else 2,
            1.0,
            2.0,
            0.001,
            False,
        )
        for i in range(100)
    ]
    by = {r.variant: r for r in summarize(outcomes)}
    assert by["linucb"].lift_over_rules == pytest.approx(1.0)
    assert by["rules"].share_of_oracle == pytest.approx(0.5)
