"""On the simulator: OPE of one policy from another's logs lands on the policy's true CTR.

The logging policy is the scoring worker's ε-greedy over the rule scores
(propensities from :func:`scoring.exploration.epsilon_greedy`, as logged);
the evaluated policy ranks greedily by each segment's true taste. Both fill
the top slot (position 0) for users drawn uniformly from the simulated
population; the truth is the evaluated policy's CTR when it is run.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from bandit.ope import OPEData, evaluate
from bandit.reward_model import CrossFittedLogistic
from features.phi import phi
from scoring.exploration import epsilon_greedy, request_rng
from scoring.weights import SCORING_WEIGHTS, weights_vector
from sim.config import SimConfig
from sim.world import World

EPSILON = 0.5
N_LOGGED = 40_000


@pytest.fixture(scope="module")
def world() -> World:
    return World(SimConfig(seed=3, catalog_trips=60, users=300), today=dt.date(2026, 3, 1))


def test_ope_estimate_covers_the_true_on_policy_ctr(world: World) -> None:
    rules = weights_vector(SCORING_WEIGHTS)
    per_user = []
    for user in world.users:
        rows = world.candidates(user)
        X = phi(world.catalog, user.prefs, world.today, rows).astype(np.float64)
        click_p = world.examination[0] * world.attractiveness(user, rows)
        target = int(np.argmax(X @ world.taste(user.segment)))
        per_user.append((X, X @ rules, click_p, target))

    rng = np.random.default_rng(11)
    users = rng.integers(0, len(world.users), N_LOGGED)
    logged_X, reward, pscore, pi_e, q_rows = [], [], [], [], []
    for i, u in enumerate(users):
        X, scores, click_p, target = per_user[u]
        slate = epsilon_greedy(scores, 1, EPSILON, request_rng(f"req-{i}", seed=7))
        shown = int(slate.order[0])
        logged_X.append(X[shown])
        reward.append(float(rng.random() < click_p[shown]))
        pscore.append(float(slate.propensities[0]))
        pi_e.append(1.0 if shown == target else 0.0)
        q_rows.append(X[target])

    model = CrossFittedLogistic.fit(np.array(logged_X), np.array(reward), folds=5, seed=0)
    q_logged = model.predict(np.array(logged_X)[:, None, :])[:, 0]
    q_policy = model.predict(np.array(q_rows)[:, None, :])[:, 0]
    data = OPEData.from_arrays(
        reward=reward, position=np.zeros(N_LOGGED, int), pscore=pscore, pi_e=pi_e,
        q_logged=q_logged, q_policy=q_policy,
    )  # fmt: skip
    report = evaluate(data, ["ipw", "snipw", "dr", "sndr"], n_bootstrap=300, seed=0, per_position=False)

    # The truth, by running the evaluated policy on fresh traffic from the same population.
    run_rng = np.random.default_rng(12)
    run_users = run_rng.integers(0, len(world.users), N_LOGGED)
    clicks = [run_rng.random() < per_user[u][2][per_user[u][3]] for u in run_users]
    on_policy_ctr = float(np.mean(clicks))
    logging_ctr = float(np.mean(reward))
    assert abs(on_policy_ctr - logging_ctr) > 0.02  # the two policies really differ
    for est in report.estimates:
        assert est.ci_low <= on_policy_ctr <= est.ci_high, (est, on_policy_ctr)
        assert est.ci_high - est.ci_low < 0.1, est
