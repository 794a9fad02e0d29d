"""Off-policy estimators: closed forms, a brute-force loop, bad inputs, bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bandit.ope import ESTIMATORS, OPEData, estimate, evaluate
from bandit.ope_validation import OPEInputError

N_ACTIONS, LEN_LIST = 5, 3


def random_logs(seed: int, n: int = 400) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    action = rng.integers(0, N_ACTIONS, n)
    position = rng.integers(0, LEN_LIST, n)
    pscore = rng.uniform(0.05, 1.0, n)
    dist = rng.dirichlet(np.ones(N_ACTIONS), size=(n, LEN_LIST)).transpose(0, 2, 1)
    q_hat = rng.uniform(0, 1, (n, N_ACTIONS, LEN_LIST))
    reward = rng.binomial(1, 0.3, n).astype(float)
    return {"reward": reward, "action": action, "position": position, "pscore": pscore,
            "action_dist": dist, "q_hat": q_hat}  # fmt: skip


def brute_force(logs: dict[str, np.ndarray], name: str, clip: float | None = None) -> float:
    """Independent plain-Python loop over the rows, from the formulas."""
    n = len(logs["reward"])
    sum_w = sum_wr = sum_dm = sum_res = 0.0
    for i in range(n):
        a, k = int(logs["action"][i]), int(logs["position"][i])
        w = logs["action_dist"][i, a, k] / logs["pscore"][i]
        if clip is not None:
            w = min(w, clip)
        q_pi = 0.0
        for b in range(N_ACTIONS):
            q_pi += logs["action_dist"][i, b, k] * logs["q_hat"][i, b, k]
        r = logs["reward"][i]
        sum_w += w
        sum_wr += w * r
        sum_dm += q_pi
        sum_res += w * (r - logs["q_hat"][i, a, k])
    return {
        "ipw": sum_wr / n,
        "snipw": sum_wr / sum_w,
        "dm": sum_dm / n,
        "dr": (sum_dm + sum_res) / n,
        "sndr": sum_dm / n + sum_res / sum_w,
    }[name]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("clip", [None, 2.0])
def test_agrees_with_brute_force_loop(seed: int, clip: float | None) -> None:
    logs = random_logs(seed)
    data = OPEData.from_dense(**logs)
    for name in ESTIMATORS:
        assert estimate(data, name, clip=clip) == pytest.approx(brute_force(logs, name, clip), abs=1e-12)


def test_dr_with_zero_model_is_ips_and_sndr_is_snips() -> None:
    logs = random_logs(7)
    data = OPEData.from_dense(**{**logs, "q_hat": np.zeros_like(logs["q_hat"])})
    assert estimate(data, "dr") == pytest.approx(estimate(data, "ipw"), abs=1e-12)
    assert estimate(data, "sndr") == pytest.approx(estimate(data, "snipw"), abs=1e-12)
    assert estimate(data, "dm") == 0.0


@pytest.mark.parametrize("c", [0.0, 0.17, 1.0, 3.5])
def test_constant_model(c: float) -> None:
    logs = random_logs(11)
    data = OPEData.from_dense(**{**logs, "q_hat": np.full_like(logs["q_hat"], c)})
    ips = estimate(data, "ipw")
    mean_w = float(np.mean(data.weights()))
    assert estimate(data, "dm") == pytest.approx(c, abs=1e-12)
    assert estimate(data, "dr") == pytest.approx(c + ips - c * mean_w, abs=1e-12)


def test_uniform_policy_on_uniform_logs_gives_logged_ctr() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    logs = {
        "reward": rng.binomial(1, 0.2, n), "action": rng.integers(0, N_ACTIONS, n),
        "position": rng.integers(0, LEN_LIST, n), "pscore": np.full(n, 1 / N_ACTIONS),
        "action_dist": np.full((n, N_ACTIONS, LEN_LIST), 1 / N_ACTIONS),
    }  # fmt: skip
    data = OPEData.from_dense(**logs)
    ctr = float(np.mean(logs["reward"]))
    assert estimate(data, "ipw") == pytest.approx(ctr, abs=1e-12)
    assert estimate(data, "snipw") == pytest.approx(ctr, abs=1e-12)


def test_clipping_bounds_weights_and_is_reported() -> None:
    data = OPEData.from_dense(**random_logs(5))
    report = evaluate(data, ["ipw"], clip=1.5, n_bootstrap=0)
    overall = report.diagnostics[0]
    assert overall.max_weight <= 1.5
    assert overall.clipped_fraction == pytest.approx(float(np.mean(data.weights() > 1.5)))
    w = data.weights(1.5)
    assert overall.ess == pytest.approx(w.sum() ** 2 / np.square(w).sum())


def test_per_position_estimates_use_only_that_position() -> None:
    logs = random_logs(9)
    data = OPEData.from_dense(**logs)
    report = evaluate(data, ["ipw", "dr"], n_bootstrap=0)
    for est in report.estimates:
        if est.position is None:
            continue
        mask = logs["position"] == est.position
        sub = {k: v[mask] for k, v in logs.items()}
        assert est.value == pytest.approx(brute_force(sub, est.estimator), abs=1e-12)
        assert est.n == int(mask.sum())


def test_bootstrap_interval_covers_and_is_seeded() -> None:
    data = OPEData.from_dense(**random_logs(2, n=1000))
    a = evaluate(data, ["snipw", "dr"], n_bootstrap=100, seed=4, per_position=False)
    b = evaluate(data, ["snipw", "dr"], n_bootstrap=100, seed=4, per_position=False)
    assert a == b
    for est in a.estimates:
        assert est.ci_low < est.value < est.ci_high
        assert est.ci_high - est.ci_low < 0.5


def test_cluster_bootstrap_is_wider_for_correlated_rows() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(200), 10)  # ten identical rows per group
    reward = np.repeat(rng.binomial(1, 0.5, 200), 10)
    data = OPEData.from_arrays(reward=reward, position=np.zeros(2000, int), pscore=np.ones(2000),
                               pi_e=np.ones(2000), group=groups)  # fmt: skip
    plain = OPEData.from_arrays(reward=reward, position=np.zeros(2000, int), pscore=np.ones(2000),
                                pi_e=np.ones(2000))  # fmt: skip
    width = [
        (lambda e: e.ci_high - e.ci_low)(
            evaluate(d, ["ipw"], n_bootstrap=200, per_position=False).estimates[0]
        )
        for d in (data, plain)
    ]
    assert width[0] > 2 * width[1]


BAD_INPUTS = [
    ({"pscore": [0.5, 0.0]}, "pscore: must be in (0, 1], got 0.0 at index 1"),
    ({"pscore": [0.5, 1.2]}, "pscore: must be in (0, 1], got 1.2 at index 1"),
    ({"reward": [1.0, math.nan]}, "reward: must be finite (no NaN or inf), got nan at index 1"),
    ({"pscore": [0.5, 0.5, 0.5]}, "lengths: arrays must have the same length"),
    ({"pi_e": [0.5, 1.5]}, "pi_e: must be in [0, 1], got 1.5 at index 1"),
    ({"position": [0, -1]}, "position: must be >= 0, got -1 at index 1"),
    ({"q_logged": [0.1, 0.2]}, "q_logged: q_logged and q_policy must be given together"),
]


@pytest.mark.parametrize(("override", "message"), BAD_INPUTS)
def test_bad_inputs_name_the_problem(override: dict[str, list[float]], message: str) -> None:
    args: dict[str, object] = {
        "reward": [1.0, 0.0],
        "position": [0, 1],
        "pscore": [0.5, 0.5],
        "pi_e": [0.5, 0.5],
    }
    args.update(override)
    with pytest.raises(OPEInputError) as info:
        OPEData.from_arrays(**args)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_policy_probabilities_must_sum_to_one() -> None:
    logs = random_logs(1, n=10)
    logs["action_dist"][3, :, 1] *= 0.9
    with pytest.raises(
        OPEInputError, match=r"action_dist: probabilities must sum to 1 over actions; round 3 position 1"
    ):
        OPEData.from_dense(**logs)


def test_dense_shapes_and_ids_are_checked() -> None:
    logs = random_logs(1, n=10)
    with pytest.raises(OPEInputError, match="q_hat: must have the shape of action_dist"):
        OPEData.from_dense(**{**logs, "q_hat": logs["q_hat"][:, :2]})
    with pytest.raises(OPEInputError, match="action: ids must be < n_actions = 5"):
        OPEData.from_dense(**{**logs, "action": np.full(10, 5)})
    with pytest.raises(OPEInputError, match="lengths: no rounds"):
        OPEData.from_arrays(reward=[], position=[], pscore=[], pi_e=[])


def test_model_based_estimators_need_a_model_and_names_are_checked() -> None:
    data = OPEData.from_arrays(reward=[1.0], position=[0], pscore=[0.5], pi_e=[0.5])
    with pytest.raises(OPEInputError, match="estimator 'dr' needs a reward model"):
        estimate(data, "dr")
    with pytest.raises(OPEInputError, match="unknown estimator 'ips2'"):
        estimate(data, "ips2")
    with pytest.raises(OPEInputError, match="clip: must be a finite number > 0"):
        estimate(data, "ipw", clip=0.0)
