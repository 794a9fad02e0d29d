"""Open Bandit Dataset adapter on a sample of the real data shipped with obp."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bandit.ope import estimate
from bandit.ope_inputs import table_policy_data
from bandit.ope_validation import OPEInputError
from smarttrip.cli.main import app
from stream.obd import read_obd

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "obd_random_men_sample.csv"
ITEMS = DATA / "obd_item_context.csv"


def test_reads_the_sample_like_obp() -> None:
    logs = read_obd(SAMPLE, item_context=ITEMS)
    assert len(logs) == 1000 and logs.n_actions == 34 and logs.len_list == 3
    assert set(logs.position.tolist()) == {0, 1, 2}  # 1..3 in the file, dense-ranked as obp does
    np.testing.assert_allclose(logs.pscore, 1 / 34)  # uniformly random logging
    assert logs.reward.sum() == 5 and logs.context.shape[0] == 1000
    assert np.bincount(np.bincount(logs.slate)).nonzero()[0].max() <= 3  # one slate = one timestamp


def test_uniform_table_gives_the_logged_ctr_and_a_point_mass_matches_a_loop(tmp_path: Path) -> None:
    logs = read_obd(SAMPLE, item_context=ITEMS)
    uniform = np.full((34, 3), 1 / 34)
    data = table_policy_data(logs, uniform, reward_model="none")
    assert estimate(data, "ipw") == pytest.approx(logs.reward.mean(), abs=1e-12)
    assert estimate(data, "snipw") == pytest.approx(logs.reward.mean(), abs=1e-12)
    point = np.zeros((34, 3))
    point[[14, 3, 20], [0, 1, 2]] = 1.0
    picks = {0: 14, 1: 3, 2: 20}
    loop = sum(
        r * 34.0
        for a, k, r in zip(logs.action, logs.position, logs.reward, strict=True)
        if a == picks[int(k)]
    )
    assert estimate(table_policy_data(logs, point, reward_model="none"), "ipw") == pytest.approx(loop / 1000)
    dr = estimate(table_policy_data(logs, point, reward_model="logistic"), "dr")
    assert np.isfinite(dr)


def test_bad_files_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(",timestamp,item_id,position,click\n0,2019,1,1,0\n")
    with pytest.raises(OPEInputError, match=r"missing OBD column\(s\) \['propensity_score'\]"):
        read_obd(bad)
    bad.write_text(",timestamp,item_id,position,click,propensity_score\n0,2019,1,1,0,0.5\n1,2019,x,1,0,0.5\n")
    with pytest.raises(OPEInputError, match=r"bad\.csv:3: column 'item_id': bad value"):
        read_obd(bad)


def test_cli_ope_and_replay_on_obd(tmp_path: Path) -> None:
    table = tmp_path / "uniform.csv"
    table.write_text("# uniform\n" + "\n".join(",".join([repr(1 / 34)] * 3) for _ in range(34)) + "\n")
    runner = CliRunner()
    out = tmp_path / "ope.json"
    result = runner.invoke(app, ["ope", "--format", "obd", "--logs", str(SAMPLE), "--item-context", str(ITEMS),
                                 "--policy-table", str(table), "--bootstrap-samples", "50", "--json", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    overall = {e["estimator"]: e for e in payload["estimates"] if e["position"] is None}
    assert set(overall) == {"ipw", "snipw", "dm", "dr", "sndr"}
    assert overall["ipw"]["value"] == pytest.approx(0.005) and payload["logged_mean_reward"] == pytest.approx(
        0.005
    )
    out2 = tmp_path / "replay.json"
    result = runner.invoke(app, ["replay", "--format", "obd", "--logs", str(SAMPLE), "--policy-table", str(table),
                                 "--json", str(out2)])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(out2.read_text())["replay"]
    assert [r["position"] for r in rows] == [0, 1, 2] and sum(r["n"] for r in rows) == 1000
    assert all(0 < r["accepted"] < r["n"] for r in rows)
    bad = runner.invoke(app, ["ope", "--format", "obd", "--logs", str(SAMPLE), "--policy-table", str(SAMPLE)])
    assert bad.exit_code == 2 and "policy_table" in bad.output
