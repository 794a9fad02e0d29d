"""Every PromQL expression the dashboards and alert rules use, and the substitutions to run them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "monitoring/prometheus/alerts.yml"
DASHBOARDS = sorted((ROOT / "monitoring/grafana/dashboards").glob("*.json"))
METRIC_NAME = re.compile(r"\bsmarttrip_[a-z0-9_]+\b")

#: What Grafana would put in for the template variables when a query runs ("All" for the regex ones).
#: A 10 s rate window is 10 scrapes of the test's 1 s interval, as $__rate_interval would be.
GRAFANA_VARIABLES = {"$__rate_interval": "10s", "$ctr_window": "5m", "$segment": ".*", "$feature": ".*"}


@dataclass(frozen=True)
class Query:
    where: str  # "ops.json: Rank latency [B]" or "alert SmartTripRedisUnreachable"
    expr: str


def dashboard_queries() -> list[Query]:
    out = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                out.append(Query(f"{path.name}: {panel['title']} [{target['refId']}]", target["expr"]))
    return out


def variable_queries() -> list[Query]:
    """The label_values(metric, label) queries of the template variables, as series selectors."""
    out = []
    for path in DASHBOARDS:
        for var in json.loads(path.read_text())["templating"]["list"]:
            if var["type"] == "query":
                m = re.fullmatch(r"label_values\((\w+), *(\w+)\)", var["definition"])
                assert m, f"{path.name}: variable {var['name']}: unexpected query {var['definition']}"
                out.append(Query(f"{path.name}: variable {var['name']}", m.group(1)))
    return out


def alert_queries() -> list[Query]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [Query(f"alert {r['alert']}", r["expr"]) for g in rules["groups"] for r in g["rules"]]


def substitute(expr: str) -> str:
    for name in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, GRAFANA_VARIABLES[name])
    assert "$" not in expr, f"unknown template variable in {expr}"
    return expr


def metric_names(expr: str) -> set[str]:
    """SmartTrip metric families an expression reads (histogram suffixes removed)."""
    return {re.sub(r"_(bucket|count|sum)$", "", m) for m in METRIC_NAME.findall(expr)}
