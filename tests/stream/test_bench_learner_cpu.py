"""``smarttrip bench learner-cpu`` runs both learner paths against a real redis-server and reports them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smarttrip.cli.main import app
from stream.settings import SettingsError, StreamSettings

pytestmark = pytest.mark.integration


def test_learner_cpu_bench_reports_both_paths(tmp_path: Path) -> None:
    path = tmp_path / "cpu.json"
    args = ["bench", "learner-cpu", "--rates", "400", "--seconds", "0.5", "--rounds", "1", "--worker-examples", "0",
            "--json", str(path)]  # fmt: skip
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    rows = json.loads(path.read_text())["inprocess"]
    assert [(r["path"], r["rate"], r["batch"]) for r in rows] == [
        ("reference", 400.0, 20),
        ("fast", 400.0, 20),
    ]
    assert all(r["examples"] == 200 and r["learn_us"] > 0 and r["publish_us"] > 0 for r in rows)
    assert "Learner runtime, CPU µs per example" in out.output and "fast" in out.output


def test_learner_fast_setting_is_a_switch() -> None:
    assert StreamSettings.from_env({}).learner_fast == 1
    assert StreamSettings.from_env({"SMARTTRIP_LEARNER_FAST": "0"}).learner_fast == 0
    with pytest.raises(SettingsError, match="SMARTTRIP_LEARNER_FAST: must be 0 or 1"):
        StreamSettings.from_env({"SMARTTRIP_LEARNER_FAST": "2"})
