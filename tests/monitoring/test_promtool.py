"""The alert rules pass `promtool check rules` and their unit tests (`promtool test rules`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.monitoring.prometheus_server import require
from tests.monitoring.promql import ALERTS, ROOT

PROM = ROOT / "monitoring/prometheus"


def _run(*args: str, cwd: Path = PROM) -> str:
    done = subprocess.run([require("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_alert_rules_are_valid() -> None:
    out = _run("check", "rules", str(ALERTS))
    n = sum(len(g["rules"]) for g in yaml.safe_load(ALERTS.read_text())["groups"])
    assert f"SUCCESS: {n} rules found" in out


def test_alert_rules_unit_tests_pass() -> None:
    assert "SUCCESS" in _run("test", "rules", "alerts_test.yml")


def test_every_alert_has_a_unit_test() -> None:
    tested = {
        case["alertname"]
        for group in yaml.safe_load((PROM / "alerts_test.yml").read_text())["tests"]
        for case in group.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    alerts = {r["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]}
    assert alerts - tested == set(), "alerts never shown firing in alerts_test.yml"


def test_compose_prometheus_config_is_valid(tmp_path: Path) -> None:
    """The compose config, with the container paths of rules and token pointed at the repository's files."""
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    config["rule_files"] = [str(ALERTS)]
    token = tmp_path / "scoring-token"
    token.write_text("x" * 32)
    for job in config["scrape_configs"]:
        if "authorization" in job:
            assert job["authorization"]["credentials_file"] == "/prometheus/scoring-token"
            job["authorization"]["credentials_file"] = str(token)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    assert "SUCCESS" in _run("check", "config", str(tmp_path / "prometheus.yml"))
