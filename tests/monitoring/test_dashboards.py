"""The committed dashboards are what monitoring.grafana.dashboards generates, wired to the provisioned source."""

from __future__ import annotations

import json

import yaml

from monitoring.grafana.dashboards import DASHBOARD_DIR, DATASOURCE_UID, dashboards, render
from tests.monitoring.promql import ROOT

GRAFANA = ROOT / "monitoring/grafana"


def test_committed_json_is_generated() -> None:
    generated = dashboards()
    assert sorted(p.name for p in DASHBOARD_DIR.glob("*.json")) == sorted(generated)
    for name, dashboard in generated.items():
        assert (DASHBOARD_DIR / name).read_text() == render(dashboard), (
            f"{name} is stale: run python -m monitoring.grafana.dashboards"
        )


def test_panels_use_the_provisioned_datasource_and_have_queries() -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())["datasources"]
    assert [s["uid"] for s in sources] == [DATASOURCE_UID]
    for path in DASHBOARD_DIR.glob("*.json"):
        board = json.loads(path.read_text())
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == DATASOURCE_UID, panel["title"]
            assert panel["targets"], f"{path.name}: {panel['title']} has no query"
            assert all(t["datasource"]["uid"] == DATASOURCE_UID for t in panel["targets"])


def test_dashboards_cover_the_issue_panels() -> None:
    titles = {
        name: " | ".join(p["title"].lower() for p in board["panels"]) for name, board in dashboards().items()
    }
    for word in ("requests/s", "latency", "errors", "redis", "kafka", "lag", "spool", "dead letters"):
        assert word in titles["ops.json"], word
    for word in ("ctr by policy", "segment", "position", "model version", "model age", "weight", "loss"):
        assert word in titles["learning.json"], word
