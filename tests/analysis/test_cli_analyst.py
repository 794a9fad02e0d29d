"""``smarttrip replay``, ``ope`` and ``ab report`` on an export of our own topics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bandit import LinUCB, learner_from_bytes
from bandit.ope import estimate
from bandit.ope_inputs import table_policy_data
from smarttrip.cli.main import app
from stream.codec import encode
from stream.examples_source import load_examples, logs_from_examples
from stream.export import LogRecord, write_export
from stream.replay import Replayer
from tests.analysis.replay_data import SETTINGS, session_records
from tests.analysis.test_ab import _examples

ENV = {"SMARTTRIP_JOIN_WINDOW_S": "2", "SMARTTRIP_WATERMARK_DELAY_S": "0.5", "SMARTTRIP_ALLOWED_LATENESS_S": "30",
       "SMARTTRIP_JOIN_GRACE_S": "5", "SMARTTRIP_BATCH_SIZE": "64"}  # fmt: skip


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[LogRecord]]:
    records = session_records(n_sessions=300)
    path = tmp_path_factory.mktemp("export") / "run.jsonl.gz"
    write_export(records, path)
    return path, records


def test_replay_cli_saves_the_models_the_replayer_learns(
    export: tuple[Path, list[LogRecord]], tmp_path: Path
) -> None:
    path, records = export
    out, models = tmp_path / "replay.json", tmp_path / "models"
    result = CliRunner().invoke(app, ["replay", "--logs", str(path), "--json", str(out), "--save-models", str(models)],
                                env=ENV)  # fmt: skip
    assert result.exit_code == 0, result.output
    stats = json.loads(out.read_text())["stats"]
    reference = Replayer("raw", settings=SETTINGS)
    expected = reference.run(records)
    assert stats["events"] == expected.events and stats["examples"] == expected.examples
    for (policy, segment), learner in reference.models().items():
        saved = (models / f"{policy}.{segment}.model").read_bytes()
        restored = learner_from_bytes(saved)
        assert restored.n_examples == learner.n_examples
        if isinstance(learner, LinUCB) and isinstance(
            restored, LinUCB
        ):  # compiled: rank-one steps, not Woodbury
            np.testing.assert_allclose(restored.A_inv, learner.A_inv, rtol=0, atol=1e-9)
            np.testing.assert_allclose(restored.theta, learner.theta, rtol=0, atol=1e-9)
        else:
            assert saved == learner.to_bytes()


def test_ope_cli_with_a_uniform_reranking_matches_a_loop(
    export: tuple[Path, list[LogRecord]], tmp_path: Path
) -> None:
    path, records = export
    models = tmp_path / "models"
    CliRunner().invoke(app, ["replay", "--logs", str(path), "--save-models", str(models)], env=ENV)
    out = tmp_path / "ope.json"
    result = CliRunner().invoke(app, [
        "ope", "--logs", str(path), "--policy", str(models / "linucb.general.model"), "--epsilon", "1.0",
        "--estimators", "ipw,snipw,dr", "--bootstrap-samples", "30", "--json", str(out)], env=ENV)  # fmt: skip
    assert result.exit_code == 0, result.output
    # ε = 1: position j of a slate of m items is uniform over the m − j items not placed above it.
    examples, _ = load_examples(records, SETTINGS)
    sizes: dict[str, int] = {}
    for e in examples:
        sizes[e.request_id] = sizes.get(e.request_id, 0) + 1
    loop = np.mean([float(e.clicked) / (sizes[e.request_id] - e.position) for e in examples])
    overall = {e["estimator"]: e for e in json.loads(out.read_text())["estimates"] if e["position"] is None}
    assert overall["ipw"]["value"] == pytest.approx(loop, abs=1e-12)
    assert overall["ipw"]["n"] == len(examples)
    assert overall["dr"]["ci_low"] <= overall["dr"]["value"] <= overall["dr"]["ci_high"]


def test_ab_report_cli(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    examples = _examples("rules", 1500, 0.10, rng) + _examples("linucb", 1500, 0.16, rng)
    path = tmp_path / "examples.jsonl"
    write_export([LogRecord("examples", 0, i, 0, ex.segment.encode(), encode(ex)) for i, ex in enumerate(examples)],
                 path)  # fmt: skip
    out, png = tmp_path / "ab.json", tmp_path / "ab.png"
    result = CliRunner().invoke(
        app, ["ab", "report", "--logs", str(path), "--json", str(out), "--png", str(png)]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert [v["variant"] for v in payload["variants"]] == ["linucb", "rules"]
    ctr = next(c for c in payload["comparisons"] if c["metric"] == "ctr")
    assert ctr["variant"] == "linucb" and ctr["p_value"] < 0.01
    assert png.stat().st_size > 1000
    ranking = {(r["variant"], r["segment"]): r for r in payload["ranking"]}
    assert ranking[("linucb", "*")]["slates"] == 1500 and ranking[("rules", "general")]["slates"] == 1500
    assert ranking[("linucb", "*")]["mrr"] > ranking[("rules", "*")]["mrr"]
    assert "Against the control" in result.output and "linucb" in result.output


def test_cli_input_errors() -> None:
    result = CliRunner().invoke(app, ["replay"])
    assert result.exit_code == 2 and "give exactly one of --logs FILE or --bootstrap SERVERS" in result.output
    result = CliRunner().invoke(app, ["ope", "--logs", "x.jsonl"])
    assert result.exit_code == 2 and "give exactly one of --policy or --policy-table" in result.output


def test_policy_table_on_our_logs(export: tuple[Path, list[LogRecord]], tmp_path: Path) -> None:
    """A table over our trip ids (rows in sorted trip-id order): a point mass on one trip per position."""
    _, records = export
    examples, _ = load_examples(records, SETTINGS)
    logs = logs_from_examples(examples)
    table = np.zeros((logs.n_actions, logs.len_list))
    picks = [int(a) for a in logs.action[: logs.len_list]]
    for k, a in enumerate(picks):
        table[a, k] = 1.0
    data = table_policy_data(logs, table, reward_model="none")
    loop = np.mean([e.clicked / e.propensity if logs.action_names.index(e.trip_id) == picks[e.position] else 0.0
                    for e in examples])  # fmt: skip
    assert estimate(data, "ipw") == pytest.approx(loop, abs=1e-12)
